/*
 * api_lm.c - public entry points of the language model, tokenizer and
 * sessions: argument checks, handle magic and error plumbing around
 * lm_load.c, session.c, session_state.c and the tokenizer.
 *
 * A loaded LM is shared read-only, so calls on it never record a message in
 * it (that would be a write from many threads); they only return a status.
 */
#include "session.h"

#include <string.h>

/* ---- loading ------------------------------------------------------------ */

static int finish_load(int rc, llv_gguf *g, const llava_params *params, llava_lm **out, llv_err *err)
{
    if (rc == LLAVA_OK) {
        llv_callbacks cb = llv_param_callbacks(params);
        rc = llv_lm_load(g, &cb, out, err);
        if (rc != LLAVA_OK)
            llv_gguf_close(g);
    }
    return rc;
}

LLAVA_API int llava_load_lm(const char *path, const llava_params *params, llava_lm **out, char *errbuf,
                            size_t errbuf_size)
{
    llv_err err;
    llv_err_clear(&err);
    int rc;
    if (out)
        *out = NULL;
    if (!path || !out) {
        rc = llv_fail(&err, LLAVA_E_INVALID_ARG, "path and out must not be NULL");
    } else if (params && !llv_handle_is(params, LLV_MAGIC_PARAMS)) {
        rc = llv_fail(&err, LLAVA_E_INVALID_ARG, "params is not a live params handle");
    } else {
        llv_gguf *g = NULL;
        rc = llv_gguf_open_file(path, (int)llv_param_int(params, LLAVA_PARAM_USE_MMAP), &g, &err);
        rc = finish_load(rc, g, params, out, &err);
    }
    llv_err_to_buf(&err, errbuf, errbuf_size);
    return rc;
}

LLAVA_API int llava_load_lm_from_memory(const void *data, size_t size, const llava_params *params, llava_lm **out,
                                        char *errbuf, size_t errbuf_size)
{
    llv_err err;
    llv_err_clear(&err);
    int rc;
    if (out)
        *out = NULL;
    if (!data || !out) {
        rc = llv_fail(&err, LLAVA_E_INVALID_ARG, "data and out must not be NULL");
    } else if (params && !llv_handle_is(params, LLV_MAGIC_PARAMS)) {
        rc = llv_fail(&err, LLAVA_E_INVALID_ARG, "params is not a live params handle");
    } else {
        llv_gguf *g = NULL;
        int copy = llv_param_int(params, LLAVA_PARAM_USE_MMAP) == 0;
        rc = llv_gguf_open_memory(data, size, copy, &g, &err);
        rc = finish_load(rc, g, params, out, &err);
    }
    llv_err_to_buf(&err, errbuf, errbuf_size);
    return rc;
}

LLAVA_API void llava_free_lm(llava_lm *lm)
{
    if (llv_handle_is(lm, LLV_MAGIC_LM))
        llv_lm_free(lm);
}

/* ---- facts ---------------------------------------------------------------- */

static const llava_lm *live_lm(const llava_lm *lm)
{
    return llv_handle_is(lm, LLV_MAGIC_LM) ? lm : NULL;
}

LLAVA_API int32_t llava_lm_n_vocab(const llava_lm *lm) { return live_lm(lm) ? lm->hp.n_vocab : 0; }
LLAVA_API int32_t llava_lm_n_embd(const llava_lm *lm) { return live_lm(lm) ? lm->hp.n_embd : 0; }
LLAVA_API int32_t llava_lm_n_ctx_train(const llava_lm *lm) { return live_lm(lm) ? lm->hp.n_ctx_train : 0; }
LLAVA_API int32_t llava_lm_token_bos(const llava_lm *lm) { return live_lm(lm) ? llv_vocab_bos(lm->vocab) : -1; }
LLAVA_API int32_t llava_lm_token_eos(const llava_lm *lm) { return live_lm(lm) ? llv_vocab_eos(lm->vocab) : -1; }

LLAVA_API int llava_lm_meta_str(const llava_lm *lm, const char *key, char *buf, size_t buf_size, size_t *len)
{
    if (len)
        *len = 0;
    if (!live_lm(lm) || !key || (!buf && buf_size))
        return LLAVA_E_INVALID_ARG;
    int64_t i = llv_gguf_find_key(lm->gguf, key);
    if (i < 0 || llv_gguf_kv_type(lm->gguf, i) != LLV_GGUF_STRING)
        return LLAVA_E_INVALID_ARG;
    llv_str v = llv_gguf_kv_str(lm->gguf, i);
    if (len)
        *len = v.len;
    if (!buf || buf_size <= v.len) {
        if (buf && buf_size)
            buf[0] = '\0';
        return LLAVA_E_BUFFER_TOO_SMALL;
    }
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = '\0';
    return LLAVA_OK;
}

/* ---- tokenizer ------------------------------------------------------------ */

LLAVA_API int llava_tokenize(const llava_lm *lm, const char *text, size_t len, unsigned flags, int32_t *tokens,
                             size_t capacity, size_t *n_tokens)
{
    if (n_tokens)
        *n_tokens = 0;
    if (!live_lm(lm) || !n_tokens || (!text && len) || (!tokens && capacity))
        return LLAVA_E_INVALID_ARG;
    if (flags & ~(LLAVA_TOKENIZE_ADD_BOS | LLAVA_TOKENIZE_PARSE_SPECIAL))
        return LLAVA_E_INVALID_ARG;
    return llv_tokenize(lm->vocab, text ? text : "", len, flags, tokens, capacity, n_tokens);
}

LLAVA_API int llava_token_to_piece(const llava_lm *lm, int32_t token, unsigned flags, char *buf, size_t buf_size,
                                   size_t *len)
{
    if (len)
        *len = 0;
    if (!live_lm(lm) || (!buf && buf_size) || (flags & ~LLAVA_PIECE_SPECIAL))
        return LLAVA_E_INVALID_ARG;
    if (token < 0 || token >= llv_vocab_n_tokens(lm->vocab))
        return LLAVA_E_INVALID_ARG;
    return llv_token_to_piece(lm->vocab, token, flags, buf, buf_size, len);
}

/* ---- sessions -------------------------------------------------------------- */

static llava_session *live_session(const llava_session *s)
{
    return llv_handle_is(s, LLV_MAGIC_SESSION) ? (llava_session *)s : NULL;
}

LLAVA_API int llava_new_session(const llava_lm *lm, const llava_params *params, llava_session **out, char *errbuf,
                                size_t errbuf_size)
{
    llv_err err;
    llv_err_clear(&err);
    int rc;
    if (out)
        *out = NULL;
    if (!live_lm(lm) || !out)
        rc = llv_fail(&err, LLAVA_E_INVALID_ARG, "lm must be a live LM handle and out not NULL");
    else if (params && !llv_handle_is(params, LLV_MAGIC_PARAMS))
        rc = llv_fail(&err, LLAVA_E_INVALID_ARG, "params is not a live params handle");
    else
        rc = llv_session_new(lm, params, out, &err);
    llv_err_to_buf(&err, errbuf, errbuf_size);
    return rc;
}

LLAVA_API void llava_free_session(llava_session *s)
{
    if (live_session(s))
        llv_session_free(s);
}

LLAVA_API int llava_session_set_params(llava_session *s, const llava_params *params)
{
    if (!live_session(s))
        return LLAVA_E_INVALID_ARG;
    llv_err_clear(&s->hdr.err);
    if (params && !llv_handle_is(params, LLV_MAGIC_PARAMS))
        return llv_fail(&s->hdr.err, LLAVA_E_INVALID_ARG, "params is not a live params handle");
    return llv_session_set_params(s, params);
}

LLAVA_API int llava_eval_tokens(llava_session *s, const int32_t *tokens, size_t n)
{
    if (!live_session(s))
        return LLAVA_E_INVALID_ARG;
    llv_err_clear(&s->hdr.err);
    if (!tokens)
        return llv_fail(&s->hdr.err, LLAVA_E_INVALID_ARG, "tokens is NULL");
    return llv_session_eval_tokens(s, tokens, n);
}

LLAVA_API int llava_eval_embed(llava_session *s, const llava_embed *embed)
{
    if (!live_session(s))
        return LLAVA_E_INVALID_ARG;
    llv_err_clear(&s->hdr.err);
    if (!llv_handle_is(embed, LLV_MAGIC_EMBED))
        return llv_fail(&s->hdr.err, LLAVA_E_INVALID_ARG, "embed is not a live embedding handle");
    return llv_session_eval_embed(s, embed);
}

LLAVA_API const float *llava_get_logits(llava_session *s, int32_t *n_vocab)
{
    if (n_vocab)
        *n_vocab = 0;
    if (!live_session(s) || !s->has_logits)
        return NULL;
    if (n_vocab)
        *n_vocab = s->lm->hp.n_vocab;
    return s->logits;
}

LLAVA_API int llava_sample(llava_session *s, int32_t *token)
{
    if (!live_session(s))
        return LLAVA_E_INVALID_ARG;
    llv_err_clear(&s->hdr.err);
    if (!token)
        return llv_fail(&s->hdr.err, LLAVA_E_INVALID_ARG, "token is NULL");
    return llv_session_sample(s, token);
}

LLAVA_API int32_t llava_session_position(const llava_session *s)
{
    return live_session(s) ? s->pos : 0;
}

LLAVA_API int32_t llava_session_n_ctx(const llava_session *s)
{
    return live_session(s) ? s->n_ctx : 0;
}

LLAVA_API int llava_session_rewind(llava_session *s, int32_t position)
{
    if (!live_session(s))
        return LLAVA_E_INVALID_ARG;
    llv_err_clear(&s->hdr.err);
    return llv_session_rewind(s, position);
}

LLAVA_API int llava_session_save(const llava_session *session, void *buf, size_t buf_size, size_t *size)
{
    llava_session *s = live_session(session);
    if (size)
        *size = 0;
    if (!s || !size)
        return LLAVA_E_INVALID_ARG;
    /* The message slot is the only thing a save writes in the session. */
    llv_err_clear(&s->hdr.err);
    return llv_session_save(s, buf, buf_size, size, &s->hdr.err);
}

LLAVA_API int llava_session_load(llava_session *s, const void *buf, size_t size)
{
    if (!live_session(s))
        return LLAVA_E_INVALID_ARG;
    llv_err_clear(&s->hdr.err);
    if (!buf)
        return llv_fail(&s->hdr.err, LLAVA_E_INVALID_ARG, "buf is NULL");
    return llv_session_load(s, buf, size, &s->hdr.err);
}
