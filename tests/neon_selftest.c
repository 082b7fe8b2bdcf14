/*
 * neon_selftest.c - the NEON kernel table against the plain C references,
 * without the Check library, so that tests/check_neon.sh can cross-compile
 * it statically for aarch64 and run it under qemu-user.
 *
 * Checks: dispatch picks "neon"; every micro-kernel of the table (dots,
 * axpy, scale, dequantization, packed GEMM strips of every shape, exp and
 * the activations) against kernels_ref.c / libm on random data of sizes
 * that are not multiples of the vector width; the integer block dots against
 * a double dot of the dequantized rows; llv_matmul (GEMV and GEMM drivers on
 * the NEON table) against llv_matmul_ref; llv_attention against its run on the
 * forced reference table. Prints "N passed, M failed" and
 * exits 1 on any failure. Also builds on x86 (then it checks whatever table
 * is dispatched there and skips, exit 77, unless the table is "neon").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "kernels_impl.h"

static int n_pass, n_fail;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (cond) {                                        \
            n_pass++;                                      \
        } else {                                           \
            n_fail++;                                      \
            if (n_fail <= 30) {                            \
                printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                printf(__VA_ARGS__);                       \
                printf("\n");                              \
            }                                              \
        }                                                  \
    } while (0)

static uint64_t rng = 0x243F6A8885A308D3ull;
static double urand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return ((rng >> 11) + 0.5) * 0x1p-53;
}
static float nrand(void) { return (float)(sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand())); }
static void fill(float *x, int64_t n, float s)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = s * nrand();
}

static const int wtypes[] = { LLV_TYPE_F32,  LLV_TYPE_F16,  LLV_TYPE_BF16, LLV_TYPE_Q4_0, LLV_TYPE_Q4_1,
                              LLV_TYPE_Q5_0, LLV_TYPE_Q5_1, LLV_TYPE_Q8_0, LLV_TYPE_Q2_K, LLV_TYPE_Q3_K,
                              LLV_TYPE_Q4_K, LLV_TYPE_Q5_K, LLV_TYPE_Q6_K };
#define N_WTYPES (int)(sizeof wtypes / sizeof wtypes[0])

static void test_dots(const llv_kernel_ops *f, const llv_kernel_ops *r)
{
    static const int64_t sizes[] = { 0, 1, 3, 4, 5, 7, 8, 15, 16, 17, 31, 33, 63, 75, 257, 1000, 4099 };
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int64_t n = sizes[si];
        float *a = malloc((n + 1) * sizeof(float)), *b = malloc((n + 1) * sizeof(float));
        float *y1 = malloc((n + 1) * sizeof(float)), *y2 = malloc((n + 1) * sizeof(float));
        uint16_t *h = malloc((n + 1) * 2), *bh = malloc((n + 1) * 2);
        fill(a, n + 1, 1.0f);
        fill(b, n + 1, 1.0f);
        for (int64_t i = 0; i <= n; i++) {
            h[i] = llv_fp32_to_fp16(a[i]);
            bh[i] = llv_fp32_to_bf16(a[i]);
        }
        double mag = 0;
        for (int64_t i = 0; i < n; i++)
            mag += fabs((double)a[i] * b[i]);
        double tol = 1e-6 * mag + 1e-7;
        float g, w;
        g = f->dot_f32(a, b, n); w = r->dot_f32(a, b, n);
        CHECK(fabs(g - w) <= tol, "dot_f32 n %lld: %.9g vs %.9g", (long long)n, g, w);
        g = f->dot_f16(h, b, n); w = r->dot_f16(h, b, n);
        CHECK(fabs(g - w) <= tol, "dot_f16 n %lld: %.9g vs %.9g", (long long)n, g, w);
        g = f->dot_bf16(bh, b, n); w = r->dot_bf16(bh, b, n);
        CHECK(fabs(g - w) <= tol, "dot_bf16 n %lld: %.9g vs %.9g", (long long)n, g, w);
        for (int op = 0; op < 3; op++) {
            memcpy(y1, b, (n + 1) * sizeof(float));
            memcpy(y2, b, (n + 1) * sizeof(float));
            if (op == 0) { f->axpy_f32(y1, 0.7f, a, n); r->axpy_f32(y2, 0.7f, a, n); }
            if (op == 1) { f->axpy_f16(y1, -1.3f, h, n); r->axpy_f16(y2, -1.3f, h, n); }
            if (op == 2) { f->scale_f32(y1, 0.3f, n); r->scale_f32(y2, 0.3f, n); }
            int bad = 0;
            for (int64_t i = 0; i <= n; i++) /* element n must stay untouched */
                bad += !(fabsf(y1[i] - y2[i]) <= 1e-6f * (1 + fabsf(y2[i])));
            CHECK(bad == 0, "axpy/scale op %d n %lld: %d elements differ", op, (long long)n, bad);
        }
        free(a); free(b); free(y1); free(y2); free(h); free(bh);
    }
}

static void test_gemm_packed(const llv_kernel_ops *f, const llv_kernel_ops *r)
{
    static const int nrs[] = { 1, 2, 3, 4, 5, 7, 8, 13, 15, 16 };
    static const int64_t kcs[] = { 0, 1, 5, 16, 77 };
    enum { LDX = 80, LDW2 = 19, LDY = 17 };
    static float x[LLV_GEMM_PMR * LDX], wp[80 * LLV_GEMM_PNR], wp2[80 * LDW2];
    fill(x, LLV_GEMM_PMR * LDX, 1.0f);
    fill(wp, 80 * LLV_GEMM_PNR, 1.0f);
    fill(wp2, 80 * LDW2, 1.0f);
    for (size_t ki = 0; ki < sizeof kcs / sizeof kcs[0]; ki++)
        for (int mr = 1; mr <= LLV_GEMM_PMR; mr++)
            for (size_t ni = 0; ni < sizeof nrs / sizeof nrs[0]; ni++) {
                int64_t kc = kcs[ki];
                int nr = nrs[ni], bad = 0;
                float c1[LLV_GEMM_PMR * LDY], c2[LLV_GEMM_PMR * LDY], c3[LLV_GEMM_PMR * LDY], c4[LLV_GEMM_PMR * LDY];
                for (int i = 0; i < LLV_GEMM_PMR * LDY; i++)
                    c1[i] = c2[i] = c3[i] = c4[i] = (float)i;
                f->gemm_packed(x, LDX, mr, wp, LLV_GEMM_PNR, kc, c1, LDY, nr);
                r->gemm_packed(x, LDX, mr, wp, LLV_GEMM_PNR, kc, c2, LDY, nr);
                f->gemm_packed(x, LDX, mr, wp2, LDW2, kc, c3, LDY, nr); /* unaligned rows */
                r->gemm_packed(x, LDX, mr, wp2, LDW2, kc, c4, LDY, nr);
                for (int i = 0; i < LLV_GEMM_PMR * LDY; i++) {
                    float tol = 1e-5f * (1 + fabsf(c2[i])) * (1 + kc / 16.0f);
                    bad += !(fabsf(c1[i] - c2[i]) <= tol) + !(fabsf(c3[i] - c4[i]) <= tol);
                }
                CHECK(bad == 0, "gemm_packed %dx%d kc %lld: %d values differ", mr, nr, (long long)kc, bad);
            }
}

static void test_to_f32(const llv_kernel_ops *f, const llv_kernel_ops *r)
{
    for (int t = 0; t < N_WTYPES; t++) {
        int type = wtypes[t];
        int64_t n = llv_type_get(type)->blck == 1 ? 517 : 1024;
        size_t rb;
        llv_row_bytes(type, n, &rb);
        float *x = malloc(n * sizeof(float)), *y1 = malloc(n * sizeof(float)), *y2 = malloc(n * sizeof(float));
        uint8_t *q = malloc(rb);
        fill(x, n, 2.0f);
        llv_quantize_row(type, x, q, n);
        f->to_f32(type, q, y1, n);
        r->to_f32(type, q, y2, n);
        int bad = 0;
        for (int64_t i = 0; i < n; i++)
            bad += !(y1[i] == y2[i] || fabsf(y1[i] - y2[i]) <= 4e-7f * fabsf(y2[i]));
        CHECK(bad == 0, "to_f32 %s: %d values differ", llv_type_name(type), bad);
        free(x); free(y1); free(y2); free(q);
    }
}

/* exp and the activations against libm in double (a few ulp). */
static double act_ref(int which, double v)
{
    switch (which) {
    case 0: return exp(v);
    case 1: return v / (1 + exp(-v));
    case 2: return v / (1 + exp(-1.702 * v));
    default: return 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    }
}

static void test_activations(const llv_kernel_ops *f)
{
    static const char *names[4] = { "exp", "silu", "quick_gelu", "gelu_tanh" };
    enum { N = 1003 };
    static float x[N], y[N];
    for (int which = 0; which < 4; which++) {
        void (*fn)(float *, int64_t) = which == 0 ? f->exp_f32 : which == 1 ? f->silu
                                     : which == 2 ? f->quick_gelu : f->gelu_tanh;
        if (!fn)
            continue;
        for (int i = 0; i < N; i++)
            x[i] = (float)(-90.0 + 180.0 * urand());
        x[0] = 0.0f; x[1] = -87.0f; x[2] = 88.0f; x[3] = -100.0f; x[4] = 100.0f; x[5] = NAN;
        memcpy(y, x, sizeof x);
        fn(y, N);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            double want = act_ref(which, x[i]);
            if (isnan(x[i])) {
                bad += !isnan(y[i]);
                continue;
            }
            if (isinf(want) || (which == 0 && want > 3.4e38)) {
                bad += !(isinf(y[i]) && y[i] > 0);
                continue;
            }
            /* exp: relative (a few ulp); activations: check_kernels.c's bound, which
             * allows the f32 underflow of x*sigmoid(x) for very negative x */
            double tol = which == 0 ? 4e-6 * want + 1e-37 : 2e-6 * (1 + fabs(want));
            bad += !(fabs(y[i] - want) <= tol);
        }
        CHECK(bad == 0, "%s: %d of %d values off", names[which], bad, N);
    }
    if (f->swiglu) {
        float g[37], u[37], o[37];
        fill(g, 37, 3.0f);
        fill(u, 37, 1.0f);
        f->swiglu(o, g, u, 37);
        int bad = 0;
        for (int i = 0; i < 37; i++) {
            double want = g[i] / (1 + exp(-(double)g[i])) * u[i];
            bad += !(fabs(o[i] - want) <= 2e-6 * (1 + fabs(want)));
        }
        CHECK(bad == 0, "swiglu: %d values off", bad);
    }
}

/* Integer block dots: against a double dot of the dequantized rows (the
 * integer sums are exact, so only f32 rounding of the block sums differs). */
static void test_dot_q8(const llv_kernel_ops *f, int *n_int_types)
{
    *n_int_types = 0;
    if (!f->q8_partner || !f->dot_q8)
        return;
    for (int t = 3; t < N_WTYPES; t++) {
        int type = wtypes[t], partner = f->q8_partner(type);
        if (partner < 0)
            continue;
        ++*n_int_types;
        int64_t blck = llv_type_get(type)->blck;
        static const int64_t nblocks[] = { 1, 3, 8, 17 };
        for (int ni = 0; ni < 4; ni++) {
            int64_t n = nblocks[ni] * (partner == LLV_TYPE_Q8_K ? 256 : blck);
            size_t wrb, xrb;
            llv_row_bytes(type, n, &wrb);
            llv_row_bytes(partner, n, &xrb);
            float *x = malloc(n * sizeof(float)), *xd = malloc(n * sizeof(float)), *wf = malloc(n * sizeof(float));
            uint8_t *wq = malloc(wrb), *xq = malloc(xrb);
            for (int rep = 0; rep < 3; rep++) {
                fill(wf, n, rep == 2 ? 0.01f : 1.0f);
                fill(x, n, 2.0f);
                llv_quantize_row(type, wf, wq, n);
                llv_quantize_row(partner, x, xq, n);
                llv_dequantize_row(type, wq, wf, n);
                llv_dequantize_row(partner, xq, xd, n);
                double want = 0, mag = 0;
                for (int64_t k = 0; k < n; k++) {
                    want += (double)wf[k] * xd[k];
                    mag += fabs((double)wf[k] * xd[k]);
                }
                float got = f->dot_q8(type, wq, xq, n);
                CHECK(fabs(got - want) <= 2e-6 * mag + 1e-6, "dot_q8 %s n %lld: %.9g want %.9g",
                      llv_type_name(type), (long long)n, got, want);
            }
            free(x); free(xd); free(wf); free(wq); free(xq);
        }
    }
}

/* The drivers on the dispatched table vs llv_matmul_ref. The GEMV of block
 * types may use the integer path (activations rounded to Q8): allowed extra
 * error 0.6 * (amax(x)/127) * sum|w| per output. */
static void test_matmul(void)
{
    static const int64_t shapes[][3] = { { 256, 37, 1 }, { 512, 21, 3 }, { 768, 50, 7 }, { 256, 100, 13 } };
    for (int t = 0; t < N_WTYPES; t++)
        for (int s = 0; s < 4; s++) {
            int type = wtypes[t];
            int64_t n_in = shapes[s][0], n_out = shapes[s][1], n_rows = shapes[s][2];
            size_t rb;
            llv_row_bytes(type, n_in, &rb);
            uint8_t *wd = malloc(rb * n_out);
            float *row = malloc(n_in * sizeof(float)), *x = malloc(n_in * n_rows * sizeof(float));
            float *y1 = malloc(n_out * n_rows * sizeof(float)), *y2 = malloc(n_out * n_rows * sizeof(float));
            float *bias = malloc(n_out * sizeof(float)), *wabs = malloc(n_out * sizeof(float));
            for (int64_t o = 0; o < n_out; o++) {
                fill(row, n_in, 1.0f);
                llv_quantize_row(type, row, wd + o * rb, n_in);
                llv_dequantize_row(type, wd + o * rb, row, n_in);
                double a = 0;
                for (int64_t k = 0; k < n_in; k++)
                    a += fabs(row[k]);
                wabs[o] = (float)a;
            }
            fill(x, n_in * n_rows, 1.0f);
            fill(bias, n_out, 1.0f);
            llv_weight w;
            if (!llv_weight_init(&w, type, n_in, n_out, wd)) {
                CHECK(0, "weight_init %s", llv_type_name(type));
                continue;
            }
            llv_matmul(&w, x, n_rows, y1, bias, 1 + s % 2); /* 1 or 2 threads */
            llv_matmul_ref(&w, x, n_rows, y2, bias);
            int bad = 0;
            for (int64_t m = 0; m < n_rows; m++) {
                float amax = 0;
                for (int64_t k = 0; k < n_in; k++)
                    amax = fmaxf(amax, fabsf(x[m * n_in + k]));
                for (int64_t o = 0; o < n_out; o++) {
                    double tol = 1e-5 * (1 + fabs(y2[m * n_out + o])) * (1 + n_in / 256.0) +
                                 (llv_type_get(type)->blck > 1 ? 0.6 * amax / 127 * wabs[o] : 0);
                    bad += !(fabs(y1[m * n_out + o] - y2[m * n_out + o]) <= tol);
                }
            }
            CHECK(bad == 0, "matmul %s %lldx%lld rows %lld: %d outputs off", llv_type_name(type), (long long)n_out,
                  (long long)n_in, (long long)n_rows, bad);
            free(wd); free(row); free(x); free(y1); free(y2); free(bias); free(wabs);
        }
}

/* Attention (dots, axpy, exp of the table) vs the same call on the forced
 * plain reference: f32 and f16 K/V, causal and full, GQA, odd head_dim. */
static void test_attention(void)
{
    enum { NQ = 5, NKV = 37, NH = 4, NHKV = 2, HD = 20 };
    static float q[NQ * NH * HD], k[NKV * NHKV * HD], v[NKV * NHKV * HD], o1[NQ * NH * HD], o2[NQ * NH * HD];
    static uint16_t kh[NKV * NHKV * HD], vh[NKV * NHKV * HD];
    fill(q, NQ * NH * HD, 1.0f);
    fill(k, NKV * NHKV * HD, 1.0f);
    fill(v, NKV * NHKV * HD, 1.0f);
    for (int i = 0; i < NKV * NHKV * HD; i++) {
        kh[i] = llv_fp32_to_fp16(k[i]);
        vh[i] = llv_fp32_to_fp16(v[i]);
    }
    for (int f16 = 0; f16 < 2; f16++)
        for (int causal = 0; causal < 2; causal++) {
            const void *K = f16 ? (const void *)kh : (const void *)k, *V = f16 ? (const void *)vh : (const void *)v;
            int kvt = f16 ? LLV_TYPE_F16 : LLV_TYPE_F32;
            for (int ref = 0; ref < 2; ref++) {
                llv_kernels_force_reference(ref);
                llv_attention(ref ? o2 : o1, NH * HD, q, NH * HD, NQ, K, V, kvt, NHKV * HD, NKV, NH, NHKV, HD,
                              1.0f / sqrtf((float)HD), causal, NKV - NQ, 2);
            }
            llv_kernels_force_reference(0);
            int bad = 0;
            for (int i = 0; i < NQ * NH * HD; i++)
                bad += !(fabsf(o1[i] - o2[i]) <= 1e-5f * (1 + fabsf(o2[i])));
            CHECK(bad == 0, "attention f16 %d causal %d: %d values differ", f16, causal, bad);
        }
}

int main(void)
{
    const char *isa = llv_kernels_isa();
    const llv_kernel_ops *f = llv_ops(), *r = llv_kernel_ops_ref();
    printf("llv_kernels_isa() = %s\n", isa);
#if defined(__aarch64__)
    CHECK(strcmp(isa, "neon") == 0, "dispatch picked '%s', not 'neon'", isa);
#else
    if (strcmp(isa, "neon") != 0) {
        printf("SKIP: not an aarch64 build\n");
        return 77;
    }
#endif
    int n_int = 0;
    test_dots(f, r);
    test_gemm_packed(f, r);
    test_to_f32(f, r);
    test_activations(f);
    test_dot_q8(f, &n_int);
    test_matmul();
    test_attention();
    CHECK(strcmp(llv_kernels_isa(), isa) == 0, "force_reference(0) did not restore the dispatch");
    printf("integer block dots on this table: %d weight types\n", n_int);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
