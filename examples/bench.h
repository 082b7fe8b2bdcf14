/*
 * bench.h - shared declarations of llava-bench (issue 8).
 *
 *   llava-bench.c       dispatcher and the `kernels` subcommand
 *   bench_probe.c       machine limits: FMA peak, memory bandwidth; clocks
 *   bench_model.c       model shapes from the GGUF header -> FLOPs, bytes
 *   bench_child.c       one scenario in a child process (public API only)
 *   bench_scenarios.c   option parsing, spawning children, --make
 *   bench_report.c      min/median, Markdown table, JSON
 *   bench_llamacpp.c    --llama-bench: llama.cpp's llama-bench on the same files
 */
#ifndef LLAVA_BENCH_H
#define LLAVA_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- clocks and machine probes (bench_probe.c) ---- */

/* Nonzero: bench_now() reads the process CPU clock (single-thread figures on
 * a shared machine); otherwise the monotonic wall clock. */
extern int bench_use_cpu_time;
double bench_now(void);
int bench_default_threads(void);
int bench_have_avx2_fma(void);
/* Peak FMA throughput with nt threads, GFLOP/s (best of 3). */
double bench_probe_fma(int nt);
/* Peak 8-bit multiply-add throughput in GOP/s (2 ops per product): chains
 * of vpmaddubsw + 16-bit add, the integer GEMM's inner step. */
double bench_probe_int8(int nt);
/* Peak 16-bit multiply-add throughput in GOP/s: chains of vpmaddwd + 32-bit
 * add, the Q8_0 integer GEMM's inner step. */
double bench_probe_int16(int nt);
/* STREAM-like copy and triad bandwidth and a read-only stream with nt
 * threads, GB/s (best of 5). */
void bench_probe_bandwidth(int nt, double *copy_gbs, double *triad_gbs, double *read_gbs);

/* ---- model shapes (bench_model.c) ---- */

enum bench_model_kind { BENCH_LM = 1, BENCH_MMPROJ = 2 };

typedef struct bench_model {
    char path[1024];
    char name[128];       /* file name without directory */
    char weight_type[32]; /* "F16", "Q8_0", "Q4_0", "Q4_K_M", ... */
    int kind;
    uint64_t file_bytes;
    /* LM (kind == BENCH_LM) */
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab;
    double blk_params;           /* elements of the 2-D blk.* matrices */
    double out_params;           /* elements of output.weight (token_embd if tied) */
    uint64_t decode_weight_bytes; /* weight bytes read per decoded token */
    /* mmproj (kind == BENCH_MMPROJ) */
    int64_t v_embd, v_layer, image_size, patch_size;
    int has_class_token;
    double v_blk_params;   /* elements of the 2-D v.blk.* matrices */
    double patch_params;   /* elements of v.patch_embd.weight */
    double proj_params;    /* elements of the 2-D mm.* matrices */
} bench_model;

/* Read the shapes of an LM or mmproj GGUF (header only). Returns 0, or -1
 * with a message in err. */
int bench_model_read(const char *path, bench_model *m, char *err, size_t err_size);
/* Image tokens the mmproj produces (patches; the class token is dropped). */
int64_t bench_vision_n_patches(const bench_model *v);
/* FLOPs of one image encode: patch embedding, every block's matrices and
 * attention, the projector. Norms, activations and softmax are not counted. */
double bench_encode_flops(const bench_model *v);
/* FLOPs of evaluating n tokens at positions p0..p0+n-1 with logit rows
 * computed for n_logit_rows of them: 2*blk_params per token, attention
 * 4*n_embd*(p+1) per token and layer (QK^T and AV), 2*out_params per row. */
double bench_lm_flops(const bench_model *lm, int64_t p0, int64_t n, int64_t n_logit_rows);
/* KV cache bytes of n_ctx positions, elem_bytes per value (2 for F16). */
double bench_kv_bytes(const bench_model *lm, int64_t n_ctx, int elem_bytes);
/* KV bytes read while decoding n tokens at positions p0.. (each attends to
 * p+1 positions); reported besides the weight bytes. */
double bench_kv_read_bytes(const bench_model *lm, int64_t p0, int64_t n, int elem_bytes);

/* ---- one scenario (bench_child.c) ---- */

enum bench_stage { BENCH_ENCODE = 0, BENCH_PREFILL, BENCH_DECODE, BENCH_TTFT, BENCH_N_STAGES };
const char *bench_stage_name(int stage);

typedef struct bench_config {
    int threads, repeats, warmup;
    int prefill_tokens;  /* -p, default 512 */
    int decode_tokens;   /* -n, default 128 */
    int prompt_tokens;   /* prompt before decode, default 16 */
    int question_tokens; /* text after the image for ttft, default 30 */
} bench_config;

/* Entry of the hidden `__child` command: run one scenario through the
 * public API and print "key value" lines to stdout. */
int bench_child_main(int argc, char **argv);

/* ---- llama.cpp on the same files (bench_llamacpp.c) ---- */

typedef struct bench_llamacpp {
    int ran;          /* llama-bench was run for this result */
    double tok_s;     /* its avg_ts (mean tokens/s over its runs); 0 if it failed */
    char commit[48];  /* its build_commit */
    char error[256];  /* why it failed, or "" */
} bench_llamacpp;

/* Read llama-bench's `-o csv` output (a header line, then one row per
 * test) and take avg_ts and build_commit from the first row. Returns 0, or
 * -1 with a message in err. */
int bench_llamacpp_parse_csv(FILE *f, bench_llamacpp *out, char *err, size_t err_size);
/* Run llama-bench (exe) on model for the prefill or decode scenario of cfg
 * and fill *out (out->error says why on failure). Returns 0 or -1. */
int bench_llamacpp_run(const char *exe, const bench_config *cfg, int stage, const char *model, bench_llamacpp *out);

/* ---- processes (bench_scenarios.c) ---- */

/* Start exe (a path, or a name searched on PATH) with its stdout on a pipe
 * read through *out; returns its pid, or -1. */
int bench_spawn_reader(const char *exe, char *const argv[], FILE **out);
/* Wait for pid: its exit status (-1 if it did not exit normally); its peak
 * RSS in KiB into *rss_kb if not NULL. */
int bench_wait(int pid, long *rss_kb);
/* "llava-bench: running ARGV..." on stderr. */
void bench_log_command(char *const argv[]);

/* ---- results (bench_report.c) ---- */

#define BENCH_MAX_RUNS 64

typedef struct bench_result {
    int stage;
    const bench_model *lm, *mmproj; /* either may be NULL */
    int n_runs;
    double times[BENCH_MAX_RUNS];   /* seconds per run */
    double t_min, t_median;
    /* ttft breakdown (medians over runs) */
    double encode_s, prefill_s, sample_s;
    int64_t tokens_asked, tokens_measured; /* tokens evaluated per run (ttft: text + image) */
    int64_t image_tokens, embed_width, n_ctx;
    int64_t question_tokens;       /* ttft: text tokens evaluated after the image */
    double flops_per_run;          /* encode, prefill, ttft */
    double weight_bytes_per_token; /* decode */
    double kv_read_bytes_per_run;  /* decode */
    double value_best, value_median; /* in unit */
    const char *unit;              /* "s" or "tok/s" */
    double achieved;               /* GFLOP/s or GB/s at t_min */
    const char *achieved_unit;
    const char *limit_name;        /* "fma_peak", "int8_peak", "int16_peak" or "mem_read" */
    double limit, fraction;        /* fraction = achieved / limit */
    uint64_t peak_rss_bytes;
    double model_bytes, kv_bytes, expected_bytes; /* files, KV cache, sum */
    double rss_ratio;              /* peak RSS / expected */
    const char *anchor;            /* llama.cpp figure from issue 8, or "" */
    bench_llamacpp llama;          /* --llama-bench: llama.cpp on the same file, same machine */
    double llama_ratio;            /* value_median / llama.tok_s (prefill, decode), or NaN */
} bench_result;

typedef struct bench_machine {
    const char *isa;
    int threads;
    double fma_gflops, int8_gops, int16_gops, copy_gbs, triad_gbs, read_gbs;
} bench_machine;

/* Fill the derived fields (t_min, t_median, values, fractions, RSS ratio)
 * from the raw fields. */
void bench_result_finish(bench_result *r, const bench_machine *mach);
double bench_median(const double *v, int n);
/* The probe that bounds prefill with this weight type (bench_model
 * weight_type): weights that run in libllava's integer GEMM on AVX2 are
 * bounded by the int8 (Q4_0, Q4_K, Q6_K) or int16 (Q8_0) probe, the rest
 * by the FMA probe. */
enum { BENCH_LIMIT_FMA, BENCH_LIMIT_INT8, BENCH_LIMIT_INT16 };
int bench_prefill_limit(const char *weight_type);
void bench_print_table(FILE *f, const bench_result *r, int n, const bench_machine *mach, const bench_config *cfg);
int bench_write_json(const char *path, const bench_result *r, int n, const bench_machine *mach,
                     const bench_config *cfg);

/* ---- scenario commands (bench_scenarios.c) ---- */

/* `encode`, `prefill`, `decode`, `ttft`, `all`/`table`: stage_mask has bit
 * (1 << stage) for each stage to run. */
int bench_scenarios_main(unsigned stage_mask, const char *cmd, int argc, char **argv);

#endif /* LLAVA_BENCH_H */
