/*
 * kernels_avx2_gemm_i8.c - AVX2 strip kernel of the packed integer GEMM
 * (layout and reference: kernels_i8.c): LLV_I8_ROWS packed weight rows
 * times up to LLV_I8_COLS activation rows, one pass over a K chunk,
 *
 *   y[c*ldy + r] (+)= sum_{blocks b} (integer block sum) * (row scale * dx),
 *
 * bit for bit equal to llv_i8_strip_ref.
 *
 * Why this shape (measured on the AVX2-only Zen 3 this was written on, per
 * core): maddubs, madd, cvt and FMA each issue 2 per cycle, but the FMA
 * pipes are the only ones f32 GEMM can use (16 MACs/cycle), while maddubs
 * does 32 MACs. Per k-group the kernel loads 2 weight vectors (16 rows)
 * and broadcasts 4 activation bytes per column, then 2 maddubs + 2 int16
 * adds per column: 6 maddubs per 5 loads for 3 columns. The f32 work
 * (madd, sub, cvt, mul, FMA) is paid once per 32-value block (Q4_0) or per
 * sub-block madd + once per 256 (Q4_K). Registers: 6 int16 sums, 2 weight
 * vectors and a broadcast; the 6 f32 accumulators are touched once per block.
 */
#include "kernels_impl.h"

#if LLV_HAVE_X86_SIMD

#include <immintrin.h>
#include <string.h>

#include "kernels_avx2_inline.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2_INLINE __m256i bcast32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Rows 0..7 in a, 8..15 in b: y[0..nr) = a + bias (bias NULL: a), or += a. */
AVX2_INLINE void store_rows(float *y, int nr, __m256 a, __m256 b, const float *bias, int first)
{
    if (nr == LLV_I8_ROWS) {
        __m256 y0 = first ? (bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps()) : _mm256_loadu_ps(y);
        __m256 y1 = first ? (bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps()) : _mm256_loadu_ps(y + 8);
        _mm256_storeu_ps(y, _mm256_add_ps(y0, a));
        _mm256_storeu_ps(y + 8, _mm256_add_ps(y1, b));
        return;
    }
    float t[16];
    _mm256_storeu_ps(t, a);
    _mm256_storeu_ps(t + 8, b);
    for (int r = 0; r < nr; r++)
        y[r] = (first ? (bias ? bias[r] : 0.0f) : y[r]) + t[r];
}

/* The int16 sums of one 32-value block for both halves:
 * s0[c] += codes(half 0) * x_c, s1[c] += codes(half 1) * x_c, k-group by k-group. */
#define BLOCK_SUMS(Q, XOFF)                                                                             \
    for (int c = 0; c < NC; c++)                                                                        \
        s0[c] = s1[c] = _mm256_setzero_si256();                                                         \
    _Pragma("GCC unroll 2") for (int g = 0; g < 8; g++)                                                 \
    {                                                                                                   \
        const __m256i w0 = _mm256_load_si256((const __m256i *)((Q) + 32 * g));                          \
        const __m256i w1 = _mm256_load_si256((const __m256i *)((Q) + 256 + 32 * g));                    \
        _Pragma("GCC unroll 3") for (int c = 0; c < NC; c++)                                            \
        {                                                                                               \
            const __m256i xv = bcast32(X[c] + (XOFF) + 4 * g);                                          \
            s0[c] = _mm256_add_epi16(s0[c], _mm256_maddubs_epi16(w0, xv));                              \
            s1[c] = _mm256_add_epi16(s1[c], _mm256_maddubs_epi16(w1, xv));                              \
        }                                                                                               \
    }

/* BLOCK_SUMS for exactly 3 columns into named variables s00..s21 (columns
 * X0, X1, X2; the q4_0_3 / q4_k_3 strips). */
#define BLOCK_SUMS_3(Q, XOFF)                                                                           \
    s00 = s01 = s10 = s11 = s20 = s21 = _mm256_setzero_si256();                                         \
    _Pragma("GCC unroll 2") for (int g = 0; g < 8; g++)                                                 \
    {                                                                                                   \
        const __m256i w0 = _mm256_load_si256((const __m256i *)((Q) + 32 * g));                          \
        const __m256i w1 = _mm256_load_si256((const __m256i *)((Q) + 256 + 32 * g));                    \
        __m256i xv = bcast32(X0 + (XOFF) + 4 * g);                                                      \
        s00 = _mm256_add_epi16(s00, _mm256_maddubs_epi16(w0, xv));                                      \
        s01 = _mm256_add_epi16(s01, _mm256_maddubs_epi16(w1, xv));                                      \
        xv = bcast32(X1 + (XOFF) + 4 * g);                                                              \
        s10 = _mm256_add_epi16(s10, _mm256_maddubs_epi16(w0, xv));                                      \
        s11 = _mm256_add_epi16(s11, _mm256_maddubs_epi16(w1, xv));                                      \
        xv = bcast32(X2 + (XOFF) + 4 * g);                                                              \
        s20 = _mm256_add_epi16(s20, _mm256_maddubs_epi16(w0, xv));                                      \
        s21 = _mm256_add_epi16(s21, _mm256_maddubs_epi16(w1, xv));                                      \
    }

AVX2_INLINE float load_f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* a0 += i0 * (d0 * dx), a1 += i1 * (d1 * dx): int32 row sums (rows 0-7,
 * 8-15) scaled by the row scales times the activation block's scale, as
 * the reference's fmaf(isum, d * dx, acc). */
AVX2_INLINE void add_scaled(__m256 d0, __m256 d1, float dx, __m256i i0, __m256i i1, __m256 *a0, __m256 *a1)
{
    const __m256 vdx = _mm256_set1_ps(dx);
    *a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), _mm256_mul_ps(d0, vdx), *a0);
    *a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), _mm256_mul_ps(d1, vdx), *a1);
}

/* End of a Q4_0 block for one column (sb = its side record: f32 dx, int32
 * 8*sum(xq)): int16 sums -> int32 row sums minus the -8 offset, scaled by
 * the row scales d (rows 0-7 in d0, 8-15 in d1) times dx. */
AVX2_INLINE void q4_0_end(__m256 d0, __m256 d1, const uint8_t *sb, __m256i s0, __m256i s1, __m256 *a0, __m256 *a1)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i off = bcast32(sb + 4);
    add_scaled(d0, d1, load_f32(sb), _mm256_sub_epi32(_mm256_madd_epi16(s0, ones), off),
               _mm256_sub_epi32(_mm256_madd_epi16(s1, ones), off), a0, a1);
}

AVX2_INLINE void strip_q4_0(const uint8_t *P, int64_t b0, int64_t nblk, const uint8_t *xq, size_t xrb,
                            const uint8_t *side, size_t srb, float *y, int64_t ldy, int nr, const float *bias, int first, const int NC)
{
    __m256 a0[LLV_I8_COLS], a1[LLV_I8_COLS];
    const uint8_t *X[LLV_I8_COLS], *S[LLV_I8_COLS];
    for (int c = 0; c < NC; c++) {
        a0[c] = a1[c] = _mm256_setzero_ps();
        X[c] = xq + (size_t)c * xrb + (size_t)b0 * 34;
        S[c] = side + (size_t)c * srb + (size_t)b0 * 8;
    }
    for (int64_t b = 0; b < nblk; b++) {
        const uint8_t *pb = P + (size_t)b * LLV_I8_Q4_0_BYTES;
        __m256i s0[LLV_I8_COLS], s1[LLV_I8_COLS];
        BLOCK_SUMS(pb, 34 * b + 2)
        const __m256 d0 = _mm256_load_ps((const float *)(pb + 512));
        const __m256 d1 = _mm256_load_ps((const float *)(pb + 544));
        _Pragma("GCC unroll 3") for (int c = 0; c < NC; c++)
            q4_0_end(d0, d1, S[c] + 8 * b, s0[c], s1[c], &a0[c], &a1[c]);
    }
    for (int c = 0; c < NC; c++)
        store_rows(y + (size_t)c * ldy, nr, a0[c], a1[c], bias, first);
}

/* strip_q4_0 for exactly 3 columns with every accumulator a named variable:
 * with arrays GCC kept the 6 f32 accumulators and the column pointers on
 * the stack: 161 -> 172 GOP/s per core (1 thread, 2048 x 5632 strips from
 * L1). A register-only micro-benchmark of the loop reaches 208, its inner
 * loop alone 297. Same operations, same order as strip_q4_0. */
static AVX2 void q4_0_3(const uint8_t *P, int64_t b0, int64_t nblk, const uint8_t *xq, size_t xrb,
                        const uint8_t *side, size_t srb, float *y, int64_t ldy, int nr, const float *bias, int first)
{
    const uint8_t *X0 = xq + (size_t)b0 * 34 + 2, *X1 = X0 + xrb, *X2 = X1 + xrb;
    const uint8_t *S0 = side + (size_t)b0 * 8, *S1 = S0 + srb, *S2 = S1 + srb;
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    for (int64_t b = 0; b < nblk; b++) {
        const uint8_t *pb = P + (size_t)b * LLV_I8_Q4_0_BYTES;
        __m256i s00, s01, s10, s11, s20, s21;
        BLOCK_SUMS_3(pb, 34 * b)
        const __m256 d0 = _mm256_load_ps((const float *)(pb + 512));
        const __m256 d1 = _mm256_load_ps((const float *)(pb + 544));
        q4_0_end(d0, d1, S0 + 8 * b, s00, s01, &a00, &a01);
        q4_0_end(d0, d1, S1 + 8 * b, s10, s11, &a10, &a11);
        q4_0_end(d0, d1, S2 + 8 * b, s20, s21, &a20, &a21);
    }
    store_rows(y, nr, a00, a01, bias, first);
    store_rows(y + ldy, nr, a10, a11, bias, first);
    store_rows(y + 2 * ldy, nr, a20, a21, bias, first);
}

/* End of a Q4_K super-block for one column: scale the int32 sums by d*dx,
 * subtract the mins term dmin*dx*sum_s m_s*bsum_s. */
AVX2_INLINE void q4_k_end(const uint8_t *pb, const uint8_t *xb, const uint8_t *sb, __m256i i0, __m256i i1,
                          __m256 *a0, __m256 *a1)
{
    const float dx = load_f32(xb);
    const __m256 vdx = _mm256_set1_ps(dx);
    __m256i ms0 = _mm256_setzero_si256(), ms1 = ms0;
    for (int j = 0; j < 4; j++) {
        const __m256i bs = bcast32(sb + 4 * j);
        ms0 = _mm256_add_epi32(ms0, _mm256_madd_epi16(_mm256_load_si256((const __m256i *)(pb + 4608 + 64 * j)), bs));
        ms1 = _mm256_add_epi32(ms1,
                               _mm256_madd_epi16(_mm256_load_si256((const __m256i *)(pb + 4608 + 64 * j + 32)), bs));
    }
    const __m256 d0 = _mm256_load_ps((const float *)(pb + 4864)), d1 = _mm256_load_ps((const float *)(pb + 4896));
    const __m256 m0 = _mm256_load_ps((const float *)(pb + 4928)), m1 = _mm256_load_ps((const float *)(pb + 4960));
    add_scaled(d0, d1, dx, i0, i1, a0, a1);
    *a0 = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(ms0), _mm256_mul_ps(m0, vdx), *a0);
    *a1 = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(ms1), _mm256_mul_ps(m1, vdx), *a1);
}

AVX2_INLINE void strip_q4_k(const uint8_t *P, int64_t b0, int64_t nblk, const uint8_t *xq, size_t xrb,
                            const uint8_t *side, size_t srb, float *y, int64_t ldy, int nr, const float *bias, int first, const int NC)
{
    __m256 a0[LLV_I8_COLS], a1[LLV_I8_COLS];
    const uint8_t *X[LLV_I8_COLS], *S[LLV_I8_COLS];
    for (int c = 0; c < NC; c++) {
        a0[c] = a1[c] = _mm256_setzero_ps();
        X[c] = xq + (size_t)c * xrb + (size_t)b0 * 292;
        S[c] = side + (size_t)c * srb + (size_t)b0 * 16;
    }
    for (int64_t b = 0; b < nblk; b++) {
        const uint8_t *pb = P + (size_t)b * LLV_I8_Q4_K_BYTES;
        __m256i i0[LLV_I8_COLS], i1[LLV_I8_COLS];
        for (int c = 0; c < NC; c++)
            i0[c] = i1[c] = _mm256_setzero_si256();
        for (int s = 0; s < 8; s++) {
            __m256i s0[LLV_I8_COLS], s1[LLV_I8_COLS];
            BLOCK_SUMS(pb + 512 * s, 292 * b + 4 + 32 * s)
            const __m256i sc0 = _mm256_load_si256((const __m256i *)(pb + 4096 + 64 * s));
            const __m256i sc1 = _mm256_load_si256((const __m256i *)(pb + 4096 + 64 * s + 32));
            _Pragma("GCC unroll 3") for (int c = 0; c < NC; c++)
            {
                i0[c] = _mm256_add_epi32(i0[c], _mm256_madd_epi16(s0[c], sc0));
                i1[c] = _mm256_add_epi32(i1[c], _mm256_madd_epi16(s1[c], sc1));
            }
        }
        for (int c = 0; c < NC; c++)
            q4_k_end(pb, X[c] + 292 * b, S[c] + 16 * b, i0[c], i1[c], &a0[c], &a1[c]);
    }
    for (int c = 0; c < NC; c++)
        store_rows(y + (size_t)c * ldy, nr, a0[c], a1[c], bias, first);
}

/* strip_q4_k for exactly 3 columns, named variables as in q4_0_3 (the int32
 * sums and int16 sums of the 3 columns stay in registers; the f32
 * accumulators, touched once per 256 values, may live on the stack). */
static AVX2 void q4_k_3(const uint8_t *P, int64_t b0, int64_t nblk, const uint8_t *xq, size_t xrb,
                        const uint8_t *side, size_t srb, float *y, int64_t ldy, int nr, const float *bias, int first)
{
    const uint8_t *X0 = xq + (size_t)b0 * 292, *X1 = X0 + xrb, *X2 = X1 + xrb;
    const uint8_t *S0 = side + (size_t)b0 * 16, *S1 = S0 + srb, *S2 = S1 + srb;
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    for (int64_t b = 0; b < nblk; b++) {
        const uint8_t *pb = P + (size_t)b * LLV_I8_Q4_K_BYTES;
        const size_t xo = (size_t)b * 292 + 4;
        __m256i i00 = _mm256_setzero_si256(), i01 = i00, i10 = i00, i11 = i00, i20 = i00, i21 = i00;
        for (int s = 0; s < 8; s++) {
            __m256i s00, s01, s10, s11, s20, s21;
            BLOCK_SUMS_3(pb + 512 * s, xo + 32 * s)
            const __m256i sc0 = _mm256_load_si256((const __m256i *)(pb + 4096 + 64 * s));
            const __m256i sc1 = _mm256_load_si256((const __m256i *)(pb + 4096 + 64 * s + 32));
            i00 = _mm256_add_epi32(i00, _mm256_madd_epi16(s00, sc0));
            i01 = _mm256_add_epi32(i01, _mm256_madd_epi16(s01, sc1));
            i10 = _mm256_add_epi32(i10, _mm256_madd_epi16(s10, sc0));
            i11 = _mm256_add_epi32(i11, _mm256_madd_epi16(s11, sc1));
            i20 = _mm256_add_epi32(i20, _mm256_madd_epi16(s20, sc0));
            i21 = _mm256_add_epi32(i21, _mm256_madd_epi16(s21, sc1));
        }
        q4_k_end(pb, X0 + (size_t)b * 292, S0 + 16 * b, i00, i01, &a00, &a01);
        q4_k_end(pb, X1 + (size_t)b * 292, S1 + 16 * b, i10, i11, &a10, &a11);
        q4_k_end(pb, X2 + (size_t)b * 292, S2 + 16 * b, i20, i21, &a20, &a21);
    }
    store_rows(y, nr, a00, a01, bias, first);
    store_rows(y + ldy, nr, a10, a11, bias, first);
    store_rows(y + 2 * ldy, nr, a20, a21, bias, first);
}

/* Q6_K: per 16-value sub-block, two pairs of k-groups summed in int16 (a
 * pair sum is at most 63*127*2), each pair madd'ed by the sub-block scale. */
AVX2_INLINE void strip_q6_k(const uint8_t *P, int64_t b0, int64_t nblk, const uint8_t *xq, size_t xrb,
                            const uint8_t *side, size_t srb, float *y, int64_t ldy, int nr, const float *bias,
                            int first, const int NC)
{
    (void)side;
    (void)srb;
    __m256 a0[LLV_I8_COLS], a1[LLV_I8_COLS];
    const uint8_t *X[LLV_I8_COLS];
    for (int c = 0; c < NC; c++) {
        a0[c] = a1[c] = _mm256_setzero_ps();
        X[c] = xq + (size_t)c * xrb + (size_t)b0 * 292;
    }
    for (int64_t b = 0; b < nblk; b++) {
        const uint8_t *pb = P + (size_t)b * LLV_I8_Q6_K_BYTES;
        __m256i i0[LLV_I8_COLS], i1[LLV_I8_COLS];
        for (int c = 0; c < NC; c++)
            i0[c] = i1[c] = _mm256_setzero_si256();
        for (int s = 0; s < 16; s++) {
            const uint8_t *q = pb + 256 * s; /* [2 halves][4 k-groups][32] */
            const __m256i sc0 = _mm256_load_si256((const __m256i *)(pb + 4096 + 64 * s));
            const __m256i sc1 = _mm256_load_si256((const __m256i *)(pb + 4096 + 64 * s + 32));
            _Pragma("GCC unroll 2") for (int g = 0; g < 4; g += 2)
            {
                const __m256i w0a = _mm256_load_si256((const __m256i *)(q + 32 * g));
                const __m256i w0b = _mm256_load_si256((const __m256i *)(q + 32 * g + 32));
                const __m256i w1a = _mm256_load_si256((const __m256i *)(q + 128 + 32 * g));
                const __m256i w1b = _mm256_load_si256((const __m256i *)(q + 128 + 32 * g + 32));
                _Pragma("GCC unroll 3") for (int c = 0; c < NC; c++)
                {
                    const uint8_t *xs = X[c] + 292 * b + 4 + 16 * s + 4 * g;
                    const __m256i xa = bcast32(xs), xb = bcast32(xs + 4);
                    const __m256i t0 = _mm256_add_epi16(_mm256_maddubs_epi16(w0a, xa), _mm256_maddubs_epi16(w0b, xb));
                    const __m256i t1 = _mm256_add_epi16(_mm256_maddubs_epi16(w1a, xa), _mm256_maddubs_epi16(w1b, xb));
                    i0[c] = _mm256_add_epi32(i0[c], _mm256_madd_epi16(t0, sc0));
                    i1[c] = _mm256_add_epi32(i1[c], _mm256_madd_epi16(t1, sc1));
                }
            }
        }
        const __m256 d0 = _mm256_load_ps((const float *)(pb + 5632));
        const __m256 d1 = _mm256_load_ps((const float *)(pb + 5664));
        _Pragma("GCC unroll 3") for (int c = 0; c < NC; c++)
        {
            const uint8_t *xb = X[c] + 292 * b;
            __m256i cs0 = _mm256_setzero_si256(), cs1 = cs0;
            for (int j = 0; j < 8; j++) {
                const __m256i bs = bcast32(xb + 260 + 4 * j);
                cs0 = _mm256_add_epi32(cs0, _mm256_madd_epi16(
                                                _mm256_load_si256((const __m256i *)(pb + 5120 + 64 * j)), bs));
                cs1 = _mm256_add_epi32(cs1, _mm256_madd_epi16(
                                                _mm256_load_si256((const __m256i *)(pb + 5120 + 64 * j + 32)), bs));
            }
            const __m256i t0 = _mm256_sub_epi32(i0[c], _mm256_slli_epi32(cs0, 5));
            const __m256i t1 = _mm256_sub_epi32(i1[c], _mm256_slli_epi32(cs1, 5));
            add_scaled(d0, d1, load_f32(xb), t0, t1, &a0[c], &a1[c]);
        }
    }
    for (int c = 0; c < NC; c++)
        store_rows(y + (size_t)c * ldy, nr, a0[c], a1[c], bias, first);
}

/* Q8_0: codes widened to int16 (layout: kernels_i8.c), per k-pair one madd
 * per half and column into int32 sums, scaled once per 32-value block. The
 * activation pairs come from the side record (f32 dx, then 32 int16). */
AVX2_INLINE void strip_q8_0(const uint8_t *P, int64_t b0, int64_t nblk, const uint8_t *xq, size_t xrb,
                            const uint8_t *side, size_t srb, float *y, int64_t ldy, int nr, const float *bias,
                            int first, const int NC)
{
    (void)xq;
    (void)xrb;
    __m256 a0[LLV_I8_COLS], a1[LLV_I8_COLS];
    const uint8_t *S[LLV_I8_COLS];
    for (int c = 0; c < NC; c++) {
        a0[c] = a1[c] = _mm256_setzero_ps();
        S[c] = side + (size_t)c * srb + (size_t)b0 * 68;
    }
    for (int64_t b = 0; b < nblk; b++) {
        const uint8_t *pb = P + (size_t)b * LLV_I8_Q8_0_BYTES;
        __m256i i0[LLV_I8_COLS], i1[LLV_I8_COLS];
        for (int c = 0; c < NC; c++)
            i0[c] = i1[c] = _mm256_setzero_si256();
        _Pragma("GCC unroll 4") for (int p = 0; p < 16; p++)
        {
            const __m256i w0 = _mm256_load_si256((const __m256i *)(pb + 32 * p));
            const __m256i w1 = _mm256_load_si256((const __m256i *)(pb + 512 + 32 * p));
            _Pragma("GCC unroll 3") for (int c = 0; c < NC; c++)
            {
                const __m256i xv = bcast32(S[c] + 68 * b + 4 + 4 * p);
                i0[c] = _mm256_add_epi32(i0[c], _mm256_madd_epi16(w0, xv));
                i1[c] = _mm256_add_epi32(i1[c], _mm256_madd_epi16(w1, xv));
            }
        }
        const __m256 d0 = _mm256_load_ps((const float *)(pb + 1024));
        const __m256 d1 = _mm256_load_ps((const float *)(pb + 1056));
        _Pragma("GCC unroll 3") for (int c = 0; c < NC; c++)
            add_scaled(d0, d1, load_f32(S[c] + 68 * b), i0[c], i1[c], &a0[c], &a1[c]);
    }
    for (int c = 0; c < NC; c++)
        store_rows(y + (size_t)c * ldy, nr, a0[c], a1[c], bias, first);
}

/* strip_q8_0 for exactly 3 columns with named accumulators, as q4_0_3: per
 * core from L1, 126.5 GOP/s against 120-122 for strip_q8_0 with NC = 3. */
static AVX2 void q8_0_3(const uint8_t *P, int64_t b0, int64_t nblk, const uint8_t *xq, size_t xrb,
                        const uint8_t *side, size_t srb, float *y, int64_t ldy, int nr, const float *bias, int first)
{
    (void)xq;
    (void)xrb;
    const uint8_t *S0 = side + (size_t)b0 * 68, *S1 = S0 + srb, *S2 = S1 + srb;
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    for (int64_t b = 0; b < nblk; b++) {
        const uint8_t *pb = P + (size_t)b * LLV_I8_Q8_0_BYTES;
        const size_t xo = (size_t)b * 68 + 4;
        __m256i i00 = _mm256_setzero_si256(), i01 = i00, i10 = i00, i11 = i00, i20 = i00, i21 = i00;
        _Pragma("GCC unroll 4") for (int p = 0; p < 16; p++)
        {
            const __m256i w0 = _mm256_load_si256((const __m256i *)(pb + 32 * p));
            const __m256i w1 = _mm256_load_si256((const __m256i *)(pb + 512 + 32 * p));
            __m256i xv = bcast32(S0 + xo + 4 * p);
            i00 = _mm256_add_epi32(i00, _mm256_madd_epi16(w0, xv));
            i01 = _mm256_add_epi32(i01, _mm256_madd_epi16(w1, xv));
            xv = bcast32(S1 + xo + 4 * p);
            i10 = _mm256_add_epi32(i10, _mm256_madd_epi16(w0, xv));
            i11 = _mm256_add_epi32(i11, _mm256_madd_epi16(w1, xv));
            xv = bcast32(S2 + xo + 4 * p);
            i20 = _mm256_add_epi32(i20, _mm256_madd_epi16(w0, xv));
            i21 = _mm256_add_epi32(i21, _mm256_madd_epi16(w1, xv));
        }
        const __m256 d0 = _mm256_load_ps((const float *)(pb + 1024));
        const __m256 d1 = _mm256_load_ps((const float *)(pb + 1056));
        add_scaled(d0, d1, load_f32(S0 + 68 * b), i00, i01, &a00, &a01);
        add_scaled(d0, d1, load_f32(S1 + 68 * b), i10, i11, &a10, &a11);
        add_scaled(d0, d1, load_f32(S2 + 68 * b), i20, i21, &a20, &a21);
    }
    store_rows(y, nr, a00, a01, bias, first);
    store_rows(y + ldy, nr, a10, a11, bias, first);
    store_rows(y + 2 * ldy, nr, a20, a21, bias, first);
}

/* Entry points with the column count fixed (the loops over columns unroll). */
#define STRIP_FN(T, NC)                                                                                    \
    static AVX2 void T##_##NC(const uint8_t *P, int64_t b0, int64_t nblk, const uint8_t *xq, size_t xrb,   \
                              const uint8_t *side, size_t srb, float *y, int64_t ldy, int nr,              \
                              const float *bias, int first)                                                \
    { strip_##T(P, b0, nblk, xq, xrb, side, srb, y, ldy, nr, bias, first, NC); }

STRIP_FN(q4_0, 1) STRIP_FN(q4_0, 2) /* q4_0_3 is written out above */
STRIP_FN(q4_k, 1) STRIP_FN(q4_k, 2) /* q4_k_3 is written out above */
STRIP_FN(q6_k, 1) STRIP_FN(q6_k, 2) STRIP_FN(q6_k, 3)
STRIP_FN(q8_0, 1) STRIP_FN(q8_0, 2) /* q8_0_3 is written out above */

/* ---- packing ------------------------------------------------------------ */

/* In place: v[r] (8 dwords of row r) -> v[g] (dword g of rows 0..7). */
AVX2_INLINE void transpose8x8_epi32(__m256i v[8])
{
    __m256i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]);     /* r2i,r2i+1: d0 d0 d1 d1 | d4 d4 d5 d5 */
        t[2 * i + 1] = _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]); /* d2 d2 d3 d3 | d6 d6 d7 d7 */
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            u[4 * i + 2 * j] = _mm256_unpacklo_epi64(t[4 * i + j], t[4 * i + 2 + j]);
            u[4 * i + 2 * j + 1] = _mm256_unpackhi_epi64(t[4 * i + j], t[4 * i + 2 + j]);
        }
    /* u[0..3]: rows 0-3 of dwords (0,4) (1,5) (2,6) (3,7); u[4..7]: rows 4-7 */
    for (int g = 0; g < 4; g++) {
        v[g] = _mm256_permute2x128_si256(u[g], u[4 + g], 0x20);
        v[g + 4] = _mm256_permute2x128_si256(u[g], u[4 + g], 0x31);
    }
}

/* One half (8 rows, row i at w + i*wrb, rows >= nr zero) of 32 codes per row
 * (codes(row) = 32 bytes in k order) -> the 8 k-group vectors at dst. */
#define STORE_GROUPS(dst, v)                                                                            \
    do {                                                                                                \
        transpose8x8_epi32(v);                                                                          \
        for (int g = 0; g < 8; g++)                                                                     \
            _mm256_store_si256((__m256i *)((dst) + 32 * g), (v)[g]);                                    \
    } while (0)

static AVX2 void pack_q4_0_avx2(const uint8_t *w, size_t wrb, int nr, int64_t b0, int64_t nblk, uint8_t *dst)
{
    const __m128i m4 = _mm_set1_epi8(15);
    for (int64_t b = 0; b < nblk; b++) {
        uint8_t *pb = dst + (size_t)b * LLV_I8_Q4_0_BYTES;
        for (int h = 0; h < 2; h++) {
            __m256i v[8];
            for (int r = 0; r < 8; r++) {
                const int row = 8 * h + r;
                if (row >= nr) {
                    v[r] = _mm256_setzero_si256();
                    continue;
                }
                const __m128i qs = _mm_loadu_si128((const __m128i *)(w + (size_t)row * wrb + (size_t)(b0 + b) * 18 + 2));
                v[r] = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(qs, 4), m4), _mm_and_si128(qs, m4));
            }
            STORE_GROUPS(pb + 256 * h, v);
        }
        float d[16];
        for (int row = 0; row < 16; row++)
            d[row] = row < nr ? h2f(w + (size_t)row * wrb + (size_t)(b0 + b) * 18) : 0.0f;
        memcpy(pb + 512, d, sizeof d);
    }
}

static AVX2 void pack_q4_k_avx2(const uint8_t *w, size_t wrb, int nr, int64_t b0, int64_t nblk, uint8_t *dst)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    for (int64_t b = 0; b < nblk; b++) {
        uint8_t *pb = dst + (size_t)b * LLV_I8_Q4_K_BYTES;
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 4; j++) { /* 32 bytes: sub-blocks 2j (low nibbles) and 2j+1 (high) */
                __m256i lo[8], hi[8];
                for (int r = 0; r < 8; r++) {
                    const int row = 8 * h + r;
                    if (row >= nr) {
                        lo[r] = hi[r] = _mm256_setzero_si256();
                        continue;
                    }
                    const __m256i q = _mm256_loadu_si256(
                        (const __m256i *)(w + (size_t)row * wrb + (size_t)(b0 + b) * 144 + 16 + 32 * j));
                    lo[r] = _mm256_and_si256(q, m4);
                    hi[r] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                }
                STORE_GROUPS(pb + (size_t)(2 * (2 * j) + h) * 256, lo);
                STORE_GROUPS(pb + (size_t)(2 * (2 * j + 1) + h) * 256, hi);
            }
        /* scales, mins and the two f32 scales: the plain packer's layout */
        memset(pb + 4096, 0, LLV_I8_Q4_K_BYTES - 4096);
        for (int row = 0; row < nr; row++) {
            const uint8_t *src = w + (size_t)row * wrb + (size_t)(b0 + b) * 144;
            llv_i8_pack_q4_k_meta(src, row, pb);
        }
    }
}

/* Q8_0: per half, row r's 32 codes widened to 16 int16 dwords-pairs
 * (k-pairs 0-7, 8-15), transposed so that k-pair p holds rows 0..7. */
static AVX2 void pack_q8_0_avx2(const uint8_t *w, size_t wrb, int nr, int64_t b0, int64_t nblk, uint8_t *dst)
{
    for (int64_t b = 0; b < nblk; b++) {
        uint8_t *pb = dst + (size_t)b * LLV_I8_Q8_0_BYTES;
        for (int h = 0; h < 2; h++) {
            __m256i lo[8], hi[8];
            for (int r = 0; r < 8; r++) {
                const int row = 8 * h + r;
                if (row >= nr) {
                    lo[r] = hi[r] = _mm256_setzero_si256();
                    continue;
                }
                const uint8_t *q = w + (size_t)row * wrb + (size_t)(b0 + b) * 34 + 2;
                lo[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)q));
                hi[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + 16)));
            }
            transpose8x8_epi32(lo);
            transpose8x8_epi32(hi);
            for (int p = 0; p < 8; p++) {
                _mm256_store_si256((__m256i *)(pb + 512 * h + 32 * p), lo[p]);
                _mm256_store_si256((__m256i *)(pb + 512 * h + 32 * (p + 8)), hi[p]);
            }
        }
        float d[16];
        for (int row = 0; row < 16; row++)
            d[row] = row < nr ? h2f(w + (size_t)row * wrb + (size_t)(b0 + b) * 34) : 0.0f;
        memcpy(pb + 1024, d, sizeof d);
    }
}

void llv_avx2_gemm_i8_pack(int type, const void *w, size_t wrb, int nr, int64_t b0, int64_t nblk, void *dst)
{
    switch (type) {
    case LLV_TYPE_Q4_0: pack_q4_0_avx2(w, wrb, nr, b0, nblk, dst); break;
    case LLV_TYPE_Q4_K: pack_q4_k_avx2(w, wrb, nr, b0, nblk, dst); break;
    case LLV_TYPE_Q8_0: pack_q8_0_avx2(w, wrb, nr, b0, nblk, dst); break;
    default: llv_i8_pack(type, w, wrb, nr, b0, nblk, dst); break;
    }
}

bool llv_avx2_gemm_i8_has(int type) { return llv_i8_type_supported(type); }

void llv_avx2_gemm_i8(int type, const void *wp, int64_t b0, int64_t nblk, const void *xq, size_t xrb,
                      const void *side, size_t srb, int nc, float *y, int64_t ldy, int nr, const float *bias, int first)
{
    typedef void (*fn)(const uint8_t *, int64_t, int64_t, const uint8_t *, size_t, const uint8_t *, size_t, float *,
                       int64_t, int, const float *, int);
    static const fn q4_0[3] = { q4_0_1, q4_0_2, q4_0_3 }, q4_k[3] = { q4_k_1, q4_k_2, q4_k_3 },
                    q6_k[3] = { q6_k_1, q6_k_2, q6_k_3 }, q8_0[3] = { q8_0_1, q8_0_2, q8_0_3 };
    if (nc < 1 || nc > LLV_I8_COLS || nr < 1 || nr > LLV_I8_ROWS)
        return;
    const fn *f = type == LLV_TYPE_Q4_K ? q4_k : type == LLV_TYPE_Q6_K ? q6_k : type == LLV_TYPE_Q8_0 ? q8_0 : q4_0;
    f[nc - 1](wp, b0, nblk, xq, xrb, side, srb, y, ldy, nr, bias, first);
}

#else /* not x86 */

typedef int llv_no_avx2_gemm_i8;

#endif
