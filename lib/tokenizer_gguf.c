/*
 * tokenizer_gguf.c - llv_vocab_load: read the tokenizer.ggml.* keys
 * (spec §8.1) into an llv_vocab_desc, validating every count, element type
 * and id, then build the vocabulary with llv_vocab_new.
 *
 * Array element types are checked exactly (tokens: string, scores: float32,
 * token_type: int32, merges: string) before any element is read: llama.cpp
 * once read a mistyped array as float/int32 past its end (peers.md §C).
 */
#include "tokenizer_internal.h"

#include <string.h>

static bool str_is(llv_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.ptr && s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* Optional special-token id: absent -> def (if in range, else none);
 * -1 or 0xFFFFFFFF -> none; otherwise it must be a valid id. */
static int load_id(const llv_gguf *g, const char *key, int32_t def, int32_t n_tokens, int32_t *out, llv_err *err)
{
    if (llv_gguf_find_key(g, key) < 0) {
        *out = def >= 0 && def < n_tokens ? def : -1;
        return LLAVA_OK;
    }
    int64_t v;
    int rc = llv_gguf_get_i64(g, key, &v, err);
    if (rc != LLAVA_OK)
        return rc;
    if (v == -1 || v == (int64_t)UINT32_MAX) {
        *out = -1;
        return LLAVA_OK;
    }
    if (v < 0 || v >= n_tokens)
        return llv_fail(err, LLAVA_E_FORMAT, "%s = %lld is out of range (%d tokens)", key, (long long)v,
                        (int)n_tokens);
    *out = (int32_t)v;
    return LLAVA_OK;
}

int llv_vocab_load(const llv_gguf *g, llv_vocab **out, llv_err *err)
{
    if (!out)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "vocab: out is NULL");
    *out = NULL;
    if (!g)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "vocab: no GGUF");

    llv_vocab_desc d;
    memset(&d, 0, sizeof d);
    llv_str model, pre;
    int rc = llv_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (rc != LLAVA_OK)
        return rc;
    if (str_is(model, "llama")) {
        d.model = LLV_VOCAB_SPM;
    } else if (str_is(model, "gpt2")) {
        d.model = LLV_VOCAB_BPE;
    } else {
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "unsupported tokenizer model '%.*s'",
                        (int)LLV_MIN(model.len, 64), model.ptr);
    }
    if ((rc = llv_gguf_get_str_opt(g, "tokenizer.ggml.pre", &pre, err)) != LLAVA_OK)
        return rc;
    if (d.model == LLV_VOCAB_BPE) {
        /* A missing pre-tokenizer (old files) is read as GPT-2's. */
        if (!pre.ptr || str_is(pre, "gpt-2") || str_is(pre, "gpt2") || str_is(pre, "phi-2"))
            d.pre = LLV_PRE_GPT2;
        else if (str_is(pre, "llama-bpe") || str_is(pre, "llama3") || str_is(pre, "llama-v3"))
            d.pre = LLV_PRE_LLAMA3;
        else
            return llv_fail(err, LLAVA_E_UNSUPPORTED, "unsupported BPE pre-tokenizer '%.*s'",
                            (int)LLV_MIN(pre.len, 64), pre.ptr);
    }

    /* Tokens. */
    uint64_t n;
    if ((rc = llv_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &n, err)) != LLAVA_OK)
        return rc;
    if (n == 0 || n > INT32_MAX)
        return llv_fail(err, LLAVA_E_FORMAT, "tokenizer.ggml.tokens: bad count %llu", (unsigned long long)n);
    d.n_tokens = (int32_t)n;
    int64_t ki = llv_gguf_find_key(g, "tokenizer.ggml.tokens");

    llv_str *toks = NULL, *merges = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    toks = llv_malloc((size_t)n * sizeof *toks);
    if (!toks) {
        rc = llv_fail(err, LLAVA_E_NOMEM, "vocab: out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < n; i++)
        toks[i] = llv_gguf_arr_str(g, ki, i);
    d.tokens = toks;

    /* Scores (optional; float32 only). */
    if (llv_gguf_find_key(g, "tokenizer.ggml.scores") >= 0) {
        const void *data;
        uint64_t cnt;
        if ((rc = llv_gguf_get_arr(g, "tokenizer.ggml.scores", LLV_GGUF_FLOAT32, &data, &cnt, err)) != LLAVA_OK)
            goto done;
        if (cnt != n) {
            rc = llv_fail(err, LLAVA_E_FORMAT, "tokenizer.ggml.scores has %llu entries, tokens %llu",
                          (unsigned long long)cnt, (unsigned long long)n);
            goto done;
        }
        if (!(scores = llv_malloc((size_t)n * sizeof *scores))) {
            rc = llv_fail(err, LLAVA_E_NOMEM, "vocab: out of memory");
            goto done;
        }
        memcpy(scores, data, (size_t)n * sizeof *scores); /* little-endian host (configure checks) */
        d.scores = scores;
    }

    /* Token types (optional; int32 only). */
    if (llv_gguf_find_key(g, "tokenizer.ggml.token_type") >= 0) {
        const void *data;
        uint64_t cnt;
        if ((rc = llv_gguf_get_arr(g, "tokenizer.ggml.token_type", LLV_GGUF_INT32, &data, &cnt, err)) != LLAVA_OK)
            goto done;
        if (cnt != n) {
            rc = llv_fail(err, LLAVA_E_FORMAT, "tokenizer.ggml.token_type has %llu entries, tokens %llu",
                          (unsigned long long)cnt, (unsigned long long)n);
            goto done;
        }
        if (!(types = llv_malloc((size_t)n * sizeof *types))) {
            rc = llv_fail(err, LLAVA_E_NOMEM, "vocab: out of memory");
            goto done;
        }
        memcpy(types, data, (size_t)n * sizeof *types);
        d.types = types;
    }

    /* Merges (BPE: required). */
    if (d.model == LLV_VOCAB_BPE) {
        uint64_t nm;
        if ((rc = llv_gguf_get_arr_str(g, "tokenizer.ggml.merges", &nm, err)) != LLAVA_OK)
            goto done;
        if (nm > INT32_MAX) {
            rc = llv_fail(err, LLAVA_E_FORMAT, "tokenizer.ggml.merges: bad count %llu", (unsigned long long)nm);
            goto done;
        }
        int64_t mi = llv_gguf_find_key(g, "tokenizer.ggml.merges");
        if (!(merges = llv_malloc((size_t)nm * sizeof *merges))) {
            rc = llv_fail(err, LLAVA_E_NOMEM, "vocab: out of memory");
            goto done;
        }
        for (uint64_t i = 0; i < nm; i++)
            merges[i] = llv_gguf_arr_str(g, mi, i);
        d.merges = merges;
        d.n_merges = (int32_t)nm;
    }

    /* Special ids and flags, with the model's defaults (spec §8.1). */
    bool spm = d.model == LLV_VOCAB_SPM;
    if ((rc = load_id(g, "tokenizer.ggml.bos_token_id", spm ? 1 : 11, d.n_tokens, &d.bos, err)) != LLAVA_OK ||
        (rc = load_id(g, "tokenizer.ggml.eos_token_id", spm ? 2 : 11, d.n_tokens, &d.eos, err)) != LLAVA_OK ||
        (rc = load_id(g, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, d.n_tokens, &d.unk, err)) != LLAVA_OK)
        goto done;
    bool def_bos = spm || d.pre == LLV_PRE_LLAMA3;
    if ((rc = llv_gguf_get_bool_opt(g, "tokenizer.ggml.add_bos_token", def_bos, &d.add_bos, err)) != LLAVA_OK ||
        (rc = llv_gguf_get_bool_opt(g, "tokenizer.ggml.add_eos_token", false, &d.add_eos, err)) != LLAVA_OK ||
        (rc = llv_gguf_get_bool_opt(g, "tokenizer.ggml.add_space_prefix", spm, &d.add_space_prefix, err)) != LLAVA_OK)
        goto done;

    rc = llv_vocab_new(&d, out, err);
done:
    llv_free(toks);
    llv_free(merges);
    llv_free(scores);
    llv_free(types);
    return rc;
}
