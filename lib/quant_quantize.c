/*
 * quant_quantize.c - reference quantizers (f32 row -> blocks) for every
 * weight type and for the activation types Q8_0/Q8_K (spec §2, §2.1).
 *
 * The weight quantizers are simple and deterministic (llama.cpp's importance
 * weighted searches come later with llava-quantize):
 *  - symmetric types (Q4_0, Q5_0, Q3_K and Q6_K sub-blocks): 19 candidate
 *    steps around amax/half, each refined by least squares (d = sum xq /
 *    sum q^2); the one of least squared error wins. Q8_0 keeps amax/127.
 *  - asymmetric types (Q4_1, Q5_1, Q2_K/Q4_K/Q5_K sub-blocks): min/max start,
 *    then up to 4 rounds of level assignment + least-squares (d, m) (m <= 0
 *    for the K types, whose offset only subtracts).
 *  - the K types then round the sub-block scales/mins to their 4/6/8-bit
 *    integers against f16 super-scales; levels are always recomputed from the
 *    stored (rounded) scales, so dequantization sees exactly what was fitted.
 * Error bounds measured on N(0,1) data are asserted in tests/check_quant.c.
 */
#include "quant.h"

#include <math.h>
#include <string.h>

static inline void wr_f16(uint8_t *p, float v)
{
    uint16_t h = llv_fp32_to_fp16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}
static inline float f16_round(float v) { return llv_fp16_to_fp32(llv_fp32_to_fp16(v)); }
static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
/* Round half away from zero, as ggml's reference quantizers (roundf). */
static inline int round_away(float v) { return (int)roundf(v); }
/* Round half to even (default FP environment). */
static inline int round_even(float v) { return (int)nearbyintf(v); }

/* Signed element with the largest magnitude (first one on ties). */
static float signed_absmax(const float *x, int n)
{
    float amax = 0.0f, mx = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            mx = x[i];
        }
    }
    return mx;
}

static void min_max(const float *x, int n, float *mn, float *mx)
{
    *mn = x[0];
    *mx = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < *mn) *mn = x[i];
        if (x[i] > *mx) *mx = x[i];
    }
}

/* Best scale of a symmetric block: levels -half..half-1, y = d*q. Tries
 * 19 step candidates around mx/-half (mx = the signed element of largest
 * magnitude) and for each the least-squares d of the resulting levels;
 * returns the d of least squared error (0 for an all-zero block). */
static float sym_scale_search(const float *x, int n, int half)
{
    float mx = signed_absmax(x, n);
    if (mx == 0.0f)
        return 0.0f;
    float best_d = mx / (float)-half, best_err = INFINITY;
    for (int is = -9; is <= 9; is++) {
        float iscale = -((float)half + 0.1f * (float)is) / mx;
        double sxq = 0, sqq = 0;
        for (int i = 0; i < n; i++) {
            int q = clampi(round_away(x[i] * iscale), -half, half - 1);
            sxq += (double)x[i] * q;
            sqq += (double)q * q;
        }
        if (sqq <= 0)
            continue;
        float d = (float)(sxq / sqq);
        double err = 0;
        float id = 1.0f / d;
        for (int i = 0; i < n; i++) {
            int q = clampi(round_away(x[i] * id), -half, half - 1);
            double e = x[i] - d * q;
            err += e * e;
        }
        if (err < best_err) {
            best_err = (float)err;
            best_d = d;
        }
    }
    return best_d;
}

/* Symmetric 4/5-bit block: levels -half..half-1 (stored q+half). Returns
 * the stored f16 scale; q[] gets 0..2*half-1. */
static float quant_sym(const float *x, int n, int half, uint8_t *q)
{
    float d = f16_round(sym_scale_search(x, n, half));
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < n; i++)
        q[i] = (uint8_t)clampi(round_away(x[i] * id) + half, 0, 2 * half - 1);
    return d;
}

/* Least-squares refinement of an asymmetric fit y = d*q + m (q in 0..nmax):
 * alternately assign levels and solve the 2x2 normal equations, keeping the
 * best fit; with nonpos_m the offset is constrained to m <= 0 (K types). */
static void asym_refine(const float *x, int n, int nmax, bool nonpos_m, float *d_io, float *m_io)
{
    float d = *d_io, m = *m_io;
    double best = INFINITY;
    for (int it = 0; it < 4 && d > 0.0f; it++) {
        double sq = 0, sqq = 0, sx = 0, sxq = 0, err = 0;
        float id = 1.0f / d;
        for (int i = 0; i < n; i++) {
            int q = clampi(round_away((x[i] - m) * id), 0, nmax);
            double e = x[i] - (d * q + m);
            err += e * e;
            sq += q;
            sqq += (double)q * q;
            sx += x[i];
            sxq += (double)x[i] * q;
        }
        if (err >= best)
            break;
        best = err;
        *d_io = d;
        *m_io = m;
        double det = n * sqq - sq * sq;
        if (det <= 0)
            break;
        double nd = (n * sxq - sq * sx) / det, nm = (sx - nd * sq) / n;
        if (nonpos_m && nm > 0) {
            nm = 0;
            nd = sqq > 0 ? sxq / sqq : 0;
        }
        if (!(nd > 0))
            break;
        d = (float)nd;
        m = (float)nm;
    }
}

/* Asymmetric block: levels 0..nmax, y = q*d + m. */
static void quant_asym(const float *x, int n, int nmax, uint8_t *q, float *d_out, float *m_out)
{
    float mn, mx;
    min_max(x, n, &mn, &mx);
    float d0 = (mx - mn) / (float)nmax, m0 = mn;
    asym_refine(x, n, nmax, false, &d0, &m0);
    float m = f16_round(m0);
    float d = f16_round(d0);
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < n; i++)
        q[i] = (uint8_t)clampi(round_away((x[i] - m) * id), 0, nmax);
    *d_out = d;
    *m_out = m;
}

static void q4_0_block(const float *x, uint8_t *b)
{
    uint8_t q[32];
    wr_f16(b, quant_sym(x, 32, 8, q));
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
}

static void q4_1_block(const float *x, uint8_t *b)
{
    uint8_t q[32];
    float d, m;
    quant_asym(x, 32, 15, q, &d, &m);
    wr_f16(b, d);
    wr_f16(b + 2, m);
    for (int j = 0; j < 16; j++)
        b[4 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
}

static void pack5(const uint8_t q[32], uint8_t *qh, uint8_t *qs)
{
    uint32_t H = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
        H |= (uint32_t)(q[j] >> 4) << j;
        H |= (uint32_t)(q[j + 16] >> 4) << (j + 16);
    }
    for (int i = 0; i < 4; i++)
        qh[i] = (uint8_t)(H >> (8 * i));
}

static void q5_0_block(const float *x, uint8_t *b)
{
    uint8_t q[32];
    wr_f16(b, quant_sym(x, 32, 16, q));
    pack5(q, b + 2, b + 6);
}

static void q5_1_block(const float *x, uint8_t *b)
{
    uint8_t q[32];
    float d, m;
    quant_asym(x, 32, 31, q, &d, &m);
    wr_f16(b, d);
    wr_f16(b + 2, m);
    pack5(q, b + 4, b + 8);
}

static void q8_0_block(const float *x, uint8_t *b)
{
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr_f16(b, d);
    for (int j = 0; j < 32; j++)
        b[2 + j] = (uint8_t)(int8_t)clampi(round_away(x[j] * id), -127, 127);
}

/*
 * Asymmetric K-quant of one 256 block: nsub sub-blocks of len values, levels
 * 0..nmax, sub-block scale and min as integers 0..smax times the f16 super
 * scales d and dmin: y = d*sc*q - dmin*m. Outputs sc[], m[], q[256], d, dmin.
 */
static void kquant_asym(const float *x, int nsub, int len, int nmax, int smax,
                        int *sc, int *m, uint8_t *q, float *d_out, float *dmin_out)
{
    float step[16], neg_min[16];
    float max_step = 0.0f, max_neg_min = 0.0f;
    for (int s = 0; s < nsub; s++) {
        float mn, mx;
        min_max(x + s * len, len, &mn, &mx);
        if (mn > 0.0f) mn = 0.0f; /* m >= 0: the offset only shifts down */
        float st = (mx - mn) / (float)nmax, off = mn;
        asym_refine(x + s * len, len, nmax, true, &st, &off);
        step[s] = st;
        neg_min[s] = -off;
        if (step[s] > max_step) max_step = step[s];
        if (neg_min[s] > max_neg_min) max_neg_min = neg_min[s];
    }
    float d = f16_round(max_step / (float)smax);
    float dmin = f16_round(max_neg_min / (float)smax);
    for (int s = 0; s < nsub; s++) {
        m[s] = dmin > 0.0f ? clampi(round_away(neg_min[s] / dmin), 0, smax) : 0;
        float off = dmin * (float)m[s];
        sc[s] = d > 0.0f ? clampi(round_away(step[s] / d), 0, smax) : 0;
        float st = d * (float)sc[s];
        float ist = st > 0.0f ? 1.0f / st : 0.0f;
        for (int i = 0; i < len; i++)
            q[s * len + i] = (uint8_t)clampi(round_away((x[s * len + i] + off) * ist), 0, nmax);
    }
    *d_out = d;
    *dmin_out = dmin;
}

/*
 * Symmetric K-quant of one 256 block: nsub sub-blocks of len, levels
 * -half..half-1, signed integer sub-scales in [-smax-1, smax] times f16 d.
 * q[] gets the signed level.
 */
static float kquant_sym(const float *x, int nsub, int len, int half, int smax, int *sc, int *q)
{
    float sub[16], big = 0.0f;
    for (int s = 0; s < nsub; s++) {
        sub[s] = sym_scale_search(x + s * len, len, half);
        if (fabsf(sub[s]) > fabsf(big)) big = sub[s];
    }
    float d = f16_round(big / (float)-(smax + 1));
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int s = 0; s < nsub; s++) {
        sc[s] = clampi(round_away(sub[s] * id), -(smax + 1), smax);
        float st = d * (float)sc[s];
        float ist = st != 0.0f ? 1.0f / st : 0.0f;
        for (int i = 0; i < len; i++)
            q[s * len + i] = clampi(round_away(x[s * len + i] * ist), -half, half - 1);
    }
    return d;
}

static void q2_k_block(const float *x, uint8_t *b)
{
    int sc[16], m[16];
    uint8_t q[256];
    float d, dmin;
    kquant_asym(x, 16, 16, 3, 15, sc, m, q, &d, &dmin);
    memset(b, 0, 84);
    for (int s = 0; s < 16; s++)
        b[s] = (uint8_t)(sc[s] | m[s] << 4);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, j = (e % 128) / 32, r = e % 32;
        b[16 + 32 * h + r] |= (uint8_t)(q[e] << (2 * j));
    }
    wr_f16(b + 80, d);
    wr_f16(b + 82, dmin);
}

static void q3_k_block(const float *x, uint8_t *b)
{
    int sc[16], q[256];
    float d = kquant_sym(x, 16, 16, 4, 31, sc, q);
    memset(b, 0, 110);
    uint8_t *hmask = b, *qs = b + 32, *S = b + 96;
    for (int i = 0; i < 16; i++) {
        int u = sc[i] + 32; /* 0..63 */
        if (i < 8)
            S[i] |= (uint8_t)(u & 15);
        else
            S[i - 8] |= (uint8_t)((u & 15) << 4);
        S[8 + (i % 4)] |= (uint8_t)((u >> 4) << (2 * (i / 4)));
    }
    for (int e = 0; e < 256; e++) {
        int h = e / 128, j = (e % 128) / 32, r = e % 32;
        int u = q[e] + 4; /* 0..7: low 2 bits in qs, bit 2 in hmask (set = no -4) */
        qs[32 * h + r] |= (uint8_t)((u & 3) << (2 * j));
        hmask[r] |= (uint8_t)((u >> 2) << (4 * h + j));
    }
    wr_f16(b + 108, d);
}

/* Pack eight 6-bit (scale, min) pairs for Q4_K/Q5_K (inverse of get_scale_min_k4). */
static void pack_k4_scales(const int sc[8], const int m[8], uint8_t S[12])
{
    for (int j = 0; j < 4; j++) {
        S[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        S[j + 4] = (uint8_t)((m[j] & 63) | (m[j + 4] >> 4) << 6);
        S[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

static void q4_k_block(const float *x, uint8_t *b)
{
    int sc[8], m[8];
    uint8_t q[256];
    float d, dmin;
    kquant_asym(x, 8, 32, 15, 63, sc, m, q, &d, &dmin);
    wr_f16(b, d);
    wr_f16(b + 2, dmin);
    pack_k4_scales(sc, m, b + 4);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            b[16 + 32 * c + l] = (uint8_t)(q[64 * c + l] | q[64 * c + 32 + l] << 4);
}

static void q5_k_block(const float *x, uint8_t *b)
{
    int sc[8], m[8];
    uint8_t q[256];
    float d, dmin;
    kquant_asym(x, 8, 32, 31, 63, sc, m, q, &d, &dmin);
    wr_f16(b, d);
    wr_f16(b + 2, dmin);
    pack_k4_scales(sc, m, b + 4);
    uint8_t *qh = b + 16, *qs = b + 48;
    memset(qh, 0, 32);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
            qs[32 * c + l] = (uint8_t)((lo & 15) | (hi & 15) << 4);
            qh[l] |= (uint8_t)((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
        }
}

static void q6_k_block(const float *x, uint8_t *b)
{
    int sc[16], q[256];
    float d = kquant_sym(x, 16, 16, 32, 127, sc, q);
    memset(b, 0, 210);
    uint8_t *ql = b, *qh = b + 128;
    for (int s = 0; s < 16; s++)
        b[192 + s] = (uint8_t)(int8_t)sc[s];
    for (int e = 0; e < 256; e++) {
        int h = e / 128, g = (e % 128) / 32, l = e % 32;
        int u = q[e] + 32; /* 0..63 */
        ql[64 * h + l + 32 * (g & 1)] |= (uint8_t)((u & 15) << (g < 2 ? 0 : 4));
        qh[32 * h + l] |= (uint8_t)((u >> 4) << (2 * g));
    }
    wr_f16(b + 208, d);
}

/* Q8_K exactly as spec §2.1 (quantize_row_q8_K_ref). */
static void q8_k_block(const float *x, uint8_t *b)
{
    float mx = signed_absmax(x, 256);
    float d = 0.0f;
    int8_t *qs = (int8_t *)(b + 4);
    if (mx == 0.0f) {
        memset(b, 0, 292);
        return;
    }
    float iscale = -127.0f / mx;
    for (int j = 0; j < 256; j++)
        qs[j] = (int8_t)LLV_MIN(127, round_even(iscale * x[j]));
    d = 1.0f / iscale;
    memcpy(b, &d, 4);
    for (int g = 0; g < 16; g++) {
        int sum = 0;
        for (int i = 0; i < 16; i++)
            sum += qs[16 * g + i];
        b[260 + 2 * g] = (uint8_t)(sum & 0xff);
        b[261 + 2 * g] = (uint8_t)((sum >> 8) & 0xff);
    }
}

int llv_quantize_row(int type, const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    const llv_type_info *ti = llv_type_get(type);
    if (!ti || n < 0 || ti->blck <= 0 || n % ti->blck != 0)
        return LLAVA_E_INVALID_ARG;
    switch (type) {
    case LLV_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return LLAVA_OK;
    case LLV_TYPE_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = llv_fp32_to_fp16(src[i]);
            p[2 * i] = (uint8_t)h;
            p[2 * i + 1] = (uint8_t)(h >> 8);
        }
        return LLAVA_OK;
    case LLV_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = llv_fp32_to_bf16(src[i]);
            p[2 * i] = (uint8_t)h;
            p[2 * i + 1] = (uint8_t)(h >> 8);
        }
        return LLAVA_OK;
    default:
        break;
    }
    void (*fn)(const float *, uint8_t *);
    switch (type) {
    case LLV_TYPE_Q4_0: fn = q4_0_block; break;
    case LLV_TYPE_Q4_1: fn = q4_1_block; break;
    case LLV_TYPE_Q5_0: fn = q5_0_block; break;
    case LLV_TYPE_Q5_1: fn = q5_1_block; break;
    case LLV_TYPE_Q8_0: fn = q8_0_block; break;
    case LLV_TYPE_Q2_K: fn = q2_k_block; break;
    case LLV_TYPE_Q3_K: fn = q3_k_block; break;
    case LLV_TYPE_Q4_K: fn = q4_k_block; break;
    case LLV_TYPE_Q5_K: fn = q5_k_block; break;
    case LLV_TYPE_Q6_K: fn = q6_k_block; break;
    case LLV_TYPE_Q8_K: fn = q8_k_block; break;
    default:
        return LLAVA_E_UNSUPPORTED;
    }
    for (int64_t i = 0; i < n / ti->blck; i++)
        fn(src + i * ti->blck, p + (size_t)i * ti->size);
    return LLAVA_OK;
}
