/*
 * kernels_avx2_q8.c - AVX2 integer block dots for the GEMV path: a weight
 * row (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 / Q2_K..Q6_K) against an activation row
 * quantized to Q8_0 / Q8_K (spec §2.1; Q4_1/Q5_1 use Q8_0 plus the block sum
 * of the activation codes for their +m term, where llama.cpp uses Q8_1). Integer sums are exact; each block adds
 * d_w*d_x*sum_int to an f32 accumulator.
 *
 * Byte products use vpmaddubsw (unsigned x signed -> pairwise int16 sums):
 *  - Q8_0, Q5_0: signed weights, so |w| x sign(x, w) (the usual sign trick);
 *  - Q4_0: the unsigned codes, minus 8 * the activation sums (see below);
 *  - K types: the unsigned codes (0..15, 0..31, 0..63) directly, with the
 *    offsets (Q4_K/Q5_K min, Q6_K's -32) applied through the Q8_K bsums.
 * Largest int16 pair sum: 2*63*128 = 16128 (Q6_K), no saturation.
 */
#include "kernels_impl.h"

#if LLV_HAVE_X86_SIMD

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels_avx2_inline.h"

/* Software prefetch distance (bytes ahead in the weight row, which runs on
 * into the next rows: a GEMV reads rows in order). The hardware prefetcher
 * alone left a single-threaded Q4_0 GEMV from DRAM at ~11-13 GB/s; ~4 KiB
 * ahead gave 14-15.5 (2-8 KiB alike; measured on the 2-core EPYC VM). */
#define Q8_PREFETCH 4096

/* 64-byte aligned: the block dots are single hot loops whose speed moved by
 * ~7% with their placement (Q4_K GEMV, measured). */
#define AVX2 __attribute__((target("avx2,fma,f16c"), aligned(64)))

AVX2_INLINE int hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* 8 int32 sums of signed w[32] . signed x[32]. */
AVX2_INLINE __m256i dot_s8(__m256i w, __m256i x)
{
    __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

AVX2_INLINE __m256 q8_0_block(const uint8_t *w, const uint8_t *x, __m256 acc)
{
    __m256i p = dot_s8(_mm256_loadu_si256((const __m256i *)(w + 2)), _mm256_loadu_si256((const __m256i *)(x + 2)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(w) * h2f(x)), acc);
}

/* Two accumulators (even/odd blocks) keep two FMA chains in flight. */
static AVX2 float dot_q8_0_q8_0(const uint8_t *w, const uint8_t *x, int64_t nb)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2, w += 68, x += 68) {
        _mm_prefetch((const char *)w + Q8_PREFETCH, _MM_HINT_T0);
        a0 = q8_0_block(w, x, a0);
        a1 = q8_0_block(w + 34, x + 34, a1);
    }
    if (i < nb)
        a0 = q8_0_block(w, x, a0);
    return hsum(_mm256_add_ps(a0, a1));
}

/* ---- Q4_0 (18-byte blocks: d f16 @0, 16 bytes of nibbles @2) ------------
 * Blocks go in pairs A = 2j, B = 2j+1. One register holds A's 16 code bytes
 * in its low half and B's in its high half: & 15 gives the low nibbles
 * (elements 0-15 of A | of B), >> 4 & 15 the high ones (elements 16-31).
 * The activation pair is arranged alike, xlo = [xA 0-15 | xB 0-15] and
 * xhi = [xA 16-31 | xB 16-31]; the two vpmaddubsw int16 results are added
 * (|sum| <= 2 * 2*15*127 = 7620, no saturation) and one vpmaddwd gives
 * int32 lane l < 4 = sum over A's elements 4l..4l+3 and 16+4l..16+4l+3,
 * lanes 4-7 the same for B. The codes stay unsigned (0..15):
 * sum (q-8)*x = sum q*x - 8*sum x, the 8*sum x lanes come with the
 * activation. Then one convert and one FMA per pair, with the scale
 * products [dwA*dxA x4 | dwB*dxB x4]; the four weight scales of two pairs
 * are gathered in a general register and converted at once.
 *
 * The arranged activation (q40_pair) depends only on the activation row:
 * the GEMV computes it once per token as side data (q8_side); dot_q8
 * arranges 64-block chunks on the stack and runs the same kernel, so both
 * give the same bits. An odd last block is a pair with a zero B (zero
 * codes, zero activation and scale: its lanes add exactly 0).
 * Accumulators: of each group of four blocks the first pair goes to a0,
 * the second to a1; a final pair to a0, a final single block to a1. */

typedef struct q40_pair {
    int8_t  lo[32], hi[32]; /* [xA 0-15 | xB 0-15], [xA 16-31 | xB 16-31] */
    int32_t s8[8];          /* 8 * the sums of the lanes' activation values */
} q40_pair;

/* Side data of a row of nb blocks: the activation scales as f32 (zero padded
 * to a multiple of 8), then (nb+1)/2 q40_pair. */
static size_t q40_side_bytes(int64_t nb)
{
    return (size_t)((nb + 7) / 8 * 8) * sizeof(float) + (size_t)((nb + 1) / 2) * sizeof(q40_pair);
}

static AVX2 void q40_arrange(const uint8_t *x, int64_t nb, float *d, q40_pair *pr)
{
    for (int64_t i = 0; i < (nb + 7) / 8 * 8; i++)
        d[i] = i < nb ? h2f(x + 34 * i) : 0.0f;
    const __m256i eight = _mm256_set1_epi8(8), ones = _mm256_set1_epi16(1);
    for (int64_t j = 0; 2 * j < nb; j++, pr++) {
        const uint8_t *xa = x + 68 * j;
        __m256i a = _mm256_loadu_si256((const __m256i *)(xa + 2));
        __m256i b = 2 * j + 1 < nb ? _mm256_loadu_si256((const __m256i *)(xa + 36)) : _mm256_setzero_si256();
        __m256i lo = _mm256_permute2x128_si256(a, b, 0x20), hi = _mm256_permute2x128_si256(a, b, 0x31);
        _mm256_storeu_si256((__m256i *)pr->lo, lo);
        _mm256_storeu_si256((__m256i *)pr->hi, hi);
        __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(eight, lo), _mm256_maddubs_epi16(eight, hi));
        _mm256_storeu_si256((__m256i *)pr->s8, _mm256_madd_epi16(s, ones));
    }
}

/* int32 lanes of a pair (wb NULL: a single block A). */
AVX2_INLINE __m256i q40_pair_int(const uint8_t *wa, const uint8_t *wb, const q40_pair *pr)
{
    __m128i a = _mm_loadu_si128((const __m128i *)(wa + 2));
    __m256i v = wb ? _mm256_inserti128_si256(_mm256_castsi128_si256(a), _mm_loadu_si128((const __m128i *)(wb + 2)), 1)
                   : _mm256_zextsi128_si256(a);
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)pr->lo)),
                                   _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)pr->hi)));
    return _mm256_sub_epi32(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)),
                            _mm256_loadu_si256((const __m256i *)pr->s8));
}

AVX2_INLINE uint64_t ld16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* The weight scales of k <= 4 consecutive blocks at w (stride 18) as f32
 * lanes 0..k-1 (zeros above). */
AVX2_INLINE __m128 q40_wscales(const uint8_t *w, int k)
{
    uint64_t h = ld16(w);
    if (k > 1) h |= ld16(w + 18) << 16;
    if (k > 2) h |= ld16(w + 36) << 32;
    if (k > 3) h |= ld16(w + 54) << 48;
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
}

/* [s[2p] x4 | s[2p+1] x4] */
AVX2_INLINE __m256 q40_spread(__m128 s, int p)
{
    const __m256i idx = p ? _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3) : _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(s), idx);
}

/* One weight row against an arranged activation: accumulates blocks
 * [0, nb) into *a0, *a1. */
AVX2_INLINE void q40_row(const uint8_t *w, const float *d, const q40_pair *pr, int64_t nb, __m256 *a0, __m256 *a1)
{
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4, pr += 2, w += 72) {
        _mm_prefetch((const char *)w + Q8_PREFETCH, _MM_HINT_T0);
        __m128 s = _mm_mul_ps(q40_wscales(w, 4), _mm_loadu_ps(d + i));
        *a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q40_pair_int(w, w + 18, pr)), q40_spread(s, 0), *a0);
        *a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q40_pair_int(w + 36, w + 54, pr + 1)), q40_spread(s, 1), *a1);
    }
    if (i + 2 <= nb) {
        __m128 s = _mm_mul_ps(q40_wscales(w, 2), _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(d + i))));
        *a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q40_pair_int(w, w + 18, pr)), q40_spread(s, 0), *a0);
        i += 2;
        pr++;
        w += 36;
    }
    if (i < nb) { /* d[i+1] is padding (0): the empty B half gets scale 0 */
        __m128 s = _mm_mul_ps(q40_wscales(w, 1), _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(d + i))));
        *a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q40_pair_int(w, NULL, pr)), q40_spread(s, 0), *a1);
    }
}

static AVX2 float dot_q4_0_side(const uint8_t *w, const void *side, int64_t nb)
{
    const float *d = side;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    q40_row(w, d, (const q40_pair *)(d + (nb + 7) / 8 * 8), nb, &a0, &a1);
    return hsum(_mm256_add_ps(a0, a1));
}

/* Without side data: arrange 64-block chunks on the stack (a multiple of 4
 * blocks, so the pairing and accumulators are those of the whole row). */
#define Q40_CHUNK 64
static AVX2 float dot_q4_0_q8_0(const uint8_t *w, const uint8_t *x, int64_t nb)
{
    float d[Q40_CHUNK] __attribute__((aligned(32)));
    q40_pair pr[Q40_CHUNK / 2] __attribute__((aligned(32)));
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (int64_t c = 0; c < nb; c += Q40_CHUNK) {
        int64_t nc = LLV_MIN(Q40_CHUNK, nb - c);
        q40_arrange(x + 34 * c, nc, d, pr);
        q40_row(w + 18 * c, d, pr, nc, &a0, &a1);
    }
    return hsum(_mm256_add_ps(a0, a1));
}

size_t llv_avx2_q8_side_bytes(int type, int64_t n)
{
    return type == LLV_TYPE_Q4_0 ? q40_side_bytes(n / 32) : 0;
}

void llv_avx2_q8_side(int type, const void *xq, int64_t n, void *side)
{
    if (type != LLV_TYPE_Q4_0)
        return;
    int64_t nb = n / 32;
    q40_arrange(xq, nb, side, (q40_pair *)((float *)side + (nb + 7) / 8 * 8));
}

float llv_avx2_dot_q8_side(int type, const void *w, const void *xq, const void *side, int64_t n)
{
    if (type == LLV_TYPE_Q4_0)
        return dot_q4_0_side(w, side, n / 32);
    return llv_avx2_dot_q8(type, w, xq, n);
}

/* Prefetch one line per 64 bytes from p on: called once per block of
 * `bytes` bytes, consecutive calls cover the whole row. */
AVX2_INLINE void prefetch_lines(const uint8_t *p, int bytes)
{
    for (int off = 0; off < bytes; off += 64)
        _mm_prefetch((const char *)p + off, _MM_HINT_T0);
}

/* Q8_K activation block: d f32 @0, qs[256] @4, bsums int16[16] @260. */
AVX2_INLINE float q8k_d(const uint8_t *x)
{
    float d;
    memcpy(&d, x, 4);
    return d;
}
AVX2_INLINE int bsum(const uint8_t *x, int g)
{
    int16_t v;
    memcpy(&v, x + 260 + 2 * g, 2);
    return v;
}

/* The eight 6-bit scales (bytes 0-7) and mins (bytes 8-15) of a Q4_K/Q5_K
 * block from its 12 packed bytes (get_scale_min_k4 for all j at once,
 * with 32-bit masks). */
AVX2_INLINE void k4_unpack_scales(const uint8_t *S, uint8_t out[16])
{
    uint32_t u[3], r[4];
    memcpy(u, S, 12);
    r[0] = u[0] & 0x3f3f3f3fu;                                         /* sc 0-3 */
    r[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);  /* sc 4-7 */
    r[2] = u[1] & 0x3f3f3f3fu;                                         /* m 0-3 */
    r[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4); /* m 4-7 */
    memcpy(out, r, 16);
}

/* vpshufb control: int16 word k of each 128-bit half into all 8 words of
 * that half (k a constant: the vector is a constant). */
AVX2_INLINE __m256i word_bcast(int k) { return _mm256_set1_epi16((short)(2 * k | (2 * k + 1) << 8)); }

/* Chunk c (values 64c..64c+63, sub-blocks 2c and 2c+1) of a Q4_K / Q5_K
 * block: codes . activations, times the sub-block scales (sc16 holds the
 * eight scales as int16 in both halves), added to isum. */
AVX2_INLINE __m256i k45_chunk(const uint8_t *qs, const uint8_t *qh, __m256i hbits, const uint8_t *xq, __m256i sc16,
                              const int c, __m256i isum)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256i b = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
    __m256i lo = _mm256_and_si256(b, m4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
    if (qh) {
        /* bit s of qh[l] is bit 4 of sub-block s's value at l */
        __m256i one = _mm256_set1_epi8(1);
        __m256i h_lo = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * c), one);
        __m256i h_hi = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * c + 1), one);
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(h_lo, 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(h_hi, 4));
    }
    __m256i p_lo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(xq + 64 * c)));
    __m256i p_hi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(xq + 64 * c + 32)));
    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p_lo, _mm256_shuffle_epi8(sc16, word_bcast(2 * c))));
    return _mm256_add_epi32(isum, _mm256_madd_epi16(p_hi, _mm256_shuffle_epi8(sc16, word_bcast(2 * c + 1))));
}

/* Q4_K (qh NULL) / Q5_K vs Q8_K: d*d8*sum_s sc_s*sum(q*q8) - dmin*d8*sum_s m_s*bsums_s.
 * The integer part accumulates in 8 lanes and is scaled into acc; the min
 * part, m_s times the bsum pairs in 4 lanes, is scaled into macc. */
AVX2_INLINE __m256 dot_k45_block(const uint8_t *w, const uint8_t *qh, const uint8_t *qs, const uint8_t *x,
                                 __m256 acc, __m128 *macc)
{
    const uint8_t *xq = x + 4;
    uint8_t sm[16];
    k4_unpack_scales(w + 4, sm);
    __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sm)));
    __m256i hbits = qh ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
    __m256i isum = k45_chunk(qs, qh, hbits, xq, sc16, 0, _mm256_setzero_si256());
    isum = k45_chunk(qs, qh, hbits, xq, sc16, 1, isum);
    isum = k45_chunk(qs, qh, hbits, xq, sc16, 2, isum);
    isum = k45_chunk(qs, qh, hbits, xq, sc16, 3, isum);
    /* [d*d8, dmin*d8] from the two f16 at w */
    uint32_t dd;
    memcpy(&dd, w, 4);
    __m128 dm = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)dd)), _mm_set1_ps(q8k_d(x)));
    __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8)));
    __m128i b0 = _mm_loadu_si128((const __m128i *)(x + 260)), b1 = _mm_loadu_si128((const __m128i *)(x + 276));
    __m128i pairs = _mm_hadd_epi16(b0, b1); /* |b| <= 16*127, pair sums fit int16 */
    *macc = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_madd_epi16(mins, pairs)), _mm_shuffle_ps(dm, dm, 0x55), *macc);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_broadcastss_ps(dm), acc);
}

AVX2_INLINE float hsum128(__m128 s)
{
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static AVX2 float dot_q4_k_q8_k(const uint8_t *w, const uint8_t *x, int64_t nb)
{
    __m256 acc = _mm256_setzero_ps();
    __m128 mins = _mm_setzero_ps();
    for (int64_t i = 0; i < nb; i++, w += 144, x += 292) {
        prefetch_lines(w + Q8_PREFETCH, 144);
        acc = dot_k45_block(w, NULL, w + 16, x, acc, &mins);
    }
    return hsum(acc) - hsum128(mins);
}

static AVX2 float dot_q5_k_q8_k(const uint8_t *w, const uint8_t *x, int64_t nb)
{
    __m256 acc = _mm256_setzero_ps();
    __m128 mins = _mm_setzero_ps();
    for (int64_t i = 0; i < nb; i++, w += 176, x += 292) {
        prefetch_lines(w + Q8_PREFETCH, 176);
        acc = dot_k45_block(w, w + 16, w + 48, x, acc, &mins);
    }
    return hsum(acc) - hsum128(mins);
}

/* Q6_K group g of half h (32 values at 128h + 32g): codes u . activations,
 * lanes 0-7 (l < 16) times scale 8h+2g, lanes 8-15 times scale 8h+2g+1. */
AVX2_INLINE __m256i q6k_group(__m256i ql0, __m256i ql1, __m256i hb, const uint8_t *xq, __m256i sch, const int g,
                              __m256i isum)
{
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    __m256i src = (g & 1) ? ql1 : ql0;
    __m256i nib = g < 2 ? _mm256_and_si256(src, m4) : _mm256_and_si256(_mm256_srli_epi16(src, 4), m4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * g), m2);
    __m256i u = _mm256_or_si256(nib, _mm256_slli_epi16(hi, 4));
    __m256i p16 = _mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)(xq + 32 * g)));
    /* sch holds scales 8h..8h+7 as int16 in both halves: word 2g | word 2g+1 */
    const __m256i pick = _mm256_set_m128i(_mm_set1_epi16((short)(2 * (2 * g + 1) | (2 * (2 * g + 1) + 1) << 8)),
                                          _mm_set1_epi16((short)(2 * (2 * g) | (2 * (2 * g) + 1) << 8)));
    return _mm256_add_epi32(isum, _mm256_madd_epi16(p16, _mm256_shuffle_epi8(sch, pick)));
}

/* Half h (values 128h..128h+127) of a Q6_K block; sc16 = the 16 scales as int16. */
AVX2_INLINE __m256i q6k_half(const uint8_t *ql, const uint8_t *qh, const uint8_t *xq, __m256i sc16, const int h,
                             __m256i isum)
{
    __m256i hb = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
    __m256i ql0 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h));
    __m256i ql1 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + 32));
    __m256i sch = h ? _mm256_permute4x64_epi64(sc16, 0xEE) : _mm256_permute4x64_epi64(sc16, 0x44);
    xq += 128 * h;
    isum = q6k_group(ql0, ql1, hb, xq, sch, 0, isum);
    isum = q6k_group(ql0, ql1, hb, xq, sch, 1, isum);
    isum = q6k_group(ql0, ql1, hb, xq, sch, 2, isum);
    return q6k_group(ql0, ql1, hb, xq, sch, 3, isum);
}

/* Q6_K vs Q8_K: codes u = q+32 in 0..63; sum (u-32)*q8 = sum u*q8 - 32*bsum. */
static AVX2 float dot_q6_k_q8_k(const uint8_t *w, const uint8_t *x, int64_t nb)
{
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++, w += 210, x += 292) {
        prefetch_lines(w + Q8_PREFETCH, 210);
        const uint8_t *ql = w, *qh = w + 128, *xq = x + 4;
        const int8_t *scales = (const int8_t *)(w + 192);
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)scales));
        __m256i isum = _mm256_setzero_si256();
        isum = q6k_half(ql, qh, xq, sc16, 0, isum);
        isum = q6k_half(ql, qh, xq, sc16, 1, isum);
        /* 32 * sum_g scale_g * bsum_g, in the same lanes */
        __m256i bs = _mm256_loadu_si256((const __m256i *)(x + 260));
        isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(h2f(w + 208) * q8k_d(x)), acc);
    }
    return hsum(acc);
}

/* 8 int32 sums of unsigned w[32] (codes < 128) . signed x[32]. */
AVX2_INLINE __m256i dot_u8(__m256i w, __m256i x)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}

/* Unsigned nibbles of a 16-byte run in element order (low nibbles first). */
AVX2_INLINE __m256i unpack_nibbles(const uint8_t *qs)
{
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(15));
}

/* Bit j of the little-endian u32 at qh -> 0x10 in byte j (the Q5 fifth bit). */
AVX2_INLINE __m256i q5_high_bits(const uint8_t *qh)
{
    uint32_t H;
    memcpy(&H, qh, 4);
    __m256i v = _mm256_set1_epi32((int)H);
    /* byte j takes byte j/8 of H */
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i b = _mm256_shuffle_epi8(v, shuf);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(16));
}

/* Sum of the 32 int8 activations of a Q8_0 block, as 8 int32 lanes. */
AVX2_INLINE __m256i sum_s8(__m256i x) { return dot_u8(_mm256_set1_epi8(1), x); }

/* Q4_1 / Q5_1 (hi5 = Q5 high bits or NULL) vs Q8_0: d*dx*sum(q*xq) + m*dx*sum(xq). */
AVX2_INLINE float dot_q41_q51(const uint8_t *w, const uint8_t *x, int64_t nb, size_t wsize, int five)
{
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++, w += wsize, x += 34) {
        __m256i q = unpack_nibbles(w + (five ? 8 : 4));
        if (five)
            q = _mm256_or_si256(q, q5_high_bits(w + 4));
        __m256i xq = _mm256_loadu_si256((const __m256i *)(x + 2));
        float dx = h2f(x);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8(q, xq)), _mm256_set1_ps(h2f(w) * dx), acc);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum_s8(xq)), _mm256_set1_ps(h2f(w + 2) * dx), acc);
    }
    return hsum(acc);
}

static AVX2 float dot_q4_1_q8_0(const uint8_t *w, const uint8_t *x, int64_t nb) { return dot_q41_q51(w, x, nb, 20, 0); }
static AVX2 float dot_q5_1_q8_0(const uint8_t *w, const uint8_t *x, int64_t nb) { return dot_q41_q51(w, x, nb, 24, 1); }

static AVX2 float dot_q5_0_q8_0(const uint8_t *w, const uint8_t *x, int64_t nb)
{
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++, w += 22, x += 34) {
        __m256i q = _mm256_or_si256(unpack_nibbles(w + 6), q5_high_bits(w + 2));
        q = _mm256_sub_epi8(q, _mm256_set1_epi8(16)); /* -16..15 */
        __m256i p = dot_s8(q, _mm256_loadu_si256((const __m256i *)(x + 2)));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(w) * h2f(x)), acc);
    }
    return hsum(acc);
}

/* Two int16 scales for the lanes of one 32-value run (l < 16 | l >= 16). */
AVX2_INLINE __m256i scale_pair(int lo, int hi)
{
    return _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo));
}

/* Q2_K vs Q8_K: d*d8*sum_s sc_s*sum(q*xq) - dmin*d8*sum_s m_s*bsum_s (16 sub-blocks of 16). */
static AVX2 float dot_q2_k_q8_k(const uint8_t *w, const uint8_t *x, int64_t nb)
{
    float acc = 0.0f;
    const __m256i m2 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < nb; i++, w += 84, x += 292) {
        const uint8_t *scales = w, *qs = w + 16, *xq = x + 4;
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i b = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
            for (int j = 0; j < 4; j++) {
                __m256i q = _mm256_and_si256(_mm256_srli_epi16(b, 2 * j), m2);
                __m256i p16 = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)(xq + 128 * h + 32 * j)));
                int s0 = scales[8 * h + 2 * j], s1 = scales[8 * h + 2 * j + 1];
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p16, scale_pair(s0 & 15, s1 & 15)));
            }
        }
        int msum = 0;
        for (int g = 0; g < 16; g++)
            msum += (scales[g] >> 4) * bsum(x, g);
        float d8 = q8k_d(x);
        acc += h2f(w + 80) * d8 * (float)hsum_i32(isum) - h2f(w + 82) * d8 * (float)msum;
    }
    return acc;
}

/* Q3_K vs Q8_K: codes u = q2 + 4*hb in 0..7, q = u - 4; sum q*xq = sum u*xq - 4*bsum. */
static AVX2 float dot_q3_k_q8_k(const uint8_t *w, const uint8_t *x, int64_t nb)
{
    float acc = 0.0f;
    const __m256i m2 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < nb; i++, w += 110, x += 292) {
        const uint8_t *hmask = w, *qs = w + 32, *S = w + 96, *xq = x + 4;
        int sc[16];
        for (int k = 0; k < 16; k++) {
            int low = k < 8 ? S[k] & 15 : S[k - 8] >> 4;
            int high = (S[8 + (k % 4)] >> (2 * (k / 4))) & 3;
            sc[k] = (low | high << 4) - 32;
        }
        __m256i hm = _mm256_loadu_si256((const __m256i *)hmask);
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i b = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
            for (int j = 0; j < 4; j++) {
                __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(b, 2 * j), m2);
                __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + j), m1);
                __m256i u = _mm256_or_si256(q2, _mm256_slli_epi16(hb, 2));
                __m256i p16 = _mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)(xq + 128 * h + 32 * j)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p16, scale_pair(sc[8 * h + 2 * j], sc[8 * h + 2 * j + 1])));
            }
        }
        int off = 0;
        for (int g = 0; g < 16; g++)
            off += sc[g] * bsum(x, g);
        acc += h2f(w + 108) * q8k_d(x) * (float)(hsum_i32(isum) - 4 * off);
    }
    return acc;
}

/* ---- activation quantizers (byte-identical to quant_quantize.c) ---- */

AVX2_INLINE float hmax(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* roundf (ties away from zero): t = trunc(v); t += sign(v) where |v - t| >= 0.5. */
AVX2_INLINE __m256 round_away(__m256 v)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    __m256 one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one));
}

/* 32 int32 lanes (4 vectors) -> 32 int8 in order. */
AVX2_INLINE __m256i pack_32(__m256i a, __m256i b, __m256i c, __m256i d)
{
    __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    __m256i abcd = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static AVX2 void quantize_q8_0(const float *x, uint8_t *b, int64_t nb)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < nb; i++, x += 32, b += 34) {
        __m256 v[4], am = _mm256_setzero_ps();
        for (int g = 0; g < 4; g++) {
            v[g] = _mm256_loadu_ps(x + 8 * g);
            am = _mm256_max_ps(am, _mm256_and_ps(v[g], absmask));
        }
        float amax = hmax(am);
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t h = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        memcpy(b, &h, 2);
        __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int g = 0; g < 4; g++)
            q[g] = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v[g], vid)));
        _mm256_storeu_si256((__m256i *)(b + 2), pack_32(q[0], q[1], q[2], q[3]));
    }
}

static AVX2 void quantize_q8_k(const float *x, uint8_t *b, int64_t nb)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < nb; i++, x += 256, b += 292) {
        __m256 am = _mm256_setzero_ps();
        for (int g = 0; g < 32; g++)
            am = _mm256_max_ps(am, _mm256_and_ps(_mm256_loadu_ps(x + 8 * g), absmask));
        float amax = hmax(am);
        if (amax == 0.0f) {
            memset(b, 0, 292);
            continue;
        }
        float mx = 0.0f; /* the first element of largest magnitude, with its sign */
        for (int j = 0; j < 256; j++)
            if (fabsf(x[j]) == amax) {
                mx = x[j];
                break;
            }
        float iscale = -127.0f / mx, d = 1.0f / iscale;
        memcpy(b, &d, 4);
        __m256 vis = _mm256_set1_ps(iscale);
        const __m256i lim = _mm256_set1_epi32(127);
        for (int c = 0; c < 8; c++) { /* 32 values per step, two bsums */
            __m256i q[4];
            for (int g = 0; g < 4; g++) {
                __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 32 * c + 8 * g), vis),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q[g] = _mm256_min_epi32(_mm256_cvtps_epi32(r), lim);
            }
            _mm256_storeu_si256((__m256i *)(b + 4 + 32 * c), pack_32(q[0], q[1], q[2], q[3]));
            int16_t s0 = (int16_t)hsum_i32(_mm256_add_epi32(q[0], q[1]));
            int16_t s1 = (int16_t)hsum_i32(_mm256_add_epi32(q[2], q[3]));
            memcpy(b + 260 + 4 * c, &s0, 2);
            memcpy(b + 262 + 4 * c, &s1, 2);
        }
    }
}

void llv_avx2_quantize_q8(int type, const float *x, void *dst, int64_t n)
{
    if (type == LLV_TYPE_Q8_K)
        quantize_q8_k(x, dst, n / 256);
    else
        quantize_q8_0(x, dst, n / 32);
}

int llv_avx2_q8_partner(int type) { return llv_vec_dot_type(type); }

float llv_avx2_dot_q8(int type, const void *w, const void *xq, int64_t n)
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

/* out[r] = dot_q8_side(type, w + r*wrb, xq, side, n) for r < nr, bit for bit.
 * One weight row after the other: kernels that interleaved 2 or 4 rows
 * (each activation block loaded once per group) were faster with the
 * weights in L3 (Q4_0 62 vs 58 GFLOP/s) but 40-50% slower streaming from
 * DRAM, with or without software prefetch (several streams 1-3 KiB apart;
 * measured on the 2-core EPYC VM), and decode streams from DRAM. */
void llv_avx2_dot_q8_rows(int type, const void *w, size_t wrb, int nr, const void *xq, const void *side, int64_t n,
                          float *out)
{
    const uint8_t *wp = w;
    if (type == LLV_TYPE_Q4_0) {
        for (int r = 0; r < nr; r++)
            out[r] = dot_q4_0_side(wp + (size_t)r * wrb, side, n / 32);
        return;
    }
    for (int r = 0; r < nr; r++)
        out[r] = llv_avx2_dot_q8(type, wp + (size_t)r * wrb, xq, n);
}

#else /* not x86: nothing to build (keep the translation unit non-empty) */

typedef int llv_no_avx2_q8;

#endif
