/*
 * session.h - one conversation over a shared, read-only LM: KV cache,
 * position, token history, logits, sampler state and per-session scratch.
 */
#ifndef LLV_SESSION_H
#define LLV_SESSION_H

#include "embed.h"
#include "lm.h"
#include "sampler.h"

struct llava_session {
    llv_handle         hdr;
    const llava_lm    *lm;
    int32_t            n_ctx;
    int32_t            pos;        /* positions evaluated so far */
    llv_kv_cache       kv;
    llv_lm_scratch     scratch;    /* n_batch rows */
    int32_t           *history;    /* [n_ctx] token per position, -1 for an image row */
    int32_t           *window;     /* [n_ctx] penalty window gathered from history */
    float             *logits;     /* [n_vocab] of the last evaluated position */
    bool               has_logits;
    llv_sampler_params sp;
    llv_rng            rng;
    llv_sampler_work   sw;
    llv_callbacks      cb;
    int                n_threads;
    int64_t            n_batch;    /* min(N_BATCH, n_ctx) */
};

LLV_INTERNAL int  llv_session_new(const llava_lm *lm, const llava_params *params, llava_session **out, llv_err *err);
LLV_INTERNAL void llv_session_free(llava_session *s);
/* Sampling and runtime values (N_CTX, KV_TYPE stay). Leaves s unchanged on failure. */
LLV_INTERNAL int  llv_session_set_params(llava_session *s, const llava_params *params);
/* Evaluate n tokens (ids checked) or the rows of an embedding. */
LLV_INTERNAL int  llv_session_eval_tokens(llava_session *s, const int32_t *tokens, size_t n);
LLV_INTERNAL int  llv_session_eval_embed(llava_session *s, const llava_embed *e);
LLV_INTERNAL int  llv_session_sample(llava_session *s, int32_t *token);
LLV_INTERNAL int  llv_session_rewind(llava_session *s, int32_t position);

/* State blobs (session_state.c). */
LLV_INTERNAL int  llv_session_save(const llava_session *s, void *buf, size_t buf_size, size_t *size, llv_err *err);
LLV_INTERNAL int  llv_session_load(llava_session *s, const void *buf, size_t size, llv_err *err);

#endif /* LLV_SESSION_H */
