/*
 * session.c - sessions over a shared LM: creation, evaluation in chunks of
 * N_BATCH rows, sampling and rewinding. Every buffer is allocated when the
 * session is created (or its N_BATCH changes), never per token.
 */
#include "session.h"

#include <string.h>

/* ---- lifetime ------------------------------------------------------------ */

void llv_session_free(llava_session *s)
{
    if (!s)
        return;
    llv_kv_free(&s->kv);
    llv_lm_scratch_free(&s->scratch);
    llv_free(s->history);
    llv_free(s->window);
    llv_free_aligned(s->logits);
    llv_sampler_work_free(&s->sw);
    llv_handle_kill(&s->hdr);
    llv_free(s);
}

static void apply_runtime(llava_session *s, const llava_params *params)
{
    llv_sampler_params_from(&s->sp, params);
    llv_rng_seed(&s->rng, s->sp.seed < 0 ? llv_rng_time_seed() : (uint64_t)s->sp.seed);
    s->cb = llv_param_callbacks(params);
    s->n_threads = llv_resolve_threads(llv_param_int(params, LLAVA_PARAM_N_THREADS));
}

static int64_t batch_rows(const llava_params *params, int32_t n_ctx)
{
    int64_t b = llv_param_int(params, LLAVA_PARAM_N_BATCH);
    if (b < 1)
        b = 1;
    return b < n_ctx ? b : n_ctx;
}

int llv_session_new(const llava_lm *lm, const llava_params *params, llava_session **out, llv_err *err)
{
    *out = NULL;
    const llv_lm_hparams *hp = &lm->hp;
    const llv_callbacks cb = llv_param_callbacks(params);
    int64_t n_ctx = llv_param_int(params, LLAVA_PARAM_N_CTX);
    if (n_ctx <= 0) {
        n_ctx = LLV_MIN(hp->n_ctx_train, LLV_LM_DEFAULT_CTX_CAP);
        if (n_ctx < hp->n_ctx_train)
            llv_log(&cb, 1, "context capped at %lld of the model's %d positions; set LLAVA_PARAM_N_CTX for more",
                    (long long)n_ctx, (int)hp->n_ctx_train);
    } else if (n_ctx > hp->n_ctx_train) {
        llv_log(&cb, 1, "context of %lld positions exceeds the model's training context of %d",
                (long long)n_ctx, (int)hp->n_ctx_train);
    }
    if (n_ctx > INT32_MAX)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "context of %lld positions is too large", (long long)n_ctx);
    int kv_type = llv_param_int(params, LLAVA_PARAM_KV_TYPE) == 0 ? LLV_TYPE_F32 : LLV_TYPE_F16;

    llava_session *s = llv_calloc(1, sizeof *s);
    if (!s)
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory");
    llv_handle_init(&s->hdr, LLV_MAGIC_SESSION);
    s->lm = lm;
    s->n_ctx = (int32_t)n_ctx;
    s->n_batch = batch_rows(params, s->n_ctx);
    apply_runtime(s, params);

    int rc;
    if ((rc = llv_kv_init(&s->kv, hp, kv_type, n_ctx, err)) != LLAVA_OK ||
        (rc = llv_lm_scratch_init(&s->scratch, hp, s->n_batch, err)) != LLAVA_OK ||
        (rc = llv_sampler_work_init(&s->sw, hp->n_vocab, (size_t)n_ctx, err)) != LLAVA_OK)
        goto fail;
    s->history = llv_malloc((size_t)n_ctx * sizeof *s->history);
    s->window = llv_malloc((size_t)n_ctx * sizeof *s->window);
    s->logits = llv_malloc_aligned((size_t)hp->n_vocab * sizeof *s->logits);
    if (!s->history || !s->window || !s->logits) {
        rc = llv_fail(err, LLAVA_E_NOMEM, "out of memory");
        goto fail;
    }
    *out = s;
    return LLAVA_OK;
fail:
    llv_session_free(s);
    return rc;
}

int llv_session_set_params(llava_session *s, const llava_params *params)
{
    int64_t nb = batch_rows(params, s->n_ctx);
    if (nb != s->n_batch) {
        llv_lm_scratch fresh;
        int rc = llv_lm_scratch_init(&fresh, &s->lm->hp, nb, &s->hdr.err);
        if (rc != LLAVA_OK)
            return rc;
        llv_lm_scratch_free(&s->scratch);
        s->scratch = fresh;
        s->n_batch = nb;
    }
    apply_runtime(s, params);
    return LLAVA_OK;
}

/* ---- evaluation ---------------------------------------------------------- */

/* Evaluate n rows at the current position, in chunks of n_batch. Rows come
 * from tokens (ids) or from emb (n x E floats). On any failure the position,
 * history and logits are as before the call. */
static int eval_rows(llava_session *s, const int32_t *tokens, const float *emb, int64_t n)
{
    const llava_lm *lm = s->lm;
    const int64_t E = lm->hp.n_embd;
    const int64_t pos0 = s->pos;
    llv_err *err = &s->hdr.err;

    if ((int64_t)s->n_ctx - pos0 < n)
        return llv_fail(err, LLAVA_E_CONTEXT_FULL, "%lld positions do not fit: %d of %d are used",
                        (long long)n, (int)pos0, (int)s->n_ctx);

    for (int64_t done = 0; done < n;) {
        const int64_t b = LLV_MIN(s->n_batch, n - done);
        if (done > 0 && llv_report_progress(&s->cb, (float)done / (float)n))
            return llv_fail(err, LLAVA_E_ABORTED, "aborted by the progress callback");
        if (tokens)
            llv_lm_embed_tokens(lm, tokens + done, b, s->scratch.x);
        else
            memcpy(s->scratch.x, emb + done * E, (size_t)(b * E) * sizeof(float));
        const bool last = done + b == n;
        int rc = llv_lm_forward(lm, &s->kv, &s->scratch, b, pos0 + done, last ? s->logits : NULL, &s->cb,
                                s->n_threads, err);
        if (rc != LLAVA_OK)
            return rc; /* s->pos untouched: the rows written past it are ignored */
        done += b;
    }
    for (int64_t i = 0; i < n; i++)
        s->history[pos0 + i] = tokens ? tokens[i] : -1;
    s->pos = (int32_t)(pos0 + n);
    s->has_logits = true;
    llv_report_progress(&s->cb, 1.0f); /* the work is done; a late "stop" changes nothing */
    return LLAVA_OK;
}

int llv_session_eval_tokens(llava_session *s, const int32_t *tokens, size_t n)
{
    if (n == 0)
        return llv_fail(&s->hdr.err, LLAVA_E_INVALID_ARG, "no tokens to evaluate");
    if (n > (size_t)s->n_ctx - (size_t)s->pos)
        return llv_fail(&s->hdr.err, LLAVA_E_CONTEXT_FULL, "%zu tokens do not fit: %d of %d positions are used",
                        n, (int)s->pos, (int)s->n_ctx);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->lm->hp.n_vocab)
            return llv_fail(&s->hdr.err, LLAVA_E_INVALID_ARG, "token %zu: id %d is outside [0, %d)", i,
                            (int)tokens[i], (int)s->lm->hp.n_vocab);
    return eval_rows(s, tokens, NULL, (int64_t)n);
}

int llv_session_eval_embed(llava_session *s, const llava_embed *e)
{
    if (e->n_embd != s->lm->hp.n_embd)
        return llv_fail(&s->hdr.err, LLAVA_E_MISMATCH, "the embedding has %d columns but the LM's width is %d",
                        (int)e->n_embd, (int)s->lm->hp.n_embd);
    if (e->n_tokens <= 0 || !e->data)
        return llv_fail(&s->hdr.err, LLAVA_E_INVALID_ARG, "the embedding is empty");
    return eval_rows(s, NULL, e->data, e->n_tokens);
}

/* ---- sampling, rewinding ------------------------------------------------- */

int llv_session_sample(llava_session *s, int32_t *token)
{
    if (!s->has_logits)
        return llv_fail(&s->hdr.err, LLAVA_E_STATE, "no logits: evaluate something first");
    /* The penalty window: the last repeat_last_n text tokens (image rows skipped). */
    size_t n = 0;
    const size_t want = s->sp.repeat_last_n > 0 ? (size_t)s->sp.repeat_last_n : 0;
    for (int32_t p = s->pos - 1; p >= 0 && n < want; p--)
        if (s->history[p] >= 0)
            s->window[n++] = s->history[p];
    *token = llv_sample(&s->sp, s->logits, s->lm->hp.n_vocab, s->window, n, &s->rng, &s->sw);
    return LLAVA_OK;
}

int llv_session_rewind(llava_session *s, int32_t position)
{
    if (position < 0 || position > s->pos)
        return llv_fail(&s->hdr.err, LLAVA_E_INVALID_ARG, "cannot rewind to %d: the position is %d", (int)position,
                        (int)s->pos);
    s->pos = position;
    s->has_logits = false;
    return LLAVA_OK;
}
