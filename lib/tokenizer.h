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

/* ---- additions by the tokenizer area ---- */

/* Vocabulary models and BPE pre-tokenizers. */
enum { LLV_VOCAB_SPM = 1, LLV_VOCAB_BPE = 2 };
enum { LLV_PRE_GPT2 = 1, LLV_PRE_LLAMA3 = 2 };

/* Everything a vocabulary is built from (llv_vocab_load fills one from the
 * GGUF keys; tests build small ones by hand). All arrays are copied. */
typedef struct llv_vocab_desc {
    int            model;           /* LLV_VOCAB_SPM or LLV_VOCAB_BPE */
    int            pre;             /* BPE: LLV_PRE_GPT2 or LLV_PRE_LLAMA3 */
    int32_t        n_tokens;        /* >= 1 */
    const llv_str *tokens;          /* [n_tokens] texts (any bytes; empty -> "[EMPTY_<i>]") */
    const float   *scores;          /* [n_tokens] or NULL (all 0) */
    const int32_t *types;           /* [n_tokens] LLV_TOKEN_* or NULL (all NORMAL) */
    int32_t        n_merges;        /* BPE */
    const llv_str *merges;          /* [n_merges] "left right" */
    int32_t        bos, eos, unk;   /* -1: none; else must be < n_tokens */
    bool           add_bos, add_eos, add_space_prefix;
} llv_vocab_desc;

/* Validate d and build a vocabulary (LLAVA_E_FORMAT for bad ids, types,
 * merges; LLAVA_E_NOMEM). */
LLV_INTERNAL int   llv_vocab_new(const llv_vocab_desc *d, llv_vocab **out, llv_err *err);
LLV_INTERNAL int   llv_vocab_model(const llv_vocab *v);
LLV_INTERNAL float llv_vocab_token_score(const llv_vocab *v, int32_t id); /* 0 if out of range */

/* Detokenize ids like llama_detokenize: the pieces of llv_token_to_piece
 * (flags: LLAVA_PIECE_SPECIAL) concatenated; with add_space_prefix the first
 * piece loses one leading space. LLV_DETOK_REMOVE_SPECIAL drops a leading
 * BOS (then no space is stripped) and a trailing EOS as llama.cpp's
 * remove_special does. Writes a NUL-terminated string if buf_size > len;
 * LLAVA_E_BUFFER_TOO_SMALL with *len = bytes needed (without the NUL). */
#define LLV_DETOK_REMOVE_SPECIAL 0x100u
LLV_INTERNAL int llv_detokenize(const llv_vocab *v, const int32_t *ids, size_t n, unsigned flags,
                                char *buf, size_t buf_size, size_t *len);

/* Streaming helper: the number of leading bytes of buf[0..len) that do not
 * end inside an incomplete UTF-8 character, i.e. len minus a trailing
 * truncated-but-so-far-valid sequence (at most 3 bytes). Invalid bytes
 * count as complete, so a stream never stalls on garbage. */
LLV_INTERNAL size_t llv_utf8_complete_prefix(const char *buf, size_t len);

#endif /* LLV_TOKENIZER_H */
