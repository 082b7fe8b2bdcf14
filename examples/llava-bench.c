/*
 * llava-bench - performance probes and end-to-end benchmarks for libllava
 * (issue 8).
 *
 *   llava-bench kernels [--threads N] [--quick] [--cpu-time]
 *       machine probes (peak FMA GFLOP/s, STREAM-like memory bandwidth), then
 *       GEMV (1 row) and GEMM (512 rows) GFLOP/s and GB/s per weight type at
 *       LLaVA shapes, each as a fraction of the matching probe. (Uses the
 *       internal kernels directly.)
 *   llava-bench encode|prefill|decode|ttft|all|table [options]
 *       end-to-end scenarios through the public API only, each in its own
 *       process; prints a Markdown table (bench_scenarios.c, --help).
 *
 * main() dispatches on the first argument.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kernels.h"
#include "quant.h"

/* ---- matmul ------------------------------------------------------------- */

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1p-53 * 2.0 - 1.0);
}

/* Random weights of type (n_out rows of n_in), built by quantizing one
 * random block-row pattern per 64 rows (quantizing 45M values per type
 * would dominate the run time; the data values do not affect speed). */
static void *make_weights(int type, int64_t n_in, int64_t n_out, size_t *bytes)
{
    size_t rb;
    if (!llv_row_bytes(type, n_in, &rb))
        return NULL;
    uint8_t *data = malloc(rb * (size_t)n_out);
    float *row = malloc((size_t)n_in * sizeof(float));
    if (!data || !row) {
        free(data); free(row);
        return NULL;
    }
    uint8_t *pattern = malloc(rb * 64);
    for (int r = 0; r < 64; r++) {
        for (int64_t k = 0; k < n_in; k++)
            row[k] = frand() * 0.05f;
        llv_quantize_row(type, row, pattern + (size_t)r * rb, n_in);
    }
    for (int64_t o = 0; o < n_out; o++)
        memcpy(data + (size_t)o * rb, pattern + (size_t)(o % 64) * rb, rb);
    free(pattern);
    free(row);
    *bytes = rb * (size_t)n_out;
    return data;
}

/* Best time over at least min_reps runs (after one warm-up), repeating
 * until min_total seconds have passed (up to 200 runs): on a shared machine
 * the minimum is the figure least disturbed by other processes. */
static double time_matmul(const llv_weight *w, const float *x, int64_t rows, float *y, int nt, int min_reps,
                          double min_total)
{
    llv_matmul(w, x, rows, y, NULL, nt);
    double best = 1e30, total = 0;
    for (int r = 0; r < 200 && (r < min_reps || total < min_total); r++) {
        double t0 = bench_now();
        llv_matmul(w, x, rows, y, NULL, nt);
        double t = bench_now() - t0;
        total += t;
        if (t < best) best = t;
    }
    return best;
}

static int cmd_kernels(int argc, char **argv)
{
    int nt = bench_default_threads(), quick = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            nt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--cpu-time"))
            bench_use_cpu_time = 1;
        else {
            fprintf(stderr, "usage: llava-bench kernels [--threads N] [--quick] [--cpu-time]\n");
            return 2;
        }
    }
    if (nt < 1 || bench_use_cpu_time) nt = 1;
    printf("llava-bench kernels: isa %s, %d thread(s), %s time%s\n", llv_kernels_isa(), nt,
           bench_use_cpu_time ? "CPU" : "wall", bench_have_avx2_fma() ? "" : " (no AVX2+FMA: FMA probe is scalar)");

    double peak = bench_probe_fma(nt), peak8 = bench_probe_int8(nt), peak16 = bench_probe_int16(nt), copy_gbs, triad_gbs,
           read_gbs;
    bench_probe_bandwidth(nt, &copy_gbs, &triad_gbs, &read_gbs);
    printf("probe: peak FMA %.1f GFLOP/s | peak int8 %.1f GOP/s | peak int16 %.1f GOP/s | memory copy %.1f GB/s, "
           "triad %.1f GB/s, read %.1f GB/s\n\n", peak, peak8, peak16, copy_gbs, triad_gbs, read_gbs);

    static const int types[] = { LLV_TYPE_F32, LLV_TYPE_F16, LLV_TYPE_BF16, LLV_TYPE_Q8_0, LLV_TYPE_Q4_0,
                                 LLV_TYPE_Q4_K, LLV_TYPE_Q6_K };
    static const struct { int64_t n_out, n_in; } shapes[] = { { 4096, 4096 }, { 11008, 4096 }, { 1024, 4096 } };
    const int64_t gemm_rows = quick ? 128 : 512;
    const int n_shapes = quick ? 1 : 3;

    float *x = malloc((size_t)gemm_rows * 11008 * sizeof(float));
    float *y = malloc((size_t)gemm_rows * 11008 * sizeof(float));
    if (!x || !y) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < gemm_rows * 11008; i++)
        x[i] = frand();

    printf("%-5s %-12s | %9s %7s %7s %6s | %9s %7s %6s\n", "type", "n_out x n_in", "GEMV ms", "GB/s", "%read",
           "GF/s", "GEMM ms", "GF/s", "%peak");
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        for (int s = 0; s < n_shapes; s++) {
            size_t bytes = 0;
            void *data = make_weights(types[t], shapes[s].n_in, shapes[s].n_out, &bytes);
            llv_weight w;
            if (!data || !llv_weight_init(&w, types[t], shapes[s].n_in, shapes[s].n_out, data)) {
                free(data);
                continue;
            }
            double flop1 = 2.0 * (double)w.n_in * (double)w.n_out;
            double tv = time_matmul(&w, x, 1, y, nt, 5, quick ? 0.05 : 0.3);
            double tm = time_matmul(&w, x, gemm_rows, y, nt, quick ? 1 : 2, 0.0);
            double gbs = (double)bytes / tv * 1e-9, gfv = flop1 / tv * 1e-9;
            double gfm = flop1 * (double)gemm_rows / tm * 1e-9;
            const int lim = bench_prefill_limit(llv_type_name(types[t]));
            printf("%-5s %5lldx%-6lld | %9.3f %7.1f %6.0f%% %6.1f | %9.1f %7.1f %5.0f%%%s\n", llv_type_name(types[t]),
                   (long long)w.n_out, (long long)w.n_in, tv * 1e3, gbs, 100.0 * gbs / read_gbs, gfv, tm * 1e3, gfm,
                   100.0 * gfm / (lim == BENCH_LIMIT_INT8 ? peak8 : lim == BENCH_LIMIT_INT16 ? peak16 : peak),
                   lim == BENCH_LIMIT_INT8 ? " of int8" : lim == BENCH_LIMIT_INT16 ? " of int16" : "");
            fflush(stdout);
            free(data);
        }
    }
    printf("\nGEMV: 1 row (decode), GB/s = weight bytes / time vs the read probe.\n"
           "GEMM: %lld rows (prefill / vision encode), GF/s vs the FMA probe (Q4_0/Q4_K/Q6_K: vs the int8\n"
           "probe, their GEMM runs in 8-bit integers; Q8_0: vs the int16 probe, its codes are widened to 16 bits).\n", (long long)gemm_rows);
    free(x);
    free(y);
    return 0;
}

/* ---- dispatcher ----------------------------------------------------------- */

#define STAGE(s) (1u << (s))
static int cmd_encode(int argc, char **argv) { return bench_scenarios_main(STAGE(BENCH_ENCODE), "encode", argc, argv); }
static int cmd_prefill(int argc, char **argv) { return bench_scenarios_main(STAGE(BENCH_PREFILL), "prefill", argc, argv); }
static int cmd_decode(int argc, char **argv) { return bench_scenarios_main(STAGE(BENCH_DECODE), "decode", argc, argv); }
static int cmd_ttft(int argc, char **argv) { return bench_scenarios_main(STAGE(BENCH_TTFT), "ttft", argc, argv); }
static int cmd_all(int argc, char **argv) { return bench_scenarios_main(STAGE(BENCH_N_STAGES) - 1, "all", argc, argv); }
static int cmd_table(int argc, char **argv) { return bench_scenarios_main(STAGE(BENCH_N_STAGES) - 1, "table", argc, argv); }

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    { "kernels", cmd_kernels, "matmul GEMV/GEMM per weight type vs FMA and memory probes" },
    { "encode", cmd_encode, "image encode of an mmproj (public API)" },
    { "prefill", cmd_prefill, "prefill 512 tokens per LM (public API)" },
    { "decode", cmd_decode, "decode 128 tokens after a short prompt per LM (public API)" },
    { "ttft", cmd_ttft, "time to first token: image + 30-token question (public API)" },
    { "all", cmd_all, "every scenario, then the Markdown table for the README" },
    { "table", cmd_table, "same as all" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: llava-bench <command> [options]   (llava-bench <command> --help)\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "__child")) /* one scenario, spawned by bench_scenarios.c */
        return bench_child_main(argc - 2, argv + 2);
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "llava-bench: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
