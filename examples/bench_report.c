/*
 * bench_report.c - llava-bench results: min/median over runs, fractions of
 * the machine limits, the Markdown table for the README and the JSON file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kernels.h"
#include "llava.h"

const char *bench_stage_name(int stage)
{
    static const char *const names[BENCH_N_STAGES] = { "encode", "prefill", "decode", "ttft" };
    return stage >= 0 && stage < BENCH_N_STAGES ? names[stage] : "?";
}

/* llama.cpp anchors, copied from the text of issue 8 (llama.cpp build 9749
 * on a 2-core AMD EPYC Zen 5 with AVX-512, 2 threads; ranges over repeated
 * runs). They are fixed numbers for comparison, not measured here. */
static const char *anchor_for(int stage, const char *wtype)
{
    static const struct { int stage; const char *wtype, *text; } anchors[] = {
        { BENCH_ENCODE, NULL, "2.46-2.49 s (~150 GFLOP/s)" },
        { BENCH_PREFILL, "F16", "124-135 tok/s" },
        { BENCH_PREFILL, "Q8_0", "78-82 tok/s" },
        { BENCH_PREFILL, "Q4_0", "~155 tok/s" },
        { BENCH_PREFILL, "Q4_K_M", "110-132 tok/s" },
        { BENCH_PREFILL, "Q4_K_S", "(Q4_K_M: 110-132 tok/s)" },
        { BENCH_DECODE, "F16", "15-16.5 tok/s (64 tok)" },
        { BENCH_DECODE, "Q8_0", "22-27 tok/s (64 tok)" },
        { BENCH_DECODE, "Q4_0", "32-46 tok/s (64 tok)" },
        { BENCH_DECODE, "Q4_K_M", "40-49 tok/s (64 tok)" },
        { BENCH_DECODE, "Q4_K_S", "(Q4_K_M: 40-49 tok/s, 64 tok)" },
    };
    for (size_t i = 0; i < sizeof anchors / sizeof anchors[0]; i++)
        if (anchors[i].stage == stage && (!anchors[i].wtype || (wtype && !strcmp(anchors[i].wtype, wtype))))
            return anchors[i].text;
    return "";
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(const double *v, int n)
{
    if (n <= 0) return NAN;
    double s[BENCH_MAX_RUNS];
    if (n > BENCH_MAX_RUNS) n = BENCH_MAX_RUNS;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

void bench_result_finish(bench_result *r, const bench_machine *mach)
{
    r->t_min = INFINITY;
    for (int i = 0; i < r->n_runs; i++)
        if (r->times[i] < r->t_min) r->t_min = r->times[i];
    r->t_median = bench_median(r->times, r->n_runs);
    const bench_model *m = r->stage == BENCH_ENCODE ? r->mmproj : r->lm;
    r->anchor = anchor_for(r->stage, m ? m->weight_type : NULL);
    if (r->stage == BENCH_PREFILL || r->stage == BENCH_DECODE) {
        r->unit = "tok/s";
        r->value_best = (double)r->tokens_measured / r->t_min;
        r->value_median = (double)r->tokens_measured / r->t_median;
    } else {
        r->unit = "s";
        r->value_best = r->t_min;
        r->value_median = r->t_median;
    }
    if (r->stage == BENCH_DECODE) {
        r->achieved = r->weight_bytes_per_token * (double)r->tokens_measured / r->t_min * 1e-9;
        r->achieved_unit = "GB/s";
        r->limit_name = "mem_read";
        r->limit = mach->read_gbs;
    } else {
        r->achieved = r->flops_per_run / r->t_min * 1e-9;
        r->achieved_unit = "GFLOP/s";
        r->limit_name = "fma_peak";
        r->limit = mach->fma_gflops;
        const int lim = r->stage == BENCH_PREFILL && r->lm ? bench_prefill_limit(r->lm->weight_type) : BENCH_LIMIT_FMA;
        if (lim == BENCH_LIMIT_INT8 && mach->int8_gops > 0) {
            r->limit_name = "int8_peak";
            r->limit = mach->int8_gops;
        } else if (lim == BENCH_LIMIT_INT16 && mach->int16_gops > 0) {
            r->limit_name = "int16_peak";
            r->limit = mach->int16_gops;
        }
    }
    r->fraction = r->limit > 0 ? r->achieved / r->limit : NAN;
    r->llama_ratio = r->llama.tok_s > 0 ? r->value_median / r->llama.tok_s : NAN;
    r->expected_bytes = r->model_bytes + r->kv_bytes;
    r->rss_ratio = r->expected_bytes > 0 ? (double)r->peak_rss_bytes / r->expected_bytes : NAN;
}

/* Weight types whose prefill matrices run in libllava's integer GEMM on
 * AVX2: 4/6-bit strips (maddubs) and the Q8_0 strip (madd on int16 codes).
 * Decided by the kernels the library dispatched (a build without SIMD on an
 * AVX2 machine runs f32 products), not by the CPU's features. */
int bench_prefill_limit(const char *weight_type)
{
    static const char *const int8[] = { "Q4_0", "Q4_K_M", "Q4_K_S", "Q4_K", "Q6_K" };
    if (strcmp(llv_kernels_isa(), "avx2"))
        return BENCH_LIMIT_FMA;
    for (size_t i = 0; i < sizeof int8 / sizeof int8[0]; i++)
        if (!strcmp(weight_type, int8[i]))
            return BENCH_LIMIT_INT8;
    return strcmp(weight_type, "Q8_0") ? BENCH_LIMIT_FMA : BENCH_LIMIT_INT16;
}

/* "of FMA" etc. for the table's fraction column */
static const char *limit_label(const bench_result *r)
{
    if (r->stage == BENCH_DECODE)
        return "of BW";
    return !strcmp(r->limit_name, "int8_peak") ? "of int8" : !strcmp(r->limit_name, "int16_peak") ? "of int16" : "of FMA";
}

static const char *model_label(const bench_result *r, char *buf, size_t size)
{
    if (r->stage == BENCH_ENCODE)
        snprintf(buf, size, "%s", r->mmproj->name);
    else if (r->stage == BENCH_TTFT)
        snprintf(buf, size, "%s + %s", r->lm->name, r->mmproj->name);
    else
        snprintf(buf, size, "%s", r->lm->name);
    return buf;
}

static const char *stage_label(const bench_result *r, char *buf, size_t size)
{
    switch (r->stage) {
    case BENCH_ENCODE: snprintf(buf, size, "image encode (%lld tok)", (long long)r->image_tokens); break;
    case BENCH_PREFILL: snprintf(buf, size, "prefill %lld", (long long)r->tokens_measured); break;
    case BENCH_DECODE: snprintf(buf, size, "decode %lld", (long long)r->tokens_measured); break;
    default:
        snprintf(buf, size, "ttft (image + %lld-tok question)", (long long)r->question_tokens);
        break;
    }
    return buf;
}

static const char *weights_label(const bench_result *r, char *buf, size_t size)
{
    if (r->stage == BENCH_TTFT)
        snprintf(buf, size, "%s + %s", r->lm->weight_type, r->mmproj->weight_type);
    else
        snprintf(buf, size, "%s", (r->stage == BENCH_ENCODE ? r->mmproj : r->lm)->weight_type);
    return buf;
}

/* The --llama-bench cell: its tok/s and our median over it. */
static const char *llama_cell(const bench_result *r, char *buf, size_t size)
{
    if (!r->llama.ran)
        snprintf(buf, size, "-");
    else if (r->llama.error[0])
        snprintf(buf, size, "failed");
    else
        snprintf(buf, size, "%.1f tok/s (%.2fx)", r->llama.tok_s, r->llama_ratio);
    return buf;
}

void bench_print_table(FILE *f, const bench_result *r, int n, const bench_machine *mach, const bench_config *cfg)
{
    int with_llama = 0;
    const char *commit = "";
    for (int i = 0; i < n; i++)
        if (r[i].llama.ran) {
            with_llama = 1;
            if (r[i].llama.commit[0]) commit = r[i].llama.commit;
        }
    fprintf(f, "| stage | model | weights | result: best (median) | unit | achieved | fraction of limit "
               "| peak RSS (x files+KV) |%s llama.cpp anchor (issue 8) |\n",
            with_llama ? " llama.cpp here (libllava median / it) |" : "");
    fprintf(f, "|---|---|---|---:|---|---:|---:|---:|%s---|\n", with_llama ? "---:|" : "");
    for (int i = 0; i < n; i++) {
        char lc[64];
        char st[64], ml[300], wl[80];
        const char *prec = r[i].stage == BENCH_ENCODE || r[i].stage == BENCH_TTFT ? "%.2f (%.2f)" : "%.1f (%.1f)";
        char res[64];
        snprintf(res, sizeof res, prec, r[i].value_best, r[i].value_median);
        fprintf(f, "| %s | %s | %s | %s | %s | %.1f %s | %.0f%% %s | %.2f GiB (%.2fx) |",
                stage_label(&r[i], st, sizeof st), model_label(&r[i], ml, sizeof ml),
                weights_label(&r[i], wl, sizeof wl), res, r[i].unit, r[i].achieved, r[i].achieved_unit,
                100.0 * r[i].fraction,
                limit_label(&r[i]),
                (double)r[i].peak_rss_bytes / (1024.0 * 1024 * 1024), r[i].rss_ratio);
        if (with_llama)
            fprintf(f, " %s |", llama_cell(&r[i], lc, sizeof lc));
        fprintf(f, " %s |\n", r[i].anchor[0] ? r[i].anchor : "-");
    }
    fprintf(f, "\nlibllava %s, %d thread(s), %d run(s) per row after %s; isa %s. Limits probed on this machine "
               "with %d thread(s), best of before and after the runs: FMA peak %.1f GFLOP/s, int8 peak %.1f GOP/s "
               "(vpmaddubsw + 16-bit add; the limit of prefill with Q4_0/Q4_K/Q6_K weights), int16 peak %.1f GOP/s "
               "(vpmaddwd + 32-bit add; the limit of prefill with Q8_0 weights), memory bandwidth "
               "(read-only stream, the limit of decode) %.1f GB/s (STREAM triad %.1f GB/s, copy %.1f GB/s).\n"
               "best = from the fastest run, median over runs; achieved and fraction from the fastest run "
               "(FLOPs counted from the model shapes for encode/prefill/ttft, weight bytes read per token "
               "for decode). llama.cpp anchors: fixed figures quoted from issue 8 (build 9749, 2-core Zen 5 "
               "with AVX-512, 2 threads), not measured here.\n",
            llava_version_string(), cfg->threads, cfg->repeats, cfg->warmup ? "a warm-up" : "no warm-up",
            mach->isa, mach->threads, mach->fma_gflops, mach->int8_gops, mach->int16_gops, mach->read_gbs,
            mach->triad_gbs, mach->copy_gbs);
    if (with_llama)
        fprintf(f, "llama.cpp here: its llama-bench (build commit %s) on the same file right after each row, with the "
                   "same threads and runs (-p %d for prefill; -n %d -d %d for decode), mean tok/s over its runs "
                   "after its warm-up; the ratio is libllava's median over that mean.\n",
                commit[0] ? commit : "unknown", cfg->prefill_tokens, cfg->decode_tokens, cfg->prompt_tokens);
    for (int i = 0; i < n; i++)
        if (r[i].stage == BENCH_TTFT)
            fprintf(f, "ttft %s (medians): image encode %.2f s + prefill of %lld positions %.2f s + first sample "
                       "%.4f s.\n",
                    r[i].lm->name, r[i].encode_s, (long long)r[i].tokens_measured, r[i].prefill_s, r[i].sample_s);
}

/* ---- JSON ---- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

/* JSON has no NaN/Infinity: write null for them. */
static void json_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

static void json_model(FILE *f, const char *key, const bench_model *m)
{
    fprintf(f, "      ");
    json_str(f, key);
    if (!m) {
        fputs(": null,\n", f);
        return;
    }
    fputs(": {\"path\": ", f);
    json_str(f, m->path);
    fputs(", \"weight_type\": ", f);
    json_str(f, m->weight_type);
    fprintf(f, ", \"file_bytes\": %llu", (unsigned long long)m->file_bytes);
    if (m->kind == BENCH_LM)
        fprintf(f, ", \"n_embd\": %lld, \"n_layer\": %lld, \"n_head\": %lld, \"n_head_kv\": %lld, \"n_ff\": %lld, "
                   "\"n_vocab\": %lld, \"blk_params\": %.0f, \"out_params\": %.0f, \"decode_weight_bytes\": %llu",
                (long long)m->n_embd, (long long)m->n_layer, (long long)m->n_head, (long long)m->n_head_kv,
                (long long)m->n_ff, (long long)m->n_vocab, m->blk_params, m->out_params,
                (unsigned long long)m->decode_weight_bytes);
    else
        fprintf(f, ", \"v_embd\": %lld, \"v_layer\": %lld, \"image_size\": %lld, \"patch_size\": %lld, "
                   "\"v_blk_params\": %.0f, \"patch_params\": %.0f, \"proj_params\": %.0f",
                (long long)m->v_embd, (long long)m->v_layer, (long long)m->image_size, (long long)m->patch_size,
                m->v_blk_params, m->patch_params, m->proj_params);
    fputs("},\n", f);
}

int bench_write_json(const char *path, const bench_result *r, int n, const bench_machine *mach,
                     const bench_config *cfg)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\n  \"tool\": \"llava-bench\",\n  \"libllava\": ");
    json_str(f, llava_version_string());
    fprintf(f, ",\n  \"config\": {\"threads\": %d, \"repeats\": %d, \"warmup\": %d, \"prefill_tokens\": %d, "
               "\"decode_tokens\": %d, \"prompt_tokens\": %d, \"question_tokens\": %d},\n",
            cfg->threads, cfg->repeats, cfg->warmup, cfg->prefill_tokens, cfg->decode_tokens, cfg->prompt_tokens,
            cfg->question_tokens);
    fprintf(f, "  \"machine\": {\"isa\": ");
    json_str(f, mach->isa);
    fputs(", \"kernels\": ", f);
    json_str(f, llv_kernels_isa());
    fprintf(f, ", \"probe_threads\": %d, \"fma_peak_gflops\": ", mach->threads);
    json_num(f, mach->fma_gflops);
    fputs(", \"int8_peak_gops\": ", f);
    json_num(f, mach->int8_gops);
    fputs(", \"int16_peak_gops\": ", f);
    json_num(f, mach->int16_gops);
    fputs(", \"mem_copy_gbs\": ", f);
    json_num(f, mach->copy_gbs);
    fputs(", \"mem_triad_gbs\": ", f);
    json_num(f, mach->triad_gbs);
    fputs(", \"mem_read_gbs\": ", f);
    json_num(f, mach->read_gbs);
    fputs("},\n  \"results\": [\n", f);
    for (int i = 0; i < n; i++) {
        const bench_result *x = &r[i];
        fprintf(f, "    {\n      \"stage\": ");
        json_str(f, bench_stage_name(x->stage));
        fputs(",\n", f);
        json_model(f, "lm", x->lm);
        json_model(f, "mmproj", x->mmproj);
        fprintf(f, "      \"times_s\": [");
        for (int k = 0; k < x->n_runs; k++) {
            if (k) fputs(", ", f);
            json_num(f, x->times[k]);
        }
        fprintf(f, "],\n      \"time_min_s\": ");
        json_num(f, x->t_min);
        fputs(", \"time_median_s\": ", f);
        json_num(f, x->t_median);
        if (x->stage == BENCH_TTFT) {
            fputs(",\n      \"encode_median_s\": ", f);
            json_num(f, x->encode_s);
            fputs(", \"prefill_median_s\": ", f);
            json_num(f, x->prefill_s);
            fputs(", \"sample_median_s\": ", f);
            json_num(f, x->sample_s);
        }
        fprintf(f, ",\n      \"tokens_asked\": %lld, \"tokens_measured\": %lld, \"image_tokens\": %lld, "
                   "\"embed_width\": %lld, \"question_tokens\": %lld, \"n_ctx\": %lld,\n",
                (long long)x->tokens_asked, (long long)x->tokens_measured, (long long)x->image_tokens,
                (long long)x->embed_width, (long long)x->question_tokens, (long long)x->n_ctx);
        fputs("      \"unit\": ", f);
        json_str(f, x->unit);
        fputs(", \"value_best\": ", f);
        json_num(f, x->value_best);
        fputs(", \"value_median\": ", f);
        json_num(f, x->value_median);
        fputs(",\n      \"flops_per_run\": ", f);
        json_num(f, x->flops_per_run);
        fputs(", \"weight_bytes_per_token\": ", f);
        json_num(f, x->weight_bytes_per_token);
        fputs(", \"kv_read_bytes_per_run\": ", f);
        json_num(f, x->kv_read_bytes_per_run);
        fputs(",\n      \"achieved\": ", f);
        json_num(f, x->achieved);
        fputs(", \"achieved_unit\": ", f);
        json_str(f, x->achieved_unit);
        fputs(", \"limit_name\": ", f);
        json_str(f, x->limit_name);
        fputs(", \"limit\": ", f);
        json_num(f, x->limit);
        fputs(", \"fraction\": ", f);
        json_num(f, x->fraction);
        fprintf(f, ",\n      \"peak_rss_bytes\": %llu, \"model_bytes\": ", (unsigned long long)x->peak_rss_bytes);
        json_num(f, x->model_bytes);
        fputs(", \"kv_bytes\": ", f);
        json_num(f, x->kv_bytes);
        fputs(", \"expected_bytes\": ", f);
        json_num(f, x->expected_bytes);
        fputs(", \"rss_ratio\": ", f);
        json_num(f, x->rss_ratio);
        fputs(",\n      \"llama_cpp_anchor\": ", f);
        json_str(f, x->anchor);
        fputs(",\n      \"llama_cpp_here\": ", f);
        if (!x->llama.ran) {
            fputs("null", f);
        } else {
            fputs("{\"tok_s\": ", f);
            json_num(f, x->llama.error[0] ? NAN : x->llama.tok_s);
            fputs(", \"ratio_median\": ", f);
            json_num(f, x->llama_ratio);
            fputs(", \"build_commit\": ", f);
            json_str(f, x->llama.commit);
            fputs(", \"error\": ", f);
            json_str(f, x->llama.error);
            fputc('}', f);
        }
        fprintf(f, "\n    }%s\n", i + 1 < n ? "," : "");
    }
    fputs("  ]\n}\n", f);
    return fclose(f) == 0 ? 0 : -1;
}
