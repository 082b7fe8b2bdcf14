/*
 * matmul.c - Y = X W^T (+ bias) for weights of any computable type.
 *
 *   W: n_out rows x n_in (type w->type, row_bytes each)
 *   X: n_rows x n_in f32 (row stride n_in)       Y: n_rows x n_out f32
 *
 * Numerics: weights are dequantized exactly (to f32) and dotted with the f32
 * activations, accumulating in f32 (FMA lanes); the activations are never
 * rounded to F16, so the result differs from the exact product of the stored
 * weights only by f32 summation error. One exception, for decode speed: the
 * GEMV of quantized weights (all block types) on AVX2 quantizes the activation
 * row to Q8_0/Q8_K and uses integer block dots, as llama.cpp does; that adds
 * at most 0.57*d_x*sum|w| per output (d_x = the activation block's step,
 * amax/127), asserted in tests/check_kernels.c. llv_matmul_set_int8_gemv(0)
 * turns it off process-wide.
 *
 * Two drivers:
 *  - GEMV (up to GEMV_MAX_ROWS rows, the decode case; memory bound):
 *    parallel over output rows; F32/F16/BF16 rows are dotted directly;
 *    quantized rows use the ISA's integer block dots against the activation
 *    rows quantized once to Q8_0/Q8_K (see above), or without one are
 *    dequantized 256 values at a time into an L1 buffer and dotted in f32.
 *  - GEMM (prefill / vision encode; compute bound): each thread takes panels
 *    of PANEL_N weight rows; for every K chunk of KC values it dequantizes
 *    the panel chunk once into an f32 buffer (L2 sized), packed k-major in
 *    strips of 16 outputs, and multiplies it with all activation rows in
 *    6 x 16 register tiles (outer-product form: broadcast x, FMA into 12
 *    accumulators, no horizontal sums). Each weight byte is read from memory
 *    and dequantized once per call.
 */
#include "kernels_impl.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define GEMV_MAX_ROWS 4   /* up to this many rows use the GEMV driver */
#define GEMV_CHUNK 256    /* dequantization chunk of the GEMV driver */
#define PANEL_N 48        /* weight rows per GEMM panel (multiple of LLV_GEMM_PNR) */
#define KC 512            /* K chunk of the GEMM (multiple of 256) */

static inline const uint8_t *wrow(const llv_weight *w, int64_t o)
{
    return (const uint8_t *)w->data + (size_t)o * w->row_bytes;
}

/* ---- reference -------------------------------------------------------- */

void llv_matmul_ref(const llv_weight *w, const float *x, int64_t n_rows, float *y, const float *bias)
{
    float row[GEMV_CHUNK];
    const llv_type_info *ti = llv_type_get(w->type);
    /* Dequantize whole blocks at a time into a small buffer. */
    int64_t chunk = ti->blck == 1 ? GEMV_CHUNK : ti->blck;
    size_t chunk_bytes = (size_t)(chunk / ti->blck) * ti->size;
    for (int64_t m = 0; m < n_rows; m++) {
        const float *xm = x + m * w->n_in;
        for (int64_t o = 0; o < w->n_out; o++) {
            const uint8_t *src = wrow(w, o);
            double acc = 0.0;
            for (int64_t k0 = 0; k0 < w->n_in; k0 += chunk) {
                int64_t len = LLV_MIN(chunk, w->n_in - k0);
                llv_dequantize_row(w->type, src + (size_t)(k0 / chunk) * chunk_bytes, row, len);
                for (int64_t k = 0; k < len; k++)
                    acc += (double)row[k] * xm[k0 + k];
            }
            y[m * w->n_out + o] = (float)acc + (bias ? bias[o] : 0.0f);
        }
    }
}

/* ---- GEMV -------------------------------------------------------------- */

static int int8_gemv = 1;
void llv_matmul_set_int8_gemv(int on) { __atomic_store_n(&int8_gemv, on ? 1 : 0, __ATOMIC_RELAXED); }

/* y[m][o] for one weight row o and all n_rows (<= GEMV_MAX_ROWS) rows. */
static void gemv_row(const llv_kernel_ops *ops, const llv_weight *w, int64_t o, const float *x,
                     int64_t n_rows, float *y, const float *bias)
{
    const uint8_t *src = wrow(w, o);
    float acc[GEMV_MAX_ROWS] = {0};
    switch (w->type) {
    case LLV_TYPE_F32:
        for (int64_t m = 0; m < n_rows; m++)
            acc[m] = ops->dot_f32((const float *)src, x + m * w->n_in, w->n_in);
        break;
    case LLV_TYPE_F16:
        for (int64_t m = 0; m < n_rows; m++)
            acc[m] = ops->dot_f16((const uint16_t *)src, x + m * w->n_in, w->n_in);
        break;
    case LLV_TYPE_BF16:
        for (int64_t m = 0; m < n_rows; m++)
            acc[m] = ops->dot_bf16((const uint16_t *)src, x + m * w->n_in, w->n_in);
        break;
    default: {
        const llv_type_info *ti = llv_type_get(w->type);
        float buf[GEMV_CHUNK] __attribute__((aligned(32)));
        size_t chunk_bytes = (size_t)(GEMV_CHUNK / ti->blck) * ti->size;
        for (int64_t k0 = 0, c = 0; k0 < w->n_in; k0 += GEMV_CHUNK, c++) {
            int64_t len = LLV_MIN(GEMV_CHUNK, w->n_in - k0);
            ops->to_f32(w->type, src + (size_t)c * chunk_bytes, buf, len);
            for (int64_t m = 0; m < n_rows; m++)
                acc[m] += ops->dot_f32(buf, x + m * w->n_in + k0, len);
        }
        break;
    }
    }
    for (int64_t m = 0; m < n_rows; m++)
        y[m * w->n_out + o] = acc[m] + (bias ? bias[o] : 0.0f);
}

/* Integer GEMV: quantize the activation rows once to the ISA's partner type
 * (Q8_0 / Q8_K) and use integer block dots. Returns false when the ISA has
 * no integer kernel for the type or the buffer cannot be allocated. */
static bool gemv_q8(const llv_kernel_ops *ops, const llv_weight *w, const float *x, int64_t n_rows,
                    float *y, const float *bias, int n_threads)
{
    int partner = ops->q8_partner && ops->dot_q8 ? ops->q8_partner(w->type) : -1;
    size_t xrb, total;
    if (partner < 0 || !llv_row_bytes(partner, w->n_in, &xrb) ||
        llv_mul_overflow(xrb, (size_t)n_rows, &total))
        return false;
    uint8_t *xq = llv_malloc_aligned(total);
    if (!xq)
        return false;
    for (int64_t m = 0; m < n_rows; m++)
        if (ops->quantize_q8)
            ops->quantize_q8(partner, x + m * w->n_in, xq + (size_t)m * xrb, w->n_in);
        else
            llv_quantize_row(partner, x + m * w->n_in, xq + (size_t)m * xrb, w->n_in);
    const int64_t n_out = w->n_out;
    LLV_OMP(parallel for schedule(static, 16) num_threads(n_threads))
    for (int64_t o = 0; o < n_out; o++)
        for (int64_t m = 0; m < n_rows; m++)
            y[m * n_out + o] = ops->dot_q8(w->type, wrow(w, o), xq + (size_t)m * xrb, w->n_in) +
                               (bias ? bias[o] : 0.0f);
    llv_free_aligned(xq);
    return true;
}

static void gemv(const llv_kernel_ops *ops, const llv_weight *w, const float *x, int64_t n_rows,
                 float *y, const float *bias, int n_threads)
{
    const int64_t n_out = w->n_out;
    /* Small products are not worth waking threads for. */
    if ((double)n_out * (double)w->n_in < 32768.0)
        n_threads = 1;
    if (__atomic_load_n(&int8_gemv, __ATOMIC_RELAXED) && gemv_q8(ops, w, x, n_rows, y, bias, n_threads))
        return;
    LLV_OMP(parallel for schedule(static, 16) num_threads(n_threads))
    for (int64_t o = 0; o < n_out; o++)
        gemv_row(ops, w, o, x, n_rows, y, bias);
}

/* ---- GEMM -------------------------------------------------------------- */

/* Dequantize columns [k0, k0+kc) of weight rows [o0, o0+nb) into strips of
 * LLV_GEMM_PNR outputs, k-major: wp[s*KC*PNR + k*PNR + j] (zero padded). */
static void load_panel_packed(const llv_kernel_ops *ops, const llv_weight *w, int64_t o0, int nb,
                              int64_t k0, int64_t kc, float *wp, float *tmp)
{
    const llv_type_info *ti = llv_type_get(w->type);
    size_t off = (size_t)(k0 / ti->blck) * ti->size;
    int n_strips = (nb + LLV_GEMM_PNR - 1) / LLV_GEMM_PNR;
    for (int s = 0; s < n_strips; s++) {
        float *strip = wp + (size_t)s * KC * LLV_GEMM_PNR;
        for (int j = 0; j < LLV_GEMM_PNR; j++) {
            int r = s * LLV_GEMM_PNR + j;
            if (r < nb) {
                ops->to_f32(w->type, wrow(w, o0 + r) + off, tmp, kc);
                for (int64_t k = 0; k < kc; k++)
                    strip[k * LLV_GEMM_PNR + j] = tmp[k];
            } else {
                for (int64_t k = 0; k < kc; k++)
                    strip[k * LLV_GEMM_PNR + j] = 0.0f;
            }
        }
    }
}

static void gemm_panel_packed(const llv_kernel_ops *ops, const llv_weight *w, int64_t o0, int nb,
                              const float *x, int64_t n_rows, float *y, const float *bias, float *wp)
{
    const int64_t n_in = w->n_in, n_out = w->n_out;
    float *tmp = wp + (size_t)PANEL_N * KC;
    for (int64_t m = 0; m < n_rows; m++)
        for (int j = 0; j < nb; j++)
            y[m * n_out + o0 + j] = bias ? bias[o0 + j] : 0.0f;
    for (int64_t k0 = 0; k0 < n_in; k0 += KC) {
        int64_t kc = LLV_MIN(KC, n_in - k0);
        load_panel_packed(ops, w, o0, nb, k0, kc, wp, tmp);
        for (int64_t m0 = 0; m0 < n_rows; m0 += LLV_GEMM_PMR) {
            int mr = (int)LLV_MIN(LLV_GEMM_PMR, n_rows - m0);
            for (int j0 = 0; j0 < nb; j0 += LLV_GEMM_PNR) {
                int nr = LLV_MIN(LLV_GEMM_PNR, nb - j0);
                ops->gemm_packed(x + m0 * n_in + k0, n_in, mr, wp + (size_t)(j0 / LLV_GEMM_PNR) * KC * LLV_GEMM_PNR,
                                 LLV_GEMM_PNR, kc, y + m0 * n_out + o0 + j0, n_out, nr);
            }
        }
    }
}

/* Returns false if the panel buffers cannot be allocated (caller falls back). */
static bool gemm(const llv_kernel_ops *ops, const llv_weight *w, const float *x, int64_t n_rows,
                 float *y, const float *bias, int n_threads)
{
    /* Small n_out: narrower panels (multiples of the strip) so every thread
     * gets work, e.g. 128 outputs on 2 threads -> 4 panels of 32. */
    int64_t panel_n = PANEL_N;
    if ((w->n_out + panel_n - 1) / panel_n < 4 * n_threads) {
        int64_t want = (w->n_out + 2 * n_threads - 1) / (2 * n_threads);
        want = (want + LLV_GEMM_PNR - 1) / LLV_GEMM_PNR * LLV_GEMM_PNR;
        panel_n = LLV_MAX(LLV_GEMM_PNR, LLV_MIN(PANEL_N, want));
    }
    const int64_t n_panels = (w->n_out + panel_n - 1) / panel_n;
    if (n_threads > n_panels)
        n_threads = (int)n_panels;
    if (n_threads < 1)
        n_threads = 1;
    size_t per_thread = (size_t)(PANEL_N + 1) * KC, total;
    if (llv_mul3_overflow(per_thread, (size_t)n_threads, sizeof(float), &total))
        return false;
    float *bufs = llv_malloc_aligned(total);
    if (!bufs)
        return false;
    LLV_OMP(parallel num_threads(n_threads))
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *wp = bufs + (size_t)tid * per_thread;
        LLV_OMP(for schedule(dynamic, 1))
        for (int64_t p = 0; p < n_panels; p++) {
            int64_t o0 = p * panel_n;
            int nb = (int)LLV_MIN(panel_n, w->n_out - o0);
            gemm_panel_packed(ops, w, o0, nb, x, n_rows, y, bias, wp);
        }
    }
    llv_free_aligned(bufs);
    return true;
}

void llv_matmul(const llv_weight *w, const float *x, int64_t n_rows, float *y, const float *bias,
                int n_threads)
{
    const llv_kernel_ops *ops = llv_ops();
    if (n_threads < 1)
        n_threads = 1;
    if (n_rows > GEMV_MAX_ROWS && gemm(ops, w, x, n_rows, y, bias, n_threads))
        return;
    /* GEMV, also the fallback when the GEMM buffers are not available. */
    for (int64_t m0 = 0; m0 < n_rows; m0 += GEMV_MAX_ROWS) {
        int64_t mr = LLV_MIN(GEMV_MAX_ROWS, n_rows - m0);
        gemv(ops, w, x + m0 * w->n_in, mr, y + m0 * w->n_out, bias, n_threads);
    }
}
