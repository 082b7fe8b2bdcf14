/*
 * api_lm.c - public entry points of the language model, tokenizer and
 * sessions. (Stub until the LM issue lands: every call reports
 * LLAVA_E_UNSUPPORTED.)
 */
#include "handle.h"

#define NOT_YET(errbuf, n) \
    do { if ((errbuf) && (n)) { llv_err e_; llv_fail(&e_, LLAVA_E_UNSUPPORTED, "not implemented yet"); llv_err_to_buf(&e_, errbuf, n); } } while (0)

LLAVA_API int llava_load_lm(const char *path, const llava_params *params, llava_lm **out, char *errbuf, size_t errbuf_size)
{ if (out) *out = NULL; NOT_YET(errbuf, errbuf_size); return LLAVA_E_UNSUPPORTED; }
LLAVA_API int llava_load_lm_from_memory(const void *data, size_t size, const llava_params *params, llava_lm **out, char *errbuf, size_t errbuf_size)
{ if (out) *out = NULL; NOT_YET(errbuf, errbuf_size); return LLAVA_E_UNSUPPORTED; }
LLAVA_API void llava_free_lm(llava_lm *lm) { (void)lm; }
LLAVA_API int32_t llava_lm_n_vocab(const llava_lm *lm) { (void)lm; return 0; }
LLAVA_API int32_t llava_lm_n_embd(const llava_lm *lm) { (void)lm; return 0; }
LLAVA_API int32_t llava_lm_n_ctx_train(const llava_lm *lm) { (void)lm; return 0; }
LLAVA_API int32_t llava_lm_token_bos(const llava_lm *lm) { (void)lm; return -1; }
LLAVA_API int32_t llava_lm_token_eos(const llava_lm *lm) { (void)lm; return -1; }
LLAVA_API int llava_lm_meta_str(const llava_lm *lm, const char *key, char *buf, size_t buf_size, size_t *len)
{ return LLAVA_E_UNSUPPORTED; }
LLAVA_API int llava_tokenize(const llava_lm *lm, const char *text, size_t len, unsigned flags, int32_t *tokens, size_t capacity, size_t *n_tokens)
{ return LLAVA_E_UNSUPPORTED; }
LLAVA_API int llava_token_to_piece(const llava_lm *lm, int32_t token, unsigned flags, char *buf, size_t buf_size, size_t *len)
{ return LLAVA_E_UNSUPPORTED; }
LLAVA_API int llava_new_session(const llava_lm *lm, const llava_params *params, llava_session **out, char *errbuf, size_t errbuf_size)
{ if (out) *out = NULL; NOT_YET(errbuf, errbuf_size); return LLAVA_E_UNSUPPORTED; }
LLAVA_API void llava_free_session(llava_session *s) { (void)s; }
LLAVA_API int llava_session_set_params(llava_session *s, const llava_params *params) { return LLAVA_E_UNSUPPORTED; }
LLAVA_API int llava_eval_tokens(llava_session *s, const int32_t *tokens, size_t n) { return LLAVA_E_UNSUPPORTED; }
LLAVA_API int llava_eval_embed(llava_session *s, const llava_embed *embed) { return LLAVA_E_UNSUPPORTED; }
LLAVA_API const float *llava_get_logits(llava_session *s, int32_t *n_vocab) { if (n_vocab) *n_vocab = 0; return NULL; }
LLAVA_API int llava_sample(llava_session *s, int32_t *token) { return LLAVA_E_UNSUPPORTED; }
LLAVA_API int32_t llava_session_position(const llava_session *s) { return 0; }
LLAVA_API int32_t llava_session_n_ctx(const llava_session *s) { return 0; }
LLAVA_API int llava_session_rewind(llava_session *s, int32_t position) { return LLAVA_E_UNSUPPORTED; }
LLAVA_API int llava_session_save(const llava_session *s, void *buf, size_t buf_size, size_t *size) { return LLAVA_E_UNSUPPORTED; }
LLAVA_API int llava_session_load(llava_session *s, const void *buf, size_t size) { return LLAVA_E_UNSUPPORTED; }
