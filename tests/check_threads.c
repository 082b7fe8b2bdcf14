/*
 * check_threads.c - the thread-safety tags of llava.h, exercised:
 *  1. one LM, one vision encoder and one projector shared by N_WORKERS
 *     threads ([thread: shared-ro]), each with its own image, embedding and
 *     session: every thread's embedding and greedy tokens equal the ones
 *     computed sequentially beforehand (bit for bit);
 *  2. an abort callback flipped from another thread while an eval and while
 *     an encode are running gives LLAVA_E_ABORTED; the session keeps its
 *     position and then evaluates exactly as an untouched one; the image,
 *     encoder and projector stay usable;
 *  3. a session freed right after an aborted eval (no leak: run under ASan).
 * Run it under ThreadSanitizer too (see RELEASING / tests/run-all.sh).
 * Inputs: the tiny llava-mkmodel pair in tests/fuzz/data.
 */
#include "llava.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef FUZZ_SRC_DIR
#define FUZZ_SRC_DIR "tests/fuzz"
#endif
#define N_WORKERS 8
#define N_GEN 6

static atomic_int failures;
#define CHECK(c) do { \
        if (!(c)) { \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            atomic_fetch_add(&failures, 1); \
        } \
    } while (0)

static llava_lm *lm;
static llava_vision *vision;
static llava_projector *proj;

typedef struct result {
    float   embed_sum[2];        /* two cheap fingerprints + a full copy */
    float  *embed;
    size_t  embed_n;
    int32_t tokens[N_GEN];
} result;

static result expected[N_WORKERS], got[N_WORKERS];

static llava_params *base_params(void)
{
    llava_params *p = llava_new_params();
    if (!p)
        exit(1);
    /* compute threads per call: 1 by default (TSan does not see libgomp's
     * synchronisation); CHECK_THREADS_COMPUTE=2 nests OpenMP teams */
    const char *nt = getenv("CHECK_THREADS_COMPUTE");
    llava_set_param_int(p, LLAVA_PARAM_N_THREADS, nt ? atoi(nt) : 1);
    llava_set_param_int(p, LLAVA_PARAM_N_CTX, 128);
    llava_set_param_float(p, LLAVA_PARAM_TEMPERATURE, 0.0);
    return p;
}

static llava_image *make_image(int worker)
{
    int w = 9 + worker, h = 5 + 2 * worker;
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++)
        px[i] = (uint8_t)(i * (worker + 3) + worker * 17);
    llava_image *im = NULL;
    CHECK(llava_new_image_from_pixels(px, w, h, (size_t)w * 3, LLAVA_PIXEL_RGB, 0, NULL, &im, NULL, 0) == LLAVA_OK);
    free(px);
    return im;
}

/* encode the worker's image, then: prompt + image + greedy generation */
static void work(int worker, result *r)
{
    llava_params *p = base_params();
    llava_image *im = make_image(worker);
    llava_embed *e = NULL;
    CHECK(llava_encode_image(vision, proj, im, p, &e) == LLAVA_OK);
    if (!e) {
        llava_free_image(im);
        llava_free_params(p);
        return;
    }
    r->embed_n = (size_t)llava_embed_n_tokens(e) * llava_embed_n_embd(e);
    r->embed = malloc(r->embed_n * sizeof(float));
    memcpy(r->embed, llava_embed_data(e), r->embed_n * sizeof(float));

    llava_session *s = NULL;
    CHECK(llava_new_session(lm, p, &s, NULL, 0) == LLAVA_OK);
    int32_t prompt[3] = { 1, 65 + worker, 66 };
    CHECK(llava_eval_tokens(s, prompt, 3) == LLAVA_OK);
    CHECK(llava_eval_embed(s, e) == LLAVA_OK);
    for (int i = 0; i < N_GEN; i++) {
        int32_t t = -1;
        CHECK(llava_sample(s, &t) == LLAVA_OK);
        r->tokens[i] = t;
        CHECK(llava_eval_tokens(s, &t, 1) == LLAVA_OK);
    }
    llava_free_session(s);
    llava_free_embed(e);
    llava_free_image(im);
    llava_free_params(p);
}

static void *worker_main(void *arg)
{
    int w = (int)(intptr_t)arg;
    work(w, &got[w]);
    return NULL;
}

/* ---- abort from another thread ---------------------------------------- */

typedef struct abort_ctl {
    atomic_int armed;     /* the handshake below is on */
    atomic_int started;   /* set by the callback on its first armed poll */
    atomic_int flag;      /* set by the other thread */
    atomic_int polls;
} abort_ctl;

/* First poll: tell the flipper we are inside the operation, then wait (at
 * most ~5 s) until it flips the flag, so the abort lands mid-operation. */
static int abort_cb(void *ud)
{
    abort_ctl *c = ud;
    atomic_fetch_add(&c->polls, 1);
    if (atomic_load(&c->armed) && !atomic_exchange(&c->started, 1)) {
        for (int i = 0; i < 5000 && !atomic_load(&c->flag); i++)
            nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
    return atomic_load(&c->flag);
}

static void *flipper_main(void *arg)
{
    abort_ctl *c = arg;
    for (int i = 0; i < 5000 && !atomic_load(&c->started); i++)
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    atomic_store(&c->flag, 1);
    return NULL;
}

static void test_abort_eval(int free_right_away)
{
    abort_ctl ctl = { 0 };
    llava_params *p = base_params();
    CHECK(llava_set_abort_callback(p, abort_cb, &ctl) == LLAVA_OK);
    llava_session *s = NULL, *ref = NULL;
    CHECK(llava_new_session(lm, p, &s, NULL, 0) == LLAVA_OK);
    int32_t toks[5] = { 1, 70, 71, 72, 73 };
    CHECK(llava_eval_tokens(s, toks, 2) == LLAVA_OK); /* not armed: runs through */
    CHECK(atomic_load(&ctl.polls) > 0);
    atomic_store(&ctl.armed, 1);

    pthread_t th;
    pthread_create(&th, NULL, flipper_main, &ctl);
    int rc = llava_eval_tokens(s, toks + 2, 3);
    pthread_join(th, NULL);
    CHECK(rc == LLAVA_E_ABORTED);
    CHECK(llava_session_position(s) == 2);
    if (free_right_away) {
        llava_free_session(s);
        llava_free_params(p);
        return;
    }
    /* usable again: evaluates as a session that was never aborted */
    atomic_store(&ctl.armed, 0);
    atomic_store(&ctl.flag, 0);
    CHECK(llava_eval_tokens(s, toks + 2, 3) == LLAVA_OK);
    llava_params *q = base_params();
    CHECK(llava_new_session(lm, q, &ref, NULL, 0) == LLAVA_OK);
    CHECK(llava_eval_tokens(ref, toks, 5) == LLAVA_OK);
    int32_t n1 = 0, n2 = 0;
    const float *a = llava_get_logits(s, &n1), *b = llava_get_logits(ref, &n2);
    CHECK(a && b && n1 == n2 && memcmp(a, b, (size_t)n1 * sizeof(float)) == 0);
    llava_free_session(ref);
    llava_free_session(s);
    llava_free_params(q);
    llava_free_params(p);
}

static void test_abort_encode(void)
{
    abort_ctl ctl = { 0 };
    llava_params *p = base_params();
    CHECK(llava_set_abort_callback(p, abort_cb, &ctl) == LLAVA_OK);
    llava_image *im = make_image(3);
    llava_embed *e = (llava_embed *)&e;
    atomic_store(&ctl.armed, 1);
    pthread_t th;
    pthread_create(&th, NULL, flipper_main, &ctl);
    int rc = llava_encode_image(vision, proj, im, p, &e);
    pthread_join(th, NULL);
    CHECK(rc == LLAVA_E_ABORTED && e == NULL);
    CHECK(llava_errmsg(im)[0] != '\0');
    /* the image, encoder and projector still work and give the sequential result */
    llava_params *q = base_params();
    e = NULL;
    CHECK(llava_encode_image(vision, proj, im, q, &e) == LLAVA_OK);
    CHECK(e && expected[3].embed &&
          memcmp(llava_embed_data(e), expected[3].embed, expected[3].embed_n * sizeof(float)) == 0);
    llava_free_embed(e);
    llava_free_image(im);
    llava_free_params(q);
    llava_free_params(p);
}

int main(void)
{
    char eb[LLAVA_ERRBUF_SIZE] = "";
    llava_params *p = base_params();
    if (llava_load_lm(FUZZ_SRC_DIR "/data/lm.gguf", p, &lm, eb, sizeof eb) != LLAVA_OK ||
        llava_load_vision(FUZZ_SRC_DIR "/data/mmproj.gguf", p, &vision, eb, sizeof eb) != LLAVA_OK ||
        llava_load_projector(FUZZ_SRC_DIR "/data/mmproj.gguf", p, &proj, eb, sizeof eb) != LLAVA_OK) {
        fprintf(stderr, "check_threads: cannot load the tiny models: %s\n", eb);
        return 1;
    }
    llava_free_params(p);

    for (int w = 0; w < N_WORKERS; w++)
        work(w, &expected[w]);
    /* the workers must differ, or the comparison proves little */
    CHECK(memcmp(expected[0].embed, expected[1].embed, expected[0].embed_n * sizeof(float)) != 0);

    for (int round = 0; round < 3; round++) {
        pthread_t th[N_WORKERS];
        for (int w = 0; w < N_WORKERS; w++)
            pthread_create(&th[w], NULL, worker_main, (void *)(intptr_t)w);
        for (int w = 0; w < N_WORKERS; w++)
            pthread_join(th[w], NULL);
        for (int w = 0; w < N_WORKERS; w++) {
            CHECK(got[w].embed_n == expected[w].embed_n && got[w].embed &&
                  memcmp(got[w].embed, expected[w].embed, got[w].embed_n * sizeof(float)) == 0);
            CHECK(memcmp(got[w].tokens, expected[w].tokens, sizeof got[w].tokens) == 0);
            free(got[w].embed);
            got[w].embed = NULL;
        }
    }
    printf("shared LM/vision/projector: %d threads x 3 rounds equal the sequential results\n", N_WORKERS);

    test_abort_eval(0);
    test_abort_eval(1);
    test_abort_encode();
    printf("abort from another thread: eval and encode stopped, handles usable, free after abort\n");

    for (int w = 0; w < N_WORKERS; w++)
        free(expected[w].embed);
    llava_free_projector(proj);
    llava_free_vision(vision);
    llava_free_lm(lm);
    if (atomic_load(&failures)) {
        fprintf(stderr, "check_threads: %d failed checks\n", atomic_load(&failures));
        return 1;
    }
    printf("check_threads: ok\n");
    return 0;
}
