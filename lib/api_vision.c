/*
 * api_vision.c - public entry points for the vision encoder, the projector,
 * encoding and embeddings. (Stub until the vision issue lands.)
 */
#include "handle.h"

static int not_yet(void **out, char *errbuf, size_t n)
{
    if (out) *out = NULL;
    llv_err e;
    llv_fail(&e, LLAVA_E_UNSUPPORTED, "not implemented yet");
    llv_err_to_buf(&e, errbuf, n);
    return LLAVA_E_UNSUPPORTED;
}

LLAVA_API int llava_load_vision(const char *path, const llava_params *params, llava_vision **out, char *errbuf, size_t errbuf_size)
{ return not_yet((void **)out, errbuf, errbuf_size); }
LLAVA_API int llava_load_vision_from_memory(const void *data, size_t size, const llava_params *params, llava_vision **out, char *errbuf, size_t errbuf_size)
{ return not_yet((void **)out, errbuf, errbuf_size); }
LLAVA_API void llava_free_vision(llava_vision *v) { (void)v; }
LLAVA_API int llava_load_projector(const char *path, const llava_params *params, llava_projector **out, char *errbuf, size_t errbuf_size)
{ return not_yet((void **)out, errbuf, errbuf_size); }
LLAVA_API int llava_load_projector_from_memory(const void *data, size_t size, const llava_params *params, llava_projector **out, char *errbuf, size_t errbuf_size)
{ return not_yet((void **)out, errbuf, errbuf_size); }
LLAVA_API void llava_free_projector(llava_projector *p) { (void)p; }
LLAVA_API int32_t llava_vision_image_size(const llava_vision *v) { return 0; }
LLAVA_API int32_t llava_vision_n_tokens(const llava_vision *v) { return 0; }
LLAVA_API int32_t llava_projector_n_embd(const llava_projector *p) { return 0; }
LLAVA_API int llava_encode_image(const llava_vision *v, const llava_projector *p, llava_image *image, const llava_params *params, llava_embed **out)
{ if (out) *out = NULL; return LLAVA_E_UNSUPPORTED; }
LLAVA_API int llava_new_embed(const float *data, int32_t n_tokens, int32_t n_embd, llava_embed **out, char *errbuf, size_t errbuf_size)
{ return not_yet((void **)out, errbuf, errbuf_size); }
LLAVA_API void llava_free_embed(llava_embed *e) { (void)e; }
LLAVA_API int32_t llava_embed_n_tokens(const llava_embed *e) { return 0; }
LLAVA_API int32_t llava_embed_n_embd(const llava_embed *e) { return 0; }
LLAVA_API const float *llava_embed_data(const llava_embed *e) { return NULL; }
LLAVA_API int llava_embed_save(const llava_embed *e, void *buf, size_t buf_size, size_t *size) { return LLAVA_E_UNSUPPORTED; }
LLAVA_API int llava_embed_save_file(const llava_embed *e, const char *path) { return LLAVA_E_UNSUPPORTED; }
LLAVA_API int llava_embed_load(const void *data, size_t size, llava_embed **out, char *errbuf, size_t errbuf_size)
{ return not_yet((void **)out, errbuf, errbuf_size); }
LLAVA_API int llava_embed_load_file(const char *path, llava_embed **out, char *errbuf, size_t errbuf_size)
{ return not_yet((void **)out, errbuf, errbuf_size); }
