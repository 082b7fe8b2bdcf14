/*
 * kernels_avx2_gemm_q8.c - AVX2 integer GEMM tiles for prefill: up to
 * LLV_Q8_TILE_R weight rows (Q4_K) times up to LLV_Q8_TILE_C activation rows
 * quantized to Q8_K, in one pass over K.
 *
 *   y[c*ldy + r] = sum_k w_r[k] * xq_c[k],  w_r = w + r*wrb, xq_c = xq + c*xrb
 *
 * Same integer math as the block dots of kernels_avx2_q8.c (exact int32
 * sums), but each weight block is loaded, unpacked and its scales decoded
 * once for all activation rows of the tile. Per (weight row, activation row,
 * 32 values) the work is maddubs + madd (by the sub-block scale) + add; the
 * f32 scaling happens once per 256 values.
 *
 * Measured (1 thread, 2048 x 5632, 128 rows): Q4_K 87 GFLOP/s vs 72 for
 * dequantize + f32 GEMM. The same tiling for Q4_0/Q8_0 (per-32 f32 scales:
 * sign + maddubs + madd + cvt + mul + fma per 32 values) reached only 58 and
 * 67 GFLOP/s on this AVX2-only machine, below the f32 path, so those types
 * stay on it (AVX-VNNI / AVX-512 VNNI would change that).
 */
#include "kernels_impl.h"

#if LLV_HAVE_X86_SIMD

#include <immintrin.h>
#include <string.h>

#include "kernels_avx2_inline.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2_INLINE float hsum128(__m128 s)
{
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- Q4_K weights vs Q8_K activations ------------------------------------ */

/* Scales (bytes 0-7) and mins (8-15) of a Q4_K block from its 12 packed bytes. */
AVX2_INLINE void k4_scales(const uint8_t *S, uint8_t out[16])
{
    uint32_t u[3], r[4];
    memcpy(u, S, 12);
    r[0] = u[0] & 0x3f3f3f3fu;
    r[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    r[2] = u[1] & 0x3f3f3f3fu;
    r[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    memcpy(out, r, 16);
}

/* Per 256-block and pair: d*d8*sum_s sc_s*sum(q*q8) - dmin*d8*sum_s m_s*bsum_s,
 * the first in 8 int32 lanes per pair, the second in 4. */
AVX2_INLINE void tile_q4_k(const uint8_t *w, size_t wrb, const uint8_t *x, size_t xrb, int64_t nb, float *y,
                           int64_t ldy, const int RM, const int RN)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256 acc[LLV_Q8_TILE_R][LLV_Q8_TILE_C];
    __m128 macc[LLV_Q8_TILE_R][LLV_Q8_TILE_C];
    #pragma GCC unroll 4
    for (int r = 0; r < RM; r++)
        #pragma GCC unroll 4
        for (int c = 0; c < RN; c++) {
            acc[r][c] = _mm256_setzero_ps();
            macc[r][c] = _mm_setzero_ps();
        }
    for (int64_t b = 0; b < nb; b++) {
        __m128i bs[LLV_Q8_TILE_C]; /* the eight 32-value sums of the activation codes */
        float d8[LLV_Q8_TILE_C];
        #pragma GCC unroll 4
        for (int c = 0; c < RN; c++) {
            const uint8_t *xb = x + c * xrb + (size_t)b * 292;
            memcpy(&d8[c], xb, 4);
            bs[c] = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)(xb + 260)),
                                   _mm_loadu_si128((const __m128i *)(xb + 276)));
        }
        #pragma GCC unroll 4
        for (int r = 0; r < RM; r++) {
            const uint8_t *wb = w + r * wrb + (size_t)b * 144;
            uint8_t sm[16];
            k4_scales(wb + 4, sm);
            __m256i isum[LLV_Q8_TILE_C];
            #pragma GCC unroll 4
            for (int c = 0; c < RN; c++)
                isum[c] = _mm256_setzero_si256();
            #pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m256i bq = _mm256_loadu_si256((const __m256i *)(wb + 16 + 32 * j));
                __m256i lo = _mm256_and_si256(bq, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bq, 4), m4);
                __m256i slo = _mm256_set1_epi16((short)sm[2 * j]), shi = _mm256_set1_epi16((short)sm[2 * j + 1]);
                #pragma GCC unroll 4
                for (int c = 0; c < RN; c++) {
                    const uint8_t *xq = x + c * xrb + (size_t)b * 292 + 4 + 64 * j;
                    __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)xq));
                    __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(xq + 32)));
                    isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_madd_epi16(plo, slo),
                                                                          _mm256_madd_epi16(phi, shi)));
                }
            }
            const __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8)));
            const float d = h2f(wb), dmin = h2f(wb + 2);
            #pragma GCC unroll 4
            for (int c = 0; c < RN; c++) {
                acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_set1_ps(d * d8[c]), acc[r][c]);
                macc[r][c] = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_madd_epi16(mins, bs[c])), _mm_set1_ps(dmin * d8[c]),
                                          macc[r][c]);
            }
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < RM; r++)
        #pragma GCC unroll 4
        for (int c = 0; c < RN; c++)
            y[c * ldy + r] = hsum(acc[r][c]) - hsum128(macc[r][c]);
}

/* ---- instantiation and dispatch ------------------------------------------ */

#define TILE_FNS(R, C)                                                                                      \
    static AVX2 void q4_k_##R##x##C(const uint8_t *w, size_t wrb, const uint8_t *x, size_t xrb,             \
                                    int64_t nb, float *y, int64_t ldy)                                      \
    { tile_q4_k(w, wrb, x, xrb, nb, y, ldy, R, C); }

TILE_FNS(1, 1) TILE_FNS(1, 2) TILE_FNS(1, 3) TILE_FNS(1, 4)
TILE_FNS(2, 1) TILE_FNS(2, 2) TILE_FNS(2, 3) TILE_FNS(2, 4)
TILE_FNS(3, 1) TILE_FNS(3, 2) TILE_FNS(3, 3) TILE_FNS(3, 4)
TILE_FNS(4, 1) TILE_FNS(4, 2) TILE_FNS(4, 3) TILE_FNS(4, 4)

typedef void (*tile_fn)(const uint8_t *, size_t, const uint8_t *, size_t, int64_t, float *, int64_t);

#define ROW_OF(T) { { T##_1x1, T##_1x2, T##_1x3, T##_1x4 }, { T##_2x1, T##_2x2, T##_2x3, T##_2x4 }, \
                    { T##_3x1, T##_3x2, T##_3x3, T##_3x4 }, { T##_4x1, T##_4x2, T##_4x3, T##_4x4 } }
static const tile_fn tiles_q4_k[4][4] = ROW_OF(q4_k);

bool llv_avx2_gemm_q8_has(int type)
{
    return type == LLV_TYPE_Q4_K;
}

void llv_avx2_gemm_q8(int type, const void *w, size_t wrb, int nr, const void *xq, size_t xrb, int nc, int64_t n,
                      float *y, int64_t ldy)
{
    if (nr < 1 || nc < 1 || nr > LLV_Q8_TILE_R || nc > LLV_Q8_TILE_C)
        return;
    switch (type) {
    case LLV_TYPE_Q4_K: tiles_q4_k[nr - 1][nc - 1](w, wrb, xq, xrb, n / 256, y, ldy); break;
    default: break;
    }
}

#else /* not x86 */

typedef int llv_no_avx2_gemm_q8;

#endif
