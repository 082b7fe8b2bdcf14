/*
 * tokenizer_internal.h - the vocabulary object and the helpers shared by
 * tokenizer*.c (not used outside the tokenizer area).
 *
 * Layout of a vocabulary: all token texts back to back in one blob
 * (text_off[i] .. text_off[i+1]), an open-addressing hash from text to id,
 * the special tokens sorted for the partition step, and for BPE the merge
 * pairs with their own hash keyed by (left, right).
 */
#ifndef LLV_TOKENIZER_INTERNAL_H
#define LLV_TOKENIZER_INTERNAL_H

#include "tokenizer.h"

/* ---- Unicode classes for the BPE pre-tokenizers (tokenizer_unicode.c) ---- */

typedef struct llv_cp_range {
    uint32_t lo, hi; /* inclusive */
} llv_cp_range;

LLV_INTERNAL extern const llv_cp_range llv_unicode_letters[];
LLV_INTERNAL extern const size_t llv_unicode_letters_count;
LLV_INTERNAL extern const llv_cp_range llv_unicode_numbers[];
LLV_INTERNAL extern const size_t llv_unicode_numbers_count;

/* Character classes used by the regexes: \p{L}, \p{N}, \s, anything else. */
enum { LLV_CC_OTHER = 0, LLV_CC_LETTER = 1, LLV_CC_NUMBER = 2, LLV_CC_SPACE = 3 };
/* Class of a code point. Invalid bytes are passed as LLV_CP_INVALID (OTHER). */
#define LLV_CP_INVALID 0xFFFFFFFFu
LLV_INTERNAL int llv_cp_class(uint32_t cp);

/* Decode one UTF-8 character at s (n >= 1 bytes available). Returns its
 * length (1..4) and the code point; an invalid or truncated sequence
 * (overlong, surrogate, > U+10FFFF, bad continuation) yields length 1 and
 * *cp = LLV_CP_INVALID, so every byte belongs to exactly one symbol. */
LLV_INTERNAL size_t llv_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* ---- the vocabulary ---- */

struct llv_vocab {
    int      model;             /* LLV_VOCAB_SPM / LLV_VOCAB_BPE */
    int      pre;               /* LLV_PRE_* (BPE only) */
    int32_t  n_tokens;
    char    *blob;              /* token texts, back to back */
    size_t  *text_off;          /* [n_tokens + 1] */
    float   *scores;            /* [n_tokens] */
    uint8_t *types;             /* [n_tokens], LLV_TOKEN_* */

    uint64_t  seed;             /* hash seed (per vocabulary) */
    int32_t  *text_slots;       /* hash: id or -1; size text_mask + 1 */
    size_t    text_mask;

    int32_t  *specials;         /* CONTROL/USER_DEFINED/UNKNOWN ids, longest text first */
    int32_t   n_specials;

    int32_t   n_merges;         /* BPE: merge i = (left, right), rank i */
    char     *merge_blob;
    size_t   *merge_off;        /* [n_merges]: left text at merge_off[i] */
    uint32_t *merge_left_len;   /* [n_merges] */
    uint32_t *merge_right_len;  /* [n_merges]; right text follows the left one */
    int32_t  *merge_slots;      /* hash: merge index or -1 */
    size_t    merge_mask;

    int32_t bos, eos, unk;      /* -1: none */
    bool    add_bos, add_eos, add_space_prefix, ignore_merges;

    int32_t byte_token[256];    /* SPM: <0xXX> (or the 1-byte text); BPE: the 1-byte text; -1 */
    /* GPT-2 byte <-> printable code point map (BPE). */
    uint16_t byte_to_cp[256];
    int16_t  cp_to_byte[324];   /* code points < 324; -1 if not an image */
};

/* A growable id list. */
typedef struct llv_ids {
    int32_t *v;
    size_t   n, cap;
} llv_ids;

LLV_INTERNAL int llv_ids_push(llv_ids *ids, int32_t id);

/* Token lookups on a byte slice (not NUL-terminated). */
LLV_INTERNAL int32_t llv_vocab_lookup(const llv_vocab *v, const char *s, size_t n);
/* BPE merge rank of (left, right), or -1. */
LLV_INTERNAL int32_t llv_vocab_merge_rank(const llv_vocab *v, const char *l, size_t nl,
                                          const char *r, size_t nr);

/* One raw-text fragment (no special tokens inside), appended to out.
 * add_prefix: prepend one "▁" (SPM: add_space_prefix and the fragment is
 * first or follows a special token, spec §8.3.2). SPM fragments are limited
 * to INT32_MAX escaped bytes (LLAVA_E_INVALID_ARG beyond). */
LLV_INTERNAL int llv_spm_tokenize_fragment(const llv_vocab *v, const char *text, size_t len,
                                           bool add_prefix, llv_ids *out);
LLV_INTERNAL int llv_bpe_tokenize_fragment(const llv_vocab *v, const char *text, size_t len,
                                           llv_ids *out);

/* BPE pre-tokenizer: split text into words; word k = [bounds[k], bounds[k+1]).
 * *bounds is allocated (llv_malloc), *n_words set. Exposed for tests. */
LLV_INTERNAL int llv_bpe_pretokenize(int pre, const char *text, size_t len,
                                     size_t **bounds, size_t *n_words);

#endif /* LLV_TOKENIZER_INTERNAL_H */
