/*
 * kernels_avx2.c - the AVX2 + FMA + F16C micro-kernels.
 *
 * Every function carries target("avx2,fma,f16c") instead of the file being
 * compiled with -mavx2, so the library builds with plain CFLAGS and runs on
 * any x86-64: kernels.c selects this table only after
 * __builtin_cpu_supports() confirmed the three features. On other
 * architectures the file compiles to a stub returning NULL.
 *
 * Dequantizers work in 32-bit lanes: 8 packed values are zero-extended to
 * int32 (vpmovzxbd), their bit fields extracted with shifts and masks,
 * converted to float and scaled, with the same operation order as the scalar
 * dequantizers in quant.c (equal up to FMA contraction, ~1 ulp).
 */
#include "kernels_impl.h"

#if LLV_HAVE_X86_SIMD

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels_avx2_inline.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* Lanes [0, r) set, r in 0..8. */
static const int32_t mask_table[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };

AVX2_INLINE __m256i tail_mask(int64_t r) { return _mm256_loadu_si256((const __m256i *)(mask_table + 8 - r)); }

/* Sum of 8 lanes as (l0+l4 + l1+l5) + (l2+l6 + l3+l7): the f32 kernels' order,
 * kept apart from hsum() so their results stay bit-for-bit as before. */
AVX2_INLINE float hsum_f32(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 sh = _mm_movehdup_ps(s);
    s = _mm_add_ps(s, sh);
    sh = _mm_movehl_ps(sh, s);
    s = _mm_add_ss(s, sh);
    return _mm_cvtss_f32(s);
}

/* 8 halves -> 8 floats. */
AVX2_INLINE __m256 load_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
/* r < 8 halves, zero padded. */
AVX2_INLINE __m256 load_f16_tail(const uint16_t *p, int64_t r)
{
    uint16_t tmp[8] = {0};
    memcpy(tmp, p, (size_t)r * 2);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)tmp));
}
AVX2_INLINE __m256 load_bf16(const uint16_t *p)
{
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
AVX2_INLINE __m256 load_bf16_tail(const uint16_t *p, int64_t r)
{
    uint16_t tmp[8] = {0};
    memcpy(tmp, p, (size_t)r * 2);
    return load_bf16(tmp);
}

/* ---- dots and axpy ---------------------------------------------------- */

static AVX2 float avx2_dot_f32(const float *a, const float *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) {
        __m256i m = tail_mask(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum_f32(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

static AVX2 float avx2_dot_f16(const uint16_t *a, const float *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(load_f16(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(load_f16(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(load_f16(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(load_f16(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(load_f16(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n)
        s1 = _mm256_fmadd_ps(load_f16_tail(a + i, n - i), _mm256_maskload_ps(b + i, tail_mask(n - i)), s1);
    return hsum_f32(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

static AVX2 float avx2_dot_bf16(const uint16_t *a, const float *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(load_bf16(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(load_bf16(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(load_bf16(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(load_bf16(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(load_bf16(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n)
        s1 = _mm256_fmadd_ps(load_bf16_tail(a + i, n - i), _mm256_maskload_ps(b + i, tail_mask(n - i)), s1);
    return hsum_f32(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

static AVX2 void avx2_axpy_f32(float *y, float a, const float *x, int64_t n)
{
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 r = _mm256_fmadd_ps(va, _mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m));
        _mm256_maskstore_ps(y + i, m, r);
    }
}

static AVX2 void avx2_axpy_f16(float *y, float a, const uint16_t *x, int64_t n)
{
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load_f16(x + i), _mm256_loadu_ps(y + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 r = _mm256_fmadd_ps(va, load_f16_tail(x + i, n - i), _mm256_maskload_ps(y + i, m));
        _mm256_maskstore_ps(y + i, m, r);
    }
}

static AVX2 void avx2_scale_f32(float *y, float a, int64_t n)
{
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] *= a;
}

/* ---- exp ---------------------------------------------------------------- */

/* e^x = 2^n e^r, n = round(x log2 e), r = x - n ln2 (two-part ln2), e^r by
 * its degree-7 Taylor polynomial on |r| <= ln2/2 (truncation < 1e-8
 * relative). Max error about 2 ulp; inputs below -87.3 give 0 and above
 * 88.7 give +inf, like expf. */
AVX2_INLINE __m256 exp8(__m256 x)
{
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 ln2_hi = _mm256_set1_ps(0.693359375f), ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, ln2_hi, xc);
    r = _mm256_fnmadd_ps(n, ln2_lo, r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    /* 2^n: n in [-126, 128]; split so that n = 128 does not overflow the exponent field. */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    /* exact limits */
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_LT_OQ));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, _mm256_set1_ps(88.7f), _CMP_GT_OQ));
    /* NaN stays NaN */
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

static AVX2 void avx2_exp_f32(float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float tmp[8] = {0};
        memcpy(tmp, x + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(tmp, exp8(_mm256_loadu_ps(tmp)));
        memcpy(x + i, tmp, (size_t)(n - i) * sizeof(float));
    }
}

/* ---- activations (exp8 based) ------------------------------------------- */

/* x * sigmoid(a*x) = x / (1 + exp(-a*x)); exp overflow gives x/inf = -0. */
AVX2_INLINE __m256 xsigmoid8(__m256 x, float a)
{
    __m256 e = exp8(_mm256_mul_ps(x, _mm256_set1_ps(-a)));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* 0.5x(1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715x^3), tanh(u) = 1 - 2/(exp(2u)+1). */
AVX2_INLINE __m256 gelu_tanh8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f), _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
    __m256 e = exp8(_mm256_add_ps(u, u));
    __m256 t = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(one, t));
}

#define ACT_LOOP(expr)                                                  \
    int64_t i = 0;                                                      \
    for (; i + 8 <= n; i += 8) {                                        \
        __m256 v = _mm256_loadu_ps(x + i);                              \
        _mm256_storeu_ps(x + i, expr);                                  \
    }                                                                   \
    if (i < n) {                                                        \
        float tmp[8] = {0};                                             \
        memcpy(tmp, x + i, (size_t)(n - i) * sizeof(float));            \
        __m256 v = _mm256_loadu_ps(tmp);                                \
        _mm256_storeu_ps(tmp, expr);                                    \
        memcpy(x + i, tmp, (size_t)(n - i) * sizeof(float));            \
    }

static AVX2 void avx2_silu(float *x, int64_t n) { ACT_LOOP(xsigmoid8(v, 1.0f)) }
static AVX2 void avx2_quick_gelu(float *x, int64_t n) { ACT_LOOP(xsigmoid8(v, 1.702f)) }
static AVX2 void avx2_gelu_tanh(float *x, int64_t n) { ACT_LOOP(gelu_tanh8(v)) }

static AVX2 void avx2_swiglu(float *out, const float *gate, const float *up, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(xsigmoid8(_mm256_loadu_ps(gate + i), 1.0f), _mm256_loadu_ps(up + i)));
    for (; i < n; i++)
        out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* ---- dequantization ------------------------------------------------------ */

/* 8 bytes at p zero-extended to int32 lanes. */
AVX2_INLINE __m256i u8x8(const uint8_t *p)
{
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}
AVX2_INLINE __m256i bits(__m256i v, int shift, int mask)
{
    return _mm256_and_si256(_mm256_srli_epi32(v, shift), _mm256_set1_epi32(mask));
}
/* Store q*d + m (q int32 lanes). */
AVX2_INLINE void st_fma(float *y, __m256i q, __m256 d, __m256 m)
{
    _mm256_storeu_ps(y, _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), d, m));
}
/* Store q*d (exactly the scalar product). */
AVX2_INLINE void st_mul(float *y, __m256i q, __m256 d)
{
    _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
}

/* Q4_0 / Q5_0: y = (q - off) * d; Q4_1 / Q5_1: y = q*d + m. hbits: Q5 high
 * bits as one u32 (bit j for element j), or NULL. */
AVX2_INLINE void dq_32(const uint8_t *qs, const uint8_t *qh, float d, float m, int off, float *y)
{
    const __m256 vd = _mm256_set1_ps(d);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    uint32_t H = 0;
    if (qh)
        memcpy(&H, qh, 4);
    __m256i vh = _mm256_set1_epi32((int)H), voff = _mm256_set1_epi32(off);
    for (int g = 0; g < 2; g++) {
        __m256i b = u8x8(qs + 8 * g);
        __m256i lo = _mm256_and_si256(b, _mm256_set1_epi32(15));
        __m256i hi = _mm256_srli_epi32(b, 4);
        if (qh) {
            __m256i sl = _mm256_add_epi32(lane, _mm256_set1_epi32(8 * g));
            __m256i sh = _mm256_add_epi32(sl, _mm256_set1_epi32(16));
            lo = _mm256_or_si256(lo, _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(vh, sl), _mm256_set1_epi32(1)), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(vh, sh), _mm256_set1_epi32(1)), 4));
        }
        if (off) {
            st_mul(y + 8 * g, _mm256_sub_epi32(lo, voff), vd);
            st_mul(y + 16 + 8 * g, _mm256_sub_epi32(hi, voff), vd);
        } else {
            __m256 vm = _mm256_set1_ps(m);
            st_fma(y + 8 * g, lo, vd, vm);
            st_fma(y + 16 + 8 * g, hi, vd, vm);
        }
    }
}

static AVX2 void dq_row_q4_0(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 18, y += 32)
        dq_32(b + 2, NULL, h2f(b), 0.0f, 8, y);
}
static AVX2 void dq_row_q4_1(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 20, y += 32)
        dq_32(b + 4, NULL, h2f(b), h2f(b + 2), 0, y);
}
static AVX2 void dq_row_q5_0(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 22, y += 32)
        dq_32(b + 6, b + 2, h2f(b), 0.0f, 16, y);
}
static AVX2 void dq_row_q5_1(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 24, y += 32)
        dq_32(b + 8, b + 4, h2f(b), h2f(b + 2), 0, y);
}

static AVX2 void dq_row_q8_0(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 34, y += 32) {
        __m256 vd = _mm256_set1_ps(h2f(b));
        for (int g = 0; g < 4; g++)
            st_mul(y + 8 * g, _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2 + 8 * g))), vd);
    }
}

/* Q8_K (activation rows only: the rounding of activations before an f32 GEMM) */
static AVX2 void dq_row_q8_k(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 292, y += 256) {
        float d;
        memcpy(&d, b, 4);
        const __m256 vd = _mm256_set1_ps(d);
        for (int g = 0; g < 32; g++)
            st_mul(y + 8 * g, _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 4 + 8 * g))), vd);
    }
}

static AVX2 void dq_row_q2_k(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 84, y += 256) {
        const uint8_t *scales = b, *qs = b + 16;
        float d = h2f(b + 80), dmin = h2f(b + 82);
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 4; j++)
                for (int r = 0; r < 32; r += 8) {
                    int s = scales[8 * h + 2 * j + (r >= 16)];
                    __m256i q = bits(u8x8(qs + 32 * h + r), 2 * j, 3);
                    /* scalar: d*(s&15)*q - dmin*(s>>4) */
                    __m256 v = _mm256_mul_ps(_mm256_set1_ps(d * (float)(s & 15)), _mm256_cvtepi32_ps(q));
                    _mm256_storeu_ps(y + 128 * h + 32 * j + r,
                                     _mm256_sub_ps(v, _mm256_set1_ps(dmin * (float)(s >> 4))));
                }
    }
}

static AVX2 void dq_row_q3_k(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 110, y += 256) {
        const uint8_t *hmask = b, *qs = b + 32, *S = b + 96;
        float d = h2f(b + 108);
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 4; j++)
                for (int r = 0; r < 32; r += 8) {
                    int si = 8 * h + 2 * j + (r >= 16);
                    int low = si < 8 ? S[si] & 15 : S[si - 8] >> 4;
                    int high = (S[8 + (si % 4)] >> (2 * (si / 4))) & 3;
                    int sc = (low | high << 4) - 32;
                    __m256i q2 = bits(u8x8(qs + 32 * h + r), 2 * j, 3);
                    __m256i hb = bits(u8x8(hmask + r), 4 * h + j, 1);
                    /* q = q2 - 4 + 4*hb */
                    __m256i q = _mm256_add_epi32(_mm256_sub_epi32(q2, _mm256_set1_epi32(4)), _mm256_slli_epi32(hb, 2));
                    /* scalar: (d*sc)*q */
                    st_mul(y + 128 * h + 32 * j + r, q, _mm256_set1_ps(d * (float)sc));
                }
    }
}

/* Q4_K (qh NULL) and Q5_K. */
AVX2_INLINE void dq_k45(const uint8_t *b, const uint8_t *qh, const uint8_t *qs, float *y)
{
    float d = h2f(b), dmin = h2f(b + 2);
    for (int s = 0; s < 8; s++) {
        int sc, m;
        llv_k4_scale_min(b + 4, s, &sc, &m);
        __m256 ds = _mm256_set1_ps(d * (float)sc), ms = _mm256_set1_ps(dmin * (float)m);
        int c = s / 2, hi = s & 1;
        for (int l = 0; l < 32; l += 8) {
            __m256i q = bits(u8x8(qs + 32 * c + l), 4 * hi, 15);
            if (qh)
                q = _mm256_or_si256(q, _mm256_slli_epi32(bits(u8x8(qh + l), s, 1), 4));
            /* scalar: ds*q - ms */
            _mm256_storeu_ps(y + 32 * s + l, _mm256_sub_ps(_mm256_mul_ps(ds, _mm256_cvtepi32_ps(q)), ms));
        }
    }
}

static AVX2 void dq_row_q4_k(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 144, y += 256)
        dq_k45(b, NULL, b + 16, y);
}
static AVX2 void dq_row_q5_k(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 176, y += 256)
        dq_k45(b, b + 16, b + 48, y);
}

static AVX2 void dq_row_q6_k(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 210, y += 256) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *scales = (const int8_t *)(b + 192);
        float d = h2f(b + 208);
        for (int h = 0; h < 2; h++)
            for (int g = 0; g < 4; g++)
                for (int l = 0; l < 32; l += 8) {
                    __m256i nib = bits(u8x8(ql + 64 * h + l + 32 * (g & 1)), g < 2 ? 0 : 4, 15);
                    __m256i hi = bits(u8x8(qh + 32 * h + l), 2 * g, 3);
                    __m256i q = _mm256_sub_epi32(_mm256_or_si256(nib, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32));
                    /* scalar: d*sc*q evaluated as (d*sc)*q */
                    __m256 ds = _mm256_set1_ps(d * (float)scales[8 * h + l / 16 + 2 * g]);
                    st_mul(y + 128 * h + 32 * g + l, q, ds);
                }
    }
}

static AVX2 void avx2_to_f32(int type, const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    int64_t i = 0;
    switch (type) {
    case LLV_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    case LLV_TYPE_F16: {
        const uint16_t *h = src;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, load_f16(h + i));
        for (; i < n; i++)
            dst[i] = _cvtsh_ss(h[i]);
        return;
    }
    case LLV_TYPE_BF16: {
        const uint16_t *h = src;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, load_bf16(h + i));
        for (; i < n; i++)
            dst[i] = llv_bf16_to_fp32(h[i]);
        return;
    }
    case LLV_TYPE_Q4_0: dq_row_q4_0(p, dst, n / 32); return;
    case LLV_TYPE_Q4_1: dq_row_q4_1(p, dst, n / 32); return;
    case LLV_TYPE_Q5_0: dq_row_q5_0(p, dst, n / 32); return;
    case LLV_TYPE_Q5_1: dq_row_q5_1(p, dst, n / 32); return;
    case LLV_TYPE_Q8_0: dq_row_q8_0(p, dst, n / 32); return;
    case LLV_TYPE_Q2_K: dq_row_q2_k(p, dst, n / 256); return;
    case LLV_TYPE_Q3_K: dq_row_q3_k(p, dst, n / 256); return;
    case LLV_TYPE_Q4_K: dq_row_q4_k(p, dst, n / 256); return;
    case LLV_TYPE_Q5_K: dq_row_q5_k(p, dst, n / 256); return;
    case LLV_TYPE_Q6_K: dq_row_q6_k(p, dst, n / 256); return;
    case LLV_TYPE_Q8_K: dq_row_q8_k(p, dst, n / 256); return;
    default:
        llv_dequantize_row(type, src, dst, n);
        return;
    }
}

/* ---- GEMM ------------------------------------------------------------------ */

/* Packed strip: MR rows x 16 outputs in 2*MR accumulators (MR = 6: 12 +
 * 2 weight vectors + 1 broadcast = 15 registers); per k, 2 loads of the
 * packed weights, MR broadcasts of x, 2*MR FMAs. */
AVX2_INLINE void packed_m16(const float *x, int64_t ldx, const float *wp, int64_t ldw, int64_t kc, float *y,
                            int64_t ldy, int nr, const int MR)
{
    __m256 c0[LLV_GEMM_PMR], c1[LLV_GEMM_PMR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
        c0[i] = c1[i] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        __m256 w0 = _mm256_loadu_ps(wp + ldw * k), w1 = _mm256_loadu_ps(wp + ldw * k + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256 xb = _mm256_broadcast_ss(x + i * ldx + k);
            c0[i] = _mm256_fmadd_ps(xb, w0, c0[i]);
            c1[i] = _mm256_fmadd_ps(xb, w1, c1[i]);
        }
    }
    if (nr == 16) {
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            float *yi = y + i * ldy;
            _mm256_storeu_ps(yi, _mm256_add_ps(_mm256_loadu_ps(yi), c0[i]));
            _mm256_storeu_ps(yi + 8, _mm256_add_ps(_mm256_loadu_ps(yi + 8), c1[i]));
        }
    } else {
        float tmp[16];
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            _mm256_storeu_ps(tmp, c0[i]);
            _mm256_storeu_ps(tmp + 8, c1[i]);
            for (int j = 0; j < nr; j++)
                y[i * ldy + j] += tmp[j];
        }
    }
}

#define PACKED_FN(M) \
    static AVX2 void packed_##M(const float *x, int64_t ldx, const float *wp, int64_t ldw, int64_t kc, \
                                float *y, int64_t ldy, int nr) \
    { packed_m16(x, ldx, wp, ldw, kc, y, ldy, nr, M); }
PACKED_FN(1) PACKED_FN(2) PACKED_FN(3) PACKED_FN(4) PACKED_FN(5) PACKED_FN(6)

static AVX2 void avx2_gemm_packed(const float *x, int64_t ldx, int mr, const float *wp, int64_t ldw, int64_t kc,
                                  float *y, int64_t ldy, int nr)
{
    switch (mr) {
    case 1: packed_1(x, ldx, wp, ldw, kc, y, ldy, nr); break;
    case 2: packed_2(x, ldx, wp, ldw, kc, y, ldy, nr); break;
    case 3: packed_3(x, ldx, wp, ldw, kc, y, ldy, nr); break;
    case 4: packed_4(x, ldx, wp, ldw, kc, y, ldy, nr); break;
    case 5: packed_5(x, ldx, wp, ldw, kc, y, ldy, nr); break;
    case 6: packed_6(x, ldx, wp, ldw, kc, y, ldy, nr); break;
    default: break;
    }
}

/* Strip packing: 8 x 8 blocks transposed in registers (unpack, shuffle,
 * 128-bit permute); the k tail and the zero rows are written directly. */
AVX2_INLINE void transpose8_store(const float *src, int64_t lds, int rows, float *dst)
{
    __m256 r[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        r[i] = i < rows ? _mm256_loadu_ps(src + i * lds) : _mm256_setzero_ps();
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    const int64_t ld = LLV_GEMM_PNR;
    _mm256_storeu_ps(dst + 0 * ld, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + 1 * ld, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ld, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ld, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ld, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ld, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ld, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ld, _mm256_permute2f128_ps(u3, u7, 0x31));
}

static AVX2 void avx2_pack_strip(const float *src, int64_t lds, int nr, int64_t kc, float *dst)
{
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8)
        for (int j0 = 0; j0 < LLV_GEMM_PNR; j0 += 8) {
            float *d = dst + k * LLV_GEMM_PNR + j0;
            int rows = nr - j0;
            if (rows <= 0) {
                for (int i = 0; i < 8; i++)
                    _mm256_storeu_ps(d + i * LLV_GEMM_PNR, _mm256_setzero_ps());
            } else {
                transpose8_store(src + (int64_t)j0 * lds + k, lds, rows, d);
            }
        }
    for (; k < kc; k++)
        for (int j = 0; j < LLV_GEMM_PNR; j++)
            dst[k * LLV_GEMM_PNR + j] = j < nr ? src[j * lds + k] : 0.0f;
}

static const llv_kernel_ops ops_avx2 = {
    .isa = "avx2",
    .dot_f32 = avx2_dot_f32,
    .dot_f16 = avx2_dot_f16,
    .dot_bf16 = avx2_dot_bf16,
    .axpy_f32 = avx2_axpy_f32,
    .axpy_f16 = avx2_axpy_f16,
    .scale_f32 = avx2_scale_f32,
    .to_f32 = avx2_to_f32,
    .gemm_packed = avx2_gemm_packed,
    .pack_strip = avx2_pack_strip,
    .exp_f32 = avx2_exp_f32,
    .silu = avx2_silu,
    .quick_gelu = avx2_quick_gelu,
    .gelu_tanh = avx2_gelu_tanh,
    .swiglu = avx2_swiglu,
    .q8_partner = llv_avx2_q8_partner,
    .dot_q8 = llv_avx2_dot_q8,
    .quantize_q8 = llv_avx2_quantize_q8,
    .q8_side_bytes = llv_avx2_q8_side_bytes,
    .q8_side = llv_avx2_q8_side,
    .dot_q8_side = llv_avx2_dot_q8_side,
    .dot_q8_rows = llv_avx2_dot_q8_rows,
    .gemm_i8_has = llv_avx2_gemm_i8_has,
    .gemm_i8_pack = llv_avx2_gemm_i8_pack,
    .gemm_i8 = llv_avx2_gemm_i8,
};

const llv_kernel_ops *llv_kernel_ops_avx2(void) { return &ops_avx2; }

#else /* not x86 */

const llv_kernel_ops *llv_kernel_ops_avx2(void) { return NULL; }

#endif
