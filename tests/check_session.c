/*
 * check_session.c - sessions over the golden LM: batching, KV types,
 * rewind, save/load (and hostile state blobs), abort, context limits, and
 * many sessions on one LM from many threads.
 */
#include "check_lm_util.h"

#include <pthread.h>

#define NV 32000

static int32_t prompt[64];
static int n_prompt;
static int32_t want32[32];

static void load_golden_ids(void)
{
    n_prompt = tu_golden_ids("chat_prefix_ids", prompt, 64); /* 35 tokens */
    ck_assert_int_eq(n_prompt, 35);
    ck_assert_int_eq(tu_golden_ids("text_greedy32", want32, 32), 32);
}

/* ---- batching ------------------------------------------------------------- */

/* One batch vs token by token vs N_BATCH = 3 give the same logits, for both
 * KV types. */
START_TEST(test_batching)
{
    load_golden_ids();
    const int kv_type = _i;
    llava_lm *lm = tu_load_lm();
    float *ref = malloc(NV * sizeof(float));
    const int batches[] = { 512, 1, 3 };
    for (int b = 0; b < 3; b++) {
        llava_params *p = tu_params(2, kv_type, batches[b], 128);
        llava_session *s = tu_session(lm, p);
        if (batches[b] == 1) {
            for (int i = 0; i < n_prompt; i++)
                ck_assert_int_eq(llava_eval_tokens(s, &prompt[i], 1), LLAVA_OK);
        } else {
            ck_assert_int_eq(llava_eval_tokens(s, prompt, (size_t)n_prompt), LLAVA_OK);
        }
        const float *lg = llava_get_logits(s, NULL);
        if (b == 0) {
            memcpy(ref, lg, NV * sizeof(float));
        } else {
            double e = tu_rel_err(lg, ref, NV);
            printf("KV %s: N_BATCH %d vs one batch: rel err %.3g\n", kv_type ? "F16" : "F32", batches[b], e);
            /* F16 KV: GEMM and GEMV results differ in the last f32 bits,
             * which can flip an f16 rounding of a K/V element (2^-11). */
            ck_assert_msg(e < (kv_type ? 2e-4 : 1e-5), "rel err %g", e);
        }
        llava_free_session(s);
        llava_free_params(p);
    }
    /* One batch on 1 thread: the same bits as on 2 (work is split into
     * items whose results do not depend on who runs them; with 35 rows the
     * row-wise stages run in parallel on 2 threads). */
    llava_params *p1 = tu_params(1, kv_type, 512, 128);
    llava_session *s1 = tu_session(lm, p1);
    ck_assert_int_eq(llava_eval_tokens(s1, prompt, (size_t)n_prompt), LLAVA_OK);
    ck_assert_msg(memcmp(llava_get_logits(s1, NULL), ref, NV * sizeof(float)) == 0,
                  "1 thread and 2 threads give different logits");
    llava_free_session(s1);
    llava_free_params(p1);
    free(ref);
    llava_free_lm(lm);
}
END_TEST

/* Changing N_BATCH with set_params keeps results. */
START_TEST(test_set_params)
{
    load_golden_ids();
    llava_lm *lm = tu_load_lm();
    llava_params *p = tu_params(1, 0, 512, 128);
    llava_session *s = tu_session(lm, p);
    ck_assert_int_eq(llava_eval_tokens(s, prompt, 20), LLAVA_OK);
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_N_BATCH, 4), LLAVA_OK);
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_N_CTX, 8), LLAVA_OK); /* ignored */
    ck_assert_int_eq(llava_session_set_params(s, p), LLAVA_OK);
    ck_assert_int_eq(llava_session_n_ctx(s), 128);
    ck_assert_int_eq(llava_eval_tokens(s, prompt + 20, (size_t)n_prompt - 20), LLAVA_OK);
    float *a = malloc(NV * sizeof(float));
    memcpy(a, llava_get_logits(s, NULL), NV * sizeof(float));
    llava_free_session(s);

    llava_params *q = tu_params(1, 0, 512, 128);
    s = tu_session(lm, q);
    ck_assert_int_eq(llava_eval_tokens(s, prompt, (size_t)n_prompt), LLAVA_OK);
    ck_assert_msg(tu_rel_err(llava_get_logits(s, NULL), a, NV) < 1e-5, "set_params changed results");
    ck_assert_int_eq(llava_session_set_params(s, (const llava_params *)lm), LLAVA_E_INVALID_ARG);
    free(a);
    llava_free_session(s);
    llava_free_params(p);
    llava_free_params(q);
    llava_free_lm(lm);
}
END_TEST

/* ---- rewind --------------------------------------------------------------- */

START_TEST(test_rewind)
{
    load_golden_ids();
    llava_lm *lm = tu_load_lm();
    llava_params *p = tu_params(2, 1, 512, 128);
    llava_session *s = tu_session(lm, p);
    ck_assert_int_eq(llava_eval_tokens(s, prompt, (size_t)n_prompt), LLAVA_OK);
    int32_t gen[8];
    tu_greedy(s, 8, gen);
    float *a = malloc(NV * sizeof(float));
    memcpy(a, llava_get_logits(s, NULL), NV * sizeof(float));

    ck_assert_int_eq(llava_session_rewind(s, n_prompt + 9), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_session_rewind(s, -1), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_session_position(s), n_prompt + 8);
    /* back into the prompt, then re-evaluate the same inputs */
    ck_assert_int_eq(llava_session_rewind(s, 20), LLAVA_OK);
    ck_assert_int_eq(llava_session_position(s), 20);
    ck_assert_ptr_null(llava_get_logits(s, NULL));
    int32_t tok;
    ck_assert_int_eq(llava_sample(s, &tok), LLAVA_E_STATE);
    /* overwrite the forgotten positions with other tokens first */
    int32_t junk[10] = { 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000 };
    ck_assert_int_eq(llava_eval_tokens(s, junk, 10), LLAVA_OK);
    ck_assert_int_eq(llava_session_rewind(s, 20), LLAVA_OK);
    ck_assert_int_eq(llava_eval_tokens(s, prompt + 20, (size_t)n_prompt - 20), LLAVA_OK);
    ck_assert_int_eq(llava_eval_tokens(s, gen, 8), LLAVA_OK);
    double e = tu_rel_err(llava_get_logits(s, NULL), a, NV);
    printf("rewind + re-eval: rel err %.3g\n", e);
    ck_assert_msg(e < 1e-5, "rel err %g", e);
    ck_assert_int_eq(llava_session_rewind(s, 0), LLAVA_OK);
    ck_assert_int_eq(llava_session_position(s), 0);
    free(a);
    llava_free_session(s);
    llava_free_params(p);
    llava_free_lm(lm);
}
END_TEST

/* ---- context limits, abort ------------------------------------------------ */

START_TEST(test_context_full)
{
    load_golden_ids();
    llava_lm *lm = tu_load_lm();
    llava_params *p = tu_params(1, 1, 512, 8);
    llava_session *s = tu_session(lm, p);
    ck_assert_int_eq(llava_session_n_ctx(s), 8);
    /* bad arguments */
    int32_t bad = NV;
    ck_assert_int_eq(llava_eval_tokens(s, &bad, 1), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_eval_tokens(s, prompt, 0), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_eval_tokens(s, NULL, 1), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_eval_tokens(NULL, prompt, 1), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_eval_tokens(s, prompt, 9), LLAVA_E_CONTEXT_FULL);
    ck_assert_int_eq(llava_session_position(s), 0);
    ck_assert_int_eq(llava_eval_tokens(s, prompt, 6), LLAVA_OK);
    float *a = malloc(NV * sizeof(float));
    memcpy(a, llava_get_logits(s, NULL), NV * sizeof(float));
    ck_assert_int_eq(llava_eval_tokens(s, prompt + 6, 3), LLAVA_E_CONTEXT_FULL);
    ck_assert_msg(strlen(llava_errmsg(s)) > 0, "no message");
    ck_assert_int_eq(llava_session_position(s), 6);
    ck_assert_msg(tu_rel_err(llava_get_logits(s, NULL), a, NV) == 0.0, "logits changed");
    ck_assert_int_eq(llava_eval_tokens(s, prompt + 6, 2), LLAVA_OK);
    ck_assert_str_eq(llava_errmsg(s), "");
    ck_assert_int_eq(llava_session_position(s), 8);
    ck_assert_int_eq(llava_eval_tokens(s, prompt, 1), LLAVA_E_CONTEXT_FULL);
    ck_assert_int_eq(llava_eval_tokens(s, &bad, 1), LLAVA_E_CONTEXT_FULL); /* checked first */
    free(a);
    llava_free_session(s);
    llava_free_params(p);

    /* N_CTX = 0 gives the training context (2048, under the cap) */
    p = tu_params(1, 1, 512, 0);
    s = tu_session(lm, p);
    ck_assert_int_eq(llava_session_n_ctx(s), 2048);
    llava_free_session(s);
    llava_free_params(p);
    llava_free_lm(lm);
}
END_TEST

static int abort_polls, abort_after;
static int abort_cb(void *ud)
{
    (void)ud;
    return ++abort_polls > abort_after;
}

START_TEST(test_abort)
{
    load_golden_ids();
    llava_lm *lm = tu_load_lm();
    llava_params *p = tu_params(1, 1, 4, 128);
    llava_set_abort_callback(p, abort_cb, NULL);
    abort_after = 1 << 30;
    llava_session *s = tu_session(lm, p);
    ck_assert_int_eq(llava_eval_tokens(s, prompt, 10), LLAVA_OK);
    float *a = malloc(NV * sizeof(float));
    memcpy(a, llava_get_logits(s, NULL), NV * sizeof(float));
    /* 20 tokens in batches of 4 = 5 batches x 2 layers = 10 polls: stop at each */
    for (int stop = 0; stop < 10; stop++) {
        abort_polls = 0;
        abort_after = stop;
        ck_assert_int_eq(llava_eval_tokens(s, prompt + 10, 20), LLAVA_E_ABORTED);
        ck_assert_int_eq(llava_session_position(s), 10);
        ck_assert_msg(tu_rel_err(llava_get_logits(s, NULL), a, NV) == 0.0, "logits changed by an aborted eval");
    }
    abort_after = 1 << 30;
    ck_assert_int_eq(llava_eval_tokens(s, prompt + 10, (size_t)n_prompt - 10), LLAVA_OK);
    float *b = malloc(NV * sizeof(float));
    memcpy(b, llava_get_logits(s, NULL), NV * sizeof(float));
    llava_free_session(s);

    /* the same without any abort */
    llava_params *q = tu_params(1, 1, 4, 128);
    s = tu_session(lm, q);
    ck_assert_int_eq(llava_eval_tokens(s, prompt, (size_t)n_prompt), LLAVA_OK);
    ck_assert_msg(tu_rel_err(llava_get_logits(s, NULL), b, NV) < 1e-6, "aborted evals left traces");
    free(a);
    free(b);
    llava_free_session(s);
    llava_free_params(p);
    llava_free_params(q);
    llava_free_lm(lm);
}
END_TEST

/* ---- save / load ------------------------------------------------------------ */

static void *save_state(llava_session *s, size_t *size)
{
    ck_assert_int_eq(llava_session_save(s, NULL, 0, size), LLAVA_E_BUFFER_TOO_SMALL);
    ck_assert_uint_gt(*size, 0);
    void *buf = malloc(*size);
    size_t got = 0;
    ck_assert_int_eq(llava_session_save(s, buf, *size - 1, &got), LLAVA_E_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(got, *size);
    ck_assert_int_eq(llava_session_save(s, buf, *size, &got), LLAVA_OK);
    ck_assert_uint_eq(got, *size);
    return buf;
}

/* Sample n tokens with the session's sampler, evaluating each. */
static void sample_run(llava_session *s, int n, int32_t *out)
{
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(llava_sample(s, &out[i]), LLAVA_OK);
        ck_assert_int_eq(llava_eval_tokens(s, &out[i], 1), LLAVA_OK);
    }
}

START_TEST(test_save_load)
{
    load_golden_ids();
    const int kv_type = _i % 2, sampled = _i / 2;
    llava_lm *lm = tu_load_lm();
    llava_params *p = tu_params(2, kv_type, 512, 128);
    if (sampled) { /* temperature sampling: the RNG state must travel too */
        llava_set_param_float(p, LLAVA_PARAM_TEMPERATURE, 1.0);
        llava_set_param_int(p, LLAVA_PARAM_SEED, 1234);
        llava_set_param_float(p, LLAVA_PARAM_REPEAT_PENALTY, 1.3);
    }
    llava_session *s = tu_session(lm, p);
    ck_assert_int_eq(llava_eval_tokens(s, prompt, (size_t)n_prompt), LLAVA_OK);
    int32_t first[8], cont_a[12], cont_b[12];
    sample_run(s, 8, first);
    size_t size;
    void *state = save_state(s, &size);
    sample_run(s, 12, cont_a);

    llava_session *t = tu_session(lm, p); /* fresh session, different RNG draws so far: none */
    ck_assert_int_eq(llava_session_load(t, state, size), LLAVA_OK);
    ck_assert_int_eq(llava_session_position(t), n_prompt + 8);
    sample_run(t, 12, cont_b);
    for (int i = 0; i < 12; i++)
        ck_assert_int_eq(cont_a[i], cont_b[i]);
    /* loading into the original session rewinds it to the saved point */
    ck_assert_int_eq(llava_session_load(s, state, size), LLAVA_OK);
    sample_run(s, 12, cont_b);
    for (int i = 0; i < 12; i++)
        ck_assert_int_eq(cont_a[i], cont_b[i]);

    /* a state without logits (after a rewind) */
    ck_assert_int_eq(llava_session_rewind(s, 10), LLAVA_OK);
    free(state);
    state = save_state(s, &size);
    ck_assert_int_eq(llava_session_load(t, state, size), LLAVA_OK);
    ck_assert_int_eq(llava_session_position(t), 10);
    ck_assert_ptr_null(llava_get_logits(t, NULL));

    free(state);
    llava_free_session(s);
    llava_free_session(t);
    llava_free_params(p);
    llava_free_lm(lm);
}
END_TEST

/* A session that must stay exactly as it was after a rejected load. */
static void check_unchanged(llava_session *s, int32_t pos, const float *logits, const int32_t *next, int n)
{
    ck_assert_int_eq(llava_session_position(s), pos);
    ck_assert_msg(tu_rel_err(llava_get_logits(s, NULL), logits, NV) == 0.0, "logits changed");
    int32_t got[4];
    tu_greedy(s, n, got);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(got[i], next[i]);
    ck_assert_int_eq(llava_session_rewind(s, pos - 1), LLAVA_OK);
    ck_assert_int_eq(llava_eval_tokens(s, &next[-1], 1), LLAVA_OK); /* back to pos, with its logits */
}

START_TEST(test_state_hostile)
{
    load_golden_ids();
    llava_lm *lm = tu_load_lm();
    llava_params *p = tu_params(1, 1, 512, 64);
    llava_session *src = tu_session(lm, p);
    ck_assert_int_eq(llava_eval_tokens(src, prompt, 6), LLAVA_OK);
    size_t size;
    unsigned char *state = save_state(src, &size);
    printf("state of 6 positions: %zu bytes\n", size);

    /* the victim: a session at another point, with known continuation */
    llava_session *s = tu_session(lm, p);
    ck_assert_int_eq(llava_eval_tokens(s, prompt, 12), LLAVA_OK);
    int32_t next[5];
    next[0] = prompt[11];
    tu_greedy(s, 4, next + 1);
    ck_assert_int_eq(llava_session_rewind(s, 11), LLAVA_OK);
    ck_assert_int_eq(llava_eval_tokens(s, &prompt[11], 1), LLAVA_OK);
    float *logits = malloc(NV * sizeof(float));
    memcpy(logits, llava_get_logits(s, NULL), NV * sizeof(float));

    /* every truncation */
    for (size_t n = 0; n < size; n++) {
        int rc = llava_session_load(s, state, n);
        ck_assert_msg(rc == LLAVA_E_FORMAT, "truncation to %zu: %d", n, rc);
    }
    check_unchanged(s, 12, logits, next + 1, 4);
    /* one extra byte */
    unsigned char *longer = malloc(size + 1);
    memcpy(longer, state, size);
    longer[size] = 0;
    ck_assert_int_eq(llava_session_load(s, longer, size + 1), LLAVA_E_FORMAT);
    free(longer);

    /* every header byte flipped (bit 0 and bit 7), and bytes across the body */
    for (size_t i = 0; i < size; i += (i < 80 ? 1 : 997)) {
        for (int bit = 0; bit < 8; bit += 7) {
            state[i] ^= (unsigned char)(1u << bit);
            int rc = llava_session_load(s, state, size);
            ck_assert_msg(rc == LLAVA_E_FORMAT || rc == LLAVA_E_MISMATCH, "flip at %zu bit %d: %d", i, bit, rc);
            state[i] ^= (unsigned char)(1u << bit);
        }
    }
    /* the checksum's own bytes */
    state[size - 1] ^= 0x55;
    ck_assert_int_eq(llava_session_load(s, state, size), LLAVA_E_FORMAT);
    state[size - 1] ^= 0x55;
    check_unchanged(s, 12, logits, next + 1, 4);

    /* a huge position with a matching (tiny) buffer cannot pass */
    unsigned char hdr[84];
    memcpy(hdr, state, 76);
    hdr[36] = hdr[37] = hdr[38] = 0xff;
    hdr[39] = 0x7f;
    memset(hdr + 76, 0, 8);
    ck_assert_int_eq(llava_session_load(s, hdr, sizeof hdr), LLAVA_E_FORMAT);
    hdr[32] = hdr[33] = hdr[34] = hdr[35] = 0xff; /* and a context to match it */
    ck_assert_int_eq(llava_session_load(s, hdr, sizeof hdr), LLAVA_E_MISMATCH);

    /* a state from an F32-KV session does not load into an F16 one */
    llava_params *q = tu_params(1, 0, 512, 64);
    llava_session *f32 = tu_session(lm, q);
    ck_assert_int_eq(llava_eval_tokens(f32, prompt, 6), LLAVA_OK);
    size_t size32;
    void *state32 = save_state(f32, &size32);
    ck_assert_int_eq(llava_session_load(s, state32, size32), LLAVA_E_MISMATCH);
    /* nor into a context that is too small */
    llava_params *r = tu_params(1, 1, 512, 4);
    llava_session *small = tu_session(lm, r);
    ck_assert_int_eq(llava_session_load(small, state, size), LLAVA_E_MISMATCH);
    ck_assert_int_eq(llava_session_load(s, NULL, size), LLAVA_E_INVALID_ARG);
    check_unchanged(s, 12, logits, next + 1, 4);

    /* and the valid one still loads */
    ck_assert_int_eq(llava_session_load(s, state, size), LLAVA_OK);
    ck_assert_int_eq(llava_session_position(s), 6);

    free(state);
    free(state32);
    free(logits);
    llava_free_session(src);
    llava_free_session(s);
    llava_free_session(f32);
    llava_free_session(small);
    llava_free_params(p);
    llava_free_params(q);
    llava_free_params(r);
    llava_free_lm(lm);
}
END_TEST

/* ---- threads ----------------------------------------------------------------- */

#define N_SESS 8

typedef struct job {
    const llava_lm *lm;
    int32_t         ids[16];
    int             n;
    int32_t         out[32];
    int             rc;
    int             n_threads;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    llava_params *p = llava_new_params();
    llava_set_param_int(p, LLAVA_PARAM_N_THREADS, j->n_threads);
    llava_set_param_int(p, LLAVA_PARAM_N_CTX, 64);
    llava_set_param_float(p, LLAVA_PARAM_TEMPERATURE, 0.0);
    llava_session *s = NULL;
    j->rc = llava_new_session(j->lm, p, &s, NULL, 0);
    if (j->rc == LLAVA_OK)
        j->rc = llava_eval_tokens(s, j->ids, (size_t)j->n);
    for (int i = 0; i < 32 && j->rc == LLAVA_OK; i++) {
        j->rc = llava_sample(s, &j->out[i]);
        if (j->rc == LLAVA_OK)
            j->rc = llava_eval_tokens(s, &j->out[i], 1);
    }
    llava_free_session(s);
    llava_free_params(p);
    return NULL;
}

START_TEST(test_threads)
{
    load_golden_ids();
    llava_lm *lm = tu_load_lm();
    job par[N_SESS], seq[N_SESS];
    for (int k = 0; k < N_SESS; k++) {
        memset(&par[k], 0, sizeof par[k]);
        par[k].lm = lm;
        par[k].n = 4 + k;
        par[k].n_threads = 1 + k % 2; /* half of them with an OpenMP team of 2 */
        for (int i = 0; i < par[k].n; i++)
            par[k].ids[i] = prompt[(i * 7 + k * 3) % n_prompt];
        seq[k] = par[k];
    }
    for (int k = 0; k < N_SESS; k++)
        run_job(&seq[k]);
    pthread_t th[N_SESS];
    for (int k = 0; k < N_SESS; k++)
        ck_assert_int_eq(pthread_create(&th[k], NULL, run_job, &par[k]), 0);
    for (int k = 0; k < N_SESS; k++)
        pthread_join(th[k], NULL);
    int distinct = 0;
    for (int k = 0; k < N_SESS; k++) {
        ck_assert_int_eq(seq[k].rc, LLAVA_OK);
        ck_assert_int_eq(par[k].rc, LLAVA_OK);
        for (int i = 0; i < 32; i++)
            ck_assert_int_eq(par[k].out[i], seq[k].out[i]);
        if (k > 0 && memcmp(seq[k].out, seq[0].out, sizeof seq[0].out) != 0)
            distinct++;
    }
    ck_assert_int_gt(distinct, 0); /* the prompts really differ */
    llava_free_lm(lm);
}
END_TEST

/* Sampling with a seed is reproducible across sessions; -1 seeds differ. */
START_TEST(test_seeded_sampling)
{
    load_golden_ids();
    llava_lm *lm = tu_load_lm();
    int32_t out[3][16];
    for (int r = 0; r < 3; r++) {
        llava_params *p = tu_params(1, 1, 512, 64);
        llava_set_param_float(p, LLAVA_PARAM_TEMPERATURE, 1.5);
        llava_set_param_int(p, LLAVA_PARAM_TOP_K, 0);
        llava_set_param_float(p, LLAVA_PARAM_TOP_P, 1.0);
        llava_set_param_float(p, LLAVA_PARAM_MIN_P, 0.0);
        llava_set_param_int(p, LLAVA_PARAM_SEED, r < 2 ? 42 : 43);
        llava_session *s = tu_session(lm, p);
        ck_assert_int_eq(llava_eval_tokens(s, prompt, 6), LLAVA_OK);
        sample_run(s, 16, out[r]);
        llava_free_session(s);
        llava_free_params(p);
    }
    ck_assert(memcmp(out[0], out[1], sizeof out[0]) == 0);
    ck_assert(memcmp(out[0], out[2], sizeof out[0]) != 0);
    llava_free_lm(lm);
}
END_TEST

int main(void)
{
    if (!tu_have_golden()) {
        fprintf(stderr, "golden data not found under %s: skipping\n", tu_data_dir());
        return 77;
    }
    Suite *su = suite_create("session");
    TCase *tc = tcase_create("session");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_batching, 0, 2);
    tcase_add_test(tc, test_set_params);
    tcase_add_test(tc, test_rewind);
    tcase_add_test(tc, test_context_full);
    tcase_add_test(tc, test_abort);
    tcase_add_loop_test(tc, test_save_load, 0, 4);
    tcase_add_test(tc, test_state_hostile);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_seeded_sampling);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
