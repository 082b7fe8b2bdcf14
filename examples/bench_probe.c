/*
 * bench_probe.c - the machine limits llava-bench compares against: peak FMA
 * throughput (compute-bound stages), peak 8-bit and 16-bit multiply-add
 * throughput (prefill with 4/6-bit and 8-bit weights, which runs integer
 * GEMMs) and STREAM-like
 * memory bandwidth (decode), plus the clocks.
 */
#include <stdlib.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "bench.h"

int bench_use_cpu_time;

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(bench_use_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int bench_default_threads(void)
{
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* 12 independent FMA chains per thread (enough to cover FMA latency x
 * throughput on current x86 cores); returns the flops done. */
__attribute__((target("avx2,fma"))) static double fma_loop_avx2(long iters)
{
    __m256 a[12];
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            a[i] = _mm256_fmadd_ps(a[i], m, c);
    }
    __m256 s = a[0];
    for (int i = 1; i < 12; i++)
        s = _mm256_add_ps(s, a[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    volatile float sink = out[0];
    (void)sink;
    return (double)iters * 12 * 8 * 2;
}
/* The integer GEMM's inner step (vpmaddubsw: 32 u8 x s8 products summed in
 * pairs, then a 16-bit add into an accumulator), 6 accumulators; the asm
 * barrier makes the operands opaque every iteration so the products cannot
 * be hoisted. (Chaining each product on the previous sum instead measured
 * 2.1 G vpmaddubsw/s per core against 5.3 G here: that pattern is bound by
 * latency, not throughput.) Returns the integer operations done, 2 per
 * product, as FLOPs count. */
__attribute__((target("avx2"))) static double int8_loop_avx2(long iters)
{
    __m256i x0 = _mm256_set1_epi8(1), x1 = _mm256_set1_epi8(2), w0 = _mm256_set1_epi8(3), w1 = _mm256_set1_epi8(5);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    for (long it = 0; it < iters; it++) {
        a0 = _mm256_add_epi16(a0, _mm256_maddubs_epi16(w0, x0));
        a1 = _mm256_add_epi16(a1, _mm256_maddubs_epi16(w1, x0));
        a2 = _mm256_add_epi16(a2, _mm256_maddubs_epi16(w0, x1));
        a3 = _mm256_add_epi16(a3, _mm256_maddubs_epi16(w1, x1));
        a4 = _mm256_add_epi16(a4, _mm256_maddubs_epi16(w0, w1));
        a5 = _mm256_add_epi16(a5, _mm256_maddubs_epi16(x1, x0));
        __asm__("" : "+x"(x0), "+x"(x1), "+x"(w0), "+x"(w1));
    }
    __m256i s = _mm256_add_epi16(_mm256_add_epi16(_mm256_add_epi16(a0, a1), _mm256_add_epi16(a2, a3)),
                                 _mm256_add_epi16(a4, a5));
    volatile int sink = _mm256_extract_epi16(s, 0);
    (void)sink;
    return (double)iters * 6 * 32 * 2;
}
/* The Q8_0 integer GEMM's inner step (vpmaddwd: 16 s16 x s16 products
 * summed in pairs, then a 32-bit add), 6 accumulators, operands opaque as
 * in int8_loop. */
__attribute__((target("avx2"))) static double int16_loop_avx2(long iters)
{
    __m256i x0 = _mm256_set1_epi16(1), x1 = _mm256_set1_epi16(2), w0 = _mm256_set1_epi16(3), w1 = _mm256_set1_epi16(5);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    for (long it = 0; it < iters; it++) {
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(w0, x0));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(w1, x0));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(w0, x1));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(w1, x1));
        a4 = _mm256_add_epi32(a4, _mm256_madd_epi16(w0, w1));
        a5 = _mm256_add_epi32(a5, _mm256_madd_epi16(x1, x0));
        __asm__("" : "+x"(x0), "+x"(x1), "+x"(w0), "+x"(w1));
    }
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                                 _mm256_add_epi32(a4, a5));
    volatile int sink = _mm256_extract_epi32(s, 0);
    (void)sink;
    return (double)iters * 6 * 16 * 2;
}
/* Sum of n floats (n a multiple of 32) as 4 vector chains: a read-only
 * stream, the access pattern of decode's weights. With `prefetch`, 4 KiB
 * ahead as the decode GEMV does; a pure load stream without it ran faster
 * here with 2 threads (36-44 against 31-34 GB/s) while the GEMV is faster
 * with it, so the probe reports the better of the two. */
__attribute__((target("avx2"))) static float read_sum_avx2(const float *p, long n, int prefetch)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (long i = 0; i < n; i += 32) {
        if (prefetch) {
            _mm_prefetch((const char *)(p + i) + 4096, _MM_HINT_T0);
            _mm_prefetch((const char *)(p + i) + 4096 + 64, _MM_HINT_T0);
        }
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(p + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(p + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(p + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(p + i + 24));
    }
    float out[8];
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}
int bench_have_avx2_fma(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#define HAVE_AVX2_LOOPS 1
#else
int bench_have_avx2_fma(void) { return 0; }
#define HAVE_AVX2_LOOPS 0
#endif

/* Portable loops: the probes on CPUs without AVX2+FMA (the library then
 * runs its generic kernels too), and on other architectures. */
static double fma_loop_plain(long iters)
{
    float a[8] = {0};
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 8; i++)
            a[i] = a[i] * 0.999999f + 1e-7f;
    volatile float sink = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7]; /* every lane live */
    (void)sink;
    return (double)iters * 8 * 2;
}
static float read_sum_plain(const float *p, long n, int prefetch)
{
    (void)prefetch;
    float s[8] = {0};
    for (long i = 0; i < n; i += 8)
        for (int l = 0; l < 8; l++)
            s[l] += p[i + l];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}
static double int8_loop_plain(long iters)
{
    int a[8] = {0};
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 8; i++)
            a[i] = (short)(a[i] + 3 * (i - 4));
    volatile int sink = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7]; /* every lane live */
    (void)sink;
    return (double)iters * 8 * 2;
}
static double int16_loop_plain(long iters)
{
    int a[8] = {0};
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 8; i++)
            a[i] += 3 * (i - 4);
    volatile int sink = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7]; /* every lane live */
    (void)sink;
    return (double)iters * 8 * 2;
}

/* The AVX2 loops where the CPU runs them, else the portable ones: an x86-64
 * build must not fault with SIGILL on a CPU without AVX2 (checked under
 * qemu-x86_64 -cpu Nehalem). */
#if HAVE_AVX2_LOOPS
#define PICK(name) (bench_have_avx2_fma() ? name##_avx2 : name##_plain)
#else
#define PICK(name) name##_plain
#endif
static double fma_loop(long iters) { return PICK(fma_loop)(iters); }
static double int8_loop(long iters) { return PICK(int8_loop)(iters); }
static double int16_loop(long iters) { return PICK(int16_loop)(iters); }
static float read_sum(const float *p, long n, int prefetch) { return PICK(read_sum)(p, n, prefetch); }

/* Best of 3 of nt threads each running loop(iters): operations per second
 * in G (loop returns the operations it did). */
static double probe_rate(int nt, double (*loop)(long), long iters)
{
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double ops = 0, t0 = bench_now();
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) reduction(+ : ops)
#endif
        ops += loop(iters);
        double g = ops / (bench_now() - t0) * 1e-9;
        if (g > best) best = g;
    }
    (void)nt;
    return best;
}

double bench_probe_fma(int nt) { return probe_rate(nt, fma_loop, 20000000L); }

double bench_probe_int8(int nt) { return probe_rate(nt, int8_loop, 20000000L); }

double bench_probe_int16(int nt) { return probe_rate(nt, int16_loop, 20000000L); }

/* One read-only pass over the three arrays of n floats with nt threads
 * (each a contiguous share of each array): GB/s. */
static double read_pass(float *a, const float *b, const float *c, long n, int nt, int prefetch)
{
    float sum = 0;
    double bytes = 0; /* counted by the threads that ran: OpenMP may give fewer than asked */
    const float *const arrays[3] = { a, b, c };
    const double t0 = bench_now();
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt > 0 ? nt : 1) reduction(+ : sum, bytes)
#endif
    {
#ifdef _OPENMP
        const int id = omp_get_thread_num(), nth = omp_get_num_threads();
#else
        const int id = 0, nth = 1;
#endif
        const long share = n / 32 / nth * 32; /* floats per thread and array, a multiple of 32 */
        for (int k = 0; k < 3; k++)
            sum += read_sum(arrays[k] + (long)id * share, share, prefetch);
        bytes += 3.0 * (double)share * sizeof(float);
    }
    const double gbs = bytes / (bench_now() - t0) * 1e-9;
    a[0] += sum * 1e-30f; /* keeps the sums live */
    return gbs;
}

/* STREAM-like copy (a = b) and triad (a = b + s*c) over 3 x 64 MiB arrays,
 * bytes counted as STREAM does (read + write, no write-allocate); and a
 * read-only pass over all three (192 MiB, each thread a contiguous share of
 * each array; with and without software prefetch, the better counts), the
 * limit of decode, which streams its weights and writes little. On this
 * project's machine triad read 25-36 GB/s from day to day while the decode
 * GEMV streamed 28-34: a read stream is the fair bound. */
void bench_probe_bandwidth(int nt, double *copy_gbs, double *triad_gbs, double *read_gbs)
{
    const long n = 16L * 1024 * 1024; /* floats per array */
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)), *c = malloc(n * sizeof(float));
    *copy_gbs = *triad_gbs = *read_gbs = 0;
    if (!a || !b || !c) {
        free(a); free(b); free(c);
        return;
    }
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (long i = 0; i < n; i++) { a[i] = 1.0f; b[i] = 2.0f; c[i] = 0.5f; }
    for (int rep = 0; rep < 5; rep++) {
        double t0 = bench_now();
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (long i = 0; i < n; i++)
            a[i] = b[i];
        double t1 = bench_now();
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (long i = 0; i < n; i++)
            a[i] = b[i] + 0.5f * c[i];
        double t2 = bench_now();
        for (int prefetch = 0; prefetch < 2; prefetch++) {
            const double rd = read_pass(a, b, c, n, nt, prefetch);
            if (rd > *read_gbs) *read_gbs = rd;
        }
        double cp = 2.0 * n * sizeof(float) / (t1 - t0) * 1e-9, tr = 3.0 * n * sizeof(float) / (t2 - t1) * 1e-9;
        if (cp > *copy_gbs) *copy_gbs = cp;
        if (tr > *triad_gbs) *triad_gbs = tr;
    }
    volatile float sink = a[n / 2];
    (void)sink;
    free(a); free(b); free(c);
}
