/*
 * bench_child.c - one llava-bench scenario, run in its own process (the
 * hidden `__child` command) so that its peak RSS is its own. Uses only the
 * public API (llava.h). Results go to stdout as "key value..." lines for
 * the parent (bench_scenarios.c); progress and errors go to stderr.
 *
 *   llava-bench __child STAGE [--lm F] [--mmproj F] [--threads N] [-r N]
 *                       [--warmup 0|1] [-p N] [-n N] [--prompt N] [--question N]
 *
 * Lines written: "run I SECONDS [ENCODE_S PREFILL_S SAMPLE_S]" per timed
 * run, then "tokens N" (positions evaluated per run, read back from the
 * session), "image_tokens N", "embed_width N", "n_ctx N", "decode_p0 N",
 * "kv_elem_bytes N", "question_tokens N", "vmhwm_kb N" (peak RSS of this
 * process image, from /proc/self/status).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "llava.h"

#define WARMUP_TOKENS 16
#define IMAGE_W 640 /* a non-square image, so preprocessing (pad + resize) is timed too */
#define IMAGE_H 480

static const char *const question_text =
    "What is shown in this picture? Describe the main objects, their colors and positions, "
    "and tell me anything unusual you notice about the scene, with as much detail as you can.";

typedef struct child_ctx {
    int stage;
    const char *lm_path, *mmproj_path;
    bench_config cfg;
    llava_params *params;
    llava_lm *lm;
    llava_vision *vision;
    llava_projector *projector;
    llava_image *image;
    llava_session *session;
    int32_t *tokens;
} child_ctx;

static int report_error(const char *what, int rc, const void *handle, const char *errbuf)
{
    const char *detail = errbuf && errbuf[0] ? errbuf : handle ? llava_errmsg(handle) : "";
    fprintf(stderr, "llava-bench: %s: %s%s%s\n", what, llava_strerror(rc), detail[0] ? ": " : "", detail);
    return 1;
}

/* Synthetic token ids, BOS first: the values do not change the work done,
 * only the count does. Ids 0..2 (unk, bos, eos in SPM vocabularies) are
 * avoided after the first position. */
static void fill_tokens(const llava_lm *lm, int32_t *tok, int n, int with_bos)
{
    int32_t n_vocab = llava_lm_n_vocab(lm), bos = llava_lm_token_bos(lm);
    for (int i = 0; i < n; i++)
        tok[i] = 3 + (int32_t)(((int64_t)i * 7919 + 13) % (n_vocab > 4 ? n_vocab - 3 : 1));
    if (with_bos && n > 0 && bos >= 0)
        tok[0] = bos;
}

/* The first n tokens of a fixed English question (the text repeated if it
 * is too short), tokenized through the public tokenizer. */
static int question_tokens(const llava_lm *lm, int32_t *out, int n)
{
    size_t cap = 4096, got = 0;
    int32_t *all = malloc(cap * sizeof *all);
    if (!all) return LLAVA_E_NOMEM;
    int rc = llava_tokenize(lm, question_text, strlen(question_text), 0, all, cap, &got);
    if (rc == LLAVA_OK && got == 0) rc = LLAVA_E_INTERNAL;
    for (int i = 0; rc == LLAVA_OK && i < n; i++)
        out[i] = all[(size_t)i % got];
    free(all);
    return rc;
}

static void make_pattern(uint8_t *px, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 255 / w);
            p[1] = (uint8_t)(y * 255 / h);
            p[2] = (uint8_t)((x ^ y) & 0xff);
        }
}

static int load_models(child_ctx *c, int need_lm, int need_vision)
{
    char eb[LLAVA_ERRBUF_SIZE] = "";
    int rc;
    if (need_lm) {
        if (!c->lm_path) { fprintf(stderr, "llava-bench: this stage needs --lm\n"); return 1; }
        if ((rc = llava_load_lm(c->lm_path, c->params, &c->lm, eb, sizeof eb)) != LLAVA_OK)
            return report_error(c->lm_path, rc, NULL, eb);
    }
    if (need_vision) {
        if (!c->mmproj_path) { fprintf(stderr, "llava-bench: this stage needs --mmproj\n"); return 1; }
        if ((rc = llava_load_vision(c->mmproj_path, c->params, &c->vision, eb, sizeof eb)) != LLAVA_OK)
            return report_error(c->mmproj_path, rc, NULL, eb);
        if ((rc = llava_load_projector(c->mmproj_path, c->params, &c->projector, eb, sizeof eb)) != LLAVA_OK)
            return report_error(c->mmproj_path, rc, NULL, eb);
        uint8_t *px = malloc((size_t)IMAGE_W * IMAGE_H * 3);
        if (!px) return report_error("image", LLAVA_E_NOMEM, NULL, NULL);
        make_pattern(px, IMAGE_W, IMAGE_H);
        rc = llava_new_image_from_pixels(px, IMAGE_W, IMAGE_H, (size_t)IMAGE_W * 3, LLAVA_PIXEL_RGB, 0, c->params,
                                         &c->image, eb, sizeof eb);
        free(px);
        if (rc != LLAVA_OK) return report_error("image", rc, NULL, eb);
    }
    return 0;
}

static int new_session(child_ctx *c, int64_t n_ctx)
{
    char eb[LLAVA_ERRBUF_SIZE] = "";
    if (n_ctx < WARMUP_TOKENS) n_ctx = WARMUP_TOKENS;
    int rc = llava_set_param_int(c->params, LLAVA_PARAM_N_CTX, n_ctx);
    if (rc != LLAVA_OK) return report_error("n_ctx", rc, c->params, NULL);
    if ((rc = llava_new_session(c->lm, c->params, &c->session, eb, sizeof eb)) != LLAVA_OK)
        return report_error("session", rc, NULL, eb);
    int64_t kv_type = 1;
    llava_get_param_int(c->params, LLAVA_PARAM_KV_TYPE, &kv_type);
    printf("n_ctx %d\nkv_elem_bytes %d\n", (int)llava_session_n_ctx(c->session), kv_type == 0 ? 4 : 2);
    return 0;
}

/* Evaluate a few tokens and forget them: maps the LM's pages and starts the
 * thread team, so that the first timed run is not a cold one. */
static int warmup_lm(child_ctx *c)
{
    int32_t tok[WARMUP_TOKENS];
    fill_tokens(c->lm, tok, WARMUP_TOKENS, 1);
    int rc = llava_eval_tokens(c->session, tok, WARMUP_TOKENS);
    if (rc == LLAVA_OK) rc = llava_session_rewind(c->session, 0);
    return rc == LLAVA_OK ? 0 : report_error("warm-up", rc, c->session, NULL);
}

static int encode_once(child_ctx *c, llava_embed **out)
{
    int rc = llava_encode_image(c->vision, c->projector, c->image, c->params, out);
    return rc == LLAVA_OK ? 0 : report_error("encode", rc, c->image, NULL);
}

static void progress(const child_ctx *c, int run, double t)
{
    fprintf(stderr, "  %-7s %-28s run %d/%d: %.3f s\n", bench_stage_name(c->stage),
            c->stage == BENCH_ENCODE ? c->mmproj_path : c->lm_path, run + 1, c->cfg.repeats, t);
}

static int run_encode(child_ctx *c)
{
    if (load_models(c, 0, 1)) return 1;
    llava_embed *e = NULL;
    if (c->cfg.warmup) {
        if (encode_once(c, &e)) return 1;
        llava_free_embed(e);
    }
    for (int r = 0; r < c->cfg.repeats; r++) {
        double t0 = bench_now();
        if (encode_once(c, &e)) return 1;
        double t = bench_now() - t0;
        printf("run %d %.9f\n", r, t);
        printf("tokens %d\nimage_tokens %d\nembed_width %d\n", (int)llava_embed_n_tokens(e),
               (int)llava_embed_n_tokens(e), (int)llava_embed_n_embd(e));
        llava_free_embed(e);
        progress(c, r, t);
    }
    return 0;
}

static int run_prefill(child_ctx *c)
{
    int n = c->cfg.prefill_tokens;
    if (load_models(c, 1, 0) || new_session(c, n)) return 1;
    if (!(c->tokens = malloc((size_t)n * sizeof *c->tokens))) return report_error("tokens", LLAVA_E_NOMEM, NULL, NULL);
    fill_tokens(c->lm, c->tokens, n, 1);
    if (c->cfg.warmup && warmup_lm(c)) return 1;
    for (int r = 0; r < c->cfg.repeats; r++) {
        int rc = llava_session_rewind(c->session, 0);
        double t0 = bench_now();
        if (rc == LLAVA_OK) rc = llava_eval_tokens(c->session, c->tokens, (size_t)n);
        double t = bench_now() - t0;
        if (rc != LLAVA_OK) return report_error("prefill", rc, c->session, NULL);
        printf("run %d %.9f\ntokens %d\n", r, t, (int)llava_session_position(c->session));
        progress(c, r, t);
    }
    return 0;
}

static int run_decode(child_ctx *c)
{
    int np = c->cfg.prompt_tokens, n = c->cfg.decode_tokens;
    if (load_models(c, 1, 0) || new_session(c, (int64_t)np + n)) return 1;
    if (!(c->tokens = malloc((size_t)np * sizeof *c->tokens))) return report_error("tokens", LLAVA_E_NOMEM, NULL, NULL);
    fill_tokens(c->lm, c->tokens, np, 1);
    if (c->cfg.warmup && warmup_lm(c)) return 1;
    for (int r = 0; r < c->cfg.repeats; r++) {
        int rc = llava_session_rewind(c->session, 0);
        if (rc == LLAVA_OK) rc = llava_eval_tokens(c->session, c->tokens, (size_t)np);
        if (rc != LLAVA_OK) return report_error("decode prompt", rc, c->session, NULL);
        int32_t p0 = llava_session_position(c->session);
        double t0 = bench_now();
        for (int i = 0; i < n && rc == LLAVA_OK; i++) {
            int32_t tok;
            rc = llava_sample(c->session, &tok);
            if (rc == LLAVA_OK) rc = llava_eval_tokens(c->session, &tok, 1);
        }
        double t = bench_now() - t0;
        if (rc != LLAVA_OK) return report_error("decode", rc, c->session, NULL);
        printf("run %d %.9f\ntokens %d\ndecode_p0 %d\n", r, t, (int)(llava_session_position(c->session) - p0), (int)p0);
        progress(c, r, t);
    }
    return 0;
}

/* Time to first token: image encode, then BOS + image tokens + question
 * evaluated, then the first sample. Tokenizing the question is timed too. */
static int run_ttft(child_ctx *c)
{
    int nq = c->cfg.question_tokens;
    if (load_models(c, 1, 1)) return 1;
    int32_t n_img = llava_vision_n_tokens_for(c->vision, c->projector, IMAGE_W, IMAGE_H);
    if (n_img <= 0) return report_error("image tokens", LLAVA_E_MISMATCH, NULL, NULL);
    if (new_session(c, 1 + (int64_t)n_img + nq)) return 1;
    if (!(c->tokens = malloc((size_t)(nq + 1) * sizeof *c->tokens)))
        return report_error("tokens", LLAVA_E_NOMEM, NULL, NULL);
    if (c->cfg.warmup) {
        llava_embed *e = NULL;
        if (encode_once(c, &e)) return 1;
        llava_free_embed(e);
        if (warmup_lm(c)) return 1;
    }
    for (int r = 0; r < c->cfg.repeats; r++) {
        llava_embed *e = NULL;
        int32_t bos = llava_lm_token_bos(c->lm), tok = -1;
        int rc = llava_session_rewind(c->session, 0);
        if (rc != LLAVA_OK) return report_error("rewind", rc, c->session, NULL);
        double t0 = bench_now();
        if (encode_once(c, &e)) return 1;
        double t1 = bench_now();
        if (bos >= 0) rc = llava_eval_tokens(c->session, &bos, 1);
        if (rc == LLAVA_OK) rc = llava_eval_embed(c->session, e);
        int32_t after_image = llava_session_position(c->session);
        if (rc == LLAVA_OK) rc = question_tokens(c->lm, c->tokens, nq);
        if (rc == LLAVA_OK) rc = llava_eval_tokens(c->session, c->tokens, (size_t)nq);
        double t2 = bench_now();
        if (rc == LLAVA_OK) rc = llava_sample(c->session, &tok);
        double t3 = bench_now();
        if (rc != LLAVA_OK) {
            llava_free_embed(e);
            return report_error("ttft", rc, c->session, NULL);
        }
        printf("run %d %.9f %.9f %.9f %.9f\n", r, t3 - t0, t1 - t0, t2 - t1, t3 - t2);
        printf("tokens %d\nimage_tokens %d\nembed_width %d\nquestion_tokens %d\n",
               (int)llava_session_position(c->session), (int)llava_embed_n_tokens(e), (int)llava_embed_n_embd(e),
               (int)(llava_session_position(c->session) - after_image));
        llava_free_embed(e);
        progress(c, r, t3 - t0);
    }
    return 0;
}

/* Peak resident set of this process image (Linux VmHWM). wait4's ru_maxrss
 * cannot be used: posix_spawn shares the parent's address space until exec,
 * and the kernel folds that space's high-water mark into the child's. */
static long vmhwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

int bench_child_main(int argc, char **argv)
{
    child_ctx c = { 0 };
    c.stage = -1;
    c.cfg = (bench_config){ .threads = bench_default_threads(), .repeats = 1, .warmup = 1, .prefill_tokens = 512,
                            .decode_tokens = 128, .prompt_tokens = 16, .question_tokens = 30 };
    for (int s = 0; argc > 0 && s < BENCH_N_STAGES; s++)
        if (!strcmp(argv[0], bench_stage_name(s))) c.stage = s;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--lm")) c.lm_path = v;
        else if (!strcmp(k, "--mmproj")) c.mmproj_path = v;
        else if (!strcmp(k, "--threads")) c.cfg.threads = atoi(v);
        else if (!strcmp(k, "-r")) c.cfg.repeats = atoi(v);
        else if (!strcmp(k, "--warmup")) c.cfg.warmup = atoi(v);
        else if (!strcmp(k, "-p")) c.cfg.prefill_tokens = atoi(v);
        else if (!strcmp(k, "-n")) c.cfg.decode_tokens = atoi(v);
        else if (!strcmp(k, "--prompt")) c.cfg.prompt_tokens = atoi(v);
        else if (!strcmp(k, "--question")) c.cfg.question_tokens = atoi(v);
        else { c.stage = -1; break; }
    }
    if (c.stage < 0 || c.cfg.repeats < 1 || c.cfg.threads < 1 || c.cfg.prefill_tokens < 1 ||
        c.cfg.decode_tokens < 1 || c.cfg.prompt_tokens < 1 || c.cfg.question_tokens < 1) {
        fprintf(stderr, "llava-bench __child: bad arguments (internal command)\n");
        return 2;
    }
    if (!(c.params = llava_new_params())) return report_error("params", LLAVA_E_NOMEM, NULL, NULL);
    llava_set_param_int(c.params, LLAVA_PARAM_N_THREADS, c.cfg.threads);
    llava_set_param_float(c.params, LLAVA_PARAM_TEMPERATURE, 0.0); /* greedy: the cheapest, steadiest sampler */

    int rc;
    switch (c.stage) {
    case BENCH_ENCODE: rc = run_encode(&c); break;
    case BENCH_PREFILL: rc = run_prefill(&c); break;
    case BENCH_DECODE: rc = run_decode(&c); break;
    default: rc = run_ttft(&c); break;
    }
    printf("vmhwm_kb %ld\n", vmhwm_kb());
    fflush(stdout);
    free(c.tokens);
    llava_free_session(c.session);
    llava_free_image(c.image);
    llava_free_projector(c.projector);
    llava_free_vision(c.vision);
    llava_free_lm(c.lm);
    llava_free_params(c.params);
    return rc;
}
