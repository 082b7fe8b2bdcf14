/*
 * kernels.h - the numeric kernels: matrix products over any weight type,
 * norms, activations, RoPE and attention. Every fast path (SIMD, chosen at
 * run time by CPU detection) keeps a plain reference next to it, reachable
 * for tests through llv_kernels_force_reference(). OpenMP lives only in the
 * kernel files; thread counts come in as arguments (num_threads clauses).
 *
 * Layout conventions (spec §1.5): a weight matrix W with n_in inputs and
 * n_out outputs is stored as n_out rows of n_in values (GGUF ne = [n_in,
 * n_out]); activations are row-major, one row of n_in floats per token.
 */
#ifndef LLV_KERNELS_H
#define LLV_KERNELS_H

#include "common.h"
#include "quant.h"
#include "threadpool.h"   /* llv_parallel_for */

/* A weight matrix view (usually pointing into the GGUF mapping). */
typedef struct llv_weight {
    int         type;      /* ggml type id with weights = true */
    int64_t     n_in;      /* values per row (GGUF ne[0]) */
    int64_t     n_out;     /* rows (GGUF ne[1]) */
    size_t      row_bytes; /* llv_row_bytes(type, n_in) */
    const void *data;
} llv_weight;

/* Fill a view from a type, shape and data pointer; false if n_in is not a
 * multiple of the type's block or the type cannot be used as weights. */
LLV_INTERNAL bool llv_weight_init(llv_weight *w, int type, int64_t n_in, int64_t n_out, const void *data);

/* Y[m][o] = sum_k W[o][k] * X[m][k] (+ bias[o] if bias != NULL), for
 * m < n_rows. X is n_rows x n_in (row stride n_in), Y is n_rows x n_out.
 * n_rows = 1 is the GEMV (decode) case. */
LLV_INTERNAL void llv_matmul(const llv_weight *w, const float *x, int64_t n_rows, float *y,
                             const float *bias, int n_threads);
/* Several products of the same activation rows, ys[i] = X ws[i]^T + biases[i]
 * for i < n_w (biases may be NULL or hold NULLs; n_w <= LLV_MATMUL_GROUP_MAX).
 * Results equal n_w llv_matmul calls; for the integer GEMV (decode) they
 * share one parallel region (fewer fork/join barriers per token). */
#define LLV_MATMUL_GROUP_MAX 4
LLV_INTERNAL void llv_matmul_group(const llv_weight *const *ws, int n_w, const float *x, int64_t n_rows,
                                   float *const *ys, const float *const *biases, int n_threads);
/* The plain reference (dequantize a row, f32 dot in double) for tests. */
LLV_INTERNAL void llv_matmul_ref(const llv_weight *w, const float *x, int64_t n_rows, float *y,
                                 const float *bias);

/* Row-wise ops on n floats (out may equal x). */
LLV_INTERNAL void llv_rmsnorm(float *out, const float *x, const float *weight, int64_t n, float eps);
LLV_INTERNAL void llv_layernorm(float *out, const float *x, const float *weight, const float *bias,
                                int64_t n, float eps);
/* x[i] = a*x[i] + b over n floats. */
LLV_INTERNAL void llv_affine_f32(float *x, int64_t n, float a, float b);
/* The largest of x[0..n) (n >= 1; order-free; a NaN is skipped, except in x[0], which starts every lane). */
LLV_INTERNAL float llv_max_f32(const float *x, int64_t n);
LLV_INTERNAL void llv_softmax(float *x, int64_t n);
/* In-place activations over n floats. */
LLV_INTERNAL void llv_gelu_erf(float *x, int64_t n);   /* exact: 0.5x(1+erf(x/sqrt2)) */
LLV_INTERNAL void llv_gelu_tanh(float *x, int64_t n);  /* tanh approximation */
LLV_INTERNAL void llv_quick_gelu(float *x, int64_t n); /* x*sigmoid(1.702x) */
LLV_INTERNAL void llv_silu(float *x, int64_t n);       /* x*sigmoid(x) */
/* out[i] = silu(gate[i]) * up[i] */
LLV_INTERNAL void llv_swiglu(float *out, const float *gate, const float *up, int64_t n);

/* "Normal" RoPE (adjacent pairs, spec §6.3) on one token's heads:
 * x holds n_heads * head_dim floats; pairs (2i, 2i+1) with i < n_rot/2 of
 * every head are rotated by theta_i = pos*freq_scale*base^(-2i/n_rot). */
LLV_INTERNAL void llv_rope_norm(float *x, int n_heads, int head_dim, int n_rot, int64_t pos,
                                float freq_base, float freq_scale);

/* Attention for a block of n_q query rows against n_kv key/value rows.
 * q: n_q rows, row stride q_stride floats, head h at h*head_dim.
 * k, v: n_kv rows of n_head_kv*head_dim, stored as kv_type (LLV_TYPE_F32 or
 * LLV_TYPE_F16), row stride kv_stride elements.
 * out: n_q rows of n_head*head_dim floats (stride out_stride).
 * causal: query row i (absolute position q_pos0+i) sees keys 0..q_pos0+i;
 * otherwise all n_kv keys. GQA: q head h uses kv head h / (n_head/n_head_kv).
 * scale is usually 1/sqrt(head_dim). Works in O(n_kv) memory per thread. */
LLV_INTERNAL void llv_attention(float *out, int64_t out_stride,
                                const float *q, int64_t q_stride, int64_t n_q,
                                const void *k, const void *v, int kv_type, int64_t kv_stride, int64_t n_kv,
                                int n_head, int n_head_kv, int head_dim, float scale,
                                bool causal, int64_t q_pos0, int n_threads);

/* CPU features picked at run time: "scalar", "avx2", "avx512", "neon". */
LLV_INTERNAL const char *llv_kernels_isa(void);
/* Tests: force the plain reference paths (1) or restore dispatch (0). */
LLV_INTERNAL void llv_kernels_force_reference(int on);

#endif /* LLV_KERNELS_H */
