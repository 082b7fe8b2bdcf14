/*
 * embed.c - image embeddings (n_tokens x n_embd floats) and their blob.
 *
 * Invariant: every llava_embed holds finite floats. llava_new_embed rejects
 * NaN/Inf (LLAVA_E_INVALID_ARG), llava_embed_load rejects them
 * (LLAVA_E_FORMAT) and the encoder fails rather than return them.
 *
 * Blob format, version 1 (all fields little-endian):
 *   offset  size  field
 *        0     4  magic "LLVE"
 *        4     4  u32 version = 1
 *        8     4  u32 n_tokens   (1 .. LLV_EMBED_MAX_TOKENS)
 *       12     4  u32 n_embd     (1 .. LLV_EMBED_MAX_EMBD)
 *       16     8  u64 payload bytes = 4 * n_tokens * n_embd
 *       24     4  u32 CRC-32 (IEEE, as zlib) of the payload
 *       28     4  u32 reserved, 0
 *       32     .  payload: n_tokens * n_embd f32, token-major
 * The blob is exactly 32 + payload bytes; anything else is LLAVA_E_FORMAT.
 */
#include "embed.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define LLV_EMBED_MAGIC       "LLVE"
#define LLV_EMBED_VERSION     1u
#define LLV_EMBED_HEADER      32u
#define LLV_EMBED_MAX_TOKENS  (1 << 20)
#define LLV_EMBED_MAX_EMBD    (1 << 18)

int llv_embed_new(int32_t n_tokens, int32_t n_embd, llava_embed **out, llv_err *err)
{
    *out = NULL;
    if (n_tokens < 1 || n_tokens > LLV_EMBED_MAX_TOKENS || n_embd < 1 || n_embd > LLV_EMBED_MAX_EMBD)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "embedding shape %d x %d is out of range (1..%d x 1..%d)",
                        n_tokens, n_embd, LLV_EMBED_MAX_TOKENS, LLV_EMBED_MAX_EMBD);
    size_t bytes;
    if (llv_mul3_overflow((size_t)n_tokens, (size_t)n_embd, sizeof(float), &bytes))
        return llv_fail(err, LLAVA_E_NOMEM, "embedding of %d x %d floats is too large", n_tokens, n_embd);
    llava_embed *e = llv_calloc(1, sizeof *e);
    if (!e)
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory for an embedding");
    if (!(e->data = llv_malloc_aligned(bytes))) {
        llv_free(e);
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory for a %d x %d embedding", n_tokens, n_embd);
    }
    llv_handle_init(&e->hdr, LLV_MAGIC_EMBED);
    e->n_tokens = n_tokens;
    e->n_embd = n_embd;
    *out = e;
    return LLAVA_OK;
}

static void embed_destroy(llava_embed *e)
{
    llv_free_aligned(e->data);
    llv_handle_kill(&e->hdr);
    llv_free(e);
}

/* Index of the first non-finite value, or -1. */
static int64_t first_non_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return (int64_t)i;
    return -1;
}

LLAVA_API int llava_new_embed(const float *data, int32_t n_tokens, int32_t n_embd, llava_embed **out,
                              char *errbuf, size_t errbuf_size)
{
    llv_err err;
    llv_err_clear(&err);
    int rc;
    if (out)
        *out = NULL;
    if (!out || !data) {
        rc = llv_fail(&err, LLAVA_E_INVALID_ARG, "llava_new_embed: %s is NULL", !out ? "out" : "data");
        goto fail;
    }
    llava_embed *e;
    if ((rc = llv_embed_new(n_tokens, n_embd, &e, &err)) != LLAVA_OK)
        goto fail;
    size_t n = (size_t)n_tokens * (size_t)n_embd; /* checked in llv_embed_new */
    int64_t bad = first_non_finite(data, n);
    if (bad >= 0) {
        embed_destroy(e);
        rc = llv_fail(&err, LLAVA_E_INVALID_ARG, "llava_new_embed: value %lld (token %lld) is not finite",
                      (long long)bad, (long long)(bad / n_embd));
        goto fail;
    }
    memcpy(e->data, data, n * sizeof(float));
    *out = e;
    return LLAVA_OK;
fail:
    llv_err_to_buf(&err, errbuf, errbuf_size);
    return rc;
}

LLAVA_API void llava_free_embed(llava_embed *e)
{
    if (llv_handle_is(e, LLV_MAGIC_EMBED))
        embed_destroy(e);
}

LLAVA_API int32_t llava_embed_n_tokens(const llava_embed *e)
{
    return llv_handle_is(e, LLV_MAGIC_EMBED) ? e->n_tokens : 0;
}

LLAVA_API int32_t llava_embed_n_embd(const llava_embed *e)
{
    return llv_handle_is(e, LLV_MAGIC_EMBED) ? e->n_embd : 0;
}

LLAVA_API const float *llava_embed_data(const llava_embed *e)
{
    return llv_handle_is(e, LLV_MAGIC_EMBED) ? e->data : NULL;
}

/* ---- blob --------------------------------------------------------------- */

/* CRC-32 (reflected polynomial 0xEDB88320, init and final xor ~0), table
 * built on the stack so the function stays reentrant. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static size_t payload_bytes(const llava_embed *e)
{
    return (size_t)e->n_tokens * (size_t)e->n_embd * sizeof(float); /* checked at creation */
}

static void write_header(const llava_embed *e, uint8_t *h)
{
    size_t payload = payload_bytes(e);
    memcpy(h, LLV_EMBED_MAGIC, 4);
    put_u32(h + 4, LLV_EMBED_VERSION);
    put_u32(h + 8, (uint32_t)e->n_tokens);
    put_u32(h + 12, (uint32_t)e->n_embd);
    put_u64(h + 16, (uint64_t)payload);
    put_u32(h + 24, crc32_update(0, (const uint8_t *)e->data, payload));
    put_u32(h + 28, 0);
}

/* Validate a header against the total blob size. */
typedef struct blob_header {
    int32_t  n_tokens, n_embd;
    size_t   payload;
    uint32_t crc;
} blob_header;

static int parse_header(const uint8_t *h, uint64_t total, blob_header *bh, llv_err *err)
{
    if (memcmp(h, LLV_EMBED_MAGIC, 4) != 0)
        return llv_fail(err, LLAVA_E_FORMAT, "embedding blob: bad magic (not \"LLVE\")");
    uint32_t version = get_u32(h + 4);
    if (version != LLV_EMBED_VERSION)
        return llv_fail(err, LLAVA_E_FORMAT, "embedding blob: version %u is not supported (expected %u)", version,
                        LLV_EMBED_VERSION);
    uint32_t nt = get_u32(h + 8), ne = get_u32(h + 12);
    if (nt < 1 || nt > LLV_EMBED_MAX_TOKENS || ne < 1 || ne > LLV_EMBED_MAX_EMBD)
        return llv_fail(err, LLAVA_E_FORMAT, "embedding blob: shape %u x %u is out of range", nt, ne);
    uint64_t payload = get_u64(h + 16);
    size_t want;
    if (llv_mul3_overflow(nt, ne, sizeof(float), &want) || payload != (uint64_t)want)
        return llv_fail(err, LLAVA_E_FORMAT, "embedding blob: payload size %llu does not match %u x %u floats",
                        (unsigned long long)payload, nt, ne);
    if (get_u32(h + 28) != 0)
        return llv_fail(err, LLAVA_E_FORMAT, "embedding blob: reserved field is not zero");
    if (total != (uint64_t)LLV_EMBED_HEADER + payload)
        return llv_fail(err, LLAVA_E_FORMAT, "embedding blob: %llu bytes, expected %llu (%s)",
                        (unsigned long long)total, (unsigned long long)(LLV_EMBED_HEADER + payload),
                        total < LLV_EMBED_HEADER + payload ? "truncated" : "trailing data");
    bh->n_tokens = (int32_t)nt;
    bh->n_embd = (int32_t)ne;
    bh->payload = want;
    bh->crc = get_u32(h + 24);
    return LLAVA_OK;
}

/* Checksum and finiteness of a freshly filled embedding. */
static int check_payload(const llava_embed *e, const blob_header *bh, llv_err *err)
{
    if (crc32_update(0, (const uint8_t *)e->data, bh->payload) != bh->crc)
        return llv_fail(err, LLAVA_E_FORMAT, "embedding blob: checksum mismatch (corrupted data)");
    int64_t bad = first_non_finite(e->data, bh->payload / sizeof(float));
    if (bad >= 0)
        return llv_fail(err, LLAVA_E_FORMAT, "embedding blob: value %lld is not finite", (long long)bad);
    return LLAVA_OK;
}

LLAVA_API int llava_embed_save(const llava_embed *e, void *buf, size_t buf_size, size_t *size)
{
    if (!llv_handle_is(e, LLV_MAGIC_EMBED))
        return LLAVA_E_INVALID_ARG;
    size_t need = LLV_EMBED_HEADER + payload_bytes(e); /* < 2^40, no overflow */
    if (size)
        *size = need;
    if (!buf || buf_size < need)
        return LLAVA_E_BUFFER_TOO_SMALL;
    write_header(e, buf);
    memcpy((uint8_t *)buf + LLV_EMBED_HEADER, e->data, payload_bytes(e));
    return LLAVA_OK;
}

LLAVA_API int llava_embed_save_file(const llava_embed *e, const char *path)
{
    if (!llv_handle_is(e, LLV_MAGIC_EMBED) || !path)
        return LLAVA_E_INVALID_ARG;
    uint8_t h[LLV_EMBED_HEADER];
    write_header(e, h);
    FILE *f = fopen(path, "wb");
    if (!f)
        return LLAVA_E_IO;
    size_t payload = payload_bytes(e);
    bool ok = fwrite(h, 1, sizeof h, f) == sizeof h && fwrite(e->data, 1, payload, f) == payload;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        remove(path); /* no half-written blob left behind */
        return LLAVA_E_IO;
    }
    return LLAVA_OK;
}

LLAVA_API int llava_embed_load(const void *data, size_t size, llava_embed **out, char *errbuf, size_t errbuf_size)
{
    llv_err err;
    llv_err_clear(&err);
    llava_embed *e = NULL;
    blob_header bh;
    int rc;
    if (out)
        *out = NULL;
    if (!out || (!data && size)) {
        rc = llv_fail(&err, LLAVA_E_INVALID_ARG, "llava_embed_load: %s is NULL", !out ? "out" : "data");
        goto fail;
    }
    if (size < LLV_EMBED_HEADER) {
        rc = llv_fail(&err, LLAVA_E_FORMAT, "embedding blob: %zu bytes is shorter than the %u-byte header", size,
                      LLV_EMBED_HEADER);
        goto fail;
    }
    if ((rc = parse_header(data, size, &bh, &err)) != LLAVA_OK ||
        (rc = llv_embed_new(bh.n_tokens, bh.n_embd, &e, &err)) != LLAVA_OK)
        goto fail;
    memcpy(e->data, (const uint8_t *)data + LLV_EMBED_HEADER, bh.payload);
    if ((rc = check_payload(e, &bh, &err)) != LLAVA_OK)
        goto fail;
    *out = e;
    return LLAVA_OK;
fail:
    if (e)
        embed_destroy(e);
    llv_err_to_buf(&err, errbuf, errbuf_size);
    return rc;
}

LLAVA_API int llava_embed_load_file(const char *path, llava_embed **out, char *errbuf, size_t errbuf_size)
{
    llv_err err;
    llv_err_clear(&err);
    llava_embed *e = NULL;
    FILE *f = NULL;
    blob_header bh;
    uint8_t h[LLV_EMBED_HEADER];
    int rc;
    if (out)
        *out = NULL;
    if (!out || !path) {
        rc = llv_fail(&err, LLAVA_E_INVALID_ARG, "llava_embed_load_file: %s is NULL", !out ? "out" : "path");
        goto fail;
    }
    if (!(f = fopen(path, "rb"))) {
        rc = llv_fail(&err, LLAVA_E_IO, "cannot open %.200s", path);
        goto fail;
    }
    long end;
    if (fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = llv_fail(&err, LLAVA_E_IO, "cannot seek in %.200s", path);
        goto fail;
    }
    if ((unsigned long)end < LLV_EMBED_HEADER) {
        rc = llv_fail(&err, LLAVA_E_FORMAT, "embedding file %.150s: %ld bytes is shorter than the header", path, end);
        goto fail;
    }
    if (fread(h, 1, sizeof h, f) != sizeof h) {
        rc = llv_fail(&err, LLAVA_E_IO, "cannot read %.200s", path);
        goto fail;
    }
    if ((rc = parse_header(h, (uint64_t)end, &bh, &err)) != LLAVA_OK ||
        (rc = llv_embed_new(bh.n_tokens, bh.n_embd, &e, &err)) != LLAVA_OK)
        goto fail;
    if (fread(e->data, 1, bh.payload, f) != bh.payload) {
        rc = llv_fail(&err, LLAVA_E_IO, "cannot read %.200s", path);
        goto fail;
    }
    if ((rc = check_payload(e, &bh, &err)) != LLAVA_OK)
        goto fail;
    fclose(f);
    *out = e;
    return LLAVA_OK;
fail:
    if (f)
        fclose(f);
    if (e)
        embed_destroy(e);
    llv_err_to_buf(&err, errbuf, errbuf_size);
    return rc;
}
