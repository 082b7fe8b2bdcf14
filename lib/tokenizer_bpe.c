/*
 * tokenizer_bpe.c - byte-level BPE ("gpt2" model), spec §8.5:
 *   1. pre-tokenize the fragment into words with the pre-tokenizer regex of
 *      the vocabulary ("gpt2" or "llama-bpe"/Llama-3), hand-written below as
 *      a left-to-right scanner over code points (no regex library);
 *   2. map each byte of a word to its GPT-2 printable character;
 *   3. (Llama-3 only) emit the whole word if it is a token ("ignore_merges");
 *   4. else merge adjacent symbols by lowest merge rank (ties: leftmost)
 *      until no pair has a rank; emit each symbol, or its bytes' tokens.
 *
 * Invalid UTF-8 bytes are kept as themselves (class "other"); llama.cpp
 * replaces them by U+FFFD. Valid UTF-8 is treated identically.
 */
#include "tokenizer_internal.h"

#include <string.h>

/* ---- pre-tokenizers -------------------------------------------------------- */

typedef struct cps {
    uint32_t *cp;                       /* [n] code points (LLV_CP_INVALID for a bad byte) */
    uint8_t  *cls;                      /* [n] LLV_CC_* */
    size_t   *off;                      /* [n + 1] byte offsets */
    size_t    n;
} cps;

#define NONE_CLASS 0xFF                 /* position past the end */

static inline int cls_at(const cps *c, size_t i) { return i < c->n ? c->cls[i] : NONE_CLASS; }
static inline uint32_t cp_at(const cps *c, size_t i) { return i < c->n ? c->cp[i] : LLV_CP_INVALID; }
static inline uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Length (in code points) of a contraction at pos: 's 't 're 've 'm 'll 'd,
 * or 0. any_case: Llama-3's [sS] classes; GPT-2 is lowercase only. */
static size_t contraction(const cps *c, size_t pos, bool any_case)
{
    if (c->cp[pos] != '\'' || pos + 1 >= c->n)
        return 0;
    uint32_t a = c->cp[pos + 1];
    if (any_case)
        a = ascii_lower(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (pos + 2 >= c->n)
        return 0;
    uint32_t b = c->cp[pos + 2];
    if (any_case)
        b = ascii_lower(b);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* Shared tail of both regexes: a whitespace run. \s+(?!\S) leaves the last
 * space of a run to the following word, unless the run ends the text; a
 * single space before a non-space is taken by the final \s+. */
static size_t whitespace_end(const cps *c, size_t pos)
{
    size_t n = 0;
    while (cls_at(c, pos + n) == LLV_CC_SPACE)
        n++;
    if (n > 1 && pos + n < c->n)
        return pos + n - 1;
    if (n > 0)
        return pos + n;
    return pos + 1;                     /* no alternative matched: one code point */
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t next_gpt2(const cps *c, size_t pos)
{
    size_t k = contraction(c, pos, false);
    if (k)
        return pos + k;
    bool sp = c->cp[pos] == ' ';
    int f = sp ? cls_at(c, pos + 1) : c->cls[pos];
    if (f == LLV_CC_LETTER || f == LLV_CC_NUMBER || f == LLV_CC_OTHER) {
        pos += sp;
        while (cls_at(c, pos) == f)
            pos++;
        return pos;
    }
    return whitespace_end(c, pos);
}

/* (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|
 * \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t next_llama3(const cps *c, size_t pos)
{
    size_t k = contraction(c, pos, true);
    if (k)
        return pos + k;
    uint32_t cp = c->cp[pos];
    int f = c->cls[pos];
    if (cp != '\r' && cp != '\n' && f != LLV_CC_NUMBER &&
        (f == LLV_CC_LETTER || cls_at(c, pos + 1) == LLV_CC_LETTER)) {
        pos++;
        while (cls_at(c, pos) == LLV_CC_LETTER)
            pos++;
        return pos;
    }
    if (f == LLV_CC_NUMBER) {
        for (k = 0; k < 3 && cls_at(c, pos) == LLV_CC_NUMBER; k++)
            pos++;
        return pos;
    }
    bool sp = cp == ' ';
    if ((sp ? cls_at(c, pos + 1) : f) == LLV_CC_OTHER) {
        pos += sp;
        while (cls_at(c, pos) == LLV_CC_OTHER)
            pos++;
        while (cp_at(c, pos) == '\r' || cp_at(c, pos) == '\n')
            pos++;
        return pos;
    }
    /* \s*[\r\n]+ : up to the last newline of the whitespace run. */
    size_t end = 0;
    for (size_t i = pos; cls_at(c, i) == LLV_CC_SPACE; i++) {
        if (c->cp[i] == '\r' || c->cp[i] == '\n')
            end = i + 1;
    }
    if (end)
        return end;
    return whitespace_end(c, pos);
}

int llv_bpe_pretokenize(int pre, const char *text, size_t len, size_t **bounds, size_t *n_words)
{
    *bounds = NULL;
    *n_words = 0;
    if (pre != LLV_PRE_GPT2 && pre != LLV_PRE_LLAMA3)
        return LLAVA_E_INVALID_ARG;
    cps c = { 0 };
    size_t b4, b8, b8p;
    if (len == SIZE_MAX || llv_mul_overflow(len, 4, &b4) || llv_mul_overflow(len, sizeof(size_t), &b8) ||
        llv_add_overflow(b8, sizeof(size_t), &b8p))
        return LLAVA_E_NOMEM;
    c.cp = llv_malloc(b4);
    c.cls = llv_malloc(len);
    c.off = llv_malloc(b8p);
    size_t *wb = llv_malloc(b8p);       /* at most one word per code point, plus the end */
    int rc = LLAVA_OK;
    if (!c.cp || !c.cls || !c.off || !wb) {
        rc = LLAVA_E_NOMEM;
        goto done;
    }
    for (size_t o = 0; o < len;) {
        uint32_t cp;
        size_t cl = llv_utf8_decode((const unsigned char *)text + o, len - o, &cp);
        c.cp[c.n] = cp;
        c.cls[c.n] = (uint8_t)llv_cp_class(cp);
        c.off[c.n++] = o;
        o += cl;
    }
    c.off[c.n] = len;
    size_t nw = 0;
    for (size_t pos = 0; pos < c.n;) {
        size_t end = pre == LLV_PRE_GPT2 ? next_gpt2(&c, pos) : next_llama3(&c, pos);
        if (end <= pos || end > c.n)    /* cannot happen; keeps the loop finite */
            end = pos + 1;
        wb[nw++] = c.off[pos];
        pos = end;
    }
    wb[nw] = len;
    *bounds = wb;
    *n_words = nw;
    wb = NULL;
done:
    llv_free(wb);
    llv_free(c.cp);
    llv_free(c.cls);
    llv_free(c.off);
    return rc;
}

/* ---- merges ------------------------------------------------------------------ */

typedef struct bsym {
    size_t  off, n;                     /* slice of the mapped word; n = 0: merged away */
    int64_t prev, next;
} bsym;

typedef struct bbigram {
    int32_t rank;
    int64_t left, right;
    size_t  size;
} bbigram;

/* Min-heap on rank; equal ranks -> smaller left first. */
static bool bb_before(const bbigram *a, const bbigram *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

typedef struct bheap {
    bbigram *v;
    size_t   n, cap;
} bheap;

static int bheap_push(bheap *h, bbigram b)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64, bytes;
        if (cap < h->cap || llv_mul_overflow(cap, sizeof *h->v, &bytes))
            return LLAVA_E_NOMEM;
        bbigram *nv = llv_realloc(h->v, bytes);
        if (!nv)
            return LLAVA_E_NOMEM;
        h->v = nv;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bb_before(&b, &h->v[p]))
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return LLAVA_OK;
}

static bbigram bheap_pop(bheap *h)
{
    bbigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && bb_before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!bb_before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}

typedef struct bpe_work {
    const llv_vocab *v;
    char  *word;                        /* mapped word (UTF-8 of GPT-2 characters) */
    size_t word_cap;
    bsym  *syms;
    size_t syms_cap;
    bheap  heap;
} bpe_work;

static int add_bigram(bpe_work *w, int64_t left, int64_t right)
{
    if (left < 0 || right < 0)
        return LLAVA_OK;
    const bsym *l = &w->syms[left], *r = &w->syms[right];
    int32_t rank = llv_vocab_merge_rank(w->v, w->word + l->off, l->n, w->word + r->off, r->n);
    if (rank < 0)
        return LLAVA_OK;
    bbigram b = { rank, left, right, l->n + r->n };
    return bheap_push(&w->heap, b);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return LLAVA_OK;
    size_t bytes;
    if (llv_mul_overflow(need, elem, &bytes))
        return LLAVA_E_NOMEM;
    void *np = llv_realloc(*p, bytes);
    if (!np)
        return LLAVA_E_NOMEM;
    *p = np;
    *cap = need;
    return LLAVA_OK;
}

/* One pre-tokenized word (raw bytes) -> tokens. */
static int bpe_word(bpe_work *w, const unsigned char *raw, size_t len, llv_ids *out)
{
    const llv_vocab *v = w->v;
    if (len == 0)
        return LLAVA_OK;
    size_t mlen;                        /* each byte maps to a 1- or 2-byte character */
    if (llv_mul_overflow(len, 2, &mlen))
        return LLAVA_E_NOMEM;
    int rc = grow((void **)&w->word, &w->word_cap, mlen, 1);
    if (rc == LLAVA_OK)
        rc = grow((void **)&w->syms, &w->syms_cap, len, sizeof *w->syms);
    if (rc != LLAVA_OK)
        return rc;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t cp = v->byte_to_cp[raw[i]];
        w->syms[i].off = o;
        if (cp < 0x80) {
            w->word[o++] = (char)cp;
        } else {                        /* cp < 0x800 */
            w->word[o++] = (char)(0xC0 | (cp >> 6));
            w->word[o++] = (char)(0x80 | (cp & 0x3F));
        }
        w->syms[i].n = o - w->syms[i].off;
        w->syms[i].prev = (int64_t)i - 1;
        w->syms[i].next = i + 1 == len ? -1 : (int64_t)i + 1;
    }
    if (v->ignore_merges) {
        int32_t id = llv_vocab_lookup(v, w->word, o);
        if (id >= 0)
            return llv_ids_push(out, id);
    }

    w->heap.n = 0;
    for (size_t i = 1; i < len && rc == LLAVA_OK; i++)
        rc = add_bigram(w, (int64_t)i - 1, (int64_t)i);
    while (rc == LLAVA_OK && w->heap.n > 0) {
        bbigram b = bheap_pop(&w->heap);
        bsym *l = &w->syms[b.left], *r = &w->syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;                   /* outdated */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            w->syms[r->next].prev = b.left;
        rc = add_bigram(w, l->prev, b.left);
        if (rc == LLAVA_OK)
            rc = add_bigram(w, b.left, l->next);
    }
    for (int64_t i = 0; rc == LLAVA_OK && i != -1; i = w->syms[i].next) {
        const char *s = w->word + w->syms[i].off;
        size_t n = w->syms[i].n;
        int32_t id = llv_vocab_lookup(v, s, n);
        if (id >= 0) {
            rc = llv_ids_push(out, id);
            continue;
        }
        /* Not a token: the tokens of its single bytes, where they exist. */
        for (size_t k = 0; k < n && rc == LLAVA_OK; k++) {
            int32_t b = v->byte_token[(unsigned char)s[k]];
            if (b >= 0)
                rc = llv_ids_push(out, b);
        }
    }
    return rc;
}

int llv_bpe_tokenize_fragment(const llv_vocab *v, const char *text, size_t len, llv_ids *out)
{
    size_t *wb = NULL, nw = 0;
    int rc = llv_bpe_pretokenize(v->pre, text, len, &wb, &nw);
    if (rc != LLAVA_OK)
        return rc;
    bpe_work w = { v, NULL, 0, NULL, 0, { 0 } };
    for (size_t k = 0; k < nw && rc == LLAVA_OK; k++)
        rc = bpe_word(&w, (const unsigned char *)text + wb[k], wb[k + 1] - wb[k], out);
    llv_free(w.word);
    llv_free(w.syms);
    llv_free(w.heap.v);
    llv_free(wb);
    return rc;
}
