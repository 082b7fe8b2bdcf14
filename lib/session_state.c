/*
 * session_state.c - saving and restoring a session's state as a versioned
 * little-endian blob. The blob is untrusted input on load (cf.
 * CVE-2026-43629, a KV restore overflow in llama.cpp): every field and the
 * exact total size are validated with checked arithmetic, and a checksum is
 * verified, before the session is touched.
 *
 * Layout, version 1 (all integers little-endian):
 *   off  size
 *   0    4     magic "LLVS"
 *   4    4     u32 version (1)
 *   8    4     u32 n_embd     } must equal the session's LM
 *   12   4     u32 n_layer    }
 *   16   4     u32 n_head_kv  }
 *   20   4     u32 head_dim   }
 *   24   4     u32 n_vocab    }
 *   28   4     u32 kv_type (ggml id: 0 = F32, 1 = F16; must equal the session's)
 *   32   4     u32 n_ctx of the saving session (pos <= n_ctx)
 *   36   4     u32 pos (must be <= the loading session's n_ctx)
 *   40   4     u32 flags (bit 0: logits present; other bits must be 0)
 *   44   32    u64 rng state[4] (not all zero)
 *   76         i32 history[pos] (token id, or -1 for an image row)
 *              f32 logits[n_vocab] if flags bit 0
 *              per layer: K rows [pos][kv_dim], then V rows [pos][kv_dim] (f32 or f16)
 *   end-8 8    u64 checksum of every byte before it
 */
#include "session.h"

#include <string.h>

#define STATE_MAGIC "LLVS"
#define STATE_VERSION 1u
#define STATE_HEADER 76u
#define FLAG_LOGITS 1u

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static bool host_is_le(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* Copy n elements of elt bytes (2 or 4) between host order and little-endian. */
static void copy_le(void *dst, const void *src, size_t n, size_t elt)
{
    if (host_is_le()) {
        memcpy(dst, src, n * elt);
        return;
    }
    const unsigned char *s = src;
    unsigned char *d = dst;
    for (size_t i = 0; i < n; i++, s += elt, d += elt)
        for (size_t b = 0; b < elt; b++)
            d[b] = s[elt - 1 - b];
}

/* A 64-bit checksum: words folded with a multiply-xorshift mix (detects
 * corruption; not cryptographic). */
static uint64_t checksum(const unsigned char *p, size_t n)
{
    uint64_t h = 0x6c6c7673ull ^ (uint64_t)n * 0x9e3779b97f4a7c15ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        h = (h ^ get_u64(p + i)) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    uint64_t tail = 0;
    for (size_t j = 0; i + j < n; j++)
        tail |= (uint64_t)p[i + j] << (8 * j);
    h = (h ^ tail) * 0x94d049bb133111ebull;
    return h ^ (h >> 29);
}

/* Total blob size for these values, with checked arithmetic. */
static bool state_size(uint32_t pos, bool logits, uint32_t n_vocab, uint32_t n_layer, uint64_t kv_dim, size_t elt,
                       size_t *out)
{
    size_t n = STATE_HEADER, t;
    if (llv_mul_overflow(pos, 4, &t) || llv_add_overflow(n, t, &n))
        return false;
    if (logits && (llv_mul_overflow(n_vocab, 4, &t) || llv_add_overflow(n, t, &n)))
        return false;
    if (kv_dim > SIZE_MAX || llv_mul3_overflow(pos, (size_t)kv_dim, elt, &t) || llv_mul3_overflow(t, n_layer, 2, &t) ||
        llv_add_overflow(n, t, &n) || llv_add_overflow(n, 8, &n))
        return false;
    *out = n;
    return true;
}

int llv_session_save(const llava_session *s, void *buf, size_t buf_size, size_t *size, llv_err *err)
{
    const llv_lm_hparams *hp = &s->lm->hp;
    const llv_kv_cache *kv = &s->kv;
    const uint32_t pos = (uint32_t)s->pos;
    size_t need;
    if (!state_size(pos, s->has_logits, (uint32_t)hp->n_vocab, (uint32_t)hp->n_layer, (uint64_t)kv->kv_dim,
                    kv->elt, &need))
        return llv_fail(err, LLAVA_E_INTERNAL, "state size overflows");
    *size = need;
    if (!buf || buf_size < need)
        return llv_fail(err, LLAVA_E_BUFFER_TOO_SMALL, "the state needs %zu bytes", need);

    unsigned char *p = buf;
    memcpy(p, STATE_MAGIC, 4);
    const uint32_t fields[] = {
        STATE_VERSION, (uint32_t)hp->n_embd, (uint32_t)hp->n_layer, (uint32_t)hp->n_head_kv,
        (uint32_t)hp->head_dim, (uint32_t)hp->n_vocab, (uint32_t)kv->kv_type, (uint32_t)s->n_ctx, pos,
        s->has_logits ? FLAG_LOGITS : 0u,
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        put_u32(p + 4 + 4 * i, fields[i]);
    for (int i = 0; i < 4; i++)
        put_u64(p + 44 + 8 * i, s->rng.s[i]);
    size_t o = STATE_HEADER;
    for (uint32_t i = 0; i < pos; i++, o += 4)
        put_u32(p + o, (uint32_t)s->history[i]);
    if (s->has_logits) {
        copy_le(p + o, s->logits, (size_t)hp->n_vocab, 4);
        o += (size_t)hp->n_vocab * 4;
    }
    const size_t row = (size_t)kv->kv_dim;
    for (int32_t l = 0; l < hp->n_layer; l++)
        for (int which = 0; which < 2; which++) {
            void *base = which ? kv->v : kv->k;
            copy_le(p + o, llv_kv_row(kv, base, l, 0), row * pos, kv->elt);
            o += row * pos * kv->elt;
        }
    put_u64(p + o, checksum(p, o));
    return LLAVA_OK;
}

int llv_session_load(llava_session *s, const void *buf, size_t size, llv_err *err)
{
    const llv_lm_hparams *hp = &s->lm->hp;
    llv_kv_cache *kv = &s->kv;
    const unsigned char *p = buf;

    /* 1. Header, field by field. */
    if (size < STATE_HEADER + 8)
        return llv_fail(err, LLAVA_E_FORMAT, "state: %zu bytes is shorter than the header", size);
    if (memcmp(p, STATE_MAGIC, 4) != 0)
        return llv_fail(err, LLAVA_E_FORMAT, "state: bad magic");
    const uint32_t version = get_u32(p + 4);
    if (version != STATE_VERSION)
        return llv_fail(err, LLAVA_E_FORMAT, "state: version %u is not supported (expected %u)", version,
                        STATE_VERSION);
    const struct { const char *name; uint32_t got, want; } dims[] = {
        { "n_embd", get_u32(p + 8), (uint32_t)hp->n_embd },
        { "n_layer", get_u32(p + 12), (uint32_t)hp->n_layer },
        { "n_head_kv", get_u32(p + 16), (uint32_t)hp->n_head_kv },
        { "head_dim", get_u32(p + 20), (uint32_t)hp->head_dim },
        { "n_vocab", get_u32(p + 24), (uint32_t)hp->n_vocab },
        { "kv_type", get_u32(p + 28), (uint32_t)kv->kv_type },
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].got != dims[i].want)
            return llv_fail(err, LLAVA_E_MISMATCH, "state: %s is %u, this session has %u", dims[i].name,
                            dims[i].got, dims[i].want);
    const uint32_t saved_ctx = get_u32(p + 32), pos = get_u32(p + 36), flags = get_u32(p + 40);
    if (pos > saved_ctx)
        return llv_fail(err, LLAVA_E_FORMAT, "state: position %u exceeds its context %u", pos, saved_ctx);
    if (pos > (uint32_t)s->n_ctx)
        return llv_fail(err, LLAVA_E_MISMATCH, "state: position %u does not fit this session's context of %d", pos,
                        (int)s->n_ctx);
    if (flags & ~FLAG_LOGITS)
        return llv_fail(err, LLAVA_E_FORMAT, "state: unknown flags 0x%x", flags);
    llv_rng rng;
    for (int i = 0; i < 4; i++)
        rng.s[i] = get_u64(p + 44 + 8 * i);
    if (!(rng.s[0] | rng.s[1] | rng.s[2] | rng.s[3]))
        return llv_fail(err, LLAVA_E_FORMAT, "state: invalid RNG state");

    /* 2. The exact size, then the checksum over everything before it. */
    const bool has_logits = (flags & FLAG_LOGITS) != 0;
    size_t need;
    if (!state_size(pos, has_logits, (uint32_t)hp->n_vocab, (uint32_t)hp->n_layer, (uint64_t)kv->kv_dim, kv->elt,
                    &need) || need != size)
        return llv_fail(err, LLAVA_E_FORMAT, "state: %zu bytes, but its header describes a different size", size);
    if (checksum(p, size - 8) != get_u64(p + size - 8))
        return llv_fail(err, LLAVA_E_FORMAT, "state: checksum mismatch (corrupted data)");

    /* 3. Contents. */
    size_t o = STATE_HEADER;
    for (uint32_t i = 0; i < pos; i++) {
        int32_t t = (int32_t)get_u32(p + o + 4 * (size_t)i);
        if (t < -1 || t >= hp->n_vocab)
            return llv_fail(err, LLAVA_E_FORMAT, "state: token %d at position %u is out of range", (int)t, i);
    }

    /* 4. Everything is valid: apply. */
    for (uint32_t i = 0; i < pos; i++, o += 4)
        s->history[i] = (int32_t)get_u32(p + o);
    if (has_logits) {
        copy_le(s->logits, p + o, (size_t)hp->n_vocab, 4);
        o += (size_t)hp->n_vocab * 4;
    }
    const size_t row = (size_t)kv->kv_dim;
    for (int32_t l = 0; l < hp->n_layer; l++)
        for (int which = 0; which < 2; which++) {
            void *base = which ? kv->v : kv->k;
            copy_le(llv_kv_row(kv, base, l, 0), p + o, row * pos, kv->elt);
            o += row * pos * kv->elt;
        }
    s->pos = (int32_t)pos;
    s->has_logits = has_logits;
    s->rng = rng;
    return LLAVA_OK;
}
