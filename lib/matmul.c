/*
 * matmul.c - Y = X W^T (+ bias) for weights of any computable type.
 *
 *   W: n_out rows x n_in (type w->type, row_bytes each)
 *   X: n_rows x n_in f32 (row stride n_in)       Y: n_rows x n_out f32
 *
 * Numerics: weights are dequantized exactly (to f32) and dotted with the f32
 * activations, accumulating in f32 (FMA lanes); the activations are never
 * rounded to F16, so the result differs from the exact product of the stored
 * weights only by f32 summation error. One exception, for speed: on ISAs
 * with integer block dots (AVX2, NEON), products with quantized weights (all
 * block types) quantize the activation rows to Q8_0/Q8_K, as llama.cpp does:
 * the GEMV (decode) and the integer GEMM (prefill; Q4_0/Q4_K/Q6_K/Q8_0 strips) compute
 * in integers, and the other quantized types in a prefill see their
 * activation rows rounded the same way before the f32 GEMM, so every product
 * with quantized weights uses the same 8-bit activations whatever the row
 * count. That adds at most 0.57*d_x*sum|w| per output (d_x = the activation
 * block's step, amax/127), asserted in tests/check_kernels.c.
 * llv_matmul_set_int8_gemv(0) turns all of it off process-wide (exact f32
 * products), llv_matmul_set_int8_gemm(0) only the prefill part.
 *
 * Three drivers:
 *  - GEMV (up to GEMV_MAX_ROWS rows, the decode case; memory bound; in
 *    chunks up to SMALL_GEMM_ROWS rows for quantized weights):
 *    parallel over output rows (llv_parallel_for items of many rows); F32/F16/BF16 rows are dotted directly;
 *    quantized rows use the ISA's integer block dots against the activation
 *    rows quantized once to Q8_0/Q8_K (see above) plus the ISA's per-row side
 *    data (Q4_0 on AVX2: the activation's blocks rearranged in pairs with
 *    their scales as f32, computed once instead of per weight row), in tiles
 *    of GEMV_TILE weight rows (ops->dot_q8_rows), or without one are
 *    dequantized 256 values at a time
 *    into an L1 buffer and dotted in f32. llv_matmul_group runs the GEMVs of
 *    several weights on the same rows (Q/K/V, gate/up) in one parallel region.
 *  - GEMM (prefill / vision encode; compute bound): each thread takes panels
 *    of PANEL_N weight rows; for every K chunk of KC values it dequantizes
 *    the panel chunk once into an f32 buffer (L2 sized), packed k-major in
 *    strips of 16 outputs (dequantized row-wise, then transposed 8 x 8 in
 *    registers by the ISA's pack_strip: the scalar transpose was 20% of a
 *    Q4_0 prefill profile), and multiplies it with all activation rows in
 *    6 x 16 register tiles (outer-product form: broadcast x, FMA into 12
 *    accumulators, no horizontal sums). Each weight byte is read from memory
 *    and dequantized once per call.
 *  - Integer GEMM (prefill with Q4_0/Q4_K/Q6_K/Q8_0 weights on an ISA with
 *    strip kernels; layout in kernels_i8.c): the same panel scheme, but the
 *    panel chunk is repacked as 4/6-bit codes interleaved for maddubs (Q8_0:
 *    codes widened to int16 for madd) and multiplied with the Q8 activation
 *    rows in integers (per core on AVX2: 1.75x the f32 GEMM for the 4-bit
 *    types, where maddubs does 32 multiply-adds per instruction to FMA's 8;
 *    1.2x for Q8_0, madd does 16).
 */
#include "kernels_impl.h"

#include <string.h>

#define GEMV_MAX_ROWS 4   /* up to this many rows use the GEMV driver */
#define SMALL_GEMM_ROWS 8 /* quantized weights: GEMV chunks up to this many rows */
#define GEMV_CHUNK 256    /* dequantization chunk of the GEMV driver */
#define GEMV_TILE 4       /* weight rows per multi-row dot of the integer GEMV */
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
            y[m * w->n_out + o] = llv_narrow_f64(acc) + (bias ? bias[o] : 0.0f);
        }
    }
}

/* ---- GEMV -------------------------------------------------------------- */

static int int8_gemv = 1;
void llv_matmul_set_int8_gemv(int on) { __atomic_store_n(&int8_gemv, on ? 1 : 0, __ATOMIC_RELAXED); }

/* The type w's activation rows are quantized to (Q8_0 / Q8_K) when the
 * integer paths are on and the ISA has integer block dots for w's type,
 * else -1 (exact f32 products). */
static int activation_partner(const llv_kernel_ops *ops, const llv_weight *w)
{
    if (!__atomic_load_n(&int8_gemv, __ATOMIC_RELAXED) || !ops->q8_partner || !ops->dot_q8)
        return -1;
    return ops->q8_partner(w->type);
}

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
/* The activation rows of one weight of an integer GEMV: quantized to its
 * partner type, plus the ISA's side data for the weight type (if any). */
typedef struct q8_rows {
    const llv_weight *w;
    int partner;
    size_t xrb, sb;      /* bytes per quantized row / per side record */
    size_t off, side_off; /* offsets in the shared buffer */
} q8_rows;

/* Sizes q for w (offsets from *total on); false if w has no integer path. */
static bool q8_rows_plan(const llv_kernel_ops *ops, const llv_weight *w, int64_t n_rows, q8_rows *q, size_t *total)
{
    size_t xq_bytes, side_bytes;
    q->w = w;
    q->partner = activation_partner(ops, w);
    if (q->partner < 0 || !llv_row_bytes(q->partner, w->n_in, &q->xrb) ||
        llv_mul_overflow(q->xrb, (size_t)n_rows, &xq_bytes))
        return false;
    q->sb = ops->q8_side_bytes && ops->q8_side && ops->dot_q8_side ? ops->q8_side_bytes(w->type, w->n_in) : 0;
    if (llv_mul_overflow(q->sb, (size_t)n_rows, &side_bytes))
        return false;
    xq_bytes = (xq_bytes + 63) / 64 * 64;
    q->off = *total;
    if (llv_add_overflow(*total, xq_bytes, total))
        return false;
    q->side_off = *total;
    side_bytes = (side_bytes + 63) / 64 * 64;
    return !llv_add_overflow(*total, side_bytes, total);
}

/* One activation row (n values) quantized to the partner type: the ISA's
 * quantizer when it has one, else the reference. */
static void quantize_activation(const llv_kernel_ops *ops, int partner, const float *x, uint8_t *dst, int64_t n)
{
    if (ops->quantize_q8)
        ops->quantize_q8(partner, x, dst, n);
    else
        llv_quantize_row(partner, x, dst, n);
}

static void q8_rows_fill(const llv_kernel_ops *ops, const q8_rows *q, const float *x, int64_t n_rows, uint8_t *buf)
{
    const int64_t n_in = q->w->n_in;
    for (int64_t m = 0; m < n_rows; m++) {
        uint8_t *xq = buf + q->off + (size_t)m * q->xrb;
        quantize_activation(ops, q->partner, x + m * n_in, xq, n_in);
        if (q->sb)
            ops->q8_side(q->w->type, xq, n_in, buf + q->side_off + (size_t)m * q->sb);
    }
}

/* y[m][o0 + r] for weight rows o0 + r (r < nr <= GEMV_TILE) of q->w and all
 * rows m: the ISA's multi-row dot when it has one (each activation block is
 * loaded once per tile), else one dot per weight row (same bits). */
static inline void q8_rows_dot(const llv_kernel_ops *ops, const q8_rows *q, const uint8_t *buf, int64_t o0, int nr,
                               int64_t n_rows, float *y, const float *bias)
{
    const llv_weight *w = q->w;
    float d[GEMV_TILE];
    for (int64_t m = 0; m < n_rows; m++) {
        const uint8_t *xm = buf + q->off + (size_t)m * q->xrb;
        const uint8_t *side = q->sb ? buf + q->side_off + (size_t)m * q->sb : NULL;
        if (ops->dot_q8_rows)
            ops->dot_q8_rows(w->type, wrow(w, o0), w->row_bytes, nr, xm, side, w->n_in, d);
        else
            for (int r = 0; r < nr; r++)
                d[r] = side ? ops->dot_q8_side(w->type, wrow(w, o0 + r), xm, side, w->n_in)
                            : ops->dot_q8(w->type, wrow(w, o0 + r), xm, w->n_in);
        for (int r = 0; r < nr; r++)
            y[m * w->n_out + o0 + r] = d[r] + (bias ? bias[o0 + r] : 0.0f);
    }
}

/* Work items of a GEMV: about 8 per thread, so the share of a thread that
 * the OS has descheduled is taken by the others, and at least 4 units so that
 * claiming one stays cheap next to computing it. Measured on an idle 2-core
 * machine against OpenMP's static schedule (decode, TinyLlama shape): 8 per
 * thread: Q4_0 equal, F16 within 4%; 32 per thread: Q4_0 6% slower (items of
 * 32 Q4_0 rows take ~2 us, a claim ~0.1-0.2 us); items of 16 rows: F16 5-8%
 * slower. Counted in tiles of GEMV_TILE rows. */
static int64_t gemv_item_units(int64_t n_units, int n_threads)
{
    const int64_t per = (n_units + 8 * (int64_t)n_threads - 1) / (8 * (int64_t)n_threads);
    return LLV_MAX(4, per);
}

typedef struct {
    const llv_kernel_ops *ops;
    const llv_weight *const *ws;
    const q8_rows *q;
    const int64_t *tiles;    /* per weight */
    const uint8_t *buf;
    int64_t n_rows, n_tiles, item_tiles;
    float *const *ys;
    const float *const *biases;
} gemv_q8_job;

static void gemv_q8_item(void *ctx, int64_t item, int slot)
{
    const gemv_q8_job *j = ctx;
    (void)slot;
    const int64_t t1 = LLV_MIN((item + 1) * j->item_tiles, j->n_tiles);
    for (int64_t t = item * j->item_tiles; t < t1; t++) {
        int i = 0;
        int64_t o0 = t;
        while (o0 >= j->tiles[i])
            o0 -= j->tiles[i++];
        o0 *= GEMV_TILE;
        q8_rows_dot(j->ops, &j->q[i], j->buf, o0, (int)LLV_MIN(GEMV_TILE, j->ws[i]->n_out - o0), j->n_rows,
                    j->ys[i], j->biases ? j->biases[i] : NULL);
    }
}

/* Integer GEMV of n_w weights over the same rows x in one parallel region:
 * the tiles of GEMV_TILE output rows of all weights are one index space
 * (claimed in items of gemv_item_units tiles). False when a weight has no integer
 * path or the buffer cannot be allocated. */
static bool gemv_q8_group(const llv_kernel_ops *ops, const llv_weight *const *ws, int n_w, const float *x,
                          int64_t n_rows, float *const *ys, const float *const *biases, int n_threads)
{
    q8_rows q[LLV_MATMUL_GROUP_MAX];
    int64_t tiles[LLV_MATMUL_GROUP_MAX];
    size_t total = 0;
    int64_t n_tiles = 0;
    for (int i = 0; i < n_w; i++) {
        if (!q8_rows_plan(ops, ws[i], n_rows, &q[i], &total))
            return false;
        tiles[i] = (ws[i]->n_out + GEMV_TILE - 1) / GEMV_TILE;
        n_tiles += tiles[i];
    }
    uint8_t *buf = llv_malloc_aligned(total);
    if (!buf)
        return false;
    for (int i = 0; i < n_w; i++)
        q8_rows_fill(ops, &q[i], x, n_rows, buf);
    gemv_q8_job job = { ops, ws, q, tiles, buf, n_rows, n_tiles, gemv_item_units(n_tiles, n_threads), ys, biases };
    llv_parallel_for((n_tiles + job.item_tiles - 1) / job.item_tiles, n_threads, gemv_q8_item, &job);
    llv_free_aligned(buf);
    return true;
}

typedef struct {
    const llv_kernel_ops *ops;
    const llv_weight *w;
    const float *x, *bias;
    float *y;
    int64_t n_rows;
} gemv_job;

/* weight rows [o0, o1) */
static void gemv_rows(void *ctx, int64_t o0, int64_t o1)
{
    const gemv_job *j = ctx;
    for (int64_t o = o0; o < o1; o++)
        gemv_row(j->ops, j->w, o, j->x, j->n_rows, j->y, j->bias);
}

static void gemv(const llv_kernel_ops *ops, const llv_weight *w, const float *x, int64_t n_rows,
                 float *y, const float *bias, int n_threads)
{
    const int64_t n_out = w->n_out;
    /* Small products are not worth waking threads for. */
    if ((double)n_out * (double)w->n_in < 32768.0)
        n_threads = 1;
    if (__atomic_load_n(&int8_gemv, __ATOMIC_RELAXED) && gemv_q8_group(ops, &w, 1, x, n_rows, &y, &bias, n_threads))
        return;
    const int64_t n_tiles = (n_out + GEMV_TILE - 1) / GEMV_TILE;
    gemv_job job = { ops, w, x, bias, y, n_rows };
    llv_parallel_rows(n_out, GEMV_TILE * gemv_item_units(n_tiles, n_threads), n_threads, gemv_rows, &job);
}

/* ---- GEMM -------------------------------------------------------------- */

/* Dequantize columns [k0, k0+kc) of weight rows [o0, o0+nb) into strips of
 * LLV_GEMM_PNR outputs, k-major: wp[s*KC*PNR + k*PNR + j] (zero padded).
 * Each strip's rows are dequantized into tmp (PNR x KC; F32 rows are
 * packed straight from the weights) and transposed by pack_strip. */
static void load_panel_packed(const llv_kernel_ops *ops, const llv_weight *w, int64_t o0, int nb,
                              int64_t k0, int64_t kc, float *wp, float *tmp)
{
    const llv_type_info *ti = llv_type_get(w->type);
    void (*pack)(const float *, int64_t, int, int64_t, float *) =
        ops->pack_strip ? ops->pack_strip : llv_kernel_ops_ref()->pack_strip;
    size_t off = (size_t)(k0 / ti->blck) * ti->size;
    int n_strips = (nb + LLV_GEMM_PNR - 1) / LLV_GEMM_PNR;
    for (int s = 0; s < n_strips; s++) {
        float *strip = wp + (size_t)s * KC * LLV_GEMM_PNR;
        int nr = LLV_MIN(LLV_GEMM_PNR, nb - s * LLV_GEMM_PNR);
        int64_t r0 = o0 + (int64_t)s * LLV_GEMM_PNR;
        if (w->type == LLV_TYPE_F32) {
            pack((const float *)wrow(w, r0) + k0, w->n_in, nr, kc, strip);
            continue;
        }
        for (int j = 0; j < nr; j++)
            ops->to_f32(w->type, wrow(w, r0 + j) + off, tmp + (size_t)j * KC, kc);
        pack(tmp, KC, nr, kc, strip);
    }
}

static void gemm_panel_packed(const llv_kernel_ops *ops, const llv_weight *w, int64_t o0, int nb,
                              const float *x, int64_t n_rows, float *y, const float *bias, float *wp)
{
    const int64_t n_in = w->n_in, n_out = w->n_out;
    float *tmp = wp + (size_t)PANEL_N * KC;
    for (int64_t k0 = 0; k0 < n_in; k0 += KC) {
        int64_t kc = LLV_MIN(KC, n_in - k0);
        load_panel_packed(ops, w, o0, nb, k0, kc, wp, tmp);
        for (int64_t m0 = 0; m0 < n_rows; m0 += LLV_GEMM_PMR) {
            int mr = (int)LLV_MIN(LLV_GEMM_PMR, n_rows - m0);
            /* Initialise this row tile just before its first use, a row at a
             * time: a separate pass over all rows with a store per element
             * (to lines not yet in cache) was 4.8% of an image encode. */
            if (k0 == 0)
                for (int64_t m = m0; m < m0 + mr; m++) {
                    if (bias)
                        memcpy(y + m * n_out + o0, bias + o0, (size_t)nb * sizeof(float));
                    else
                        memset(y + m * n_out + o0, 0, (size_t)nb * sizeof(float));
                }
            for (int j0 = 0; j0 < nb; j0 += LLV_GEMM_PNR) {
                int nr = LLV_MIN(LLV_GEMM_PNR, nb - j0);
                ops->gemm_packed(x + m0 * n_in + k0, n_in, mr, wp + (size_t)(j0 / LLV_GEMM_PNR) * KC * LLV_GEMM_PNR,
                                 LLV_GEMM_PNR, kc, y + m0 * n_out + o0 + j0, n_out, nr);
            }
        }
    }
}

/* ---- integer GEMM ------------------------------------------------------------ */

/* The K chunk of the integer GEMM, whose work item (panel) is one strip of
 * LLV_I8_ROWS weight rows. One strip per panel and long chunks: each strip
 * call does 4x the work of the former 32 rows x 512 (its accumulator set-up
 * and stores amortized; Q6_K chunks went from 2 to 8 blocks). The packed
 * strip (Q4_0 37 KB, Q8_0 70 KB) is re-read from L2 for every 3 activation
 * rows. 2048 x 5632 x 512, 2 threads, GF/s: Q4_0 360 -> 377-397, Q4_K
 * 370-379 -> 376-408, Q6_K 272-282 -> 322-325, Q8_0 229 -> 231. */
#define I8_KC 2048

/* Quantized weights with an ISA strip kernel (kernels_i8.c): the activation
 * rows are quantized once to Q8_0/Q8_K (exactly as the integer GEMV does,
 * same error bound), then each thread takes strips of LLV_I8_ROWS weight
 * rows; per K chunk it repacks the strip (llv_i8_pack) and sweeps all
 * activation rows against it, LLV_I8_COLS at a time.
 * partner = activation_partner(w) >= 0. Returns false when the ISA has no
 * strip for the type or memory runs out (caller falls back). */
static int int8_gemm = 1;
void llv_matmul_set_int8_gemm(int on) { __atomic_store_n(&int8_gemm, on ? 1 : 0, __ATOMIC_RELAXED); }

typedef struct {
    const llv_kernel_ops *ops;
    const llv_weight *w;
    const float *x, *bias;
    float *y;
    uint8_t *xq, *side, *packs;
    size_t xrb, srb, pack_bytes;
    int64_t n_rows;
    int partner;
    void (*pack)(int type, const void *w, size_t wrb, int nr, int64_t b0, int64_t nblk, void *dst);
} gemm_i8_job;

static void gemm_i8_quantize_row(void *ctx, int64_t m, int slot)
{
    const gemm_i8_job *j = ctx;
    (void)slot;
    const int64_t n_in = j->w->n_in;
    uint8_t *xq = j->xq + (size_t)m * j->xrb;
    quantize_activation(j->ops, j->partner, j->x + m * n_in, xq, n_in);
    llv_i8_side(j->w->type, xq, n_in, j->side + (size_t)m * j->srb);
}

static void gemm_i8_panel(void *ctx, int64_t p, int slot)
{
    const gemm_i8_job *j = ctx;
    const llv_weight *w = j->w;
    const int64_t n_out = w->n_out, n_rows = j->n_rows, o0 = p * LLV_I8_ROWS;
    const int nr = (int)LLV_MIN(LLV_I8_ROWS, n_out - o0);
    const int64_t blk = llv_i8_block(w->type), n_blk = w->n_in / blk, chunk = I8_KC / blk;
    uint8_t *pk = j->packs + (size_t)slot * j->pack_bytes;
    for (int64_t b0 = 0; b0 < n_blk; b0 += chunk) {
        const int64_t nblk = LLV_MIN(chunk, n_blk - b0);
        j->pack(w->type, wrow(w, o0), w->row_bytes, nr, b0, nblk, pk);
        for (int64_t m0 = 0; m0 < n_rows; m0 += LLV_I8_COLS)
            j->ops->gemm_i8(w->type, pk, b0, nblk, j->xq + (size_t)m0 * j->xrb, j->xrb, j->side + (size_t)m0 * j->srb,
                            j->srb, (int)LLV_MIN(LLV_I8_COLS, n_rows - m0), j->y + m0 * n_out + o0, n_out, nr,
                            j->bias ? j->bias + o0 : NULL, b0 == 0);
    }
}

static bool gemm_i8(const llv_kernel_ops *ops, const llv_weight *w, int partner, const float *x, int64_t n_rows,
                    float *y, const float *bias, int n_threads)
{
    if (!ops->gemm_i8 || !ops->gemm_i8_has || !ops->gemm_i8_has(w->type))
        return false;
    const int64_t blk = llv_i8_block(w->type);
    size_t xrb, xq_bytes, side_bytes, total;
    const size_t srb = (size_t)(w->n_in / blk) * llv_i8_side_block_bytes(w->type);
    const size_t pack_bytes = (size_t)(I8_KC / blk) * llv_i8_packed_block_bytes(w->type);
    const int64_t n_panels = (w->n_out + LLV_I8_ROWS - 1) / LLV_I8_ROWS;
    if (n_threads > n_panels)
        n_threads = (int)n_panels;
    if (w->n_in % blk || !llv_row_bytes(partner, w->n_in, &xrb) ||
        llv_mul_overflow(xrb, (size_t)n_rows, &xq_bytes) || llv_mul_overflow(srb, (size_t)n_rows, &side_bytes) ||
        llv_mul_overflow(pack_bytes, (size_t)n_threads, &total) || llv_add_overflow(total, xq_bytes, &total) ||
        llv_add_overflow(total, side_bytes, &total))
        return false;
    uint8_t *buf = llv_malloc_aligned(total);
    if (!buf)
        return false;
    /* packs first: pack_bytes is a multiple of 64, so every slot's strip stays aligned */
    gemm_i8_job job = { ops, w, x, bias, y, buf + pack_bytes * (size_t)n_threads + side_bytes,
                        buf + pack_bytes * (size_t)n_threads, buf, xrb, srb, pack_bytes, n_rows, partner,
                        ops->gemm_i8_pack ? ops->gemm_i8_pack : llv_i8_pack };
    llv_parallel_for(n_rows, n_threads, gemm_i8_quantize_row, &job);
    llv_parallel_for(n_panels, n_threads, gemm_i8_panel, &job);
    llv_free_aligned(buf);
    return true;
}

/* With the integer GEMM on, quantized weights that have no strip kernel
 * (Q4_1, Q5_K, ...) get their activation rows rounded through the partner
 * type (quantize, dequantize) before the f32 GEMM, so that every product
 * with quantized weights sees the same 8-bit activations, at any row count
 * and for every type of a mixed model (the "8-bit everywhere" variant of
 * tests/test_reference_quant_c.py); partner = activation_partner(w) >= 0.
 * Returns the rounded copy, or NULL when the sizes overflow or memory runs
 * out (the product is then exact). */
typedef struct {
    const llv_kernel_ops *ops;
    const float *x;
    float *xr;
    uint8_t *scratch;
    size_t xrb;
    int64_t n_in;
    int partner;
} round_job;

static void round_row(void *ctx, int64_t m, int slot)
{
    const round_job *j = ctx;
    uint8_t *q = j->scratch + (size_t)slot * j->xrb;
    quantize_activation(j->ops, j->partner, j->x + m * j->n_in, q, j->n_in);
    j->ops->to_f32(j->partner, q, j->xr + m * j->n_in, j->n_in);
}

static float *round_activations(const llv_kernel_ops *ops, const llv_weight *w, int partner, const float *x,
                                int64_t n_rows, int n_threads)
{
    size_t xrb, scratch, total;
    if (!llv_row_bytes(partner, w->n_in, &xrb) ||
        llv_mul_overflow(xrb, (size_t)n_threads, &scratch) ||
        llv_mul3_overflow((size_t)n_rows, (size_t)w->n_in, sizeof(float), &total) ||
        llv_add_overflow(total, scratch, &total))
        return NULL;
    float *xr = llv_malloc_aligned(total);
    if (!xr)
        return NULL;
    round_job job = { ops, x, xr, (uint8_t *)(xr + n_rows * w->n_in), xrb, w->n_in, partner };
    llv_parallel_for(n_rows, n_threads, round_row, &job);
    return xr;
}

typedef struct {
    const llv_kernel_ops *ops;
    const llv_weight *w;
    const float *x, *bias;
    float *y, *bufs;
    int64_t n_rows, panel_n;
    size_t per_thread;
} gemm_job;

static void gemm_panel(void *ctx, int64_t p, int slot)
{
    const gemm_job *j = ctx;
    const int64_t o0 = p * j->panel_n;
    const int nb = (int)LLV_MIN(j->panel_n, j->w->n_out - o0);
    gemm_panel_packed(j->ops, j->w, o0, nb, j->x, j->n_rows, j->y, j->bias, j->bufs + (size_t)slot * j->per_thread);
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
    size_t per_thread = (size_t)(PANEL_N + LLV_GEMM_PNR) * KC, total; /* panel + tmp rows */
    if (llv_mul3_overflow(per_thread, (size_t)n_threads, sizeof(float), &total))
        return false;
    float *bufs = llv_malloc_aligned(total);
    if (!bufs)
        return false;
    gemm_job job = { ops, w, x, bias, y, bufs, n_rows, panel_n, per_thread };
    llv_parallel_for(n_panels, n_threads, gemm_panel, &job);
    llv_free_aligned(bufs);
    return true;
}

void llv_matmul(const llv_weight *w, const float *x, int64_t n_rows, float *y, const float *bias,
                int n_threads)
{
    const llv_kernel_ops *ops = llv_ops();
    if (n_threads < 1)
        n_threads = 1;
    /* Quantized weights with the integer GEMV: up to SMALL_GEMM_ROWS rows
     * take it in chunks (the weights streamed twice beat packing them for a
     * GEMM: Q4_0 2048x5632, 5 rows, 2 threads: 0.94 ms vs 1.33 for the
     * integer GEMM and 2.19 for the f32 one; even at 8 rows). */
    const int partner = activation_partner(ops, w);
    if (n_rows > GEMV_MAX_ROWS && !(partner >= 0 && n_rows <= SMALL_GEMM_ROWS)) {
        /* with the integer GEMM on, 8-bit activations at every row count */
        const bool q8_gemm = partner >= 0 && __atomic_load_n(&int8_gemm, __ATOMIC_RELAXED);
        if (q8_gemm && gemm_i8(ops, w, partner, x, n_rows, y, bias, n_threads))
            return;
        float *xr = q8_gemm ? round_activations(ops, w, partner, x, n_rows, n_threads) : NULL;
        bool done = gemm(ops, w, xr ? xr : x, n_rows, y, bias, n_threads);
        llv_free_aligned(xr);
        if (done)
            return;
    }
    /* GEMV, also the fallback when the GEMM buffers are not available. */
    for (int64_t m0 = 0; m0 < n_rows; m0 += GEMV_MAX_ROWS) {
        int64_t mr = LLV_MIN(GEMV_MAX_ROWS, n_rows - m0);
        gemv(ops, w, x + m0 * w->n_in, mr, y + m0 * w->n_out, bias, n_threads);
    }
}

void llv_matmul_group(const llv_weight *const *ws, int n_w, const float *x, int64_t n_rows, float *const *ys,
                      const float *const *biases, int n_threads)
{
    const llv_kernel_ops *ops = llv_ops();
    if (n_threads < 1)
        n_threads = 1;
    bool fused = n_w >= 1 && n_w <= LLV_MATMUL_GROUP_MAX && n_rows <= GEMV_MAX_ROWS &&
                 __atomic_load_n(&int8_gemv, __ATOMIC_RELAXED);
    double work = 0.0;
    for (int i = 0; fused && i < n_w; i++) {
        fused = ws[i]->n_in == ws[0]->n_in;
        work += (double)ws[i]->n_out * (double)ws[i]->n_in;
    }
    if (fused && gemv_q8_group(ops, ws, n_w, x, n_rows, ys, biases, work < 32768.0 ? 1 : n_threads))
        return;
    for (int i = 0; i < n_w; i++)
        llv_matmul(ws[i], x, n_rows, ys[i], biases ? biases[i] : NULL, n_threads);
}
