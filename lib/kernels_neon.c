/*
 * kernels_neon.c - the AArch64 Advanced SIMD (NEON) micro-kernels.
 *
 * Baseline ARMv8.0-A only (every 64-bit ARM phone): no dotprod/i8mm/fp16
 * arithmetic extensions, so no run-time feature check is needed beyond
 * being compiled for aarch64. F16 values are widened with FCVTL
 * (vcvt_f32_f16, base AArch64), BF16 with a 16-bit left shift.
 *
 * Integer block dots for the GEMV path (spec §2.1), every block type:
 * Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 against the activation row in Q8_0 (Q4_1/Q5_1 use
 * the block sum of the activation codes for their +m term), Q2_K..Q6_K
 * against Q8_K. int8 x int8 products with SMULL (8 x 16-bit products per
 * instruction) pairwise-added into int32 lanes (SADALP); all integer sums
 * are exact, each block adds d_w*d_x*sum_int to an f32 accumulator, the
 * same semantics as kernels_avx2_q8.c. The activation row is quantized by
 * llv_quantize_row (quantize_q8 = NULL: O(n) per token, not worth a copy).
 * Dequantization (to_f32, used by the GEMM driver once per panel) is NEON
 * for F16/BF16 and the scalar reference for block types.
 *
 * On other architectures the file compiles to a stub returning NULL.
 */
#include "kernels_impl.h"

/* The NEON table, or NULL when not compiled for aarch64 (picked by kernels.c). */
LLV_INTERNAL const llv_kernel_ops *llv_kernel_ops_neon(void);

#if defined(__aarch64__) && defined(__GNUC__) && !defined(LLV_DISABLE_SIMD) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__

#include <arm_neon.h>
#include <math.h>
#include <string.h>

#define NEON_INLINE static inline __attribute__((always_inline))

NEON_INLINE float h2f(const uint8_t *p)
{
    __fp16 h;
    memcpy(&h, p, 2);
    return (float)h;
}

/* 4 halves -> 4 floats. */
NEON_INLINE float32x4_t load_f16x4(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
NEON_INLINE float32x4_t load_bf16x4(const uint16_t *p)
{
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

/* ---- dots, axpy, scale ------------------------------------------------- */

static float neon_dot_f32(const float *a, const float *b, int64_t n)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static float neon_dot_f16(const uint16_t *a, const float *b, int64_t n)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, load_f16x4(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, load_f16x4(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, load_f16x4(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, load_f16x4(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vfmaq_f32(s0, load_f16x4(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++)
        s += llv_fp16_to_fp32(a[i]) * b[i];
    return s;
}

static float neon_dot_bf16(const uint16_t *a, const float *b, int64_t n)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, load_bf16x4(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, load_bf16x4(a + i + 4), vld1q_f32(b + i + 4));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vfmaq_f32(s0, load_bf16x4(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++)
        s += llv_bf16_to_fp32(a[i]) * b[i];
    return s;
}

static void neon_axpy_f32(float *y, float a, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static void neon_axpy_f16(float *y, float a, const uint16_t *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), load_f16x4(x + i), a));
    for (; i < n; i++)
        y[i] += a * llv_fp16_to_fp32(x[i]);
}

static void neon_scale_f32(float *y, float a, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), a));
    for (; i < n; i++)
        y[i] *= a;
}

/* ---- exp and activations ------------------------------------------------ */

/* e^x = 2^n e^r, n = round(x log2 e), r = x - n ln2 (two-part ln2), e^r by its
 * degree-7 Taylor polynomial on |r| <= ln2/2; 2^n built in two halves so
 * n = 128 does not overflow the exponent field. Below -87.3: 0, above 88.7:
 * +inf, NaN stays NaN (as expf). About 2 ulp. */
NEON_INLINE float32x4_t exp4(float32x4_t x)
{
    const float32x4_t lo = vdupq_n_f32(-87.3f), hi = vdupq_n_f32(88.7f);
    float32x4_t xc = vminq_f32(vmaxq_f32(x, lo), hi);
    float32x4_t n = vrndnq_f32(vmulq_n_f32(xc, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(xc, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.0f / 5040.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 720.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    int32x4_t ni = vcvtq_s32_f32(n);
    int32x4_t n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
    float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
    float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
    float32x4_t y = vmulq_f32(vmulq_f32(p, s1), s2);
    y = vbslq_f32(vcltq_f32(x, lo), vdupq_n_f32(0.0f), y);
    y = vbslq_f32(vcgtq_f32(x, hi), vdupq_n_f32(__builtin_inff()), y);
    return vbslq_f32(vceqq_f32(x, x), y, x); /* NaN lanes: x */
}

/* x * sigmoid(a x) = x / (1 + exp(-a x)). */
NEON_INLINE float32x4_t xsigmoid4(float32x4_t x, float a)
{
    return vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), exp4(vmulq_n_f32(x, -a))));
}

/* 0.5x(1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715x^3), tanh u = 1 - 2/(e^{2u}+1). */
NEON_INLINE float32x4_t gelu_tanh4(float32x4_t x)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    float32x4_t x3 = vmulq_f32(vmulq_f32(x, x), x);
    float32x4_t u = vmulq_n_f32(vfmaq_n_f32(x, x3, 0.044715f), 0.7978845608028654f);
    float32x4_t e = exp4(vaddq_f32(u, u));
    float32x4_t t = vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(e, one)));
    return vmulq_f32(vmulq_n_f32(x, 0.5f), vaddq_f32(one, t));
}

/* Apply a 4-lane function to x[0..n), the tail through a zero-padded buffer. */
#define ACT_LOOP(expr)                                                  \
    int64_t i = 0;                                                      \
    for (; i + 4 <= n; i += 4) {                                        \
        float32x4_t v = vld1q_f32(x + i);                               \
        vst1q_f32(x + i, expr);                                         \
    }                                                                   \
    if (i < n) {                                                        \
        float tmp[4] = {0};                                             \
        memcpy(tmp, x + i, (size_t)(n - i) * sizeof(float));            \
        float32x4_t v = vld1q_f32(tmp);                                 \
        vst1q_f32(tmp, expr);                                           \
        memcpy(x + i, tmp, (size_t)(n - i) * sizeof(float));            \
    }

static void neon_exp_f32(float *x, int64_t n) { ACT_LOOP(exp4(v)) }
static void neon_silu(float *x, int64_t n) { ACT_LOOP(xsigmoid4(v, 1.0f)) }
static void neon_quick_gelu(float *x, int64_t n) { ACT_LOOP(xsigmoid4(v, 1.702f)) }
static void neon_gelu_tanh(float *x, int64_t n) { ACT_LOOP(gelu_tanh4(v)) }

static void neon_swiglu(float *out, const float *gate, const float *up, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, vmulq_f32(xsigmoid4(vld1q_f32(gate + i), 1.0f), vld1q_f32(up + i)));
    for (; i < n; i++)
        out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* ---- dequantization ------------------------------------------------------- */
/* Float rows are widened with NEON; block types use the scalar reference
 * (the GEMV of the common block types goes through the integer dots below). */

static void neon_to_f32(int type, const void *src, float *dst, int64_t n)
{
    int64_t i = 0;
    switch (type) {
    case LLV_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    case LLV_TYPE_F16: {
        const uint16_t *h = src;
        for (; i + 4 <= n; i += 4)
            vst1q_f32(dst + i, load_f16x4(h + i));
        for (; i < n; i++)
            dst[i] = llv_fp16_to_fp32(h[i]);
        return;
    }
    case LLV_TYPE_BF16: {
        const uint16_t *h = src;
        for (; i + 4 <= n; i += 4)
            vst1q_f32(dst + i, load_bf16x4(h + i));
        for (; i < n; i++)
            dst[i] = llv_bf16_to_fp32(h[i]);
        return;
    }
    default:
        llv_dequantize_row(type, src, dst, n);
        return;
    }
}

/* ---- packed GEMM strip ------------------------------------------------------ */

/* MR rows x 16 outputs in 4*MR accumulators (MR = 6: 24 + 4 weight vectors =
 * 28 of the 32 vector registers); per k: 4 loads of packed weights, MR scalar
 * loads of x, 4*MR FMAs by lane. */
NEON_INLINE void packed_m16(const float *x, int64_t ldx, const float *wp, int64_t ldw, int64_t kc, float *y,
                            int64_t ldy, int nr, const int MR)
{
    float32x4_t c[LLV_GEMM_PMR][4];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
        c[i][0] = c[i][1] = c[i][2] = c[i][3] = vdupq_n_f32(0.0f);
    for (int64_t k = 0; k < kc; k++) {
        const float *wk = wp + ldw * k;
        float32x4_t w0 = vld1q_f32(wk), w1 = vld1q_f32(wk + 4), w2 = vld1q_f32(wk + 8), w3 = vld1q_f32(wk + 12);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            float xv = x[i * ldx + k];
            c[i][0] = vfmaq_n_f32(c[i][0], w0, xv);
            c[i][1] = vfmaq_n_f32(c[i][1], w1, xv);
            c[i][2] = vfmaq_n_f32(c[i][2], w2, xv);
            c[i][3] = vfmaq_n_f32(c[i][3], w3, xv);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        float *yi = y + i * ldy;
        if (nr == 16) {
            for (int q = 0; q < 4; q++)
                vst1q_f32(yi + 4 * q, vaddq_f32(vld1q_f32(yi + 4 * q), c[i][q]));
        } else {
            float tmp[16];
            for (int q = 0; q < 4; q++)
                vst1q_f32(tmp + 4 * q, c[i][q]);
            for (int j = 0; j < nr; j++)
                yi[j] += tmp[j];
        }
    }
}

#define PACKED_FN(M)                                                                                        \
    static void packed_##M(const float *x, int64_t ldx, const float *wp, int64_t ldw, int64_t kc, float *y, \
                           int64_t ldy, int nr)                                                             \
    {                                                                                                       \
        packed_m16(x, ldx, wp, ldw, kc, y, ldy, nr, M);                                                     \
    }
PACKED_FN(1) PACKED_FN(2) PACKED_FN(3) PACKED_FN(4) PACKED_FN(5) PACKED_FN(6)

static void neon_gemm_packed(const float *x, int64_t ldx, int mr, const float *wp, int64_t ldw, int64_t kc,
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

/* ---- integer block dots (GEMV path) ------------------------------------------- */

/* 4 int32 partial sums of w[16] . x[16] (int8, exact). */
NEON_INLINE int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t x)
{
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(x)));
    return vpadalq_s16(acc, vmull_high_s8(w, x));
}

/* Q8_0 block: d f16 @0, qs int8[32] @2 (34 bytes). */
static float dot_q8_0_q8_0(const uint8_t *w, const uint8_t *x, int64_t nb)
{
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < nb; i++, w += 34, x += 34) {
        int32x4_t p = vdupq_n_s32(0);
        p = dot16(p, vld1q_s8((const int8_t *)(w + 2)), vld1q_s8((const int8_t *)(x + 2)));
        p = dot16(p, vld1q_s8((const int8_t *)(w + 18)), vld1q_s8((const int8_t *)(x + 18)));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), h2f(w) * h2f(x));
    }
    return vaddvq_f32(acc);
}

/* Q4_0 block: d f16 @0, qs[16] @2: value j < 16 is (qs[j] & 15) - 8, value
 * j + 16 is (qs[j] >> 4) - 8 (18 bytes). */
static float dot_q4_0_q8_0(const uint8_t *w, const uint8_t *x, int64_t nb)
{
    float32x4_t acc = vdupq_n_f32(0.0f);
    const uint8x16_t m4 = vdupq_n_u8(15);
    const int8x16_t eight = vdupq_n_s8(8);
    for (int64_t i = 0; i < nb; i++, w += 18, x += 34) {
        uint8x16_t b = vld1q_u8(w + 2);
        int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(b, m4)), eight);
        int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), eight);
        int32x4_t p = vdupq_n_s32(0);
        p = dot16(p, lo, vld1q_s8((const int8_t *)(x + 2)));
        p = dot16(p, hi, vld1q_s8((const int8_t *)(x + 18)));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), h2f(w) * h2f(x));
    }
    return vaddvq_f32(acc);
}

/* The eight 6-bit scales (out[0..7]) and mins (out[8..15]) of a Q4_K block
 * from its 12 packed bytes (spec §2: get_scale_min_k4 for every j). */
NEON_INLINE void k4_scales(const uint8_t *S, uint8_t out[16])
{
    for (int j = 0; j < 4; j++) {
        out[j] = S[j] & 63;
        out[8 + j] = S[j + 4] & 63;
        out[4 + j] = (uint8_t)((S[j + 8] & 15) | ((S[j] >> 6) << 4));
        out[12 + j] = (uint8_t)((S[j + 8] >> 4) | ((S[j + 4] >> 6) << 4));
    }
}

/* Sum of the 16 int8 of x (exact in int16). */
NEON_INLINE int sum16(int8x16_t x) { return vaddlvq_s8(x); }

/* 0x10 in byte j where bit j of the little-endian u32 at qh is set (j < 32),
 * as two 16-byte vectors: the fifth bit of Q5_0/Q5_1 values. */
NEON_INLINE void q5_high(const uint8_t *qh, uint8x16_t *lo, uint8x16_t *hi)
{
    static const uint8_t bit[16] = { 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128 };
    const uint8x16_t bits = vld1q_u8(bit), b16 = vdupq_n_u8(16);
    uint8x16_t v0 = vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1]));
    uint8x16_t v1 = vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3]));
    *lo = vandq_u8(vtstq_u8(v0, bits), b16);
    *hi = vandq_u8(vtstq_u8(v1, bits), b16);
}

/* Q5_0 block (22 bytes): d f16 @0, qh u32 @2, qs[16] @6; value j < 16 is
 * (qs[j] & 15 | bit j of qh << 4) - 16, value j + 16 uses the high nibble and bit j + 16. */
static float dot_q5_0_q8_0(const uint8_t *w, const uint8_t *x, int64_t nb)
{
    float32x4_t acc = vdupq_n_f32(0.0f);
    const uint8x16_t m4 = vdupq_n_u8(15);
    const int8x16_t s16 = vdupq_n_s8(16);
    for (int64_t i = 0; i < nb; i++, w += 22, x += 34) {
        uint8x16_t h0, h1, b = vld1q_u8(w + 6);
        q5_high(w + 2, &h0, &h1);
        int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(b, m4), h0)), s16);
        int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(b, 4), h1)), s16);
        int32x4_t p = dot16(vdupq_n_s32(0), lo, vld1q_s8((const int8_t *)(x + 2)));
        p = dot16(p, hi, vld1q_s8((const int8_t *)(x + 18)));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), h2f(w) * h2f(x));
    }
    return vaddvq_f32(acc);
}

/* Q4_1 (20 bytes: d @0, m @2, qs @4) / Q5_1 (24 bytes: d @0, m @2, qh @4,
 * qs @8) vs Q8_0: y = d*q + m, so sum = d*dx*sum(q*xq) + m*dx*sum(xq). */
NEON_INLINE float dot_q41_q51(const uint8_t *w, const uint8_t *x, int64_t nb, int five)
{
    float acc = 0.0f;
    const uint8x16_t m4 = vdupq_n_u8(15);
    const size_t wsize = five ? 24 : 20;
    for (int64_t i = 0; i < nb; i++, w += wsize, x += 34) {
        uint8x16_t b = vld1q_u8(w + (five ? 8 : 4));
        uint8x16_t lo = vandq_u8(b, m4), hi = vshrq_n_u8(b, 4);
        if (five) {
            uint8x16_t h0, h1;
            q5_high(w + 4, &h0, &h1);
            lo = vorrq_u8(lo, h0);
            hi = vorrq_u8(hi, h1);
        }
        int8x16_t x0 = vld1q_s8((const int8_t *)(x + 2)), x1 = vld1q_s8((const int8_t *)(x + 18));
        int32x4_t p = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(lo), x0);
        p = dot16(p, vreinterpretq_s8_u8(hi), x1);
        float dx = h2f(x);
        acc += h2f(w) * dx * (float)vaddvq_s32(p) + h2f(w + 2) * dx * (float)(sum16(x0) + sum16(x1));
    }
    return acc;
}

static float dot_q4_1_q8_0(const uint8_t *w, const uint8_t *x, int64_t nb) { return dot_q41_q51(w, x, nb, 0); }
static float dot_q5_1_q8_0(const uint8_t *w, const uint8_t *x, int64_t nb) { return dot_q41_q51(w, x, nb, 1); }

/* Q4_K block (144 bytes): d f16 @0, dmin f16 @2, scales[12] @4, qs[128] @16;
 * 32-byte run c holds sub-block 2c in the low nibbles and 2c+1 in the high.
 * Q5_K (176 bytes) adds qh[32] @16 (qs @48): bit s of qh[l] is bit 4 of
 * sub-block s's value l.
 * Q8_K block (292 bytes): d f32 @0, qs int8[256] @4, bsums int16[16] @260.
 * sum = d*d8*sum_s sc_s*sum(q*q8) - dmin*d8*sum_s m_s*(bsum_2s + bsum_2s+1). */
NEON_INLINE float dot_k45(const uint8_t *w, const uint8_t *x, int64_t nb, int five)
{
    float acc = 0.0f;
    const uint8x16_t m4 = vdupq_n_u8(15), one = vdupq_n_u8(1);
    const size_t wsize = five ? 176 : 144;
    for (int64_t i = 0; i < nb; i++, w += wsize, x += 292) {
        uint8_t sm[16];
        k4_scales(w + 4, sm);
        const uint8_t *qs = w + (five ? 48 : 16);
        const int8_t *xq = (const int8_t *)(x + 4);
        uint8x16_t qh0 = vdupq_n_u8(0), qh1 = qh0;
        if (five) {
            qh0 = vld1q_u8(w + 16);
            qh1 = vld1q_u8(w + 32);
        }
        int32_t isum = 0;
        for (int c = 0; c < 4; c++) {
            uint8x16_t b0 = vld1q_u8(qs + 32 * c), b1 = vld1q_u8(qs + 32 * c + 16);
            uint8x16_t l0 = vandq_u8(b0, m4), l1 = vandq_u8(b1, m4);
            uint8x16_t u0 = vshrq_n_u8(b0, 4), u1 = vshrq_n_u8(b1, 4);
            if (five) {
                const int8x16_t sl = vdupq_n_s8((int8_t)(-2 * c)), su = vdupq_n_s8((int8_t)(-2 * c - 1));
                l0 = vorrq_u8(l0, vshlq_n_u8(vandq_u8(vshlq_u8(qh0, sl), one), 4));
                l1 = vorrq_u8(l1, vshlq_n_u8(vandq_u8(vshlq_u8(qh1, sl), one), 4));
                u0 = vorrq_u8(u0, vshlq_n_u8(vandq_u8(vshlq_u8(qh0, su), one), 4));
                u1 = vorrq_u8(u1, vshlq_n_u8(vandq_u8(vshlq_u8(qh1, su), one), 4));
            }
            int32x4_t plo = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(l0), vld1q_s8(xq + 64 * c));
            plo = dot16(plo, vreinterpretq_s8_u8(l1), vld1q_s8(xq + 64 * c + 16));
            int32x4_t phi = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(u0), vld1q_s8(xq + 64 * c + 32));
            phi = dot16(phi, vreinterpretq_s8_u8(u1), vld1q_s8(xq + 64 * c + 48));
            isum += sm[2 * c] * vaddvq_s32(plo) + sm[2 * c + 1] * vaddvq_s32(phi);
        }
        /* mins against the pairwise bsums: 8 int16 pair sums (|.| <= 2*16*128) */
        int16x8_t b0 = vld1q_s16((const int16_t *)(x + 260)), b1 = vld1q_s16((const int16_t *)(x + 276));
        int16x8_t pairs = vpaddq_s16(b0, b1);
        int16x8_t mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(sm + 8)));
        int32x4_t mp = vmull_s16(vget_low_s16(mins), vget_low_s16(pairs));
        mp = vmlal_high_s16(mp, mins, pairs);
        int32_t msum = vaddvq_s32(mp);
        float d8;
        memcpy(&d8, x, 4);
        acc += h2f(w) * d8 * (float)isum - h2f(w + 2) * d8 * (float)msum;
    }
    return acc;
}

static float dot_q4_k_q8_k(const uint8_t *w, const uint8_t *x, int64_t nb) { return dot_k45(w, x, nb, 0); }
static float dot_q5_k_q8_k(const uint8_t *w, const uint8_t *x, int64_t nb) { return dot_k45(w, x, nb, 1); }

/* Q6_K block (210 bytes): ql[128] @0, qh[64] @128, int8 scales[16] @192, d f16 @208.
 * Value 128h + 32g + l: nibble of ql[64h + l + 32(g&1)] (low for g < 2), two
 * high bits (qh[32h + l] >> 2g) & 3, minus 32; scale scales[8h + 2g + (l >= 16)]. */
static float dot_q6_k_q8_k(const uint8_t *w, const uint8_t *x, int64_t nb)
{
    float acc = 0.0f;
    const uint8x16_t m4 = vdupq_n_u8(15), m2 = vdupq_n_u8(3);
    const int8x16_t s32 = vdupq_n_s8(32);
    for (int64_t i = 0; i < nb; i++, w += 210, x += 292) {
        const int8_t *sc = (const int8_t *)(w + 192), *xq = (const int8_t *)(x + 4);
        int32_t isum = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w + 64 * h, *qh = w + 128 + 32 * h;
            uint8x16_t hb[2] = { vld1q_u8(qh), vld1q_u8(qh + 16) };
            uint8x16_t lq[2][2] = { { vld1q_u8(ql), vld1q_u8(ql + 16) }, { vld1q_u8(ql + 32), vld1q_u8(ql + 48) } };
            for (int g = 0; g < 4; g++) {
                const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * g));
                for (int half = 0; half < 2; half++) {
                    uint8x16_t src = lq[g & 1][half];
                    uint8x16_t nib = g < 2 ? vandq_u8(src, m4) : vshrq_n_u8(src, 4);
                    uint8x16_t hi = vandq_u8(vshlq_u8(hb[half], sh), m2);
                    int8x16_t q = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(nib, vshlq_n_u8(hi, 4))), s32);
                    int32x4_t p = dot16(vdupq_n_s32(0), q, vld1q_s8(xq + 128 * h + 32 * g + 16 * half));
                    isum += sc[8 * h + 2 * g + half] * vaddvq_s32(p);
                }
            }
        }
        float d8;
        memcpy(&d8, x, 4);
        acc += h2f(w + 208) * d8 * (float)isum;
    }
    return acc;
}

/* Q2_K block (84 bytes): scales[16] @0 (low nibble scale, high nibble min),
 * qs[64] @16, d f16 @80, dmin f16 @82. Value 128h + 32j + r is
 * (qs[32h + r] >> 2j) & 3 in group g = 8h + 2j + (r >= 16):
 * sum = d*d8*sum_g sc_g*sum(q*q8) - dmin*d8*sum_g m_g*bsum_g. */
static float dot_q2_k_q8_k(const uint8_t *w, const uint8_t *x, int64_t nb)
{
    float acc = 0.0f;
    const uint8x16_t m2 = vdupq_n_u8(3);
    for (int64_t i = 0; i < nb; i++, w += 84, x += 292) {
        const uint8_t *sc = w;
        const int8_t *xq = (const int8_t *)(x + 4);
        int32_t isum = 0, msum = 0;
        for (int h = 0; h < 2; h++) {
            uint8x16_t b[2] = { vld1q_u8(w + 16 + 32 * h), vld1q_u8(w + 16 + 32 * h + 16) };
            for (int j = 0; j < 4; j++) {
                const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * j));
                for (int half = 0; half < 2; half++) {
                    int8x16_t q = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(b[half], sh), m2));
                    int32x4_t p = dot16(vdupq_n_s32(0), q, vld1q_s8(xq + 128 * h + 32 * j + 16 * half));
                    isum += (sc[8 * h + 2 * j + half] & 15) * vaddvq_s32(p);
                }
            }
        }
        for (int g = 0; g < 16; g++) {
            int16_t bs;
            memcpy(&bs, x + 260 + 2 * g, 2);
            msum += (sc[g] >> 4) * bs;
        }
        float d8;
        memcpy(&d8, x, 4);
        acc += h2f(w + 80) * d8 * (float)isum - h2f(w + 82) * d8 * (float)msum;
    }
    return acc;
}

/* Q3_K block (110 bytes): hmask[32] @0, qs[64] @32, scales[12] @96, d f16 @108.
 * Value 128h + 32j + r: q = ((qs[32h + r] >> 2j) & 3 | hbit << 2) - 4 with
 * hbit = (hmask[r] >> (4h + j)) & 1, signed 6-bit scale of group 8h + 2j + (r >= 16). */
static float dot_q3_k_q8_k(const uint8_t *w, const uint8_t *x, int64_t nb)
{
    float acc = 0.0f;
    const uint8x16_t m2 = vdupq_n_u8(3), one = vdupq_n_u8(1);
    const int8x16_t four = vdupq_n_s8(4);
    for (int64_t i = 0; i < nb; i++, w += 110, x += 292) {
        const uint8_t *S = w + 96;
        const int8_t *xq = (const int8_t *)(x + 4);
        int sc[16];
        for (int k = 0; k < 16; k++) {
            int low = k < 8 ? S[k] & 15 : S[k - 8] >> 4;
            int high = (S[8 + (k % 4)] >> (2 * (k / 4))) & 3;
            sc[k] = (low | high << 4) - 32;
        }
        uint8x16_t hm[2] = { vld1q_u8(w), vld1q_u8(w + 16) };
        int32_t isum = 0;
        for (int h = 0; h < 2; h++) {
            uint8x16_t b[2] = { vld1q_u8(w + 32 + 32 * h), vld1q_u8(w + 32 + 32 * h + 16) };
            for (int j = 0; j < 4; j++) {
                const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * j)), shh = vdupq_n_s8((int8_t)(-(4 * h + j)));
                for (int half = 0; half < 2; half++) {
                    uint8x16_t q2 = vandq_u8(vshlq_u8(b[half], sh), m2);
                    uint8x16_t hb = vandq_u8(vshlq_u8(hm[half], shh), one);
                    int8x16_t q = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(q2, vshlq_n_u8(hb, 2))), four);
                    int32x4_t p = dot16(vdupq_n_s32(0), q, vld1q_s8(xq + 128 * h + 32 * j + 16 * half));
                    isum += sc[8 * h + 2 * j + half] * vaddvq_s32(p);
                }
            }
        }
        float d8;
        memcpy(&d8, x, 4);
        acc += h2f(w + 108) * d8 * (float)isum;
    }
    return acc;
}

/* Every block type has an integer dot here; others: matmul dequantizes to f32. */
static int neon_q8_partner(int type) { return llv_vec_dot_type(type); }

static float neon_dot_q8(int type, const void *w, const void *xq, int64_t n)
{
    switch (type) {
    case LLV_TYPE_Q4_0: return dot_q4_0_q8_0(w, xq, n / 32);
    case LLV_TYPE_Q4_1: return dot_q4_1_q8_0(w, xq, n / 32);
    case LLV_TYPE_Q5_0: return dot_q5_0_q8_0(w, xq, n / 32);
    case LLV_TYPE_Q5_1: return dot_q5_1_q8_0(w, xq, n / 32);
    case LLV_TYPE_Q8_0: return dot_q8_0_q8_0(w, xq, n / 32);
    case LLV_TYPE_Q2_K: return dot_q2_k_q8_k(w, xq, n / 256);
    case LLV_TYPE_Q3_K: return dot_q3_k_q8_k(w, xq, n / 256);
    case LLV_TYPE_Q4_K: return dot_q4_k_q8_k(w, xq, n / 256);
    case LLV_TYPE_Q5_K: return dot_q5_k_q8_k(w, xq, n / 256);
    case LLV_TYPE_Q6_K: return dot_q6_k_q8_k(w, xq, n / 256);
    default: return 0.0f;
    }
}

static const llv_kernel_ops ops_neon = {
    .isa = "neon",
    .dot_f32 = neon_dot_f32,
    .dot_f16 = neon_dot_f16,
    .dot_bf16 = neon_dot_bf16,
    .axpy_f32 = neon_axpy_f32,
    .axpy_f16 = neon_axpy_f16,
    .scale_f32 = neon_scale_f32,
    .to_f32 = neon_to_f32,
    .gemm_packed = neon_gemm_packed,
    .exp_f32 = neon_exp_f32,
    .silu = neon_silu,
    .quick_gelu = neon_quick_gelu,
    .gelu_tanh = neon_gelu_tanh,
    .swiglu = neon_swiglu,
    .q8_partner = neon_q8_partner,
    .dot_q8 = neon_dot_q8,
    .quantize_q8 = NULL, /* matmul calls llv_quantize_row */
};

const llv_kernel_ops *llv_kernel_ops_neon(void) { return &ops_neon; }

#else /* not little-endian aarch64 */

const llv_kernel_ops *llv_kernel_ops_neon(void) { return NULL; }

#endif
