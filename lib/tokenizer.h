/*
 * tokenizer.h - vocabularies read from GGUF metadata: SentencePiece
 * ("llama") and byte-level BPE ("gpt2"), per shared/spec/llava-format.md §8.
 */
#ifndef LLV_TOKENIZER_H
#define LLV_TOKENIZER_H

#include "common.h"
#include "gguf.h"

typedef struct llv_vocab llv_vocab;

/* Token types (spec §8.1). */
enum {
    LLV_TOKEN_UNDEFINED = 0, LLV_TOKEN_NORMAL = 1, LLV_TOKEN_UNKNOWN = 2, LLV_TOKEN_CONTROL = 3,
    LLV_TOKEN_USER_DEFINED = 4, LLV_TOKEN_UNUSED = 5, LLV_TOKEN_BYTE = 6
};

/* Build a vocabulary from the tokenizer.ggml.* keys of g (validated: counts
 * agree, ids in range, UTF-8 handled as bytes). The vocab copies what it
 * needs; g may be closed afterwards. LLAVA_E_UNSUPPORTED for other models. */
LLV_INTERNAL int  llv_vocab_load(const llv_gguf *g, llv_vocab **out, llv_err *err);
LLV_INTERNAL void llv_vocab_free(llv_vocab *v);

LLV_INTERNAL int32_t llv_vocab_n_tokens(const llv_vocab *v);
LLV_INTERNAL int32_t llv_vocab_bos(const llv_vocab *v);   /* -1 if none */
LLV_INTERNAL int32_t llv_vocab_eos(const llv_vocab *v);   /* -1 if none */
LLV_INTERNAL bool    llv_vocab_add_bos(const llv_vocab *v);
LLV_INTERNAL int     llv_vocab_token_type(const llv_vocab *v, int32_t id);
/* Raw token text as stored (e.g. "▁Hello", "<0x0A>"). */
LLV_INTERNAL llv_str llv_vocab_token_text(const llv_vocab *v, int32_t id);
/* Id of an exact token text, or -1. */
LLV_INTERNAL int32_t llv_vocab_find(const llv_vocab *v, const char *text, size_t len);

/* Tokenize (flags: LLAVA_TOKENIZE_ADD_BOS, LLAVA_TOKENIZE_PARSE_SPECIAL).
 * Same contract as llava_tokenize: *n gets the count; if capacity is too
 * small, returns LLAVA_E_BUFFER_TOO_SMALL with *n = the count needed. */
LLV_INTERNAL int llv_tokenize(const llv_vocab *v, const char *text, size_t len, unsigned flags,
                              int32_t *tokens, size_t capacity, size_t *n);
/* The bytes of one token (flags: LLAVA_PIECE_SPECIAL). Same contract as
 * llava_token_to_piece. */
LLV_INTERNAL int llv_token_to_piece(const llv_vocab *v, int32_t id, unsigned flags,
                                    char *buf, size_t buf_size, size_t *len);

#endif /* LLV_TOKENIZER_H */
