/*
 * image_resample.h - the pieces of Pillow's antialiased bicubic resampling
 * (Image.resize(..., BICUBIC), Pillow's libImaging/Resample.c algorithm)
 * that both the reference resize (resize.c) and the padded fast path
 * (preprocess.c) use. Byte-identical results need the exact same double
 * expressions in the same order, so they live here once.
 *
 * Per axis (in_size -> out_size):
 *   scale = in/out; filterscale = max(scale, 1); support = 2 * filterscale
 *   output i samples around center = (i + 0.5) * scale, over input
 *   [xmin, xmin + xlen) with xmin = (int)(center - support + 0.5) clamped to
 *   0 and end (int)(center + support + 0.5) clamped to in_size;
 *   w_x = bicubic((x - center + 0.5) / filterscale), a = -0.5;
 *   k_x = w_x / sum(w) (summed in order), then fixed point with 22
 *   fraction bits, rounded away from zero.
 * A pass: acc = 2^21 + sum k_x * v_x (integers); out = clip(acc >> 22).
 */
#ifndef LLV_IMAGE_RESAMPLE_H
#define LLV_IMAGE_RESAMPLE_H

#include "common.h"

#include <math.h>

/* Pillow: 32 bits - 8 for the result - 2 for overshoot of the sums. */
#define LLV_RS_PRECISION_BITS (32 - 8 - 2)

/* Pillow's a = -0.5 cubic convolution kernel, support 2. */
static inline double llv_rs_bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

typedef struct llv_rs_axis {
    int    in_size, out_size;
    double scale, filterscale, support, ss;
    int    ksize; /* most taps any output uses */
} llv_rs_axis;

static inline void llv_rs_axis_init(llv_rs_axis *a, int in_size, int out_size)
{
    a->in_size = in_size;
    a->out_size = out_size;
    /* Pillow passes the box edges as C floats: in1 - in0 is a float, so a
     * side above 2^24 is rounded exactly as it is there. */
    float in0 = 0.0f, in1 = (float)in_size;
    a->scale = (double)(in1 - in0) / out_size;
    a->filterscale = a->scale < 1.0 ? 1.0 : a->scale;
    a->support = 2.0 * a->filterscale;
    a->ss = 1.0 / a->filterscale;
    /* Only the table-based reference needs ksize; absurd supports get -1. */
    a->ksize = a->support < 268435456.0 ? (int)ceil(a->support) * 2 + 1 : -1;
}

static inline double llv_rs_center(const llv_rs_axis *a, int i)
{
    return 0.0 + (i + 0.5) * a->scale;
}

/* Input window of the output centred at center: [*xmin, *xmin + *xlen). */
static inline void llv_rs_window(const llv_rs_axis *a, double center, int *xmin, int *xlen)
{
    int lo = (int)(center - a->support + 0.5);
    if (lo < 0)
        lo = 0;
    int hi = (int)(center + a->support + 0.5);
    if (hi > a->in_size)
        hi = a->in_size;
    *xmin = lo;
    *xlen = hi - lo;
}

/* Unnormalised weight of input x for an output centred at center. */
static inline double llv_rs_weight(const llv_rs_axis *a, int x, double center)
{
    return llv_rs_bicubic((x - center + 0.5) * a->ss);
}

/* Normalised weight w/ww in fixed point (Pillow leaves w as is if ww == 0). */
static inline int32_t llv_rs_fixed(double w, double ww)
{
    double k = ww != 0.0 ? w / ww : w;
    const double one = (double)(1 << LLV_RS_PRECISION_BITS);
    return k < 0 ? (int32_t)(-0.5 + k * one) : (int32_t)(0.5 + k * one);
}

static inline uint8_t llv_rs_clip8(int64_t acc)
{
    int64_t v = acc >> LLV_RS_PRECISION_BITS; /* arithmetic shift: floor */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

#define LLV_RS_HALF ((int64_t)1 << (LLV_RS_PRECISION_BITS - 1))

/* llv_preprocess_pad_resize with an explicit limit on the number of
 * cached coefficients per axis (beyond it they are recomputed on the fly);
 * the public one uses LLV_PAD_RESIZE_CACHE_CAP. For tests of both paths. */
#define LLV_PAD_RESIZE_CACHE_CAP ((size_t)1 << 24)
LLV_INTERNAL int llv_preprocess_pad_resize_cap(const uint8_t *rgb, int32_t w, int32_t h, const uint8_t pad_rgb[3],
                                               int32_t target, uint8_t *out_rgb, size_t cache_cap, llv_err *err);

#endif /* LLV_IMAGE_RESAMPLE_H */
