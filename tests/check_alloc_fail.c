/*
 * check_alloc_fail.c - allocation-failure injection through the whole API.
 *
 * For each operation (load LM, load vision + projector, decode images, copy
 * pixels, encode, new session, eval, sample, save/restore, chat turn) and
 * for N = 0, 1, 2, ...: make the N-th llv_* allocation fail
 * (llv_alloc_fail_inject, lib/error.c) and run the operation. Each run must
 * either succeed or return an error status with NULL outputs; the handles
 * given to it must stay usable (the operation then succeeds again with the
 * same result as without injection) or at least freeable. The loop stops once
 * STOP_AFTER consecutive N succeed (a failure swallowed on purpose does not
 * end it early). Leaks: run under the ASan build (LeakSanitizer) - the CI
 * sanitizer step does. The counter is global: N_THREADS = 1 everywhere.
 * Inputs: the tiny llava-mkmodel pair and seed images of tests/fuzz.
 */
#include "llava.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void llv_alloc_fail_inject(long n); /* LLV_INTERNAL in lib/error.c */

#ifndef FUZZ_SRC_DIR
#define FUZZ_SRC_DIR "tests/fuzz"
#endif
#define STOP_AFTER 8
#define MAX_N 200000

static int failures;
#define CHECK(c) do { \
        if (!(c)) { \
            fprintf(stderr, "%s:%d: check failed at N=%ld: %s\n", __FILE__, __LINE__, cur_n, #c); \
            failures++; \
        } \
    } while (0)

static long cur_n = -1;
static char lm_path[4096], mmproj_path[4096], png_path[4096], jpg_path[4096];
static llava_params *params;  /* N_THREADS=1, greedy, small context */

/* Shared, loaded without injection. */
static llava_lm *lm;
static llava_vision *vision;
static llava_projector *proj;
static llava_image *image;
static llava_embed *ref_embed;
static float *ref_logits;
static int32_t n_vocab, ref_token;
#define N_PROMPT 12 /* more than the GEMV row limit: the GEMM path runs */
static const int32_t prompt[N_PROMPT] = { 1, 72, 105, 33, 10, 87, 104, 97, 116, 32, 105, 115 };

/* One operation: returns its status; on failure it must have cleaned up.
 * check_result() is called on success to compare with the reference. */
typedef int (*op_fn)(void);

/* allocates: the operation must allocate (so some N fails); eval, sample
 * and state restore work in buffers made by llava_new_session. */
static void run_op(const char *name, op_fn op, int allocates)
{
    long ok_run = 0, n, n_fail = 0, n_nomem = 0;
    for (n = 0; n < MAX_N && ok_run < STOP_AFTER; n++) {
        cur_n = n;
        llv_alloc_fail_inject(n);
        int rc = op();
        llv_alloc_fail_inject(-1);
        if (rc == LLAVA_OK) {
            ok_run++;
        } else {
            ok_run = 0;
            n_fail++;
            if (rc == LLAVA_E_NOMEM)
                n_nomem++;
            else
                fprintf(stderr, "  %s: N=%ld gave %s, not LLAVA_E_NOMEM\n", name, n, llava_strerror(rc));
            CHECK(rc == LLAVA_E_NOMEM);
        }
    }
    cur_n = -1;
    CHECK(n < MAX_N);
    CHECK(!allocates || n_fail > 0);
    printf("%-22s %5ld injection points, all failed cleanly%s\n", name, n_fail,
           n_nomem == n_fail ? "" : " (some with another code)");
}

/* ---- constructors: on failure the out pointer must be NULL ---- */

static int op_load_lm(int mmap)
{
    llava_params *p = llava_dup_params(params);
    if (!p)
        return LLAVA_E_NOMEM;
    llava_set_param_int(p, LLAVA_PARAM_USE_MMAP, mmap);
    llava_lm *m = (llava_lm *)&m;
    char eb[LLAVA_ERRBUF_SIZE] = "";
    int rc = llava_load_lm(lm_path, p, &m, eb, sizeof eb);
    if (rc == LLAVA_OK) {
        CHECK(llava_lm_n_vocab(m) == n_vocab);
        llava_free_lm(m);
    } else {
        CHECK(m == NULL && eb[0] != '\0');
    }
    llava_free_params(p);
    return rc;
}
static int op_load_lm_read(void) { return op_load_lm(0); }
static int op_load_lm_mmap(void) { return op_load_lm(1); }

static int op_load_lm_memory(void)
{
    FILE *f = fopen(lm_path, "rb");
    static unsigned char buf[1 << 17];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    llava_lm *m = (llava_lm *)&m;
    int rc = llava_load_lm_from_memory(buf, n, params, &m, NULL, 0);
    if (rc == LLAVA_OK)
        llava_free_lm(m);
    else
        CHECK(m == NULL);
    return rc;
}

static int op_load_vision(void)
{
    llava_vision *v = (llava_vision *)&v;
    llava_projector *p = (llava_projector *)&p;
    int rc = llava_load_vision(mmproj_path, params, &v, NULL, 0);
    if (rc != LLAVA_OK) {
        CHECK(v == NULL);
        return rc;
    }
    rc = llava_load_projector(mmproj_path, params, &p, NULL, 0);
    if (rc != LLAVA_OK)
        CHECK(p == NULL);
    llava_free_projector(rc == LLAVA_OK ? p : NULL);
    llava_free_vision(v);
    return rc;
}

static int op_image(const char *path)
{
    llava_image *im = (llava_image *)&im;
    int rc = llava_load_image(path, params, &im, NULL, 0);
    if (rc == LLAVA_OK) {
        CHECK(llava_image_width(im) > 0);
        llava_free_image(im);
    } else {
        CHECK(im == NULL);
    }
    return rc;
}
static int op_image_png(void) { return op_image(png_path); }
static int op_image_jpg(void) { return op_image(jpg_path); }

static int op_pixels(void)
{
    uint8_t px[6 * 4 * 4];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)i;
    llava_image *im = (llava_image *)&im;
    int rc = llava_new_image_from_pixels(px, 5, 4, 24, LLAVA_PIXEL_BGRA, LLAVA_PIXELS_BOTTOM_UP, params, &im, NULL, 0);
    if (rc == LLAVA_OK)
        llava_free_image(im);
    else
        CHECK(im == NULL);
    return rc;
}

/* Equal up to float rounding: when the GEMM panel buffer cannot be
 * allocated, llv_matmul falls back to GEMV on purpose (lib/matmul.c), which
 * sums in another order. Everything else must match exactly. */
static int close_floats(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= 1e-4f * (1.0f + fabsf(b[i]))))
            return 0;
    return 1;
}

static int same_embed(const llava_embed *a, const llava_embed *b)
{
    size_t n = (size_t)llava_embed_n_tokens(a) * (size_t)llava_embed_n_embd(a);
    return llava_embed_n_tokens(a) == llava_embed_n_tokens(b) && llava_embed_n_embd(a) == llava_embed_n_embd(b) &&
           close_floats(llava_embed_data(a), llava_embed_data(b), n);
}

/* encode: the shared image, vision and projector stay usable after a failure */
static int op_encode(void)
{
    llava_embed *e = (llava_embed *)&e;
    int rc = llava_encode_image(vision, proj, image, params, &e);
    if (rc == LLAVA_OK) {
        CHECK(same_embed(e, ref_embed));
        llava_free_embed(e);
    } else {
        CHECK(e == NULL && llava_errmsg(image)[0] != '\0');
        llv_alloc_fail_inject(-1);
        llava_embed *again = NULL;
        CHECK(llava_encode_image(vision, proj, image, params, &again) == LLAVA_OK);
        CHECK(again && same_embed(again, ref_embed));
        llava_free_embed(again);
    }
    return rc;
}

static int op_embed_roundtrip(void)
{
    unsigned char buf[1 << 14];
    size_t n = 0;
    int rc = llava_embed_save(ref_embed, buf, sizeof buf, &n);
    CHECK(rc == LLAVA_OK);
    llava_embed *e = (llava_embed *)&e;
    rc = llava_embed_load(buf, n, &e, NULL, 0);
    if (rc == LLAVA_OK) {
        CHECK(same_embed(e, ref_embed));
        llava_free_embed(e);
    } else {
        CHECK(e == NULL);
    }
    return rc;
}

static int op_new_session(void)
{
    llava_session *s = (llava_session *)&s;
    int rc = llava_new_session(lm, params, &s, NULL, 0);
    if (rc == LLAVA_OK)
        llava_free_session(s);
    else
        CHECK(s == NULL);
    return rc;
}

/* ---- operations on a session created without injection ---- */

static llava_session *fresh_session(void)
{
    llv_alloc_fail_inject(-1);
    llava_session *s = NULL;
    if (llava_new_session(lm, params, &s, NULL, 0) != LLAVA_OK) {
        fprintf(stderr, "cannot create a session\n");
        exit(1);
    }
    return s;
}

static int same_logits(llava_session *s)
{
    int32_t nv = 0;
    const float *l = llava_get_logits(s, &nv);
    return l && nv == n_vocab && close_floats(l, ref_logits, (size_t)nv);
}

static int op_eval(void)
{
    llava_session *s = fresh_session();
    llv_alloc_fail_inject(cur_n);
    int rc = llava_eval_tokens(s, prompt, N_PROMPT);
    llv_alloc_fail_inject(-1);
    if (rc == LLAVA_OK) {
        CHECK(same_logits(s));
    } else {
        CHECK(llava_session_position(s) == 0);
        CHECK(llava_eval_tokens(s, prompt, N_PROMPT) == LLAVA_OK && same_logits(s));
    }
    llava_free_session(s);
    return rc;
}

static int op_eval_embed(void)
{
    llava_session *s = fresh_session();
    llv_alloc_fail_inject(cur_n);
    int rc = llava_eval_embed(s, ref_embed);
    llv_alloc_fail_inject(-1);
    if (rc != LLAVA_OK) {
        CHECK(llava_session_position(s) == 0);
        CHECK(llava_eval_embed(s, ref_embed) == LLAVA_OK);
    }
    CHECK(llava_session_position(s) == llava_embed_n_tokens(ref_embed));
    llava_free_session(s);
    return rc;
}

static int op_sample(void)
{
    llava_session *s = fresh_session();
    CHECK(llava_eval_tokens(s, prompt, N_PROMPT) == LLAVA_OK);
    int32_t t = -1;
    llv_alloc_fail_inject(cur_n);
    int rc = llava_sample(s, &t);
    llv_alloc_fail_inject(-1);
    if (rc != LLAVA_OK)
        CHECK(llava_sample(s, &t) == LLAVA_OK);
    CHECK(t == ref_token);
    llava_free_session(s);
    return rc;
}

static int op_state(void)
{
    llava_session *s = fresh_session();
    CHECK(llava_eval_tokens(s, prompt, N_PROMPT) == LLAVA_OK);
    static unsigned char buf[1 << 16];
    size_t n = 0;
    CHECK(llava_session_save(s, buf, sizeof buf, &n) == LLAVA_OK);
    llava_session *t = fresh_session();
    llv_alloc_fail_inject(cur_n);
    int rc = llava_session_load(t, buf, n);
    llv_alloc_fail_inject(-1);
    if (rc != LLAVA_OK) {
        CHECK(llava_session_position(t) == 0);
        CHECK(llava_session_load(t, buf, n) == LLAVA_OK);
    }
    CHECK(llava_session_position(t) == N_PROMPT && same_logits(t));
    llava_free_session(t);
    llava_free_session(s);
    return rc;
}

/* a whole chat turn: new chat, text, image, generate; must be freeable at
 * any failure point */
static int op_chat_turn(void)
{
    llava_chat *c = (llava_chat *)&c;
    int rc = llava_new_chat(lm, params, &c, NULL, 0);
    if (rc != LLAVA_OK) {
        CHECK(c == NULL);
        return rc;
    }
    if ((rc = llava_chat_set_system(c, "Be brief.")) == LLAVA_OK &&
        (rc = llava_chat_add_text(c, "Hi ")) == LLAVA_OK &&
        (rc = llava_chat_add_image(c, ref_embed)) == LLAVA_OK &&
        (rc = llava_chat_add_text(c, "what is this?")) == LLAVA_OK)
        rc = llava_chat_generate(c, NULL, NULL);
    if (rc != LLAVA_OK)
        CHECK(llava_errmsg(c)[0] != '\0');
    llava_free_chat(c);
    return rc;
}

static void setup(void)
{
    const char *src = FUZZ_SRC_DIR;
    snprintf(lm_path, sizeof lm_path, "%s/data/lm.gguf", src);
    snprintf(mmproj_path, sizeof mmproj_path, "%s/data/mmproj.gguf", src);
    snprintf(png_path, sizeof png_path, "%s/corpus/image/palette.png", src);
    snprintf(jpg_path, sizeof jpg_path, "%s/corpus/image/progressive.jpg", src);
    params = llava_new_params();
    char eb[LLAVA_ERRBUF_SIZE];
    if (!params || llava_set_param_int(params, LLAVA_PARAM_N_THREADS, 1) != LLAVA_OK ||
        llava_set_param_int(params, LLAVA_PARAM_N_CTX, 64) != LLAVA_OK ||
        llava_set_param_int(params, LLAVA_PARAM_MAX_TOKENS, 3) != LLAVA_OK ||
        llava_set_param_float(params, LLAVA_PARAM_TEMPERATURE, 0.0) != LLAVA_OK ||
        llava_load_lm(lm_path, params, &lm, eb, sizeof eb) != LLAVA_OK ||
        llava_load_vision(mmproj_path, params, &vision, eb, sizeof eb) != LLAVA_OK ||
        llava_load_projector(mmproj_path, params, &proj, eb, sizeof eb) != LLAVA_OK ||
        llava_load_image(jpg_path, params, &image, eb, sizeof eb) != LLAVA_OK ||
        llava_encode_image(vision, proj, image, params, &ref_embed) != LLAVA_OK) {
        fprintf(stderr, "setup failed: %s\n", eb);
        exit(1);
    }
    n_vocab = llava_lm_n_vocab(lm);
    llava_session *s = fresh_session();
    if (llava_eval_tokens(s, prompt, N_PROMPT) != LLAVA_OK || llava_sample(s, &ref_token) != LLAVA_OK) {
        fprintf(stderr, "setup: eval failed\n");
        exit(1);
    }
    ref_logits = malloc((size_t)n_vocab * sizeof(float));
    memcpy(ref_logits, llava_get_logits(s, NULL), (size_t)n_vocab * sizeof(float));
    llava_free_session(s);
}

int main(void)
{
    setup();
    run_op("load_lm (read)", op_load_lm_read, 1);
    run_op("load_lm (mmap)", op_load_lm_mmap, 1);
    run_op("load_lm_from_memory", op_load_lm_memory, 1);
    run_op("load vision+projector", op_load_vision, 1);
    run_op("load_image (png)", op_image_png, 1);
    run_op("load_image (jpeg)", op_image_jpg, 1);
    run_op("new_image_from_pixels", op_pixels, 1);
    run_op("encode_image", op_encode, 1);
    run_op("embed save/load", op_embed_roundtrip, 1);
    run_op("new_session", op_new_session, 1);
    run_op("eval_tokens", op_eval, 0);
    run_op("eval_embed", op_eval_embed, 0);
    run_op("sample", op_sample, 0);
    run_op("session save/load", op_state, 0);
    run_op("chat turn", op_chat_turn, 1);

    llava_free_embed(ref_embed);
    llava_free_image(image);
    llava_free_projector(proj);
    llava_free_vision(vision);
    llava_free_lm(lm);
    llava_free_params(params);
    free(ref_logits);
    if (failures) {
        fprintf(stderr, "check_alloc_fail: %d failed checks\n", failures);
        return 1;
    }
    printf("check_alloc_fail: ok\n");
    return 0;
}
