/*
 * attention.c - multi-head attention with an online (streaming) softmax.
 *
 * Two paths with the same math:
 *  - blocked (4+ query rows: prefill, vision): a work item is QB query rows
 *    of one head; keys go in chunks of KB, each chunk read once (converted
 *    to f32 if F16) and used by all QB rows through the packed GEMM
 *    micro-kernel (S = K Q^T, then O += P V). Scratch per thread is
 *    O((KB + QB) * head_dim), independent of n_kv.
 *  - streaming per row (decode, or when scratch cannot be allocated), below.
 *
 * For one query row q (head_dim) and the keys it may see:
 *   out = sum_j softmax_j(scale * q.k_j) v_j
 * computed chunk by chunk over keys keeping the running max m, the running
 * sum l of exp(s - m) and the running weighted sum acc of V rows (rescaled
 * by exp(m_old - m_new) when the max grows). Extra memory: one head_dim
 * slice of acc plus a chunk of scores on the stack, independent of n_kv.
 * Work items are (query row, head) pairs spread over the threads.
 */
#include "kernels_impl.h"

#include <math.h>
#include <string.h>
#include "threadpool.h"

#define KEY_CHUNK 64      /* scores computed per step */
#define ACC_SLICE 512     /* head dims accumulated per pass (larger heads take several) */
/* From this many rows (query rows x query heads per kv head) on, the blocked
 * path: decode with 32 query heads on 4 kv heads (8 rows per item), 144 keys,
 * 2 threads: 67.7 us per layer on the row path, 17.2 blocked (K/V rows
 * converted once per kv head instead of once per query head, scores by the
 * GEMM micro-kernel). One head per kv head stays on the row path (32 heads,
 * head_dim 128, 700 keys: 481 us, 767 blocked). */
#define BLOCKED_MIN_ROWS 4

typedef struct attn_args {
    const llv_kernel_ops *ops;
    const void *k, *v;
    int kv_type;
    int64_t kv_stride;
    int head_dim;
    float scale;
} attn_args;

static inline float kdot(const attn_args *a, const float *q, int64_t j, int kvh)
{
    int64_t off = j * a->kv_stride + (int64_t)kvh * a->head_dim;
    if (a->kv_type == LLV_TYPE_F16)
        return a->ops->dot_f16((const uint16_t *)a->k + off, q, a->head_dim);
    return a->ops->dot_f32((const float *)a->k + off, q, a->head_dim);
}

static inline void vaxpy(const attn_args *a, float *acc, float p, int64_t j, int kvh, int d0, int dn)
{
    int64_t off = j * a->kv_stride + (int64_t)kvh * a->head_dim + d0;
    if (a->kv_type == LLV_TYPE_F16)
        a->ops->axpy_f16(acc, p, (const uint16_t *)a->v + off, dn);
    else
        a->ops->axpy_f32(acc, p, (const float *)a->v + off, dn);
}

/* One query row against keys [0, n_keys) of kv head kvh -> out[head_dim]. */
static void attend_row(const attn_args *a, const float *q, int kvh, int64_t n_keys, float *out)
{
    float acc[ACC_SLICE] __attribute__((aligned(32)));
    float s[KEY_CHUNK] __attribute__((aligned(32)));
    for (int d0 = 0; d0 < a->head_dim; d0 += ACC_SLICE) {
        int dn = LLV_MIN(ACC_SLICE, a->head_dim - d0);
        float m = -INFINITY, l = 0.0f;
        for (int i = 0; i < dn; i++)
            acc[i] = 0.0f;
        for (int64_t j0 = 0; j0 < n_keys; j0 += KEY_CHUNK) {
            int nc = (int)LLV_MIN(KEY_CHUNK, n_keys - j0);
            float cmax = -INFINITY;
            for (int jj = 0; jj < nc; jj++) {
                s[jj] = a->scale * kdot(a, q, j0 + jj, kvh);
                if (s[jj] > cmax) cmax = s[jj];
            }
            if (cmax > m) { /* rescale what was accumulated under the old max */
                float corr = expf(m - cmax); /* 0 on the first chunk */
                l *= corr;
                a->ops->scale_f32(acc, corr, dn);
                m = cmax;
            }
            for (int jj = 0; jj < nc; jj++)
                s[jj] -= m;
            a->ops->exp_f32(s, nc);
            for (int jj = 0; jj < nc; jj++) {
                l += s[jj];
                vaxpy(a, acc, s[jj], j0 + jj, kvh, d0, dn);
            }
        }
        float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (int i = 0; i < dn; i++)
            out[d0 + i] = acc[i] * inv;
    }
}

/* ---- blocked path: the query rows of a head group against KB-key chunks --- */

/* A work item is qb query positions of the G query heads that share one kv
 * head: R = G*qb rows (row r = query i = r / G, head g = r % G), so each K/V
 * chunk is converted to f32 once for all of them (with 4 kv heads for 32
 * query heads, converting per query head was 9% of a prefill's attention).
 * qb = ATT_ROWS / G (at least 1) keeps R near ATT_ROWS whatever the grouping. */
#define ATT_ROWS 96 /* rows per work item */
#define KB 64       /* keys per chunk (multiple of LLV_GEMM_PNR) */

static inline int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

static int item_queries(int group) { return LLV_MAX(1, ATT_ROWS / group); }

/* Floats of one thread's scratch for items of R rows (each part a multiple
 * of 16 floats): Qc (R x hd, the item's query rows), Kp (KB x hd: the key
 * chunk packed in strips of 16 keys), Kc (KB x hd16: one chunk as f32), Vc
 * (KB x hd16), S (R x KB: scores, then probabilities), O (R x hd16), m, l (R). */
static size_t blocked_scratch(int hd, int64_t rows)
{
    int64_t hd16 = round16(hd), r16 = round16(rows);
    return (size_t)(r16 * hd16 + KB * hd16 + 2 * KB * hd16 + r16 * KB + r16 * hd16 + 2 * r16);
}

/* Rows [j0, j0+nk) of the K or V cache for kv head kvh as f32 rows of stride ld (zero padded to ld). */
static void kv_chunk_f32(const attn_args *a, const void *base, int64_t j0, int nk, int kvh, float *dst, int64_t ld)
{
    for (int jj = 0; jj < nk; jj++) {
        int64_t off = (j0 + jj) * a->kv_stride + (int64_t)kvh * a->head_dim;
        float *d = dst + jj * ld;
        if (a->kv_type == LLV_TYPE_F16)
            a->ops->to_f32(LLV_TYPE_F16, (const uint16_t *)base + off, d, a->head_dim);
        else
            memcpy(d, (const float *)base + off, (size_t)a->head_dim * sizeof(float));
        for (int64_t c = a->head_dim; c < ld; c++)
            d[c] = 0.0f;
    }
}

static float sum_f32(const float *x, int n)
{
    float s8[8] = { 0 };
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            s8[l] += x[i + l];
    float s = ((s8[0] + s8[1]) + (s8[2] + s8[3])) + ((s8[4] + s8[5]) + (s8[6] + s8[7]));
    for (; i < n; i++)
        s += x[i];
    return s;
}

/* Query positions [i0, i0+qb) of query heads h0..h0+G-1 (kv head kvh)
 * against keys [0, lim_i) (lim_i = the causal prefix of query i, or n_kv).
 * Per KB-key chunk:
 *   S[r][jj] = Qc_r . K_jj            packed GEMM, x = Qc rows, wp = Kp
 *   online softmax on the rows of S (scaled, masked past lim_i), in place
 *   O += S V                          packed GEMM, x = S rows, wp = V rows
 * Rows whose query sees no key of the chunk (causal: a prefix of the rows,
 * as lim grows with i) are left out of both products. */
static void attend_group(const attn_args *a, const float *q, int64_t q_stride, float *out, int64_t out_stride,
                         int h0, int G, int kvh, int64_t i0, int qb, int64_t n_kv, bool causal, int64_t q_pos0,
                         float *scratch)
{
    const llv_kernel_ops *ops = a->ops;
    const int hd = a->head_dim, R = G * qb;
    const int64_t hd16 = round16(hd), r16 = round16(R);
    float *Qc = scratch, *Kp = Qc + r16 * hd16, *Kc = Kp + KB * hd16, *Vc = Kc + KB * hd16, *S = Vc + KB * hd16;
    float *O = S + r16 * KB, *m = O + r16 * hd16, *l = m + r16;
    int64_t lim[ATT_ROWS], n_keys = 0; /* per query position (qb <= ATT_ROWS) */
    for (int i = 0; i < qb; i++) {
        lim[i] = causal ? LLV_MAX(0, LLV_MIN(n_kv, q_pos0 + i0 + i + 1)) : n_kv;
        n_keys = LLV_MAX(n_keys, lim[i]);
    }
    for (int r = 0; r < R; r++) {
        memcpy(Qc + r * hd, q + (i0 + r / G) * q_stride + (int64_t)(h0 + r % G) * hd, (size_t)hd * sizeof(float));
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    memset(O, 0, (size_t)R * (size_t)hd16 * sizeof(float));
    void (*pack)(const float *, int64_t, int, int64_t, float *) =
        ops->pack_strip ? ops->pack_strip : llv_kernel_ops_ref()->pack_strip; /* NULL on NEON */
    /* V rows used in place when they are f32 and 16 | hd (every 16-wide read stays inside its row) */
    const bool v_direct = a->kv_type == LLV_TYPE_F32 && hd % 16 == 0;
    for (int64_t j0 = 0; j0 < n_keys; j0 += KB) {
        const int nk = (int)LLV_MIN(KB, n_keys - j0);
        int i_first = 0; /* the first query that sees key j0 */
        while (i_first < qb && lim[i_first] <= j0)
            i_first++;
        const int r_first = i_first * G;
        /* Kp: strips of 16 keys, k-major (pack_strip zero pads past nk) */
        kv_chunk_f32(a, a->k, j0, nk, kvh, Kc, hd16);
        for (int t = 0; t * 16 < nk; t++)
            pack(Kc + (int64_t)t * 16 * hd16, hd16, LLV_MIN(16, nk - 16 * t), hd, Kp + (int64_t)t * 16 * hd);
        for (int r0 = r_first; r0 < R; r0 += LLV_GEMM_PMR) {
            const int mr = LLV_MIN(LLV_GEMM_PMR, R - r0);
            memset(S + r0 * KB, 0, (size_t)mr * KB * sizeof(float));
            for (int t = 0; t * 16 < nk; t++)
                ops->gemm_packed(Qc + r0 * hd, hd, mr, Kp + (int64_t)t * 16 * hd, 16, hd, S + r0 * KB + 16 * t, KB,
                                 LLV_MIN(16, nk - 16 * t));
        }
        for (int r = r_first; r < R; r++) {
            float *sr = S + r * KB;
            const int vis = (int)LLV_MIN(nk, lim[r / G] - j0); /* >= 1: r >= r_first */
            llv_affine_f32(sr, vis, a->scale, 0.0f);
            const float cmax = llv_max_f32(sr, vis);
            for (int jj = vis; jj < nk; jj++)
                sr[jj] = 0.0f;
            if (cmax == -INFINITY) { /* every visible score -inf: adds nothing */
                for (int jj = 0; jj < vis; jj++)
                    sr[jj] = 0.0f;
                continue;
            }
            if (cmax > m[r]) {
                const float corr = expf(m[r] - cmax); /* 0 when m was -inf */
                l[r] *= corr;
                ops->scale_f32(O + r * hd16, corr, hd16);
                m[r] = cmax;
            }
            llv_affine_f32(sr, vis, 1.0f, -m[r]);
            ops->exp_f32(sr, vis);
            l[r] += sum_f32(sr, vis);
        }
        const float *vw;
        int64_t ldv;
        if (v_direct) {
            vw = (const float *)a->v + j0 * a->kv_stride + (int64_t)kvh * hd;
            ldv = a->kv_stride;
        } else {
            kv_chunk_f32(a, a->v, j0, nk, kvh, Vc, hd16);
            vw = Vc;
            ldv = hd16;
        }
        for (int r0 = r_first; r0 < R; r0 += LLV_GEMM_PMR) {
            const int mr = LLV_MIN(LLV_GEMM_PMR, R - r0);
            for (int t = 0; t < hd16 / 16; t++)
                ops->gemm_packed(S + r0 * KB, KB, mr, vw + 16 * t, ldv, nk, O + r0 * hd16 + 16 * t, hd16,
                                 LLV_MIN(16, hd - 16 * t));
        }
    }
    for (int r = 0; r < R; r++) {
        ops->scale_f32(O + r * hd16, l[r] > 0.0f ? 1.0f / l[r] : 0.0f, hd);
        memcpy(out + (i0 + r / G) * out_stride + (int64_t)(h0 + r % G) * hd, O + r * hd16, (size_t)hd * sizeof(float));
    }
}

/* One attention call as a parallel loop: the blocked path's items are
 * (query block, head) pairs with per-slot scratch, the row path's are runs of
 * ROW_RUN (query row, head) pairs. */
typedef struct {
    const attn_args *a;
    float *out;
    int64_t out_stride;
    const float *q;
    int64_t q_stride, n_q, n_kv, n_items;
    int n_head, group;
    bool causal;
    int64_t q_pos0;
    float *scratch;   /* blocked path: `per` floats per slot */
    size_t per;
} attn_job;

static void blocked_item(void *ctx, int64_t it, int slot)
{
    const attn_job *j = ctx;
    const int n_kvh = j->n_head / j->group, QB = item_queries(j->group);
    const int64_t n_qb = (j->n_q + QB - 1) / QB;
    /* late query blocks first: under a causal mask they are the longest */
    const int64_t b = n_qb - 1 - it / n_kvh;
    const int kvh = (int)(it % n_kvh);
    const int64_t i0 = b * QB;
    const int qb = (int)LLV_MIN(QB, j->n_q - i0);
    attend_group(j->a, j->q, j->q_stride, j->out, j->out_stride, kvh * j->group, j->group, kvh, i0, qb, j->n_kv,
                 j->causal, j->q_pos0, j->scratch + (size_t)slot * j->per);
}

#define ROW_RUN 4

static void row_item(void *ctx, int64_t run, int slot)
{
    const attn_job *j = ctx;
    const int head_dim = j->a->head_dim;
    (void)slot;
    const int64_t end = LLV_MIN((run + 1) * ROW_RUN, j->n_items);
    for (int64_t it = run * ROW_RUN; it < end; it++) {
        const int64_t i = it / j->n_head;
        const int h = (int)(it % j->n_head);
        int64_t n_keys = j->n_kv;
        if (j->causal)
            n_keys = LLV_MAX(0, LLV_MIN(j->n_kv, j->q_pos0 + i + 1));
        const float *qi = j->q + i * j->q_stride + (int64_t)h * head_dim;
        float *oi = j->out + i * j->out_stride + (int64_t)h * head_dim;
        attend_row(j->a, qi, h / j->group, n_keys, oi);
    }
}

/* Returns false if the scratch cannot be allocated (caller streams instead). */
static bool attention_blocked(const attn_args *a, float *out, int64_t out_stride, const float *q, int64_t q_stride,
                              int64_t n_q, int64_t n_kv, int n_head, int group, bool causal, int64_t q_pos0,
                              int n_threads)
{
    const int QB = item_queries(group);
    const int64_t n_qb = (n_q + QB - 1) / QB, n_items = n_qb * (n_head / group);
    if (n_threads > n_items)
        n_threads = (int)n_items;
    size_t per = blocked_scratch(a->head_dim, (int64_t)QB * group), total;
    if (llv_mul3_overflow(per, (size_t)n_threads, sizeof(float), &total))
        return false;
    float *scratch = llv_malloc_aligned(total);
    if (!scratch)
        return false;
    attn_job job = { a, out, out_stride, q, q_stride, n_q, n_kv, n_items, n_head, group, causal, q_pos0, scratch, per };
    llv_parallel_for(n_items, n_threads, blocked_item, &job);
    llv_free_aligned(scratch);
    return true;
}

void llv_attention(float *out, int64_t out_stride, const float *q, int64_t q_stride, int64_t n_q,
                   const void *k, const void *v, int kv_type, int64_t kv_stride, int64_t n_kv,
                   int n_head, int n_head_kv, int head_dim, float scale, bool causal, int64_t q_pos0,
                   int n_threads)
{
    attn_args a = { llv_ops(), k, v, kv_type, kv_stride, head_dim, scale };
    const int group = n_head_kv > 0 ? n_head / n_head_kv : 1;
    const int64_t n_items = n_q * n_head;
    if (n_threads < 1)
        n_threads = 1;
    /* Several rows per kv head: blocked path (K/V chunks reused across them). */
    if (n_q * (group > 0 ? group : 1) >= BLOCKED_MIN_ROWS && n_kv > 0 &&
        attention_blocked(&a, out, out_stride, q, q_stride, n_q, n_kv, n_head, group > 0 ? group : 1, causal,
                          q_pos0, n_threads))
        return;
    attn_job job = { &a, out, out_stride, q, q_stride, n_q, n_kv, n_items, n_head, group > 0 ? group : 1, causal,
                     q_pos0, NULL, 0 };
    llv_parallel_for((n_items + ROW_RUN - 1) / ROW_RUN, n_threads, row_item, &job);
}
