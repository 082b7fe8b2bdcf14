/*
 * tokenizer.c - the vocabulary object (built from a validated description),
 * its hash maps, the special-token partition, tokenize/detokenize entry
 * points and the UTF-8 helpers. The model-specific algorithms live in
 * tokenizer_spm.c and tokenizer_bpe.c; the GGUF reading in tokenizer_gguf.c.
 * Facts: shared/spec/llava-format.md §8.
 */
#include "tokenizer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ---------------------------------------------------------------- */

size_t llv_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    *cp = LLV_CP_INVALID;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t need;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2; v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3; v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;       /* no overlong forms */
        if (c == 0xED) hi = 0x9F;       /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4; v = c & 0x07;
        if (c == 0xF0) lo = 0x90;       /* no overlong forms */
        if (c == 0xF4) hi = 0x8F;       /* <= U+10FFFF */
    } else {
        return 1;                       /* continuation byte, C0/C1, F5..FF */
    }
    if (n < need)
        return 1;
    for (size_t i = 1; i < need; i++) {
        unsigned b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            return 1;
        v = (v << 6) | (b & 0x3F);
    }
    *cp = v;
    return need;
}

size_t llv_utf8_complete_prefix(const char *buf, size_t len)
{
    if (!buf || len == 0)
        return 0;
    const unsigned char *s = (const unsigned char *)buf;
    /* The last character starts at most 3 bytes before the end. */
    size_t back = len < 4 ? len : 4;
    for (size_t k = 1; k <= back; k++) {
        size_t p = len - k;
        unsigned c = s[p];
        if (c >= 0x80 && c <= 0xBF)
            continue;                   /* continuation byte: look further back */
        size_t need = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                    : c >= 0xF0 && c <= 0xF4 ? 4 : 1;
        if (need <= k)
            return len;                 /* the last character is complete (or invalid) */
        /* Truncated: hold it back only if what is there is a valid prefix. */
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        for (size_t i = 1; i < k; i++) {
            unsigned b = s[p + i];
            if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
                return len;             /* invalid anyway: nothing will complete it */
        }
        return p;
    }
    return len;                         /* only stray continuation bytes */
}

/* ---- character classes ---------------------------------------------------- */

static bool in_ranges(const llv_cp_range *r, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

int llv_cp_class(uint32_t cp)
{
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
            return LLV_CC_LETTER;
        if (cp >= '0' && cp <= '9')
            return LLV_CC_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D))
            return LLV_CC_SPACE;
        return LLV_CC_OTHER;
    }
    if (cp == LLV_CP_INVALID)
        return LLV_CC_OTHER;
    /* \s: the Unicode White_Space property (as llama.cpp's table). */
    if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
        cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000)
        return LLV_CC_SPACE;
    if (in_ranges(llv_unicode_letters, llv_unicode_letters_count, cp))
        return LLV_CC_LETTER;
    if (in_ranges(llv_unicode_numbers, llv_unicode_numbers_count, cp))
        return LLV_CC_NUMBER;
    return LLV_CC_OTHER;
}

/* ---- id lists --------------------------------------------------------------- */

int llv_ids_push(llv_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap : 64, bytes;
        if (llv_mul_overflow(cap, 2, &cap) || llv_mul_overflow(cap, sizeof *ids->v, &bytes))
            return LLAVA_E_NOMEM;
        int32_t *nv = llv_realloc(ids->v, bytes);
        if (!nv)
            return LLAVA_E_NOMEM;
        ids->v = nv;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return LLAVA_OK;
}

/* ---- hashing ---------------------------------------------------------------- */

/* FNV-1a over the bytes with a per-vocabulary seed and a final avalanche
 * (the seed makes crafted collisions in a hostile vocabulary hard to plan). */
static uint64_t hash_bytes(uint64_t seed, const char *s, size_t n)
{
    uint64_t h = seed ^ 0xcbf29ce484222325ull ^ ((uint64_t)n * 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001B3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_pair(uint64_t seed, const char *l, size_t nl, const char *r, size_t nr)
{
    return hash_bytes(seed, l, nl) * 31 + hash_bytes(seed ^ 0x5bd1e995u, r, nr);
}

/* Slot array of a power of two >= 2 * n entries, all -1. */
static int new_slots(size_t n, int32_t **slots, size_t *mask)
{
    size_t size = 16, bytes;
    while (size / 2 < n) {
        if (llv_mul_overflow(size, 2, &size))
            return LLAVA_E_NOMEM;
    }
    if (llv_mul_overflow(size, sizeof **slots, &bytes))
        return LLAVA_E_NOMEM;
    *slots = llv_malloc(bytes);
    if (!*slots)
        return LLAVA_E_NOMEM;
    memset(*slots, 0xFF, bytes);
    *mask = size - 1;
    return LLAVA_OK;
}

static llv_str text_of(const llv_vocab *v, int32_t id)
{
    llv_str s = { v->blob + v->text_off[id], v->text_off[id + 1] - v->text_off[id] };
    return s;
}

int32_t llv_vocab_lookup(const llv_vocab *v, const char *s, size_t n)
{
    size_t i = (size_t)hash_bytes(v->seed, s, n) & v->text_mask;
    for (;;) {
        int32_t id = v->text_slots[i];
        if (id < 0)
            return -1;
        llv_str t = text_of(v, id);
        if (t.len == n && memcmp(t.ptr, s, n) == 0)
            return id;
        i = (i + 1) & v->text_mask;
    }
}

int32_t llv_vocab_merge_rank(const llv_vocab *v, const char *l, size_t nl, const char *r, size_t nr)
{
    if (!v->merge_slots)
        return -1;
    size_t i = (size_t)hash_pair(v->seed, l, nl, r, nr) & v->merge_mask;
    for (;;) {
        int32_t m = v->merge_slots[i];
        if (m < 0)
            return -1;
        const char *ml = v->merge_blob + v->merge_off[m];
        if (v->merge_left_len[m] == nl && v->merge_right_len[m] == nr &&
            memcmp(ml, l, nl) == 0 && memcmp(ml + nl, r, nr) == 0)
            return m;
        i = (i + 1) & v->merge_mask;
    }
}

/* ---- construction ----------------------------------------------------------- */

void llv_vocab_free(llv_vocab *v)
{
    if (!v)
        return;
    llv_free(v->blob);
    llv_free(v->text_off);
    llv_free(v->scores);
    llv_free(v->types);
    llv_free(v->text_slots);
    llv_free(v->specials);
    llv_free(v->merge_blob);
    llv_free(v->merge_off);
    llv_free(v->merge_left_len);
    llv_free(v->merge_right_len);
    llv_free(v->merge_slots);
    llv_free(v);
}

/* The text of token i as it will be stored: empty texts become
 * "[EMPTY_<i>]" (llama.cpp does the same) so no token has an empty text. */
static size_t stored_text(const llv_vocab_desc *d, int32_t i, char tmp[32], const char **p)
{
    if (d->tokens[i].len > 0) {
        *p = d->tokens[i].ptr;
        return d->tokens[i].len;
    }
    int k = snprintf(tmp, 32, "[EMPTY_%d]", (int)i);
    *p = tmp;
    return (size_t)k;
}

/* Sort key of a special token: longest text first, ties by lower id
 * (llama.cpp's std::sort leaves ties unspecified; this is deterministic). */
typedef struct special_key {
    size_t  len;
    int32_t id;
} special_key;

static int cmp_special(const void *a, const void *b)
{
    const special_key *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int build_tokens(llv_vocab *v, const llv_vocab_desc *d, llv_err *err)
{
    size_t n = (size_t)d->n_tokens, total = 0, bytes;
    char tmp[32];
    for (int32_t i = 0; i < d->n_tokens; i++) {
        const char *p;
        if (d->tokens[i].len > 0 && !d->tokens[i].ptr)
            return llv_fail(err, LLAVA_E_INVALID_ARG, "vocab: token %d has no text", (int)i);
        if (llv_add_overflow(total, stored_text(d, i, tmp, &p), &total))
            return llv_fail(err, LLAVA_E_FORMAT, "vocab: token texts too large");
    }
    /* n <= INT32_MAX: n + 1 entries of 8 bytes fit a size_t on 64-bit
     * targets; checked anyway for 32-bit ones. */
    if (llv_mul_overflow(n + 1, sizeof *v->text_off, &bytes))
        return llv_fail(err, LLAVA_E_NOMEM, "vocab: out of memory");
    v->blob = llv_malloc(total);
    v->text_off = llv_malloc(bytes);
    v->scores = llv_malloc(bytes / 2);  /* >= n floats */
    v->types = llv_malloc(n);
    if (!v->blob || !v->text_off || !v->scores || !v->types)
        return llv_fail(err, LLAVA_E_NOMEM, "vocab: out of memory");
    size_t off = 0;
    for (int32_t i = 0; i < d->n_tokens; i++) {
        const char *p;
        size_t len = stored_text(d, i, tmp, &p);
        memcpy(v->blob + off, p, len);
        v->text_off[i] = off;
        off += len;
        v->scores[i] = d->scores ? d->scores[i] : 0.0f;
        int32_t t = d->types ? d->types[i] : LLV_TOKEN_NORMAL;
        if (t < LLV_TOKEN_UNDEFINED || t > LLV_TOKEN_BYTE)
            return llv_fail(err, LLAVA_E_FORMAT, "vocab: token %d has unknown type %d", (int)i, (int)t);
        v->types[i] = (uint8_t)t;
    }
    v->text_off[n] = off;

    /* text -> id; a duplicate text maps to its last id (as llama.cpp). */
    if (new_slots(n, &v->text_slots, &v->text_mask) != LLAVA_OK)
        return llv_fail(err, LLAVA_E_NOMEM, "vocab: out of memory");
    for (int32_t i = 0; i < d->n_tokens; i++) {
        llv_str t = text_of(v, i);
        size_t h = (size_t)hash_bytes(v->seed, t.ptr, t.len) & v->text_mask;
        for (;;) {
            int32_t id = v->text_slots[h];
            if (id < 0) {
                v->text_slots[h] = i;
                break;
            }
            llv_str u = text_of(v, id);
            if (u.len == t.len && memcmp(u.ptr, t.ptr, t.len) == 0) {
                v->text_slots[h] = i;
                break;
            }
            h = (h + 1) & v->text_mask;
        }
    }

    /* Special tokens for the partition (spec §8.2). */
    int32_t ns = 0;
    for (int32_t i = 0; i < d->n_tokens; i++) {
        int t = v->types[i];
        ns += t == LLV_TOKEN_CONTROL || t == LLV_TOKEN_USER_DEFINED || t == LLV_TOKEN_UNKNOWN;
    }
    special_key *keys = llv_malloc((size_t)ns * sizeof *keys);
    v->specials = llv_malloc((size_t)ns * sizeof *v->specials);
    if (!keys || !v->specials) {
        llv_free(keys);
        return llv_fail(err, LLAVA_E_NOMEM, "vocab: out of memory");
    }
    ns = 0;
    for (int32_t i = 0; i < d->n_tokens; i++) {
        int t = v->types[i];
        if (t == LLV_TOKEN_CONTROL || t == LLV_TOKEN_USER_DEFINED || t == LLV_TOKEN_UNKNOWN) {
            keys[ns].len = text_of(v, i).len;
            keys[ns++].id = i;
        }
    }
    qsort(keys, (size_t)ns, sizeof *keys, cmp_special);
    for (int32_t k = 0; k < ns; k++)
        v->specials[k] = keys[k].id;
    v->n_specials = ns;
    llv_free(keys);
    return LLAVA_OK;
}

static int build_merges(llv_vocab *v, const llv_vocab_desc *d, llv_err *err)
{
    size_t n = (size_t)d->n_merges, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (d->merges[i].len > 0 && !d->merges[i].ptr)
            return llv_fail(err, LLAVA_E_INVALID_ARG, "vocab: merge %zu has no text", i);
        if (llv_add_overflow(total, d->merges[i].len, &total))
            return llv_fail(err, LLAVA_E_FORMAT, "vocab: merges too large");
    }
    size_t bytes;
    if (llv_mul_overflow(n, sizeof *v->merge_off, &bytes))
        return llv_fail(err, LLAVA_E_NOMEM, "vocab: out of memory");
    v->merge_blob = llv_malloc(total);
    v->merge_off = llv_malloc(bytes);
    v->merge_left_len = llv_malloc(bytes);  /* bytes >= n * 4 */
    v->merge_right_len = llv_malloc(bytes);
    if (!v->merge_blob || !v->merge_off || !v->merge_left_len || !v->merge_right_len ||
        new_slots(n, &v->merge_slots, &v->merge_mask) != LLAVA_OK)
        return llv_fail(err, LLAVA_E_NOMEM, "vocab: out of memory");
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = d->merges[i].ptr;
        size_t len = d->merges[i].len, sp = 0;
        /* "left right": the first space at index >= 1 separates (llama.cpp's
         * find(' ', 1)). Without one the entry can never match: skip it. */
        for (size_t k = 1; k < len; k++) {
            if (s[k] == ' ') {
                sp = k;
                break;
            }
        }
        v->merge_off[i] = off;
        v->merge_left_len[i] = 0;
        v->merge_right_len[i] = 0;
        if (sp == 0 || sp + 1 >= len || len > UINT32_MAX)
            continue;
        memcpy(v->merge_blob + off, s, sp);
        memcpy(v->merge_blob + off + sp, s + sp + 1, len - sp - 1);
        v->merge_left_len[i] = (uint32_t)sp;
        v->merge_right_len[i] = (uint32_t)(len - sp - 1);
        off += len - 1;
        /* A duplicate pair keeps its first (lowest) rank. */
        size_t h = (size_t)hash_pair(v->seed, s, sp, s + sp + 1, len - sp - 1) & v->merge_mask;
        for (;;) {
            int32_t m = v->merge_slots[h];
            if (m < 0) {
                v->merge_slots[h] = (int32_t)i;
                break;
            }
            const char *ml = v->merge_blob + v->merge_off[m];
            if (v->merge_left_len[m] == sp && v->merge_right_len[m] == len - sp - 1 &&
                memcmp(ml, s, sp) == 0 && memcmp(ml + sp, s + sp + 1, len - sp - 1) == 0)
                break;
            h = (h + 1) & v->merge_mask;
        }
    }
    v->n_merges = d->n_merges;
    return LLAVA_OK;
}

/* GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the
 * other 68 bytes, in increasing order, to U+0100, U+0101, ... */
static void build_byte_map(llv_vocab *v)
{
    int next = 256;
    for (int i = 0; i < 324; i++)
        v->cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        int cp = keep ? b : next++;
        v->byte_to_cp[b] = (uint16_t)cp;
        v->cp_to_byte[cp] = (int16_t)b;
    }
}

static void build_byte_tokens(llv_vocab *v)
{
    for (int b = 0; b < 256; b++) {
        char hex[8], one = (char)b;
        int32_t id = -1;
        if (v->model == LLV_VOCAB_SPM) {
            snprintf(hex, sizeof hex, "<0x%02X>", b);
            id = llv_vocab_lookup(v, hex, 6);
        }
        if (id < 0)
            id = llv_vocab_lookup(v, &one, 1);
        v->byte_token[b] = id;
    }
}

int llv_vocab_new(const llv_vocab_desc *d, llv_vocab **out, llv_err *err)
{
    if (!out)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "vocab: out is NULL");
    *out = NULL;
    if (!d || d->n_tokens <= 0 || !d->tokens)
        return llv_fail(err, LLAVA_E_FORMAT, "vocab: no tokens");
    if (d->model != LLV_VOCAB_SPM && d->model != LLV_VOCAB_BPE)
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "vocab: unknown model %d", d->model);
    if (d->model == LLV_VOCAB_BPE && d->pre != LLV_PRE_GPT2 && d->pre != LLV_PRE_LLAMA3)
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "vocab: unknown BPE pre-tokenizer %d", d->pre);
    if (d->n_merges < 0 || (d->n_merges > 0 && !d->merges))
        return llv_fail(err, LLAVA_E_FORMAT, "vocab: bad merges");
    const int32_t ids[3] = { d->bos, d->eos, d->unk };
    static const char *const names[3] = { "bos", "eos", "unknown" };
    for (int k = 0; k < 3; k++) {
        if (ids[k] < -1 || ids[k] >= d->n_tokens)
            return llv_fail(err, LLAVA_E_FORMAT, "vocab: %s token id %d out of range (n_tokens %d)",
                            names[k], (int)ids[k], (int)d->n_tokens);
    }

    llv_vocab *v = llv_calloc(1, sizeof *v);
    if (!v)
        return llv_fail(err, LLAVA_E_NOMEM, "vocab: out of memory");
    v->model = d->model;
    v->pre = d->model == LLV_VOCAB_BPE ? d->pre : 0;
    v->n_tokens = d->n_tokens;
    v->seed = (uint64_t)(uintptr_t)v * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)&llv_vocab_new;
    v->bos = d->bos;
    v->eos = d->eos;
    v->unk = d->unk;
    v->add_bos = d->add_bos;
    v->add_eos = d->add_eos;
    v->add_space_prefix = d->model == LLV_VOCAB_SPM && d->add_space_prefix;
    v->ignore_merges = d->model == LLV_VOCAB_BPE && d->pre == LLV_PRE_LLAMA3;
    int rc = build_tokens(v, d, err);
    if (rc == LLAVA_OK && d->model == LLV_VOCAB_BPE)
        rc = build_merges(v, d, err);
    if (rc != LLAVA_OK) {
        llv_vocab_free(v);
        return rc;
    }
    build_byte_map(v);
    build_byte_tokens(v);
    *out = v;
    return LLAVA_OK;
}

/* ---- getters ---------------------------------------------------------------- */

int32_t llv_vocab_n_tokens(const llv_vocab *v) { return v ? v->n_tokens : 0; }
int32_t llv_vocab_bos(const llv_vocab *v) { return v ? v->bos : -1; }
int32_t llv_vocab_eos(const llv_vocab *v) { return v ? v->eos : -1; }
bool    llv_vocab_add_bos(const llv_vocab *v) { return v && v->add_bos && v->bos >= 0; }
int     llv_vocab_model(const llv_vocab *v) { return v ? v->model : 0; }

int llv_vocab_token_type(const llv_vocab *v, int32_t id)
{
    return v && id >= 0 && id < v->n_tokens ? v->types[id] : LLV_TOKEN_UNDEFINED;
}

float llv_vocab_token_score(const llv_vocab *v, int32_t id)
{
    return v && id >= 0 && id < v->n_tokens ? v->scores[id] : 0.0f;
}

llv_str llv_vocab_token_text(const llv_vocab *v, int32_t id)
{
    if (!v || id < 0 || id >= v->n_tokens) {
        llv_str none = { "", 0 };
        return none;
    }
    return text_of(v, id);
}

int32_t llv_vocab_find(const llv_vocab *v, const char *text, size_t len)
{
    if (!v || (!text && len))
        return -1;
    return llv_vocab_lookup(v, text ? text : "", len);
}

/* ---- special-token partition (spec §8.2) --------------------------------- */

typedef struct frag {
    size_t  off, len;
    int32_t id;                         /* -1: raw text */
} frag;

typedef struct frags {
    frag  *v;
    size_t n, cap;
} frags;

static int frags_push(frags *f, size_t off, size_t len, int32_t id)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap : 8, bytes;
        if (llv_mul_overflow(cap, 2, &cap) || llv_mul_overflow(cap, sizeof *f->v, &bytes))
            return LLAVA_E_NOMEM;
        frag *nv = llv_realloc(f->v, bytes);
        if (!nv)
            return LLAVA_E_NOMEM;
        f->v = nv;
        f->cap = cap;
    }
    f->v[f->n].off = off;
    f->v[f->n].len = len;
    f->v[f->n].id = id;
    f->n++;
    return LLAVA_OK;
}

/* First occurrence of needle (nn >= 1) in hay, or NULL. */
static const char *find_bytes(const char *hay, size_t hn, const char *needle, size_t nn)
{
    if (nn > hn)
        return NULL;
    const char *end = hay + (hn - nn) + 1; /* candidate starts are < end */
    const char *p = hay;
    while (p < end) {
        p = memchr(p, (unsigned char)needle[0], (size_t)(end - p));
        if (!p)
            return NULL;
        if (memcmp(p, needle, nn) == 0)
            return p;
        p++;
    }
    return NULL;
}

/* llama.cpp's order: each special token in turn (longest first) splits every
 * raw fragment at all its leftmost non-overlapping occurrences. */
static int partition(const llv_vocab *v, const char *text, size_t len, bool parse_special, frags *out)
{
    frags cur = { 0 }, next = { 0 };
    int rc = LLAVA_OK;
    if (len > 0 && (rc = frags_push(&cur, 0, len, -1)) != LLAVA_OK)
        goto done;
    for (int32_t k = 0; k < v->n_specials && len > 0; k++) {
        int32_t id = v->specials[k];
        if (!parse_special && v->types[id] != LLV_TOKEN_USER_DEFINED)
            continue;
        llv_str s = text_of(v, id);
        if (s.len > len)
            continue;
        bool any = false;
        for (size_t i = 0; i < cur.n && !any; i++)
            any = cur.v[i].id < 0 && find_bytes(text + cur.v[i].off, cur.v[i].len, s.ptr, s.len);
        if (!any)
            continue;
        next.n = 0;
        for (size_t i = 0; i < cur.n; i++) {
            frag f = cur.v[i];
            if (f.id >= 0) {
                if ((rc = frags_push(&next, f.off, f.len, f.id)) != LLAVA_OK)
                    goto done;
                continue;
            }
            size_t off = f.off, rem = f.len;
            const char *m;
            while (rem > 0 && (m = find_bytes(text + off, rem, s.ptr, s.len)) != NULL) {
                size_t left = (size_t)(m - (text + off));
                if (left > 0 && (rc = frags_push(&next, off, left, -1)) != LLAVA_OK)
                    goto done;
                if ((rc = frags_push(&next, off + left, s.len, id)) != LLAVA_OK)
                    goto done;
                off += left + s.len;
                rem -= left + s.len;
            }
            if (rem > 0 && (rc = frags_push(&next, off, rem, -1)) != LLAVA_OK)
                goto done;
        }
        frags t = cur;
        cur = next;
        next = t;
    }
done:
    llv_free(next.v);
    if (rc != LLAVA_OK) {
        llv_free(cur.v);
        return rc;
    }
    *out = cur;
    return LLAVA_OK;
}

/* ---- tokenize ----------------------------------------------------------------- */

int llv_tokenize(const llv_vocab *v, const char *text, size_t len, unsigned flags,
                 int32_t *tokens, size_t capacity, size_t *n)
{
    if (!v || !n || (!text && len) || (!tokens && capacity))
        return LLAVA_E_INVALID_ARG;
    *n = 0;
    bool add_special = (flags & LLAVA_TOKENIZE_ADD_BOS) != 0;
    bool parse_special = (flags & LLAVA_TOKENIZE_PARSE_SPECIAL) != 0;
    llv_ids ids = { 0 };
    frags fr = { 0 };
    int rc = LLAVA_OK;

    if (add_special && v->add_bos && v->bos >= 0 && (rc = llv_ids_push(&ids, v->bos)) != LLAVA_OK)
        goto done;
    if ((rc = partition(v, text, len, parse_special, &fr)) != LLAVA_OK)
        goto done;
    bool prev_special = true;           /* SPM: the first fragment gets the space prefix */
    for (size_t i = 0; i < fr.n && rc == LLAVA_OK; i++) {
        const frag *f = &fr.v[i];
        if (f->id >= 0) {
            rc = llv_ids_push(&ids, f->id);
            prev_special = true;
        } else if (v->model == LLV_VOCAB_SPM) {
            rc = llv_spm_tokenize_fragment(v, text + f->off, f->len,
                                           v->add_space_prefix && prev_special, &ids);
            prev_special = false;
        } else {
            rc = llv_bpe_tokenize_fragment(v, text + f->off, f->len, &ids);
        }
    }
    if (rc != LLAVA_OK)
        goto done;
    if (add_special && v->add_eos && v->eos >= 0 && (rc = llv_ids_push(&ids, v->eos)) != LLAVA_OK)
        goto done;

    *n = ids.n;
    if (ids.n > capacity)
        rc = LLAVA_E_BUFFER_TOO_SMALL;
    else if (ids.n > 0)
        memcpy(tokens, ids.v, ids.n * sizeof *tokens);
done:
    llv_free(fr.v);
    llv_free(ids.v);
    return rc;
}

/* ---- detokenize (spec §8.4) --------------------------------------------------- */

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
         : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Write the piece of id to dst (if non-NULL) and return its length. */
static size_t piece(const llv_vocab *v, int32_t id, bool special, char *dst)
{
    llv_str t = text_of(v, id);
    const unsigned char *s = (const unsigned char *)t.ptr;
    size_t n = 0;
    switch (v->types[id]) {
    case LLV_TOKEN_CONTROL:
    case LLV_TOKEN_UNKNOWN:
        if (!special)
            return 0;
        /* fall through */
    case LLV_TOKEN_USER_DEFINED:
        if (dst)
            memcpy(dst, t.ptr, t.len);
        return t.len;
    case LLV_TOKEN_NORMAL:
        if (v->model == LLV_VOCAB_SPM) {
            /* "▁" (E2 96 81) -> ' ' */
            for (size_t i = 0; i < t.len;) {
                if (i + 2 < t.len && s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) {
                    if (dst) dst[n] = ' ';
                    n++;
                    i += 3;
                } else {
                    if (dst) dst[n] = (char)s[i];
                    n++;
                    i++;
                }
            }
            return n;
        }
        /* BPE: each character is the image of one byte; a character outside
         * the map is copied as it is. */
        for (size_t i = 0; i < t.len;) {
            uint32_t cp;
            size_t cl = llv_utf8_decode(s + i, t.len - i, &cp);
            if (cp < 324 && v->cp_to_byte[cp] >= 0) {
                if (dst) dst[n] = (char)v->cp_to_byte[cp];
                n++;
            } else {
                if (dst) memcpy(dst + n, s + i, cl);
                n += cl;
            }
            i += cl;
        }
        return n;
    case LLV_TOKEN_BYTE:
        if (v->model != LLV_VOCAB_SPM)
            return 0;                   /* as llama.cpp: BPE has no byte tokens */
        if (t.len == 6 && memcmp(t.ptr, "<0x", 3) == 0 && t.ptr[5] == '>' &&
            hexval(s[3]) >= 0 && hexval(s[4]) >= 0) {
            if (dst) dst[0] = (char)(hexval(s[3]) * 16 + hexval(s[4]));
            return 1;
        }
        if (dst)                         /* malformed byte token: its text */
            memcpy(dst, t.ptr, t.len);
        return t.len;
    default:                            /* UNDEFINED, UNUSED */
        return 0;
    }
}

int llv_token_to_piece(const llv_vocab *v, int32_t id, unsigned flags, char *buf, size_t buf_size, size_t *len)
{
    if (len)
        *len = 0;
    if (!v || id < 0 || id >= v->n_tokens || (!buf && buf_size))
        return LLAVA_E_INVALID_ARG;
    bool special = (flags & LLAVA_PIECE_SPECIAL) != 0;
    size_t need = piece(v, id, special, NULL);
    if (len)
        *len = need;
    if (need >= buf_size)               /* room for the NUL too */
        return LLAVA_E_BUFFER_TOO_SMALL;
    piece(v, id, special, buf);
    buf[need] = '\0';
    return LLAVA_OK;
}

int llv_detokenize(const llv_vocab *v, const int32_t *ids, size_t n, unsigned flags,
                   char *buf, size_t buf_size, size_t *len)
{
    if (len)
        *len = 0;
    if (!v || (!ids && n) || (!buf && buf_size))
        return LLAVA_E_INVALID_ARG;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= v->n_tokens)
            return LLAVA_E_INVALID_ARG;
    }
    bool special = (flags & LLAVA_PIECE_SPECIAL) != 0;
    bool remove_space = v->add_space_prefix && n > 0;
    if ((flags & LLV_DETOK_REMOVE_SPECIAL) && v->add_bos && n > 0 && ids[0] == v->bos) {
        remove_space = false;
        ids++;
        n--;
    }
    if ((flags & LLV_DETOK_REMOVE_SPECIAL) && v->add_eos && n > 0 && ids[n - 1] == v->eos)
        n--;

    /* Pass 1: the length. The first piece loses one leading space. */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pl = piece(v, ids[i], special, NULL);
        if (i == 0 && remove_space) {
            char *tmp = pl ? llv_malloc(pl) : NULL;
            if (pl && !tmp)
                return LLAVA_E_NOMEM;
            if (pl)
                piece(v, ids[i], special, tmp);
            remove_space = pl > 0 && tmp[0] == ' ';
            llv_free(tmp);
            pl -= remove_space;
        }
        if (llv_add_overflow(total, pl, &total))
            return LLAVA_E_NOMEM;
    }
    if (len)
        *len = total;
    if (total >= buf_size)
        return LLAVA_E_BUFFER_TOO_SMALL;

    /* Pass 2: write. */
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pl = piece(v, ids[i], special, buf + off);
        if (i == 0 && remove_space) {
            memmove(buf, buf + 1, pl - 1);
            pl--;
        }
        off += pl;
    }
    buf[off] = '\0';
    return LLAVA_OK;
}
