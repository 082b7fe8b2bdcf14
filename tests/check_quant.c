/*
 * check_quant.c - the type table, FP16/BF16 conversions, dequantizers and
 * quantizers of lib/quant.c, lib/quant_quantize.c.
 *
 * Dequantizer tests use hand-built blocks: the bytes are chosen here and the
 * expected floats are worked out by hand from the formulas of
 * shared/spec/llava-format.md §2 (derivation in the comments), so they do not
 * come from the code under test.
 */
#include <check.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"

/* f16 bit patterns used in the blocks */
#define H_0_125 0x3000
#define H_0_25 0x3400
#define H_0_5 0x3800
#define H_1 0x3C00
#define H_M1 0xBC00

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static float bits2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f2bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* ---- type table --------------------------------------------------------- */

START_TEST(test_type_table)
{
    /* spec §1.3 table: id, blck, bytes */
    static const struct { int id; const char *name; int64_t blck; size_t size; bool w; } t[] = {
        { 0, "F32", 1, 4, true }, { 1, "F16", 1, 2, true }, { 2, "Q4_0", 32, 18, true },
        { 3, "Q4_1", 32, 20, true }, { 6, "Q5_0", 32, 22, true }, { 7, "Q5_1", 32, 24, true },
        { 8, "Q8_0", 32, 34, true }, { 9, "Q8_1", 32, 36, false }, { 10, "Q2_K", 256, 84, true },
        { 11, "Q3_K", 256, 110, true }, { 12, "Q4_K", 256, 144, true }, { 13, "Q5_K", 256, 176, true },
        { 14, "Q6_K", 256, 210, true }, { 15, "Q8_K", 256, 292, false }, { 30, "BF16", 1, 2, true },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const llv_type_info *ti = llv_type_get(t[i].id);
        ck_assert_ptr_nonnull(ti);
        ck_assert_str_eq(ti->name, t[i].name);
        ck_assert_str_eq(llv_type_name(t[i].id), t[i].name);
        ck_assert_int_eq(ti->blck, t[i].blck);
        ck_assert_uint_eq(ti->size, t[i].size);
        ck_assert_int_eq(ti->weights, t[i].w);
    }
    /* retired ids and out of range */
    static const int retired[] = { 4, 5, 31, 32, 33, 36, 37, 38, -1, 43, 1000 };
    for (size_t i = 0; i < sizeof retired / sizeof retired[0]; i++) {
        ck_assert_ptr_null(llv_type_get(retired[i]));
        ck_assert_ptr_nonnull(llv_type_name(retired[i]));
    }
    /* known, not computable */
    static const int known[] = { 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 34, 35, 39, 40, 41, 42 };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const llv_type_info *ti = llv_type_get(known[i]);
        ck_assert_ptr_nonnull(ti);
        ck_assert(!ti->weights);
    }
    ck_assert_str_eq(llv_type_get(16)->name, "IQ2_XXS");
    ck_assert_str_eq(llv_type_get(39)->name, "MXFP4");
    ck_assert_str_eq(llv_type_get(42)->name, "Q2_0");

    size_t rb = 0;
    ck_assert(llv_row_bytes(LLV_TYPE_Q4_K, 512, &rb));
    ck_assert_uint_eq(rb, 288);
    ck_assert(llv_row_bytes(LLV_TYPE_F16, 7, &rb));
    ck_assert_uint_eq(rb, 14);
    ck_assert(llv_row_bytes(LLV_TYPE_Q8_0, 4096, &rb));
    ck_assert_uint_eq(rb, 128 * 34);
    ck_assert(!llv_row_bytes(LLV_TYPE_Q4_0, 33, &rb));
    ck_assert(!llv_row_bytes(4, 32, &rb));
    ck_assert(!llv_row_bytes(LLV_TYPE_Q4_0, -32, &rb));
    ck_assert(!llv_row_bytes(LLV_TYPE_F32, INT64_MAX, &rb)); /* overflow */
}
END_TEST

/* ---- FP16 / BF16 -------------------------------------------------------- */

START_TEST(test_fp16_decode)
{
    ck_assert(llv_fp16_to_fp32(0x3C00) == 1.0f);
    ck_assert(llv_fp16_to_fp32(0xC000) == -2.0f);
    ck_assert(llv_fp16_to_fp32(0x7BFF) == 65504.0f);
    ck_assert(llv_fp16_to_fp32(0x0001) == 0x1p-24f);             /* smallest subnormal */
    ck_assert(llv_fp16_to_fp32(0x03FF) == 1023.0f * 0x1p-24f);   /* largest subnormal */
    ck_assert(llv_fp16_to_fp32(0x0400) == 0x1p-14f);             /* smallest normal */
    ck_assert(llv_fp16_to_fp32(0x3555) == 0x1.554p-2f);          /* 0.333251953125 */
    ck_assert(f2bits(llv_fp16_to_fp32(0x8000)) == 0x80000000u);  /* -0 */
    ck_assert(isinf(llv_fp16_to_fp32(0x7C00)) && llv_fp16_to_fp32(0x7C00) > 0);
    ck_assert(isinf(llv_fp16_to_fp32(0xFC00)) && llv_fp16_to_fp32(0xFC00) < 0);
    ck_assert(isnan(llv_fp16_to_fp32(0x7E00)));
    ck_assert(isnan(llv_fp16_to_fp32(0x7C01)));
}
END_TEST

static int is_f16_nan(uint16_t h) { return (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0; }

START_TEST(test_fp16_encode)
{
    ck_assert_uint_eq(llv_fp32_to_fp16(1.0f), 0x3C00);
    ck_assert_uint_eq(llv_fp32_to_fp16(-2.0f), 0xC000);
    ck_assert_uint_eq(llv_fp32_to_fp16(0.0f), 0x0000);
    ck_assert_uint_eq(llv_fp32_to_fp16(-0.0f), 0x8000);
    ck_assert_uint_eq(llv_fp32_to_fp16(65504.0f), 0x7BFF);
    ck_assert_uint_eq(llv_fp32_to_fp16(65519.99f), 0x7BFF);  /* below the midpoint 65520 */
    ck_assert_uint_eq(llv_fp32_to_fp16(65520.0f), 0x7C00);   /* tie 0x7BFF (odd) / 0x7C00 -> even = inf */
    ck_assert_uint_eq(llv_fp32_to_fp16(1e10f), 0x7C00);
    ck_assert_uint_eq(llv_fp32_to_fp16(-INFINITY), 0xFC00);
    ck_assert_uint_eq(llv_fp32_to_fp16(INFINITY), 0x7C00);
    /* RNE ties in the normal range: ulp(1) = 2^-10 */
    ck_assert_uint_eq(llv_fp32_to_fp16(1.0f + 0x1p-11f), 0x3C00);          /* tie -> even 0x3C00 */
    ck_assert_uint_eq(llv_fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3C02);      /* tie 0x3C01/0x3C02 -> even */
    ck_assert_uint_eq(llv_fp32_to_fp16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01); /* above tie */
    /* subnormals: unit 2^-24 */
    ck_assert_uint_eq(llv_fp32_to_fp16(0x1p-24f), 0x0001);
    ck_assert_uint_eq(llv_fp32_to_fp16(0x1p-25f), 0x0000);           /* tie 0/1 -> 0 */
    ck_assert_uint_eq(llv_fp32_to_fp16(0x1.8p-25f), 0x0001);         /* 0.75 unit -> 1 */
    ck_assert_uint_eq(llv_fp32_to_fp16(3 * 0x1p-25f), 0x0002);       /* 1.5 units: tie -> even 2 */
    ck_assert_uint_eq(llv_fp32_to_fp16(5 * 0x1p-25f), 0x0002);       /* 2.5 units: tie -> even 2 */
    ck_assert_uint_eq(llv_fp32_to_fp16(0x1p-30f), 0x0000);
    ck_assert_uint_eq(llv_fp32_to_fp16(-0x1p-24f), 0x8001);
    ck_assert_uint_eq(llv_fp32_to_fp16(1023.5f * 0x1p-24f), 0x0400); /* tie 0x3FF/0x400 -> even, carries to normal */
    ck_assert_uint_eq(llv_fp32_to_fp16(0x1p-14f), 0x0400);
    /* NaN stays NaN (also a signalling-pattern NaN with low payload) */
    ck_assert(is_f16_nan(llv_fp32_to_fp16(NAN)));
    ck_assert(is_f16_nan(llv_fp32_to_fp16(bits2f(0x7F800001u))));
    ck_assert(is_f16_nan(llv_fp32_to_fp16(bits2f(0xFFC00000u))));
    /* every finite half round-trips */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00)
            continue;
        ck_assert_uint_eq(llv_fp32_to_fp16(llv_fp16_to_fp32((uint16_t)h)), h);
    }
}
END_TEST

START_TEST(test_bf16)
{
    ck_assert(llv_bf16_to_fp32(0x3F80) == 1.0f);
    ck_assert(llv_bf16_to_fp32(0xC049) == -3.140625f); /* 0xC0490000 */
    ck_assert_uint_eq(llv_fp32_to_bf16(1.0f), 0x3F80);
    ck_assert_uint_eq(llv_fp32_to_bf16(bits2f(0x3F808000u)), 0x3F80); /* tie -> even */
    ck_assert_uint_eq(llv_fp32_to_bf16(bits2f(0x3F818000u)), 0x3F82); /* tie -> even */
    ck_assert_uint_eq(llv_fp32_to_bf16(bits2f(0x3F808001u)), 0x3F81); /* above tie */
    ck_assert_uint_eq(llv_fp32_to_bf16(bits2f(0x3F807FFFu)), 0x3F80);
    ck_assert_uint_eq(llv_fp32_to_bf16(INFINITY), 0x7F80);
    ck_assert_uint_eq(llv_fp32_to_bf16(-INFINITY), 0xFF80);
    ck_assert_uint_eq(llv_fp32_to_bf16(bits2f(0x7F7FFFFFu)), 0x7F80); /* FLT_MAX rounds to inf */
    ck_assert_uint_eq(llv_fp32_to_bf16(-0.0f), 0x8000);
    ck_assert_uint_eq(llv_fp32_to_bf16(bits2f(0x00018000u)), 0x0002); /* subnormal tie -> even */
    /* NaN forced quiet: a payload only in the low 16 bits would truncate to inf */
    ck_assert_uint_eq(llv_fp32_to_bf16(bits2f(0x7F800001u)), 0x7FC0);
    ck_assert_uint_eq(llv_fp32_to_bf16(bits2f(0xFF800001u)), 0xFFC0);
    ck_assert(isnan(llv_bf16_to_fp32(llv_fp32_to_bf16(NAN))));
}
END_TEST

/* ---- dequantizers on hand-built blocks ------------------------------------ */

START_TEST(test_dq_q4_0)
{
    /* d = 0.5; qs[j] = j | (15-j)<<4. y[j] = (j-8)*0.5, y[j+16] = ((15-j)-8)*0.5 = (7-j)*0.5 */
    uint8_t b[18];
    put16(b, H_0_5);
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | (15 - j) << 4);
    static const float want[32] = {
        -4.0f, -3.5f, -3.0f, -2.5f, -2.0f, -1.5f, -1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f, 3.5f,
        3.5f, 3.0f, 2.5f, 2.0f, 1.5f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -2.5f, -3.0f, -3.5f, -4.0f,
    };
    float y[32];
    llv_dequantize_row(LLV_TYPE_Q4_0, b, y, 32);
    for (int i = 0; i < 32; i++)
        ck_assert_msg(y[i] == want[i], "Q4_0 y[%d] = %g, want %g", i, y[i], want[i]);
}
END_TEST

START_TEST(test_dq_q4_1)
{
    /* d = 0.25, m = -1; qs[0] = 0xF3: y[0] = 3*0.25-1 = -0.25, y[16] = 15*0.25-1 = 2.75;
     * qs[5] = 0x08: y[5] = 8*0.25-1 = 1.0, y[21] = -1.0; others y = -1. */
    uint8_t b[20] = {0};
    put16(b, H_0_25);
    put16(b + 2, H_M1);
    b[4] = 0xF3;
    b[4 + 5] = 0x08;
    float y[32];
    llv_dequantize_row(LLV_TYPE_Q4_1, b, y, 32);
    ck_assert(y[0] == -0.25f);
    ck_assert(y[16] == 2.75f);
    ck_assert(y[5] == 1.0f);
    ck_assert(y[21] == -1.0f);
    ck_assert(y[1] == -1.0f);
}
END_TEST

START_TEST(test_dq_q5)
{
    /* Q5_0: d = 0.5, H = 0x80000001 (elements 0 and 31 have bit 4), qs[0] = 0x21.
     * y[0] = ((1|16)-16)*0.5 = 0.5; y[16] = (2-16)*0.5 = -7; y[1] = (0-16)*0.5 = -8;
     * y[31] = ((0|16)-16)*0.5 = 0; y[15] = -8. */
    uint8_t b[22] = {0};
    put16(b, H_0_5);
    b[2] = 0x01; b[5] = 0x80;
    b[6] = 0x21;
    float y[32];
    llv_dequantize_row(LLV_TYPE_Q5_0, b, y, 32);
    ck_assert(y[0] == 0.5f);
    ck_assert(y[16] == -7.0f);
    ck_assert(y[1] == -8.0f);
    ck_assert(y[31] == 0.0f);
    ck_assert(y[15] == -8.0f);

    /* Q5_1: d = 0.25, m = 1, H = 0x00010002 (elements 1 and 16), qs[0] = 0x07, qs[1] = 0xF3.
     * y[0] = 7*0.25+1 = 2.75; y[1] = (3|16)=19 -> 5.75; y[16] = (0|16) -> 5.0;
     * y[17] = 15 -> 4.75; y[2] = 0 -> 1.0. */
    uint8_t c[24] = {0};
    put16(c, H_0_25);
    put16(c + 2, H_1);
    c[4] = 0x02; c[6] = 0x01;
    c[8] = 0x07; c[9] = 0xF3;
    llv_dequantize_row(LLV_TYPE_Q5_1, c, y, 32);
    ck_assert(y[0] == 2.75f);
    ck_assert(y[1] == 5.75f);
    ck_assert(y[16] == 5.0f);
    ck_assert(y[17] == 4.75f);
    ck_assert(y[2] == 1.0f);
}
END_TEST

START_TEST(test_dq_q8_0)
{
    /* d = 0.125; qs = -128, 127, 1, 0... -> -16, 15.875, 0.125, 0 */
    uint8_t b[34] = {0};
    put16(b, H_0_125);
    b[2] = 0x80; b[3] = 0x7F; b[4] = 0x01;
    float y[32];
    llv_dequantize_row(LLV_TYPE_Q8_0, b, y, 32);
    ck_assert(y[0] == -16.0f);
    ck_assert(y[1] == 15.875f);
    ck_assert(y[2] == 0.125f);
    ck_assert(y[3] == 0.0f);
}
END_TEST

START_TEST(test_dq_q2_k)
{
    /* d = 0.5 @80, dmin = 0.25 @82. scales: [0]=0x23 (sc 3, m 2), [1]=0x01 (sc 1, m 0),
     * [2]=0x14 (sc 4, m 1), [6]=0x32 (sc 2, m 3), [13]=0xF5 (sc 5, m 15).
     * qs[0] = 0xE4: 2-bit fields 0,1,2,3 for j = 0..3; qs[16] = 0x03; qs[49] = 0x20. */
    uint8_t b[84] = {0};
    b[0] = 0x23; b[1] = 0x01; b[2] = 0x14; b[6] = 0x32; b[13] = 0xF5;
    b[16 + 0] = 0xE4; b[16 + 16] = 0x03; b[16 + 49] = 0x20;
    put16(b + 80, H_0_5);
    put16(b + 82, H_0_25);
    float y[256];
    llv_dequantize_row(LLV_TYPE_Q2_K, b, y, 256);
    ck_assert(y[0] == -0.5f);   /* h0 j0 r0: q=0, s=[0]: 0.5*3*0 - 0.25*2 */
    ck_assert(y[1] == -0.5f);   /* q=0, same scale */
    ck_assert(y[32] == 1.75f);  /* h0 j1 r0: q=1, s=[2]: 0.5*4*1 - 0.25*1 */
    ck_assert(y[64] == 0.0f);   /* h0 j2 r0: q=2, s=[4]=0 */
    ck_assert(y[96] == 2.25f);  /* h0 j3 r0: q=3, s=[6]: 0.5*2*3 - 0.25*3 */
    ck_assert(y[16] == 1.5f);   /* h0 j0 r16: q=3 (qs[16]), s=[1]: 0.5*1*3 - 0 */
    ck_assert(y[209] == 1.25f); /* h1 j2 r17: q=(qs[49]>>4)&3=2, s=[13]: 0.5*5*2 - 0.25*15 */
}
END_TEST

START_TEST(test_dq_q3_k)
{
    /* d = 1 @108. scales @96: [0]=0x05, [5]=0xA0, [8]=0x02, [9]=0xC0.
     * sc_0 = (5 | (s[8]&3)<<4) - 32 = (5|32)-32 = 5; sc_1 = (0 | (s[9]&3)<<4) - 32 = -32;
     * sc_2 = (0 | (s[10]&3)<<4) - 32 = -32;
     * sc_13 = ((s[5]>>4)=10 | ((s[9]>>6)&3)=3 <<4) - 32 = 58-32 = 26.
     * qs[0] = 0x03, hmask[0] = 0x01, qs[52] = 0x10, hmask[20] = 0x40. */
    uint8_t b[110] = {0};
    uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
    sc[0] = 0x05; sc[5] = 0xA0; sc[8] = 0x02; sc[9] = 0xC0;
    qs[0] = 0x03; hm[0] = 0x01; qs[52] = 0x10; hm[20] = 0x40;
    put16(b + 108, H_1);
    float y[256];
    llv_dequantize_row(LLV_TYPE_Q3_K, b, y, 256);
    ck_assert(y[0] == 15.0f);   /* q2=3, hb=1 -> q=3; sc_0=5 */
    ck_assert(y[1] == -20.0f);  /* q2=0, hb=0 -> q=-4; 5*-4 */
    ck_assert(y[32] == 128.0f); /* h0 j1: q2=0, hb=(hm[0]>>1)&1=0 -> -4; sc_2=-32 */
    ck_assert(y[20] == 128.0f); /* h0 j0 r20: q2=0, hb=hm[20]&1=0 -> -4; sc_1=-32 */
    ck_assert(y[212] == 26.0f); /* h1 j2 r20: q2=(qs[52]>>4)&3=1, hb=(hm[20]>>6)&1=1 -> 1; sc_13=26 */
}
END_TEST

/* Scale bytes shared by the Q4_K and Q5_K blocks:
 * S[0]=0x0A: sc0=10; S[4]=0x03: m0=3; S[1]=0xC2: sc1=2, top bits 3 -> sc5 high;
 * S[5]=0x41: m1=1, top bits 1 -> m5 high; S[9]=0x27: sc5=(7|3<<4)=55, m5=(2|1<<4)=18.
 * sub-block 4: sc4=(S[8]&15)|(S[0]>>6)<<4 = 0, m4 = 0. */
static void k4_scales(uint8_t *S)
{
    S[0] = 0x0A; S[4] = 0x03; S[1] = 0xC2; S[5] = 0x41; S[9] = 0x27;
}

START_TEST(test_dq_q4_k)
{
    /* d = 0.5, dmin = 1. qs[0] = 0x9F (sub-block 0 q=15, sub-block 1 q=9), qs[71] = 0x60
     * (c=2: sub-block 5 l=7 q=6, sub-block 4 l=7 q=0). */
    uint8_t b[144] = {0};
    put16(b, H_0_5);
    put16(b + 2, H_1);
    k4_scales(b + 4);
    b[16 + 0] = 0x9F; b[16 + 71] = 0x60;
    float y[256];
    llv_dequantize_row(LLV_TYPE_Q4_K, b, y, 256);
    ck_assert(y[0] == 72.0f);    /* 0.5*10*15 - 1*3 */
    ck_assert(y[1] == -3.0f);    /* 0.5*10*0 - 3 */
    ck_assert(y[32] == 8.0f);    /* 0.5*2*9 - 1*1 */
    ck_assert(y[167] == 147.0f); /* e=128+32+7: 0.5*55*6 - 18 */
    ck_assert(y[135] == 0.0f);   /* sub-block 4: sc=m=0 */
}
END_TEST

START_TEST(test_dq_q5_k)
{
    /* As Q4_K plus qh[0]=0x03 (bit 4 for sub-blocks 0, 1 at l=0), qh[7]=0x20 (sub-block 5, l=7). */
    uint8_t b[176] = {0};
    put16(b, H_0_5);
    put16(b + 2, H_1);
    k4_scales(b + 4);
    b[16 + 0] = 0x03; b[16 + 7] = 0x20;
    b[48 + 0] = 0x9F; b[48 + 71] = 0x60;
    float y[256];
    llv_dequantize_row(LLV_TYPE_Q5_K, b, y, 256);
    ck_assert(y[0] == 152.0f);   /* q=15+16: 0.5*10*31 - 3 */
    ck_assert(y[1] == -3.0f);
    ck_assert(y[32] == 24.0f);   /* q=9+16: 0.5*2*25 - 1 */
    ck_assert(y[167] == 587.0f); /* q=6+16: 0.5*55*22 - 18 */
    ck_assert(y[135] == 0.0f);
}
END_TEST

START_TEST(test_dq_q6_k)
{
    /* d = 0.25 @208; scales @192: [0]=-3, [2]=1, [4]=7, [15]=-128.
     * ql[0] = 0x5A, qh[0] = 0x23 (g0 hi 3, g1 hi 0, g2 hi 2, g3 hi 0), ql[113] = 0xF0, qh[49] = 0x40. */
    uint8_t b[210] = {0};
    b[0] = 0x5A; b[113] = 0xF0;
    b[128 + 0] = 0x23; b[128 + 49] = 0x40;
    b[192 + 0] = 0xFD; b[192 + 2] = 0x01; b[192 + 4] = 0x07; b[192 + 15] = 0x80;
    put16(b + 208, H_0_25);
    float y[256];
    llv_dequantize_row(LLV_TYPE_Q6_K, b, y, 256);
    ck_assert(y[0] == -19.5f);  /* q=(10|3<<4)-32=26; 0.25*-3*26 */
    ck_assert(y[64] == 8.75f);  /* g2: q=(5|2<<4)-32=5; scales[4]=7: 0.25*7*5 */
    ck_assert(y[32] == -8.0f);  /* g1: q=(0|0)-32; scales[2]=1 */
    ck_assert(y[241] == 32.0f); /* h1 g3 l17: q=(15|1<<4)-32=-1; scales[15]=-128: 0.25*-128*-1 */
}
END_TEST

START_TEST(test_dq_q8_k_and_floats)
{
    uint8_t b[292] = {0};
    float d = 0.5f;
    memcpy(b, &d, 4);
    b[4] = (uint8_t)(int8_t)-7; b[4 + 255] = 100;
    float y[256];
    llv_dequantize_row(LLV_TYPE_Q8_K, b, y, 256);
    ck_assert(y[0] == -3.5f);
    ck_assert(y[255] == 50.0f);
    ck_assert(y[1] == 0.0f);

    uint8_t h[6];
    put16(h, H_1); put16(h + 2, 0xC000); put16(h + 4, 0x0001);
    llv_dequantize_row(LLV_TYPE_F16, h, y, 3);
    ck_assert(y[0] == 1.0f && y[1] == -2.0f && y[2] == 0x1p-24f);
    put16(h, 0x3F80); put16(h + 2, 0xC049);
    llv_dequantize_row(LLV_TYPE_BF16, h, y, 2);
    ck_assert(y[0] == 1.0f && y[1] == -3.140625f);
}
END_TEST

/* ---- quantizers ----------------------------------------------------------- */

START_TEST(test_q8_0_exact)
{
    /* amax = 127 -> d = 1 exactly; q = roundf(x) (ties away from zero). */
    float x[32] = { 0.5f, 1.5f, -0.5f, -2.5f, 127.0f, -126.6f, 3.49f };
    uint8_t b[34];
    ck_assert_int_eq(llv_quantize_row(LLV_TYPE_Q8_0, x, b, 32), LLAVA_OK);
    ck_assert_uint_eq(b[0] | b[1] << 8, H_1);
    static const int8_t want[7] = { 1, 2, -1, -3, 127, -127, 3 };
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq((int8_t)b[2 + i], want[i]);
    ck_assert_int_eq((int8_t)b[2 + 7], 0);
}
END_TEST

START_TEST(test_q8_k_exact)
{
    /* x[i] = i - 100: the largest magnitude is x[255] = 155, iscale = -127/155,
     * q = nearest(iscale*x), d = 1/iscale = -155/127. x[100] = 0 -> 0;
     * x[255] -> -127; x[0] = -100 -> 100*127/155 = 81.94 -> 82. */
    float x[256];
    for (int i = 0; i < 256; i++)
        x[i] = (float)(i - 100);
    uint8_t b[292];
    ck_assert_int_eq(llv_quantize_row(LLV_TYPE_Q8_K, x, b, 256), LLAVA_OK);
    float d;
    memcpy(&d, b, 4);
    ck_assert(fabsf(d - (-155.0f / 127.0f)) < 1e-6f);
    const int8_t *qs = (const int8_t *)(b + 4);
    ck_assert_int_eq(qs[100], 0);
    ck_assert_int_eq(qs[255], -127);
    ck_assert_int_eq(qs[0], 82);
    for (int g = 0; g < 16; g++) {
        int sum = 0;
        for (int i = 0; i < 16; i++)
            sum += qs[16 * g + i];
        int16_t bs = (int16_t)(b[260 + 2 * g] | b[261 + 2 * g] << 8);
        ck_assert_int_eq(bs, sum);
    }
    /* all-zero block: d = 0 */
    memset(x, 0, sizeof x);
    ck_assert_int_eq(llv_quantize_row(LLV_TYPE_Q8_K, x, b, 256), LLAVA_OK);
    memcpy(&d, b, 4);
    ck_assert(d == 0.0f);
}
END_TEST

START_TEST(test_quantize_errors)
{
    float x[64] = {0};
    uint8_t b[64];
    ck_assert_int_eq(llv_quantize_row(LLV_TYPE_Q4_0, x, b, 33), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llv_quantize_row(20 /* IQ4_NL */, x, b, 32), LLAVA_E_UNSUPPORTED);
    ck_assert_int_eq(llv_quantize_row(4, x, b, 32), LLAVA_E_INVALID_ARG);
}
END_TEST

/* Deterministic N(0,1) samples (LCG + Box-Muller), independent of libc rand. */
static uint64_t rng_state = 0x1234567887654321ull;
static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return ((rng_state >> 11) + 0.5) * 0x1p-53;
}
static float nrand(void) { return (float)(sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand())); }

/*
 * Round trip on N(0,1) data, 64 blocks of 256 (plus a second run with an
 * outlier of 8 per block and one with a constant offset of 3 to exercise the
 * min/offset paths). Bounds: rel_rms = sqrt(sum e^2 / sum x^2); rel_max =
 * max over 32-blocks of max|e| / max|x| in that block. The bounds are the
 * values measured on these quantizers rounded up by ~20%, so a regression in a
 * quantizer or dequantizer shows; theory bounds noted where they are simple.
 */
static const struct rt_bound { int type; double rel_rms; double rel_max; } rt_bounds[] = {
    /* worst of the three variants measured: rel_rms, rel_max */
    { LLV_TYPE_F16, 3e-4, 6e-4 },      /* 2.1e-4, 4.7e-4 (half ulp 2^-11 relative) */
    { LLV_TYPE_BF16, 2.2e-3, 5e-3 },   /* 1.7e-3, 3.9e-3 (half ulp 2^-8) */
    { LLV_TYPE_Q8_0, 0.0095, 0.0055 }, /* 0.0073, 0.0043 (theory: 1/254 + f16(d) rounding) */
    { LLV_TYPE_Q5_0, 0.067, 0.08 },    /* 0.056, 0.067 */
    { LLV_TYPE_Q5_1, 0.05, 0.04 },     /* 0.040, 0.032 */
    { LLV_TYPE_Q4_0, 0.133, 0.16 },    /* 0.111, 0.133 */
    { LLV_TYPE_Q4_1, 0.1, 0.082 },     /* 0.083, 0.068 */
    { LLV_TYPE_Q6_K, 0.027, 0.04 },    /* 0.022, 0.033 */
    { LLV_TYPE_Q5_K, 0.051, 0.073 },   /* 0.042, 0.061 */
    { LLV_TYPE_Q4_K, 0.101, 0.108 },   /* 0.084, 0.090 */
    { LLV_TYPE_Q3_K, 0.21, 0.3 },      /* 0.174, 0.246 */
    { LLV_TYPE_Q2_K, 0.36, 0.54 },     /* 0.298, 0.450 */
};

static void measure_rt(int type, const float *x, int64_t n, double *rel_rms, double *rel_max)
{
    size_t rb;
    ck_assert(llv_row_bytes(type, n, &rb));
    uint8_t *q = malloc(rb);
    float *y = malloc((size_t)n * sizeof(float));
    ck_assert_int_eq(llv_quantize_row(type, x, q, n), LLAVA_OK);
    llv_dequantize_row(type, q, y, n);
    double se = 0, sx = 0, mr = 0;
    for (int64_t b0 = 0; b0 < n; b0 += 32) {
        double amax = 0, emax = 0;
        for (int i = 0; i < 32; i++) {
            double e = (double)y[b0 + i] - x[b0 + i];
            se += e * e;
            sx += (double)x[b0 + i] * x[b0 + i];
            amax = fmax(amax, fabs(x[b0 + i]));
            emax = fmax(emax, fabs(e));
        }
        if (amax > 0 && emax / amax > mr)
            mr = emax / amax;
    }
    *rel_rms = sqrt(se / sx);
    *rel_max = mr;
    free(q);
    free(y);
}

/* The integer-dot activation type per weight type, as spec §2.1 lists it
 * (llama.cpp's vec_dot_type): Q8_0 for the 32-blocks, Q8_K for the K types. */
START_TEST(test_vec_dot_type)
{
    static const int q8_0[] = { LLV_TYPE_Q4_0, LLV_TYPE_Q4_1, LLV_TYPE_Q5_0, LLV_TYPE_Q5_1, LLV_TYPE_Q8_0 };
    static const int q8_k[] = { LLV_TYPE_Q2_K, LLV_TYPE_Q3_K, LLV_TYPE_Q4_K, LLV_TYPE_Q5_K, LLV_TYPE_Q6_K };
    static const int none[] = { LLV_TYPE_F32, LLV_TYPE_F16, LLV_TYPE_BF16, LLV_TYPE_Q8_1, LLV_TYPE_Q8_K, -1, 4, 20, 1000 };
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(llv_vec_dot_type(q8_0[i]), LLV_TYPE_Q8_0);
        ck_assert_int_eq(llv_vec_dot_type(q8_k[i]), LLV_TYPE_Q8_K);
    }
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        ck_assert_int_eq(llv_vec_dot_type(none[i]), -1);
}
END_TEST

START_TEST(test_roundtrip_bounds)
{
    const int64_t n = 256 * 64;
    float *x = malloc(n * sizeof(float));
    for (size_t t = 0; t < sizeof rt_bounds / sizeof rt_bounds[0]; t++) {
        for (int variant = 0; variant < 3; variant++) {
            rng_state = 42 + (uint64_t)variant;
            for (int64_t i = 0; i < n; i++) {
                x[i] = nrand();
                if (variant == 1 && i % 256 == 77) x[i] = 8.0f;   /* outlier */
                if (variant == 2) x[i] += 3.0f;                   /* offset */
            }
            double rr, rm;
            measure_rt(rt_bounds[t].type, x, n, &rr, &rm);
            if (getenv("LLV_PRINT_BOUNDS"))
                printf("%-5s variant %d: rel_rms %.5f rel_max %.5f\n", llv_type_name(rt_bounds[t].type), variant, rr, rm);
            ck_assert_msg(rr <= rt_bounds[t].rel_rms, "%s v%d rel_rms %g > %g", llv_type_name(rt_bounds[t].type),
                          variant, rr, rt_bounds[t].rel_rms);
            ck_assert_msg(rm <= rt_bounds[t].rel_max, "%s v%d rel_max %g > %g", llv_type_name(rt_bounds[t].type),
                          variant, rm, rt_bounds[t].rel_max);
        }
    }
    /* zeros round-trip to zeros for every type */
    memset(x, 0, n * sizeof(float));
    for (size_t t = 0; t < sizeof rt_bounds / sizeof rt_bounds[0]; t++) {
        size_t rb;
        ck_assert(llv_row_bytes(rt_bounds[t].type, 256, &rb));
        uint8_t *q = malloc(rb);
        float y[256];
        ck_assert_int_eq(llv_quantize_row(rt_bounds[t].type, x, q, 256), LLAVA_OK);
        llv_dequantize_row(rt_bounds[t].type, q, y, 256);
        for (int i = 0; i < 256; i++)
            ck_assert(y[i] == 0.0f);
        free(q);
    }
    free(x);
}
END_TEST

static Suite *quant_suite(void)
{
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_type_table);
    tcase_add_test(tc, test_fp16_decode);
    tcase_add_test(tc, test_fp16_encode);
    tcase_add_test(tc, test_bf16);
    tcase_add_test(tc, test_dq_q4_0);
    tcase_add_test(tc, test_dq_q4_1);
    tcase_add_test(tc, test_dq_q5);
    tcase_add_test(tc, test_dq_q8_0);
    tcase_add_test(tc, test_dq_q2_k);
    tcase_add_test(tc, test_dq_q3_k);
    tcase_add_test(tc, test_dq_q4_k);
    tcase_add_test(tc, test_dq_q5_k);
    tcase_add_test(tc, test_dq_q6_k);
    tcase_add_test(tc, test_dq_q8_k_and_floats);
    tcase_add_test(tc, test_q8_0_exact);
    tcase_add_test(tc, test_q8_k_exact);
    tcase_add_test(tc, test_quantize_errors);
    tcase_add_test(tc, test_vec_dot_type);
    tcase_add_test(tc, test_roundtrip_bounds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(quant_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
