/*
 * tokenizer_spm.c - SentencePiece ("llama") tokenization of one raw-text
 * fragment, exactly as spec §8.3 (llama.cpp's llm_tokenizer_spm_session):
 *   escape ' ' -> U+2581 (plus an optional leading one), split into UTF-8
 *   characters, then repeatedly merge the adjacent pair whose concatenation
 *   is the highest-scoring token (ties: leftmost), and finally emit each
 *   symbol as a token, re-split through rev_merge, or as <0xXX> bytes.
 *
 * Deviation for invalid UTF-8 (llama.cpp takes the length from the lead
 * byte alone): an invalid byte is a 1-byte symbol, which then falls back to
 * its byte token. Valid UTF-8 is treated identically.
 */
#include "tokenizer_internal.h"

#include <string.h>

typedef struct sym {
    uint32_t off, n;                    /* text slice in the escaped buffer; n = 0: merged away */
    int32_t  prev, next;                /* -1: none */
} sym;

/* 16 bytes: the heap is the hot data structure (symbol indices fit in
 * int32_t because fragments are limited to INT32_MAX bytes). */
typedef struct bigram {
    float    score;
    int32_t  left, right;
    uint32_t size;                      /* byte length of the pair when pushed */
} bigram;

/* Max-heap: higher score first; equal scores -> smaller left index first. */
static bool bigram_before(const bigram *a, const bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct heap {
    bigram *v;
    size_t  n, cap;
} heap;

static int heap_push(heap *h, bigram b)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64, bytes;
        if (cap < h->cap || llv_mul_overflow(cap, sizeof *h->v, &bytes))
            return LLAVA_E_NOMEM;
        bigram *nv = llv_realloc(h->v, bytes);
        if (!nv)
            return LLAVA_E_NOMEM;
        h->v = nv;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_before(&b, &h->v[p]))
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return LLAVA_OK;
}

static bigram heap_pop(heap *h)
{
    bigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && bigram_before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!bigram_before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}

/* rev_merge: pair text -> (left, right) of the last bigram pushed with that
 * text. An open-addressing table over slices of the escaped buffer. */
typedef struct rev_entry {
    uint32_t off, len;
    int32_t  left, right;               /* left = -1: empty slot */
} rev_entry;

typedef struct rev_map {
    rev_entry *v;
    size_t     mask, n;
} rev_map;

static uint64_t slice_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001B3ull;
    return h ^ (h >> 29);
}

static int rev_put(rev_map *m, const char *buf, uint32_t off, uint32_t len, int32_t left, int32_t right)
{
    if ((m->n + 1) * 2 > m->mask + 1) {
        size_t size = m->v ? (m->mask + 1) * 2 : 256, bytes;
        if (size == 0 || llv_mul_overflow(size, sizeof *m->v, &bytes))
            return LLAVA_E_NOMEM;
        rev_entry *nv = llv_malloc(bytes);
        if (!nv)
            return LLAVA_E_NOMEM;
        for (size_t i = 0; i < size; i++)
            nv[i].left = -1;
        for (size_t i = 0; m->v && i <= m->mask; i++) {
            if (m->v[i].left < 0)
                continue;
            size_t h = (size_t)slice_hash(buf + m->v[i].off, m->v[i].len) & (size - 1);
            while (nv[h].left >= 0)
                h = (h + 1) & (size - 1);
            nv[h] = m->v[i];
        }
        llv_free(m->v);
        m->v = nv;
        m->mask = size - 1;
    }
    size_t h = (size_t)slice_hash(buf + off, len) & m->mask;
    for (;;) {
        rev_entry *e = &m->v[h];
        if (e->left < 0) {
            e->off = off;
            e->len = len;
            e->left = left;
            e->right = right;
            m->n++;
            return LLAVA_OK;
        }
        if (e->len == len && memcmp(buf + e->off, buf + off, len) == 0) {
            e->left = left;             /* last write wins, as std::map operator[] */
            e->right = right;
            return LLAVA_OK;
        }
        h = (h + 1) & m->mask;
    }
}

static const rev_entry *rev_get(const rev_map *m, const char *buf, const char *s, size_t len)
{
    if (!m->v)
        return NULL;
    size_t h = (size_t)slice_hash(s, len) & m->mask;
    for (;;) {
        const rev_entry *e = &m->v[h];
        if (e->left < 0)
            return NULL;
        if (e->len == len && memcmp(buf + e->off, s, len) == 0)
            return e;
        h = (h + 1) & m->mask;
    }
}

typedef struct spm_session {
    const llv_vocab *v;
    const char      *buf;
    sym             *syms;
    heap             work;
    rev_map          rev;
} spm_session;

static int try_add_bigram(spm_session *s, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return LLAVA_OK;
    uint32_t off = s->syms[left].off, size = s->syms[left].n + s->syms[right].n;
    int32_t id = llv_vocab_lookup(s->v, s->buf + off, size);
    if (id < 0)
        return LLAVA_OK;
    bigram b = { s->v->scores[id], left, right, size };
    int rc = heap_push(&s->work, b);
    if (rc == LLAVA_OK)
        rc = rev_put(&s->rev, s->buf, off, size, left, right);
    return rc;
}

static int emit_bytes(const llv_vocab *v, const char *p, size_t n, llv_ids *out)
{
    for (size_t i = 0; i < n; i++) {
        int32_t id = v->byte_token[(unsigned char)p[i]];
        if (id < 0)
            id = v->unk;                /* a vocabulary without byte tokens */
        if (id >= 0) {
            int rc = llv_ids_push(out, id);
            if (rc != LLAVA_OK)
                return rc;
        }
    }
    return LLAVA_OK;
}

/* Step 6 of §8.3. The rev_merge branch is kept for exactness although, with
 * whole-character symbols, a symbol that is not a token is a single
 * character and no pair text can equal it; depth is bounded regardless. */
static int resegment(spm_session *s, int32_t i, int depth, llv_ids *out)
{
    const char *p = s->buf + s->syms[i].off;
    size_t n = s->syms[i].n;
    int32_t id = llv_vocab_lookup(s->v, p, n);
    if (id >= 0)
        return llv_ids_push(out, id);
    const rev_entry *e = depth < 64 ? rev_get(&s->rev, s->buf, p, n) : NULL;
    if (!e)
        return emit_bytes(s->v, p, n, out);
    int32_t l = e->left, r = e->right;
    int rc = resegment(s, l, depth + 1, out);
    if (rc == LLAVA_OK)
        rc = resegment(s, r, depth + 1, out);
    return rc;
}

int llv_spm_tokenize_fragment(const llv_vocab *v, const char *text, size_t len, bool add_prefix, llv_ids *out)
{
    /* Escaped text: optional leading "▁", every ' ' -> "▁" (3 bytes). */
    size_t spaces = add_prefix, size = 0;
    for (size_t i = 0; i < len; i++)
        spaces += text[i] == ' ';
    size_t extra;
    if (llv_mul_overflow(spaces, 3, &extra) || llv_add_overflow(len, extra, &size))
        return LLAVA_E_NOMEM;
    if (size == 0)
        return LLAVA_OK;
    if (size > INT32_MAX)
        return LLAVA_E_INVALID_ARG;     /* > 2 GiB in one fragment */
    char *buf = llv_malloc(size);
    if (!buf)
        return LLAVA_E_NOMEM;
    size_t o = 0;
    if (add_prefix) {
        memcpy(buf, "\xE2\x96\x81", 3);
        o = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + o, "\xE2\x96\x81", 3);
            o += 3;
        } else {
            buf[o++] = text[i];
        }
    }
    size = o;

    /* One symbol per UTF-8 character: at most `size` symbols. */
    spm_session s = { v, buf, NULL, { 0 }, { 0 } };
    size_t bytes;
    int rc = LLAVA_OK;
    if (llv_mul_overflow(size, sizeof *s.syms, &bytes) || !(s.syms = llv_malloc(bytes))) {
        rc = LLAVA_E_NOMEM;
        goto done;
    }
    int32_t ns = 0;
    for (size_t off = 0; off < size;) {
        uint32_t cp;
        size_t cl = llv_utf8_decode((const unsigned char *)buf + off, size - off, &cp);
        s.syms[ns].off = (uint32_t)off;
        s.syms[ns].n = (uint32_t)cl;
        s.syms[ns].prev = ns - 1;
        off += cl;
        s.syms[ns].next = off == size ? -1 : ns + 1;
        ns++;
    }

    for (int32_t i = 1; i < ns && rc == LLAVA_OK; i++)
        rc = try_add_bigram(&s, i - 1, i);
    while (rc == LLAVA_OK && s.work.n > 0) {
        bigram b = heap_pop(&s.work);
        sym *l = &s.syms[b.left], *r = &s.syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;                   /* outdated: one side already merged */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            s.syms[r->next].prev = b.left;
        rc = try_add_bigram(&s, l->prev, b.left);
        if (rc == LLAVA_OK)
            rc = try_add_bigram(&s, b.left, l->next);
    }
    for (int32_t i = 0; rc == LLAVA_OK && i != -1; i = s.syms[i].next)
        rc = resegment(&s, i, 0, out);
done:
    llv_free(s.rev.v);
    llv_free(s.work.v);
    llv_free(s.syms);
    llv_free(buf);
    return rc;
}
