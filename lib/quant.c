/*
 * quant.c - ggml tensor types: the type table (spec §1.3), FP16/BF16
 * conversions and the reference dequantizers of every weight type (spec §2).
 * Quantizers live in quant_quantize.c.
 *
 * Every block is read byte by byte at the offsets the spec gives, so the
 * code does not depend on struct packing and reads unaligned blocks safely.
 */
#include "quant.h"

#include <math.h>
#include <string.h>

/* ---- type table ------------------------------------------------------ */

#define T(name, blck, size, w) { name, blck, size, w }
static const llv_type_info type_table[LLV_TYPE_COUNT] = {
    [0]  = T("F32", 1, 4, true),
    [1]  = T("F16", 1, 2, true),
    [2]  = T("Q4_0", 32, 18, true),
    [3]  = T("Q4_1", 32, 20, true),
    [6]  = T("Q5_0", 32, 22, true),
    [7]  = T("Q5_1", 32, 24, true),
    [8]  = T("Q8_0", 32, 34, true),
    [9]  = T("Q8_1", 32, 36, false),   /* activation-only */
    [10] = T("Q2_K", 256, 84, true),
    [11] = T("Q3_K", 256, 110, true),
    [12] = T("Q4_K", 256, 144, true),
    [13] = T("Q5_K", 256, 176, true),
    [14] = T("Q6_K", 256, 210, true),
    [15] = T("Q8_K", 256, 292, false), /* activation-only */
    /* Known ids libllava cannot compute with (geometry from ggml's
     * type_traits / gguf-py GGML_QUANT_SIZES). */
    [16] = T("IQ2_XXS", 256, 66, false),
    [17] = T("IQ2_XS", 256, 74, false),
    [18] = T("IQ3_XXS", 256, 98, false),
    [19] = T("IQ1_S", 256, 50, false),
    [20] = T("IQ4_NL", 32, 18, false),
    [21] = T("IQ3_S", 256, 110, false),
    [22] = T("IQ2_S", 256, 82, false),
    [23] = T("IQ4_XS", 256, 136, false),
    [24] = T("I8", 1, 1, false),
    [25] = T("I16", 1, 2, false),
    [26] = T("I32", 1, 4, false),
    [27] = T("I64", 1, 8, false),
    [28] = T("F64", 1, 8, false),
    [29] = T("IQ1_M", 256, 56, false),
    [30] = T("BF16", 1, 2, true),
    [34] = T("TQ1_0", 256, 54, false),
    [35] = T("TQ2_0", 256, 66, false),
    [39] = T("MXFP4", 32, 17, false),
    /* Newer ids: the spec lists the names only, geometry unknown (size 0). */
    [40] = T("NVFP4", 1, 0, false),
    [41] = T("Q1_0", 1, 0, false),
    [42] = T("Q2_0", 1, 0, false),
    /* 4, 5, 31-33, 36-38: retired, left zeroed (name NULL). */
};
#undef T

const llv_type_info *llv_type_get(int type)
{
    if (type < 0 || type >= LLV_TYPE_COUNT || type_table[type].name == NULL)
        return NULL;
    return &type_table[type];
}

const char *llv_type_name(int type)
{
    const llv_type_info *ti = llv_type_get(type);
    return ti ? ti->name : "(invalid type)";
}

bool llv_row_bytes(int type, int64_t n, size_t *out)
{
    const llv_type_info *ti = llv_type_get(type);
    if (!ti || ti->size == 0 || n < 0 || n % ti->blck != 0)
        return false;
    size_t bytes;
    if (llv_mul_overflow((size_t)(n / ti->blck), ti->size, &bytes))
        return false;
    *out = bytes;
    return true;
}

int llv_vec_dot_type(int type)
{
    switch (type) {
    case LLV_TYPE_Q4_0:
    case LLV_TYPE_Q4_1:
    case LLV_TYPE_Q5_0:
    case LLV_TYPE_Q5_1:
    case LLV_TYPE_Q8_0:
        return LLV_TYPE_Q8_0;
    case LLV_TYPE_Q2_K:
    case LLV_TYPE_Q3_K:
    case LLV_TYPE_Q4_K:
    case LLV_TYPE_Q5_K:
    case LLV_TYPE_Q6_K:
        return LLV_TYPE_Q8_K;
    default:
        return -1;
    }
}

/* ---- FP16 / BF16 ----------------------------------------------------- */

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float llv_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) /* inf / nan (payload kept) */
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) { /* zero / subnormal: man * 2^-24, exact in f32 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t llv_fp32_to_fp16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) /* NaN: keep it a (quiet) NaN with the top payload bits */
        return sign | 0x7e00 | (uint16_t)((x >> 13) & 0x1ff);
    if (x >= 0x47800000u) /* >= 2^16 (or inf): infinity */
        return sign | 0x7c00;
    uint32_t exp = x >> 23;
    if (exp < 113) { /* below 2^-14: half subnormal (or zero) */
        if (exp < 102) /* < 2^-25 (2^-25 itself ties to even 0) */
            return sign;
        uint32_t mant = (x & 0x7fffffu) | 0x800000u;
        uint32_t s = 126 - exp; /* 14..24: value / 2^-24 = mant >> s */
        uint32_t r = mant >> s, rem = mant & ((1u << s) - 1), half = 1u << (s - 1);
        if (rem > half || (rem == half && (r & 1)))
            r++;
        return sign | (uint16_t)r; /* r may carry into the smallest normal: correct */
    }
    uint32_t r = x - (112u << 23); /* rebias exponent 127 -> 15 */
    uint32_t h = r >> 13, rem = r & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++; /* may carry into the exponent, up to 0x7c00 = inf: correct */
    return sign | (uint16_t)h;
}

float llv_bf16_to_fp32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t llv_fp32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: force quiet */
        return (uint16_t)((x >> 16) | 64);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/* ---- block readers ---------------------------------------------------- */

static inline float rd_f16(const uint8_t *p) { return llv_fp16_to_fp32((uint16_t)(p[0] | (p[1] << 8))); }
static inline uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- dequantizers: one block of the type -> blck floats ---------------- */

static void dq_q4_0(const uint8_t *b, float *y)
{
    float d = rd_f16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((qs[j] & 15) - 8) * d;
        y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
    }
}

static void dq_q4_1(const uint8_t *b, float *y)
{
    float d = rd_f16(b), m = rd_f16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(qs[j] & 15) * d + m;
        y[j + 16] = (float)(qs[j] >> 4) * d + m;
    }
}

static void dq_q5_0(const uint8_t *b, float *y)
{
    float d = rd_f16(b);
    uint32_t H = rd_u32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 15) | (int)((H >> j) & 1) << 4;
        int hi = (qs[j] >> 4) | (int)((H >> (j + 16)) & 1) << 4;
        y[j] = (float)(lo - 16) * d;
        y[j + 16] = (float)(hi - 16) * d;
    }
}

static void dq_q5_1(const uint8_t *b, float *y)
{
    float d = rd_f16(b), m = rd_f16(b + 2);
    uint32_t H = rd_u32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 15) | (int)((H >> j) & 1) << 4;
        int hi = (qs[j] >> 4) | (int)((H >> (j + 16)) & 1) << 4;
        y[j] = (float)lo * d + m;
        y[j + 16] = (float)hi * d + m;
    }
}

static void dq_q8_0(const uint8_t *b, float *y)
{
    float d = rd_f16(b);
    const int8_t *qs = (const int8_t *)(b + 2);
    for (int j = 0; j < 32; j++)
        y[j] = (float)qs[j] * d;
}

static void dq_q2_k(const uint8_t *b, float *y)
{
    const uint8_t *scales = b, *qs = b + 16;
    float d = rd_f16(b + 80), dmin = rd_f16(b + 82);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, j = (e % 128) / 32, r = e % 32;
        int q = (qs[32 * h + r] >> (2 * j)) & 3;
        int s = scales[8 * h + 2 * j + (r >= 16)];
        y[e] = d * (float)(s & 15) * (float)q - dmin * (float)(s >> 4);
    }
}

/* Q3_K's sixteen signed 6-bit scales. */
static void q3k_scales(const uint8_t *sc12, int sc[16])
{
    for (int i = 0; i < 16; i++) {
        int low = i < 8 ? sc12[i] & 15 : sc12[i - 8] >> 4;
        int high = (sc12[8 + (i % 4)] >> (2 * (i / 4))) & 3;
        sc[i] = (low | high << 4) - 32;
    }
}

static void dq_q3_k(const uint8_t *b, float *y)
{
    const uint8_t *hmask = b, *qs = b + 32;
    float d = rd_f16(b + 108);
    int sc[16];
    q3k_scales(b + 96, sc);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, j = (e % 128) / 32, r = e % 32;
        int q2 = (qs[32 * h + r] >> (2 * j)) & 3;
        int hb = (hmask[r] >> (4 * h + j)) & 1;
        int q = q2 - (hb ? 0 : 4);
        y[e] = d * (float)sc[8 * h + 2 * j + (r >= 16)] * (float)q;
    }
}

static void dq_q4_k(const uint8_t *b, float *y)
{
    float d = rd_f16(b), dmin = rd_f16(b + 2);
    const uint8_t *S = b + 4, *qs = b + 16;
    for (int s = 0; s < 8; s++) {
        int sc, m;
        llv_k4_scale_min(S, s, &sc, &m);
        float ds = d * (float)sc, ms = dmin * (float)m;
        int c = s / 2, hi = s & 1;
        for (int l = 0; l < 32; l++) {
            int byte = qs[32 * c + l];
            int q = hi ? byte >> 4 : byte & 15;
            y[32 * s + l] = ds * (float)q - ms;
        }
    }
}

static void dq_q5_k(const uint8_t *b, float *y)
{
    float d = rd_f16(b), dmin = rd_f16(b + 2);
    const uint8_t *S = b + 4, *qh = b + 16, *qs = b + 48;
    for (int s = 0; s < 8; s++) {
        int sc, m;
        llv_k4_scale_min(S, s, &sc, &m);
        float ds = d * (float)sc, ms = dmin * (float)m;
        int c = s / 2, hi = s & 1;
        for (int l = 0; l < 32; l++) {
            int byte = qs[32 * c + l];
            int q = (hi ? byte >> 4 : byte & 15) + ((qh[l] >> s) & 1) * 16;
            y[32 * s + l] = ds * (float)q - ms;
        }
    }
}

static void dq_q6_k(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *scales = (const int8_t *)(b + 192);
    float d = rd_f16(b + 208);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, g = (e % 128) / 32, l = e % 32;
        int byte = ql[64 * h + l + 32 * (g & 1)];
        int nib = g < 2 ? byte & 15 : byte >> 4;
        int hi = (qh[32 * h + l] >> (2 * g)) & 3;
        int q = (nib | hi << 4) - 32;
        y[e] = d * (float)scales[8 * h + l / 16 + 2 * g] * (float)q;
    }
}

static void dq_q8_k(const uint8_t *b, float *y)
{
    float d;
    memcpy(&d, b, 4);
    const int8_t *qs = (const int8_t *)(b + 4);
    for (int j = 0; j < 256; j++)
        y[j] = d * (float)qs[j];
}

void llv_dequantize_row(int type, const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    switch (type) {
    case LLV_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    case LLV_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = llv_fp16_to_fp32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        return;
    case LLV_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = llv_bf16_to_fp32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        return;
    default:
        break;
    }
    void (*fn)(const uint8_t *, float *);
    switch (type) {
    case LLV_TYPE_Q4_0: fn = dq_q4_0; break;
    case LLV_TYPE_Q4_1: fn = dq_q4_1; break;
    case LLV_TYPE_Q5_0: fn = dq_q5_0; break;
    case LLV_TYPE_Q5_1: fn = dq_q5_1; break;
    case LLV_TYPE_Q8_0: fn = dq_q8_0; break;
    case LLV_TYPE_Q2_K: fn = dq_q2_k; break;
    case LLV_TYPE_Q3_K: fn = dq_q3_k; break;
    case LLV_TYPE_Q4_K: fn = dq_q4_k; break;
    case LLV_TYPE_Q5_K: fn = dq_q5_k; break;
    case LLV_TYPE_Q6_K: fn = dq_q6_k; break;
    case LLV_TYPE_Q8_K: fn = dq_q8_k; break;
    default:
        /* Not a computable type: callers check llv_weight_init first;
         * produce zeros rather than reading garbage. */
        memset(dst, 0, (size_t)n * sizeof(float));
        return;
    }
    const llv_type_info *ti = &type_table[type];
    for (int64_t i = 0; i < n / ti->blck; i++)
        fn(p + (size_t)i * ti->size, dst + i * ti->blck);
}
