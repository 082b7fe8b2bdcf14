/*
 * kernels_avx2_inline.h - small AVX2 helpers shared by the AVX2 kernel files
 * (kernels_avx2.c, kernels_avx2_q8.c, kernels_avx2_gemm_i8.c). Include after
 * <immintrin.h> and <string.h>, inside #if LLV_HAVE_X86_SIMD. Each file keeps
 * its own AVX2 attribute macro (kernels_avx2_q8.c aligns its functions).
 */
#ifndef LLAVA_KERNELS_AVX2_INLINE_H
#define LLAVA_KERNELS_AVX2_INLINE_H

#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/* The fp16 at p (any alignment) as a float. */
AVX2_INLINE float h2f(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* Sum of 8 lanes as (l0+l4 + l2+l6) + (l1+l5 + l3+l7). */
AVX2_INLINE float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif
