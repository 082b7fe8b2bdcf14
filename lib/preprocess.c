/*
 * preprocess.c - LLaVA-1.5 image preprocessing: expand2square with the pad
 * colour at the original resolution, then Pillow's bicubic resize to the
 * encoder's side, then normalisation to planar floats.
 *
 * The padded square is never built: its side can be far larger than the
 * image (a 1 x 4000 picture pads to 4000 x 4000). The result is still
 * byte-identical to resizing the materialised square (resize.c does that
 * and the tests compare both), because the fixed-point sums are exact
 * integers and can be regrouped:
 *   - every pad pixel of a horizontal window contributes pad * k, so the
 *     pad part of output column i is pad * kpad[i];
 *   - every row of the square that is entirely pad gives the same
 *     intermediate row (prow);
 *   - the vertical pass is done as a scatter: each image row, once
 *     resampled horizontally, is added to the (few) output rows whose
 *     window holds it, so the intermediate image is never stored.
 * The coefficients themselves are computed with the very expressions of
 * image_resample.h.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "image.h"
#include "image_resample.h"

#include <string.h>

/* One axis of the padded square: image extent [off, off + n) of side. */
typedef struct pad_axis {
    llv_rs_axis a;
    int      n, off;
    double  *center, *ww;  /* [out] */
    int32_t *lo, *hi;      /* [out] full window [lo, hi) in square coordinates */
    int32_t *ilo, *ilen;   /* [out] the image part, in image coordinates */
    int64_t *kpad, *ksum;  /* [out] fixed-point sums over the pad part / the whole window */
    int32_t *k;            /* cached image-part taps (NULL: compute on the fly) */
    size_t  *koff;         /* [out] offset of output i's taps in k */
} pad_axis;

static void pad_axis_free(pad_axis *p)
{
    llv_free(p->center); llv_free(p->ww); llv_free(p->lo); llv_free(p->hi);
    llv_free(p->ilo); llv_free(p->ilen); llv_free(p->kpad); llv_free(p->ksum);
    llv_free(p->k); llv_free(p->koff);
    memset(p, 0, sizeof *p);
}

/* Tap of output i for square coordinate x. */
static inline int32_t pad_tap(const pad_axis *p, int i, int x)
{
    return llv_rs_fixed(llv_rs_weight(&p->a, x, p->center[i]), p->ww[i]);
}

static int pad_axis_build(pad_axis *p, int side, int target, int n, int off, size_t cache_cap, llv_err *err)
{
    memset(p, 0, sizeof *p);
    llv_rs_axis_init(&p->a, side, target);
    p->n = n;
    p->off = off;
    const size_t T = (size_t)target;
    p->center = llv_malloc(T * sizeof(double));
    p->ww = llv_malloc(T * sizeof(double));
    p->lo = llv_malloc(T * sizeof(int32_t));
    p->hi = llv_malloc(T * sizeof(int32_t));
    p->ilo = llv_malloc(T * sizeof(int32_t));
    p->ilen = llv_malloc(T * sizeof(int32_t));
    p->kpad = llv_malloc(T * sizeof(int64_t));
    p->ksum = llv_malloc(T * sizeof(int64_t));
    p->koff = llv_malloc(T * sizeof(size_t));
    if (!p->center || !p->ww || !p->lo || !p->hi || !p->ilo || !p->ilen || !p->kpad || !p->ksum || !p->koff)
        goto nomem;

    size_t total = 0;
    for (int i = 0; i < target; i++) {
        double c = llv_rs_center(&p->a, i);
        int xmin, xlen;
        llv_rs_window(&p->a, c, &xmin, &xlen);
        double ww = 0.0;
        for (int x = xmin; x < xmin + xlen; x++) /* in order, as Pillow sums */
            ww += llv_rs_weight(&p->a, x, c);
        p->center[i] = c;
        p->ww[i] = ww;
        p->lo[i] = xmin;
        p->hi[i] = xmin + xlen;
        int a = LLV_MAX(xmin, off), b = LLV_MIN(xmin + xlen, off + n);
        p->ilo[i] = a - off;
        p->ilen[i] = b > a ? b - a : 0;
        p->koff[i] = total;
        total += (size_t)p->ilen[i];
    }
    if (total <= cache_cap) {
        p->k = llv_malloc((total ? total : 1) * sizeof(int32_t));
        if (!p->k)
            goto nomem;
    }
    for (int i = 0; i < target; i++) {
        int64_t kpad = 0, ksum = 0;
        for (int x = p->lo[i]; x < p->hi[i]; x++) {
            int32_t t = pad_tap(p, i, x);
            ksum += t;
            if (x >= off && x < off + n) {
                if (p->k)
                    p->k[p->koff[i] + (size_t)(x - off - p->ilo[i])] = t;
            } else {
                kpad += t;
            }
        }
        p->kpad[i] = kpad;
        p->ksum[i] = ksum;
    }
    return LLAVA_OK;
nomem:
    pad_axis_free(p);
    return llv_fail(err, LLAVA_E_NOMEM, "out of memory for the image resize");
}

/* Horizontal pass of image row `row` (w pixels) -> out[target][3]. */
static void pad_row_horizontal(const pad_axis *p, const uint8_t *row, const uint8_t pad[3], int target, uint8_t *out)
{
    for (int i = 0; i < target; i++) {
        int64_t s[3];
        for (int c = 0; c < 3; c++)
            s[c] = LLV_RS_HALF + p->kpad[i] * pad[c];
        const uint8_t *px = row + (size_t)p->ilo[i] * 3;
        const int32_t *k = p->k ? p->k + p->koff[i] : NULL;
        for (int j = 0; j < p->ilen[i]; j++) {
            int64_t t = k ? k[j] : pad_tap(p, i, p->off + p->ilo[i] + j);
            s[0] += t * px[3 * j + 0];
            s[1] += t * px[3 * j + 1];
            s[2] += t * px[3 * j + 2];
        }
        for (int c = 0; c < 3; c++)
            out[3 * i + c] = llv_rs_clip8(s[c]);
    }
}

int llv_preprocess_pad_resize_cap(const uint8_t *rgb, int32_t w, int32_t h, const uint8_t pad_rgb[3], int32_t target,
                                  uint8_t *out_rgb, size_t cache_cap, llv_err *err)
{
    if (!rgb || !pad_rgb || !out_rgb || w <= 0 || h <= 0 || target <= 0)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "preprocess: bad arguments (%dx%d -> %d)", w, h, target);
    const int side = LLV_MAX(w, h);
    /* Beyond this the window arithmetic (done in int, as in Pillow) could
     * overflow, and the work (about 8 * side kernel evaluations) explodes. */
    if (side > (1 << 28))
        return llv_fail(err, LLAVA_E_IMAGE, "preprocess: a %dx%d image is too elongated to pad to a square", w, h);
    const int ox = (side - w) / 2, oy = (side - h) / 2;
    const size_t T = (size_t)target;

    if (side == target) {
        /* Pillow's resize to the same size is a copy: just the square. */
        for (size_t y = 0; y < T; y++) {
            for (size_t x = 0; x < T; x++) {
                uint8_t *o = out_rgb + (y * T + x) * 3;
                bool inside = x >= (size_t)ox && x < (size_t)(ox + w) && y >= (size_t)oy && y < (size_t)(oy + h);
                memcpy(o, inside ? rgb + ((y - oy) * (size_t)w + (x - ox)) * 3 : pad_rgb, 3);
            }
        }
        return LLAVA_OK;
    }

    size_t acc_n;
    if (llv_mul3_overflow(T, T, 3 * sizeof(int64_t), &acc_n))
        return llv_fail(err, LLAVA_E_INVALID_ARG, "preprocess: target %d too large", target);
    pad_axis ph, pv;
    int rc = pad_axis_build(&ph, side, target, w, ox, cache_cap, err);
    if (rc != LLAVA_OK)
        return rc;
    rc = pad_axis_build(&pv, side, target, h, oy, cache_cap, err);
    if (rc != LLAVA_OK) {
        pad_axis_free(&ph);
        return rc;
    }
    int64_t *acc = llv_malloc(acc_n);       /* [target][target][3] vertical sums */
    uint8_t *prow = llv_malloc(T * 3);      /* intermediate row of an all-pad row */
    uint8_t *trow = llv_malloc(T * 3);      /* intermediate row of an image row */
    if (!acc || !prow || !trow) {
        rc = llv_fail(err, LLAVA_E_NOMEM, "out of memory for the image resize");
        goto out;
    }

    for (size_t i = 0; i < T; i++)
        for (int c = 0; c < 3; c++)
            prow[3 * i + c] = llv_rs_clip8(LLV_RS_HALF + ph.ksum[i] * pad_rgb[c]);
    /* Start every output row with its rounding half and its pad rows. */
    for (size_t yy = 0; yy < T; yy++)
        for (size_t i = 0; i < T * 3; i++)
            acc[yy * T * 3 + i] = LLV_RS_HALF + pv.kpad[yy] * prow[i];

    int first = 0; /* first output row whose window reaches the current row */
    for (int y = 0; y < h; y++) {
        const int Y = y + oy; /* row in the square */
        while (first < target && pv.hi[first] <= Y)
            first++;
        if (first == target || pv.lo[first] > Y)
            continue; /* no output row reads this row */
        pad_row_horizontal(&ph, rgb + (size_t)y * w * 3, pad_rgb, target, trow);
        for (int yy = first; yy < target && pv.lo[yy] <= Y; yy++) {
            int64_t t = pv.k ? pv.k[pv.koff[yy] + (size_t)(y - pv.ilo[yy])] : pad_tap(&pv, yy, Y);
            int64_t *a = acc + (size_t)yy * T * 3;
            for (size_t i = 0; i < T * 3; i++)
                a[i] += t * trow[i];
        }
    }
    for (size_t i = 0; i < T * T * 3; i++)
        out_rgb[i] = llv_rs_clip8(acc[i]);
out:
    llv_free(acc);
    llv_free(prow);
    llv_free(trow);
    pad_axis_free(&ph);
    pad_axis_free(&pv);
    return rc;
}

int llv_preprocess_pad_resize(const uint8_t *rgb, int32_t w, int32_t h, const uint8_t pad_rgb[3], int32_t target,
                              uint8_t *out_rgb, llv_err *err)
{
    return llv_preprocess_pad_resize_cap(rgb, w, h, pad_rgb, target, out_rgb, LLV_PAD_RESIZE_CACHE_CAP, err);
}

void llv_normalize_planar(const uint8_t *rgb, int32_t side, const float mean[3], const float std[3], float *out)
{
    const size_t n = (size_t)side * (size_t)side;
    for (int c = 0; c < 3; c++) {
        float *o = out + (size_t)c * n;
        for (size_t i = 0; i < n; i++) {
            float v = (float)rgb[3 * i + c] / 255.0f;
            o[i] = (v - mean[c]) / std[c];
        }
    }
}
