/*
 * resize.c - the plain (reference) Pillow-exact bicubic resize of an RGB
 * image: precomputed fixed-point coefficient tables, a horizontal pass into
 * an intermediate image holding only the rows the vertical pass reads,
 * then the vertical pass. It follows Pillow's ImagingResample step by step;
 * the fast padded path in preprocess.c is tested against it.
 */
/* The double expressions must be evaluated exactly as written (no fused
 * multiply-add), or a coefficient can round differently from Pillow's. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "image.h"
#include "image_resample.h"

#include <string.h>

/* Coefficient table of one axis: for output i, taps k[i*ksize ..] over
 * input [start[i], start[i] + len[i]). */
typedef struct rs_table {
    int      ksize;
    int32_t *start, *len;
    int32_t *k;
} rs_table;

static void rs_table_free(rs_table *t)
{
    llv_free(t->start);
    llv_free(t->len);
    llv_free(t->k);
    memset(t, 0, sizeof *t);
}

static int rs_table_build(rs_table *t, int in_size, int out_size, llv_err *err)
{
    memset(t, 0, sizeof *t);
    llv_rs_axis a;
    llv_rs_axis_init(&a, in_size, out_size);
    size_t n, bytes;
    if (a.ksize <= 0 || llv_mul_overflow((size_t)out_size, (size_t)a.ksize, &n) ||
        llv_mul_overflow(n, sizeof(int32_t), &bytes))
        return llv_fail(err, LLAVA_E_IMAGE, "resize %d -> %d: coefficient table too large", in_size, out_size);
    t->ksize = a.ksize;
    t->start = llv_malloc(sizeof(int32_t) * (size_t)out_size);
    t->len = llv_malloc(sizeof(int32_t) * (size_t)out_size);
    t->k = llv_malloc(sizeof(int32_t) * n);
    double *w = llv_malloc(sizeof(double) * (size_t)a.ksize);
    if (!t->start || !t->len || !t->k || !w) {
        llv_free(w);
        rs_table_free(t);
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory for resize coefficients");
    }
    for (int i = 0; i < out_size; i++) {
        double center = llv_rs_center(&a, i);
        int xmin, xlen;
        llv_rs_window(&a, center, &xmin, &xlen);
        double ww = 0.0;
        for (int x = 0; x < xlen; x++) {
            w[x] = llv_rs_weight(&a, x + xmin, center);
            ww += w[x];
        }
        int32_t *k = t->k + (size_t)i * a.ksize;
        for (int x = 0; x < a.ksize; x++)
            k[x] = x < xlen ? llv_rs_fixed(w[x], ww) : 0;
        t->start[i] = xmin;
        t->len[i] = xlen;
    }
    llv_free(w);
    return LLAVA_OK;
}

/* src rows [row0, row0 + rows) of width sw -> dst (dw x rows). */
static void rs_horizontal(const uint8_t *src, int sw, int row0, int rows, uint8_t *dst, int dw, const rs_table *t)
{
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src + (size_t)(row0 + y) * sw * 3;
        uint8_t *out = dst + (size_t)y * dw * 3;
        for (int x = 0; x < dw; x++) {
            const int32_t *k = t->k + (size_t)x * t->ksize;
            const uint8_t *p = in + (size_t)t->start[x] * 3;
            int64_t s0 = LLV_RS_HALF, s1 = LLV_RS_HALF, s2 = LLV_RS_HALF;
            for (int i = 0; i < t->len[x]; i++) {
                s0 += (int64_t)p[3 * i + 0] * k[i];
                s1 += (int64_t)p[3 * i + 1] * k[i];
                s2 += (int64_t)p[3 * i + 2] * k[i];
            }
            out[3 * x + 0] = llv_rs_clip8(s0);
            out[3 * x + 1] = llv_rs_clip8(s1);
            out[3 * x + 2] = llv_rs_clip8(s2);
        }
    }
}

/* src (w x any rows; table starts already relative to src) -> dst (w x dh). */
static void rs_vertical(const uint8_t *src, int w, uint8_t *dst, int dh, const rs_table *t, int row_shift)
{
    for (int y = 0; y < dh; y++) {
        const int32_t *k = t->k + (size_t)y * t->ksize;
        const int y0 = t->start[y] - row_shift;
        for (int x = 0; x < w; x++) {
            int64_t s0 = LLV_RS_HALF, s1 = LLV_RS_HALF, s2 = LLV_RS_HALF;
            for (int i = 0; i < t->len[y]; i++) {
                const uint8_t *p = src + ((size_t)(y0 + i) * w + x) * 3;
                s0 += (int64_t)p[0] * k[i];
                s1 += (int64_t)p[1] * k[i];
                s2 += (int64_t)p[2] * k[i];
            }
            uint8_t *o = dst + ((size_t)y * w + x) * 3;
            o[0] = llv_rs_clip8(s0);
            o[1] = llv_rs_clip8(s1);
            o[2] = llv_rs_clip8(s2);
        }
    }
}

int llv_resize_bicubic(const uint8_t *src, int32_t sw, int32_t sh, uint8_t *dst, int32_t dw, int32_t dh, llv_err *err)
{
    if (!src || !dst || sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "resize: bad arguments (%dx%d -> %dx%d)", sw, sh, dw, dh);
    if (sw == dw && sh == dh) {
        /* Pillow returns a copy when nothing changes. */
        memcpy(dst, src, (size_t)sw * sh * 3);
        return LLAVA_OK;
    }
    const bool need_h = dw != sw, need_v = dh != sh;
    rs_table th, tv;
    int rc = rs_table_build(&th, sw, dw, err);
    if (rc != LLAVA_OK)
        return rc;
    rc = rs_table_build(&tv, sh, dh, err);
    if (rc != LLAVA_OK) {
        rs_table_free(&th);
        return rc;
    }
    /* Rows the vertical pass reads: [first, last). */
    const int first = tv.start[0];
    const int last = tv.start[dh - 1] + tv.len[dh - 1];
    uint8_t *tmp = NULL;
    if (need_h && need_v) {
        tmp = llv_malloc((size_t)dw * (size_t)(last - first) * 3);
        if (!tmp) {
            rc = llv_fail(err, LLAVA_E_NOMEM, "out of memory for the resize");
            goto out;
        }
        rs_horizontal(src, sw, first, last - first, tmp, dw, &th);
        rs_vertical(tmp, dw, dst, dh, &tv, first);
    } else if (need_h) {
        rs_horizontal(src, sw, 0, sh, dst, dw, &th);
    } else {
        rs_vertical(src, sw, dst, dh, &tv, 0);
    }
out:
    llv_free(tmp);
    rs_table_free(&th);
    rs_table_free(&tv);
    return rc;
}
