/*
 * kernels_impl.h - private to the kernel files: the table of per-ISA
 * micro-kernels that the drivers (matmul.c, attention.c, kernels.c) call.
 *
 * Every ISA fills the same table; kernels_ref.c has the plain C versions
 * (always built, used for tests and on CPUs without a faster path).
 * Adding an ISA (AVX-512, NEON): write kernels_<isa>.c exporting
 * llv_kernel_ops_<isa>() (NULL when not compiled in), and pick it in
 * kernels.c select_ops().
 */
#ifndef LLV_KERNELS_IMPL_H
#define LLV_KERNELS_IMPL_H

#include "kernels.h"

/* x86 SIMD kernels are compiled in on GCC/Clang x86 unless the build
 * defines LLV_DISABLE_SIMD (used to test the scalar-only build). */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(LLV_DISABLE_SIMD)
#  define LLV_HAVE_X86_SIMD 1
#else
#  define LLV_HAVE_X86_SIMD 0
#endif

/* Parallel loops: llv_parallel_for (threadpool.h, via kernels.h). */

/* Packed GEMM: up to PMR activation rows x a strip of PNR outputs. */
#define LLV_GEMM_PMR 6
#define LLV_GEMM_PNR 16

typedef struct llv_kernel_ops {
    const char *isa;
    /* sum_i a[i]*b[i], any n >= 0. */
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    /* sum_i h(a[i])*b[i] with a in F16 / BF16. */
    float (*dot_f16)(const uint16_t *a, const float *b, int64_t n);
    float (*dot_bf16)(const uint16_t *a, const float *b, int64_t n);
    /* y[i] += a*x[i] (x in F32 / F16). */
    void (*axpy_f32)(float *y, float a, const float *x, int64_t n);
    void (*axpy_f16)(float *y, float a, const uint16_t *x, int64_t n);
    /* y[i] *= a */
    void (*scale_f32)(float *y, float a, int64_t n);
    /* Dequantize n values (a multiple of the block) of a weights-type row. */
    void (*to_f32)(int type, const void *src, float *dst, int64_t n);
    /* Packed GEMM strip (the outer-product form, no horizontal sums):
     *   y[i*ldy + j] += sum_{k<kc} x[i*ldx + k] * wp[k*ldw + j]
     * for i < mr <= LLV_GEMM_PMR, j < nr <= LLV_GEMM_PNR. Every row of wp
     * must have LLV_GEMM_PNR readable floats (zero padded past nr). */
    void (*gemm_packed)(const float *x, int64_t ldx, int mr, const float *wp, int64_t ldw, int64_t kc,
                        float *y, int64_t ldy, int nr);
    /* Pack nr <= LLV_GEMM_PNR f32 rows (row j at src + j*lds, kc values)
     * into the strip layout gemm_packed reads: dst[k*LLV_GEMM_PNR + j],
     * zeros for j >= nr. NULL: callers use the reference table's. */
    void (*pack_strip)(const float *src, int64_t lds, int nr, int64_t kc, float *dst);
    /* exp of n floats in place (vector exp; the reference uses expf). */
    void (*exp_f32)(float *x, int64_t n);
    /* Vector activations (NULL: kernels.c uses its scalar loops). */
    void (*silu)(float *x, int64_t n);
    void (*quick_gelu)(float *x, int64_t n);
    void (*gelu_tanh)(float *x, int64_t n);
    void (*swiglu)(float *out, const float *gate, const float *up, int64_t n);
    /* Integer GEMV path (spec §2.1): q8_partner(type) is the activation
     * type (LLV_TYPE_Q8_0 or LLV_TYPE_Q8_K) this ISA has an integer block dot
     * for, or -1 (then matmul dequantizes to f32). dot_q8 returns
     * sum_k w[k]*xq[k] over n values of one weight row and the activation row
     * quantized to that partner type. NULL in tables without it. */
    int (*q8_partner)(int type);
    float (*dot_q8)(int type, const void *w, const void *xq, int64_t n);
    /* Quantize an activation row to Q8_0 or Q8_K, byte-identical to
     * llv_quantize_row (NULL: matmul calls llv_quantize_row). */
    void (*quantize_q8)(int type, const float *x, void *dst, int64_t n);
    /* GEMV helpers computed once per activation row and shared by all weight
     * rows (NULL when absent): q8_side_bytes(type, n) is the size of the side
     * data (0: the type does not use it), q8_side(type, xq, n, side) fills it
     * from the quantized row, and dot_q8_side(type, w, xq, side, n) equals
     * dot_q8(type, w, xq, n). */
    size_t (*q8_side_bytes)(int type, int64_t n);
    void (*q8_side)(int type, const void *xq, int64_t n, void *side);
    float (*dot_q8_side)(int type, const void *w, const void *xq, const void *side, int64_t n);
    /* Several weight rows against one activation row (the GEMV inner step):
     *   out[r] = dot_q8_side(type, w + r*wrb, xq, side, n)   r < nr (any nr >= 0)
     * bit for bit (side as filled by q8_side; ignored, may be NULL, when
     * q8_side_bytes is 0). One call per tile of weight rows: an ISA may
     * share activation loads between rows (AVX2 does not: interleaved row
     * streams were slower from DRAM, see kernels_avx2_q8.c). NULL: matmul
     * loops over dot_q8_side / dot_q8. */
    void (*dot_q8_rows)(int type, const void *w, size_t wrb, int nr, const void *xq, const void *side, int64_t n,
                        float *out);
    /* Packed integer GEMM strip (prefill; layout and reference in
     * kernels_i8.c), for the weight types gemm_i8_has() accepts:
     *   y[c*ldy + r] = (first ? bias[r] (0 if bias NULL) : y[c*ldy + r]) + P,
     *   P = sum over blocks [b0, b0+nblk) of w_r . xq_c
     * for r < nr <= LLV_I8_ROWS, c < nc <= LLV_I8_COLS; wp is the strip
     * packed by llv_i8_pack (32-byte aligned), xq_c = xq + c*xrb the
     * activation rows quantized to q8_partner(type), side + c*srb their
     * llv_i8_side data. Must equal llv_i8_strip_ref bit for bit. NULL in
     * tables without it (matmul then runs the packed f32 GEMM). */
    bool (*gemm_i8_has)(int type);
    /* The ISA's llv_i8_pack (same bytes; NULL: matmul calls llv_i8_pack). */
    void (*gemm_i8_pack)(int type, const void *w, size_t wrb, int nr, int64_t b0, int64_t nblk, void *dst);
    void (*gemm_i8)(int type, const void *wp, int64_t b0, int64_t nblk, const void *xq, size_t xrb,
                    const void *side, size_t srb, int nc, float *y, int64_t ldy, int nr, const float *bias,
                    int first);
} llv_kernel_ops;

/* Packed integer GEMM (kernels_i8.c): weight rows per strip, activation
 * rows per kernel call, and the packed bytes per block of each type. */
#define LLV_I8_ROWS 16
#define LLV_I8_COLS 3
#define LLV_I8_Q4_0_BYTES 576   /* per 32 values */
#define LLV_I8_Q4_K_BYTES 4992  /* per 256 values */
#define LLV_I8_Q6_K_BYTES 5696  /* per 256 values */
#define LLV_I8_Q8_0_BYTES 1088  /* per 32 values */
LLV_INTERNAL bool llv_i8_type_supported(int type);
LLV_INTERNAL int64_t llv_i8_block(int type);
LLV_INTERNAL size_t llv_i8_packed_block_bytes(int type);
LLV_INTERNAL size_t llv_i8_side_block_bytes(int type);
/* Pack weight rows 0..nr-1 (nr <= LLV_I8_ROWS; row i at w + i*wrb), blocks
 * [b0, b0 + nblk), into dst (nblk * llv_i8_packed_block_bytes). */
LLV_INTERNAL void llv_i8_pack(int type, const void *w, size_t wrb, int nr, int64_t b0, int64_t nblk, void *dst);
/* The scales, mins, d and dmin of one Q4_K block (src) of strip row `row`
 * into a packed block pb (the part of llv_i8_pack after the codes). */
LLV_INTERNAL void llv_i8_pack_q4_k_meta(const uint8_t *src, int row, uint8_t *pb);
/* Side data of one activation row quantized to the partner type (n values). */
LLV_INTERNAL void llv_i8_side(int type, const void *xq, int64_t n, void *side);
LLV_INTERNAL void llv_i8_strip_ref(int type, const void *wp, int64_t b0, int64_t nblk, const void *xq, size_t xrb,
                                   const void *side, size_t srb, int nc, float *y, int64_t ldy, int nr,
                                   const float *bias, int first);

/* The table in use (dispatch, or the reference when forced). */
LLV_INTERNAL const llv_kernel_ops *llv_ops(void);
/* The plain C table (always available). */
LLV_INTERNAL const llv_kernel_ops *llv_kernel_ops_ref(void);
/* The AVX2+FMA+F16C table, or NULL if not compiled in (non-x86). */
LLV_INTERNAL const llv_kernel_ops *llv_kernel_ops_avx2(void);
/* Its integer block dots (kernels_avx2_q8.c; x86 only). */
LLV_INTERNAL int llv_avx2_q8_partner(int type);
LLV_INTERNAL float llv_avx2_dot_q8(int type, const void *w, const void *xq, int64_t n);
LLV_INTERNAL void llv_avx2_quantize_q8(int type, const float *x, void *dst, int64_t n);
LLV_INTERNAL size_t llv_avx2_q8_side_bytes(int type, int64_t n);
LLV_INTERNAL void llv_avx2_q8_side(int type, const void *xq, int64_t n, void *side);
LLV_INTERNAL float llv_avx2_dot_q8_side(int type, const void *w, const void *xq, const void *side, int64_t n);
LLV_INTERNAL void llv_avx2_dot_q8_rows(int type, const void *w, size_t wrb, int nr, const void *xq, const void *side,
                                      int64_t n, float *out);
/* Its packed integer GEMM strips (kernels_avx2_gemm_i8.c; x86 only). */
LLV_INTERNAL bool llv_avx2_gemm_i8_has(int type);
LLV_INTERNAL void llv_avx2_gemm_i8_pack(int type, const void *w, size_t wrb, int nr, int64_t b0, int64_t nblk,
                                        void *dst);
LLV_INTERNAL void llv_avx2_gemm_i8(int type, const void *wp, int64_t b0, int64_t nblk, const void *xq, size_t xrb,
                                   const void *side, size_t srb, int nc, float *y, int64_t ldy, int nr,
                                   const float *bias, int first);

/* Process-wide switches of the integer paths, for tests and benchmarks:
 * GEMV (decode) and GEMM (prefill), both default on; see matmul.c. */
LLV_INTERNAL void llv_matmul_set_int8_gemv(int on);
LLV_INTERNAL void llv_matmul_set_int8_gemm(int on);

#endif /* LLV_KERNELS_IMPL_H */
