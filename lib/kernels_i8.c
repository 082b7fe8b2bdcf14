/*
 * kernels_i8.c - the packed integer GEMM used for prefill with quantized
 * weights: its data layout, the weight packing and activation side data
 * (plain C, shared by every ISA), and the reference strip kernel that the
 * ISA kernels (kernels_avx2_gemm_i8.c) must match bit for bit.
 *
 * The product is y[c][o] = sum_k w_o[k] * xq_c[k] where xq_c is activation
 * row c quantized to the weight type's partner (Q8_0 / Q8_K, as the GEMV
 * does). It is computed in the outer-product form: a strip of LLV_I8_ROWS
 * weight rows is repacked so that one 32-byte vector holds 4 consecutive
 * k-values of 8 rows ("k-group"),
 *
 *     byte 4*r + j of k-group g  =  q of row r (of the half), k = 4*g + j,
 *
 * as unsigned codes 0..15. Multiplying that vector by 4 activation bytes
 * broadcast to all 8 rows (maddubs) gives 8 rows x 2 pair sums in int16
 * lanes with no horizontal sums. Activation codes are -127..127, except
 * -128 where the quantizer's reciprocal scale overflows (blocks below ~4e-37,
 * NaN/Inf input; their scale is 0), so a pair sum is at most 15*128*2 = 3840
 * in magnitude and the 8 k-groups of a 32-value block add up in int16
 * (|sum| <= 30720 < 32767); one madd per block then turns them into 8 int32
 * row sums.
 *
 * Per strip and block the packed data is:
 *   Q4_0 (block 32, 576 bytes):  quants [2 halves][8 k-groups][32]  (512)
 *                                d      [16] f32 row scales         (64)
 *     y += (isum - 8*sum(xq)) * (d * dx) per block (the -8 offset of Q4_0
 *     comes back through the activation's block sum, side data below).
 *   Q4_K (block 256, 4992 bytes): quants [8 sub-blocks][2 halves][8][32] (4096)
 *                                 sc     [8 sub-blocks][2 halves][16] i16 (512)
 *                                 m      [4 pairs][2 halves][16] i16  (256)
 *                                 d, dmin [16] f32 each               (128)
 *     sc lanes 2r, 2r+1 hold row r's 6-bit scale of the sub-block, so one
 *     madd applies it; m lanes 2r, 2r+1 hold row r's mins of sub-blocks
 *     2j, 2j+1, against the activation's sub-block sums (side data).
 *     y += isum * (d * dx) - msum * (dmin * dx) per super-block.
 *   Q6_K (block 256, 5696 bytes): codes  [16 sub-blocks of 16][2 halves][4][32] (4096)
 *                                 sc     [16 sub-blocks][2 halves][16] i16 (1024)
 *                                 scp    [8 pairs][2 halves][16] i16  (512)
 *                                 d      [16] f32                     (64)
 *     codes are the 6-bit q (0..63, value q - 32): a maddubs pair sum is at
 *     most 63*128*2 = 16128, so two k-groups add in int16 (32256), then one
 *     madd by the sub-block's int8 scale per 16 values. The -32 comes back through
 *     the activation's 16-value sums (Q8_K bsums, in the quantized row):
 *     scp lanes 2r, 2r+1 hold row r's scales of sub-blocks 2j, 2j+1.
 *     y += (isum - 32 * sum_s sc_s * bsum_s) * (d * dx) per super-block;
 *     every sum is exact in int32 (|isum| <= 16*127*16*63*127 < 2^31).
 *   Q8_0 (block 32, 1088 bytes): codes  [2 halves][16 k-pairs][16] i16 (1024)
 *                                d      [16] f32 row scales         (64)
 *     8-bit codes do not fit maddubs (a pair sum of two -128*127 products
 *     saturates int16), so the codes are widened to int16 and multiplied by
 *     madd: lanes 2r, 2r+1 of k-pair p hold row r's codes at k = 2p, 2p+1,
 *     against the activation pair broadcast from the side data; the int32
 *     row sums (|sum| <= 32*128*128 = 2^19, exact in f32) take
 *     y += isum * (d * dx) per block. On Zen 3 madd + add32 issue at
 *     1.5 madd per cycle = 48 multiply-adds, against 16 for f32 FMA.
 * Rows past the end of the weight are zero (codes and scales).
 *
 * Activation side data per row (from its quantized form):
 *   Q4_0: per block f32 dx (the Q8_0 scale) and int32 8*sum(q)   (8 bytes)
 *   Q4_K: per super-block the 8 sub-block sums of q as int16      (16 bytes)
 *   Q6_K: none (the Q8_K row holds d and the 16-value sums)
 *   Q8_0: per block f32 dx, then the 32 codes widened to int16   (68 bytes)
 */
#include "kernels_impl.h"

#include <math.h>
#include <string.h>

/* ---- layout ------------------------------------------------------------ */

bool llv_i8_type_supported(int type)
{
    return type == LLV_TYPE_Q4_0 || type == LLV_TYPE_Q4_K || type == LLV_TYPE_Q6_K || type == LLV_TYPE_Q8_0;
}

int64_t llv_i8_block(int type) { return type == LLV_TYPE_Q4_0 || type == LLV_TYPE_Q8_0 ? 32 : 256; }

size_t llv_i8_packed_block_bytes(int type)
{
    switch (type) {
    case LLV_TYPE_Q4_K: return LLV_I8_Q4_K_BYTES;
    case LLV_TYPE_Q6_K: return LLV_I8_Q6_K_BYTES;
    case LLV_TYPE_Q8_0: return LLV_I8_Q8_0_BYTES;
    default: return LLV_I8_Q4_0_BYTES;
    }
}

size_t llv_i8_side_block_bytes(int type)
{
    switch (type) {
    case LLV_TYPE_Q4_K: return 16;
    case LLV_TYPE_Q6_K: return 0;
    case LLV_TYPE_Q8_0: return 68;
    default: return 8;
    }
}

/* ---- packing ----------------------------------------------------------- */

/* The 32 codes of one Q4_0 block in k order: low nibbles are k 0..15,
 * high nibbles k 16..31. */
static void q4_0_codes(const uint8_t *qs, uint8_t out[32])
{
    uint64_t a, b;
    memcpy(&a, qs, 8);
    memcpy(&b, qs + 8, 8);
    const uint64_t m = 0x0f0f0f0f0f0f0f0full;
    uint64_t v[4] = { a & m, b & m, (a >> 4) & m, (b >> 4) & m };
    memcpy(out, v, 32);
}

/* 32 codes (k order) of the row at position r of its half -> the k-group
 * vectors of that half (k-group g at dst + 32*g). */
static inline void scatter_groups(const uint8_t codes[32], int r, uint8_t *dst)
{
    for (int g = 0; g < 8; g++)
        memcpy(dst + 32 * g + 4 * r, codes + 4 * g, 4);
}

/* The plain packer's driver: every row (< nr) and block of a strip, through
 * pack_block(src block, strip row, packed block); the rest stays zero. */
static void pack_rows(const uint8_t *w, size_t wrb, int nr, int64_t b0, int64_t nblk, uint8_t *dst, size_t src_bytes,
                      size_t packed_bytes, void (*pack_block)(const uint8_t *src, int row, uint8_t *pb))
{
    memset(dst, 0, (size_t)nblk * packed_bytes);
    for (int row = 0; row < nr; row++) {
        const uint8_t *src = w + (size_t)row * wrb + (size_t)b0 * src_bytes;
        for (int64_t b = 0; b < nblk; b++, src += src_bytes)
            pack_block(src, row, dst + (size_t)b * packed_bytes);
    }
}

static void pack_block_q4_0(const uint8_t *src, int row, uint8_t *pb)
{
    uint8_t codes[32];
    q4_0_codes(src + 2, codes);
    scatter_groups(codes, row % 8, pb + 256 * (row / 8));
    uint16_t hd;
    memcpy(&hd, src, 2);
    float d = llv_fp16_to_fp32(hd);
    memcpy(pb + 512 + 4 * row, &d, 4);
}

void llv_i8_pack_q4_k_meta(const uint8_t *src, int row, uint8_t *pb)
{
    const int h = row / 8, r = row % 8;
    int16_t mins[8];
    for (int s = 0; s < 8; s++) {
        int sc, m;
        llv_k4_scale_min(src + 4, s, &sc, &m);
        int16_t v = (int16_t)sc;
        uint8_t *p = pb + 4096 + (size_t)(2 * s + h) * 32 + 4 * r;
        memcpy(p, &v, 2);
        memcpy(p + 2, &v, 2);
        mins[s] = (int16_t)m;
    }
    for (int j = 0; j < 4; j++) { /* mins of sub-blocks 2j, 2j+1 side by side */
        uint8_t *p = pb + 4608 + (size_t)(2 * j + h) * 32 + 4 * r;
        memcpy(p, &mins[2 * j], 4);
    }
    uint16_t hd, hm;
    memcpy(&hd, src, 2);
    memcpy(&hm, src + 2, 2);
    float d = llv_fp16_to_fp32(hd), dmin = llv_fp16_to_fp32(hm);
    memcpy(pb + 4864 + 4 * row, &d, 4);
    memcpy(pb + 4928 + 4 * row, &dmin, 4);
}

static void pack_block_q4_k(const uint8_t *src, int row, uint8_t *pb)
{
    const int h = row / 8, r = row % 8;
    for (int j = 0; j < 4; j++) { /* 32 bytes: sub-block 2j (low nibbles), 2j+1 (high) */
        uint8_t lo[32], hi[32];
        for (int l = 0; l < 32; l++) {
            lo[l] = src[16 + 32 * j + l] & 15;
            hi[l] = src[16 + 32 * j + l] >> 4;
        }
        scatter_groups(lo, r, pb + (size_t)(2 * (2 * j) + h) * 256);
        scatter_groups(hi, r, pb + (size_t)(2 * (2 * j + 1) + h) * 256);
    }
    llv_i8_pack_q4_k_meta(src, row, pb);
}

/* The 256 codes (0..63, k order) of a Q6_K block: low 4 bits in ql, high
 * 2 bits in qh (spec: element e of half h = e/128, group g = (e%128)/32,
 * l = e%32 takes ql[64h + l + 32(g&1)] (low nibble for g < 2) and bits 2g
 * of qh[32h + l]). */
static void q6_k_codes(const uint8_t *b, uint8_t out[256])
{
    const uint8_t *ql = b, *qh = b + 128;
    for (int h = 0; h < 2; h++)
        for (int g = 0; g < 4; g++) {
            const uint8_t *lo = ql + 64 * h + 32 * (g & 1), *hi = qh + 32 * h;
            uint8_t *o = out + 128 * h + 32 * g;
            const int shift = g < 2 ? 0 : 4;
            for (int l = 0; l < 32; l++)
                o[l] = (uint8_t)(((lo[l] >> shift) & 15) | ((hi[l] >> (2 * g)) & 3) << 4);
        }
}

static void pack_block_q6_k(const uint8_t *src, int row, uint8_t *pb)
{
    const int h = row / 8, r = row % 8;
    uint8_t codes[256];
    q6_k_codes(src, codes);
    const int8_t *sc = (const int8_t *)(src + 192);
    for (int s = 0; s < 16; s++) {
        for (int g = 0; g < 4; g++)
            memcpy(pb + (size_t)((2 * s + h) * 4 + g) * 32 + 4 * r, codes + 16 * s + 4 * g, 4);
        int16_t v = sc[s];
        uint8_t *p = pb + 4096 + (size_t)(2 * s + h) * 32 + 4 * r;
        memcpy(p, &v, 2);
        memcpy(p + 2, &v, 2);
    }
    for (int j = 0; j < 8; j++) {
        int16_t v0 = sc[2 * j], v1 = sc[2 * j + 1];
        uint8_t *p = pb + 5120 + (size_t)(2 * j + h) * 32 + 4 * r;
        memcpy(p, &v0, 2);
        memcpy(p + 2, &v1, 2);
    }
    uint16_t hd;
    memcpy(&hd, src + 208, 2);
    float d = llv_fp16_to_fp32(hd);
    memcpy(pb + 5632 + 4 * row, &d, 4);
}

static void pack_block_q8_0(const uint8_t *src, int row, uint8_t *pb)
{
    const int h = row / 8, r = row % 8;
    for (int k = 0; k < 32; k++) {
        int16_t v = (int8_t)src[2 + k];
        memcpy(pb + 512 * h + 32 * (k / 2) + 4 * r + 2 * (k % 2), &v, 2);
    }
    uint16_t hd;
    memcpy(&hd, src, 2);
    float d = llv_fp16_to_fp32(hd);
    memcpy(pb + 1024 + 4 * row, &d, 4);
}

void llv_i8_pack(int type, const void *w, size_t wrb, int nr, int64_t b0, int64_t nblk, void *dst)
{
    void (*block)(const uint8_t *, int, uint8_t *) = type == LLV_TYPE_Q4_K   ? pack_block_q4_k
                                                     : type == LLV_TYPE_Q6_K ? pack_block_q6_k
                                                     : type == LLV_TYPE_Q8_0 ? pack_block_q8_0
                                                                             : pack_block_q4_0;
    pack_rows(w, wrb, nr, b0, nblk, dst, llv_type_get(type)->size, llv_i8_packed_block_bytes(type), block);
}

void llv_i8_side(int type, const void *xq, int64_t n, void *side)
{
    const uint8_t *x = xq;
    uint8_t *s = side;
    if (type == LLV_TYPE_Q6_K)
        return;
    if (type == LLV_TYPE_Q4_K) {
        for (int64_t b = 0; b < n / 256; b++, x += 292, s += 16)
            for (int j = 0; j < 8; j++) { /* bsums are per 16 values */
                int16_t a, c;
                memcpy(&a, x + 260 + 4 * j, 2);
                memcpy(&c, x + 262 + 4 * j, 2);
                int16_t t = (int16_t)(a + c);
                memcpy(s + 2 * j, &t, 2);
            }
        return;
    }
    for (int64_t b = 0; b < n / 32; b++, x += 34) { /* Q4_0, Q8_0 */
        uint16_t hd;
        memcpy(&hd, x, 2);
        float d = llv_fp16_to_fp32(hd);
        memcpy(s, &d, 4);
        if (type == LLV_TYPE_Q8_0) {
            for (int k = 0; k < 32; k++) {
                int16_t v = (int8_t)x[2 + k];
                memcpy(s + 4 + 2 * k, &v, 2);
            }
            s += 68;
            continue;
        }
        int32_t sum = 0;
        for (int k = 0; k < 32; k++)
            sum += (int8_t)x[2 + k];
        sum *= 8;
        memcpy(s + 4, &sum, 4);
        s += 8;
    }
}

/* ---- reference strip kernel ------------------------------------------------ */

/* Row `row` of the strip (half h, position r) against activation block b of
 * one row: the int32 sum of codes * xq over k-groups [g0, g0 + 8) of the
 * 256-byte half-vector set at q. */
static int32_t group_dot(const uint8_t *q, int r, const int8_t *x)
{
    int32_t s = 0;
    for (int g = 0; g < 8; g++)
        for (int j = 0; j < 4; j++)
            s += (int32_t)q[32 * g + 4 * r + j] * x[4 * g + j];
    return s;
}

static float get_f32(const uint8_t *p) { float f; memcpy(&f, p, 4); return f; }
static int32_t get_i32(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }
static int16_t get_i16(const uint8_t *p) { int16_t v; memcpy(&v, p, 2); return v; }

void llv_i8_strip_ref(int type, const void *wp, int64_t b0, int64_t nblk, const void *xq, size_t xrb,
                      const void *side, size_t srb, int nc, float *y, int64_t ldy, int nr, const float *bias, int first)
{
    const uint8_t *P = wp;
    for (int c = 0; c < nc; c++) {
        const uint8_t *X = (const uint8_t *)xq + (size_t)c * xrb;
        const uint8_t *S = (const uint8_t *)side + (size_t)c * srb;
        for (int row = 0; row < nr; row++) {
            const int h = row / 8, r = row % 8;
            float acc = 0.0f;
            for (int64_t b = 0; b < nblk; b++) {
                const int64_t bx = b0 + b;
                if (type == LLV_TYPE_Q6_K) {
                    const uint8_t *pb = P + (size_t)b * LLV_I8_Q6_K_BYTES;
                    const uint8_t *xb = X + (size_t)bx * 292;
                    int32_t isum = 0, csum = 0;
                    for (int s = 0; s < 16; s++) {
                        int32_t t = 0;
                        for (int g = 0; g < 4; g++)
                            for (int j = 0; j < 4; j++)
                                t += (int32_t)pb[(size_t)((2 * s + h) * 4 + g) * 32 + 4 * r + j] *
                                     (int8_t)xb[4 + 16 * s + 4 * g + j];
                        isum += get_i16(pb + 4096 + (size_t)(2 * s + h) * 32 + 4 * r) * t;
                    }
                    for (int j = 0; j < 8; j++) {
                        const uint8_t *p = pb + 5120 + (size_t)(2 * j + h) * 32 + 4 * r;
                        csum += get_i16(p) * get_i16(xb + 260 + 4 * j) + get_i16(p + 2) * get_i16(xb + 262 + 4 * j);
                    }
                    acc = fmaf((float)(isum - 32 * csum), get_f32(pb + 5632 + 4 * row) * get_f32(xb), acc);
                } else if (type == LLV_TYPE_Q4_K) {
                    const uint8_t *pb = P + (size_t)b * LLV_I8_Q4_K_BYTES;
                    const uint8_t *xb = X + (size_t)bx * 292;
                    int32_t isum = 0, msum = 0;
                    for (int s = 0; s < 8; s++)
                        isum += get_i16(pb + 4096 + (size_t)(2 * s + h) * 32 + 4 * r) *
                                group_dot(pb + (size_t)(2 * s + h) * 256, r, (const int8_t *)(xb + 4 + 32 * s));
                    for (int j = 0; j < 4; j++) {
                        const uint8_t *m = pb + 4608 + (size_t)(2 * j + h) * 32 + 4 * r;
                        const uint8_t *bs = S + (size_t)bx * 16 + 4 * j;
                        msum += get_i16(m) * get_i16(bs) + get_i16(m + 2) * get_i16(bs + 2);
                    }
                    const float dx = get_f32(xb);
                    acc = fmaf((float)isum, get_f32(pb + 4864 + 4 * row) * dx, acc);
                    acc = fmaf(-(float)msum, get_f32(pb + 4928 + 4 * row) * dx, acc);
                } else if (type == LLV_TYPE_Q8_0) {
                    const uint8_t *pb = P + (size_t)b * LLV_I8_Q8_0_BYTES;
                    const uint8_t *sb = S + (size_t)bx * 68;
                    int32_t isum = 0;
                    for (int k = 0; k < 32; k++)
                        isum += get_i16(pb + 512 * h + 32 * (k / 2) + 4 * r + 2 * (k % 2)) * get_i16(sb + 4 + 2 * k);
                    acc = fmaf((float)isum, get_f32(pb + 1024 + 4 * row) * get_f32(sb), acc);
                } else {
                    const uint8_t *pb = P + (size_t)b * LLV_I8_Q4_0_BYTES;
                    const uint8_t *sb = S + (size_t)bx * 8;
                    int32_t isum = group_dot(pb + 256 * h, r, (const int8_t *)(X + (size_t)bx * 34 + 2)) - get_i32(sb + 4);
                    acc = fmaf((float)isum, get_f32(pb + 512 + 4 * row) * get_f32(sb), acc);
                }
            }
            float *yr = y + (size_t)c * ldy + row;
            *yr = (first ? (bias ? bias[row] : 0.0f) : *yr) + acc;
        }
    }
}
