/*
 * embed.h - the image embedding object (encoder + projector output).
 */
#ifndef LLV_EMBED_H
#define LLV_EMBED_H

#include "handle.h"

struct llava_embed {
    llv_handle hdr;
    int32_t    n_tokens;   /* image tokens (rows) */
    int32_t    n_embd;     /* LM width (columns) */
    float     *data;       /* n_tokens * n_embd floats, token-major, llv_malloc_aligned */
};

/* Allocate an embedding with uninitialised data (checked size). */
LLV_INTERNAL int llv_embed_new(int32_t n_tokens, int32_t n_embd, llava_embed **out, llv_err *err);

#endif /* LLV_EMBED_H */
