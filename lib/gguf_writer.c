/*
 * gguf_writer.c - in-memory GGUF v3 builder (spec §1.1): header, KV pairs in
 * insertion order, tensor infos in insertion order, zero padding to the
 * alignment, then each tensor's bytes padded to the alignment. Tensor
 * offsets are the running sum of padded sizes, as RC and gguf-py write them.
 *
 * Used by tools and tests; it validates what it is given (the reader would
 * reject the result otherwise) and returns statuses, never aborts.
 */
#include "gguf_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct wkv {
    char    *key;
    int      type;
    uint8_t *raw;      /* serialized value after the type id */
    size_t   raw_len;
} wkv;

typedef struct wtensor {
    char     name[LLV_GGUF_MAX_NAME];
    int      type;
    uint32_t n_dims;
    int64_t  ne[LLV_GGUF_MAX_DIMS];
    uint8_t *data;
    size_t   nbytes;
} wtensor;

struct llv_gguf_writer {
    wkv     *kv;
    size_t   n_kv, cap_kv;
    wtensor *t;
    size_t   n_t, cap_t;
};

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

llv_gguf_writer *llv_gguf_writer_new(void)
{
    return llv_calloc(1, sizeof(llv_gguf_writer));
}

void llv_gguf_writer_free(llv_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        llv_free(w->kv[i].key);
        llv_free(w->kv[i].raw);
    }
    for (size_t i = 0; i < w->n_t; i++)
        llv_free(w->t[i].data);
    llv_free(w->kv);
    llv_free(w->t);
    llv_free(w);
}

/* Store (key, type, raw) taking ownership of raw; replaces an earlier key. */
static int put_kv(llv_gguf_writer *w, const char *key, int type, uint8_t *raw, size_t raw_len)
{
    if (!w || !key || !key[0]) {
        llv_free(raw);
        return LLAVA_E_INVALID_ARG;
    }
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) {
            llv_free(w->kv[i].raw);
            w->kv[i].type = type;
            w->kv[i].raw = raw;
            w->kv[i].raw_len = raw_len;
            return LLAVA_OK;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *n = llv_realloc(w->kv, cap * sizeof *n);
        if (!n) {
            llv_free(raw);
            return LLAVA_E_NOMEM;
        }
        w->kv = n;
        w->cap_kv = cap;
    }
    char *k = llv_strdup(key);
    if (!k) {
        llv_free(raw);
        return LLAVA_E_NOMEM;
    }
    w->kv[w->n_kv++] = (wkv){ k, type, raw, raw_len };
    return LLAVA_OK;
}

static int add_scalar(llv_gguf_writer *w, const char *key, int type, uint64_t bits)
{
    size_t n = llv_gguf_scalar_size(type);
    uint8_t *raw = llv_malloc(n);
    if (!raw)
        return LLAVA_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        raw[i] = (uint8_t)(bits >> (8 * i));
    return put_kv(w, key, type, raw, n);
}

int llv_gguf_add_val(llv_gguf_writer *w, const char *key, int type, const void *value)
{
    size_t n = llv_gguf_scalar_size(type);
    if (n == 0 || !value)
        return LLAVA_E_INVALID_ARG;
    uint64_t bits = 0;
    switch (type) {
    case LLV_GGUF_UINT8: bits = *(const uint8_t *)value; break;
    case LLV_GGUF_INT8: bits = (uint8_t) * (const int8_t *)value; break;
    case LLV_GGUF_UINT16: bits = *(const uint16_t *)value; break;
    case LLV_GGUF_INT16: bits = (uint16_t) * (const int16_t *)value; break;
    case LLV_GGUF_UINT32: bits = *(const uint32_t *)value; break;
    case LLV_GGUF_INT32: bits = (uint32_t) * (const int32_t *)value; break;
    case LLV_GGUF_UINT64: bits = *(const uint64_t *)value; break;
    case LLV_GGUF_INT64: bits = (uint64_t) * (const int64_t *)value; break;
    case LLV_GGUF_BOOL: bits = *(const bool *)value ? 1 : 0; break;
    case LLV_GGUF_FLOAT32: { uint32_t b; memcpy(&b, value, 4); bits = b; break; }
    case LLV_GGUF_FLOAT64: memcpy(&bits, value, 8); break;
    default: return LLAVA_E_INVALID_ARG;
    }
    return add_scalar(w, key, type, bits);
}

int llv_gguf_add_u32(llv_gguf_writer *w, const char *key, uint32_t v)
{
    return add_scalar(w, key, LLV_GGUF_UINT32, v);
}

int llv_gguf_add_i32(llv_gguf_writer *w, const char *key, int32_t v)
{
    return add_scalar(w, key, LLV_GGUF_INT32, (uint32_t)v);
}

int llv_gguf_add_u64(llv_gguf_writer *w, const char *key, uint64_t v)
{
    return add_scalar(w, key, LLV_GGUF_UINT64, v);
}

int llv_gguf_add_f32(llv_gguf_writer *w, const char *key, float v)
{
    uint32_t b;
    memcpy(&b, &v, 4);
    return add_scalar(w, key, LLV_GGUF_FLOAT32, b);
}

int llv_gguf_add_bool(llv_gguf_writer *w, const char *key, bool v)
{
    return add_scalar(w, key, LLV_GGUF_BOOL, v ? 1 : 0);
}

int llv_gguf_add_str(llv_gguf_writer *w, const char *key, const char *v)
{
    if (!v)
        return LLAVA_E_INVALID_ARG;
    size_t len = strlen(v);
    if (len > LLV_GGUF_MAX_STRING)
        return LLAVA_E_INVALID_ARG;
    uint8_t *raw = llv_malloc(8 + len);
    if (!raw)
        return LLAVA_E_NOMEM;
    put_u64(raw, len);
    memcpy(raw + 8, v, len);
    return put_kv(w, key, LLV_GGUF_STRING, raw, 8 + len);
}

int llv_gguf_add_arr(llv_gguf_writer *w, const char *key, int elem_type, const void *data, uint64_t n)
{
    size_t es = llv_gguf_scalar_size(elem_type);
    if (es == 0 || n > LLV_GGUF_MAX_ARRAY || (!data && n > 0))
        return LLAVA_E_INVALID_ARG;
    size_t bytes = (size_t)n * es;
    uint8_t *raw = llv_malloc(12 + bytes);
    if (!raw)
        return LLAVA_E_NOMEM;
    put_u32(raw, (uint32_t)elem_type);
    put_u64(raw + 4, n);
    if (bytes)
        memcpy(raw + 12, data, bytes);
    return put_kv(w, key, LLV_GGUF_ARRAY, raw, 12 + bytes);
}

int llv_gguf_add_arr_str(llv_gguf_writer *w, const char *key, const char *const *v, uint64_t n)
{
    if (n > LLV_GGUF_MAX_ARRAY || (!v && n > 0))
        return LLAVA_E_INVALID_ARG;
    size_t total = 12;
    for (uint64_t i = 0; i < n; i++) {
        if (!v[i])
            return LLAVA_E_INVALID_ARG;
        size_t len = strlen(v[i]);
        if (len > LLV_GGUF_MAX_STRING || llv_add_overflow(total, 8 + len, &total))
            return LLAVA_E_INVALID_ARG;
    }
    uint8_t *raw = llv_malloc(total), *p = raw + 12;
    if (!raw)
        return LLAVA_E_NOMEM;
    put_u32(raw, LLV_GGUF_STRING);
    put_u64(raw + 4, n);
    for (uint64_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]);
        put_u64(p, len);
        memcpy(p + 8, v[i], len);
        p += 8 + len;
    }
    return put_kv(w, key, LLV_GGUF_ARRAY, raw, total);
}

int llv_gguf_copy_kv(llv_gguf_writer *w, const llv_gguf *src, const char *skip_prefix)
{
    if (!w || !src)
        return LLAVA_E_INVALID_ARG;
    size_t skip_len = skip_prefix ? strlen(skip_prefix) : 0;
    for (int64_t i = 0; i < src->n_kv; i++) {
        const llv_gguf_kv *kv = &src->kv[i];
        if (skip_len && kv->key_len >= skip_len && memcmp(kv->key, skip_prefix, skip_len) == 0)
            continue;
        /* keys with NUL bytes cannot be expressed through this C-string API */
        if (memchr(kv->key, 0, kv->key_len))
            return LLAVA_E_INVALID_ARG;
        char *key = llv_malloc(kv->key_len + 1);
        uint8_t *raw = llv_malloc(kv->raw_len);
        if (!key || !raw) {
            llv_free(key);
            llv_free(raw);
            return LLAVA_E_NOMEM;
        }
        memcpy(key, kv->key, kv->key_len);
        key[kv->key_len] = '\0';
        memcpy(raw, kv->raw, kv->raw_len);
        int rc = put_kv(w, key, kv->type, raw, kv->raw_len);
        llv_free(key);
        if (rc)
            return rc;
    }
    return LLAVA_OK;
}

int llv_gguf_add_tensor(llv_gguf_writer *w, const char *name, int type, uint32_t n_dims, const int64_t *ne,
                        const void *data, size_t nbytes)
{
    if (!w || !name || !ne || (!data && nbytes > 0))
        return LLAVA_E_INVALID_ARG;
    size_t len = strlen(name);
    if (len == 0 || len >= LLV_GGUF_MAX_NAME)
        return LLAVA_E_INVALID_ARG;
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return LLAVA_E_INVALID_ARG;
    int64_t n_el;
    size_t want;
    int rc = llv_gguf_tensor_size(name, type, n_dims, ne, &n_el, &want, NULL);
    if (rc)
        return rc == LLAVA_E_FORMAT ? LLAVA_E_INVALID_ARG : rc;
    if (want != nbytes)
        return LLAVA_E_INVALID_ARG;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 16;
        wtensor *n = llv_realloc(w->t, cap * sizeof *n);
        if (!n)
            return LLAVA_E_NOMEM;
        w->t = n;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->data = llv_malloc(nbytes);
    if (!t->data)
        return LLAVA_E_NOMEM;
    memcpy(t->data, data, nbytes);
    memcpy(t->name, name, len + 1);
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < LLV_GGUF_MAX_DIMS; d++)
        t->ne[d] = d < (int)n_dims ? ne[d] : 1;
    t->nbytes = nbytes;
    w->n_t++;
    return LLAVA_OK;
}

static int writer_alignment(const llv_gguf_writer *w, size_t *align, llv_err *err)
{
    *align = LLV_GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0)
            continue;
        if (w->kv[i].type != LLV_GGUF_UINT32)
            return llv_fail(err, LLAVA_E_INVALID_ARG, "general.alignment must be uint32");
        uint32_t a = llv_le32(w->kv[i].raw);
        if (a == 0 || (a & (a - 1)) || a > LLV_GGUF_MAX_ALIGNMENT)
            return llv_fail(err, LLAVA_E_INVALID_ARG, "general.alignment %u is not a power of two <= 2^20", a);
        *align = a;
    }
    return LLAVA_OK;
}

static size_t pad_to(size_t x, size_t a) { return (x + a - 1) / a * a; }

int llv_gguf_write_memory(const llv_gguf_writer *w, void **out, size_t *size, llv_err *err)
{
    if (!w || !out || !size)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "NULL argument");
    *out = NULL;
    *size = 0;
    size_t align;
    int rc = writer_alignment(w, &align, err);
    if (rc)
        return rc;

    /* Sizes are sums of sizes of buffers we already hold: checked anyway. */
    size_t total = 24;
    bool ovf = false;
    for (size_t i = 0; i < w->n_kv; i++)
        ovf |= llv_add_overflow(total, 8 + strlen(w->kv[i].key) + 4 + w->kv[i].raw_len, &total);
    for (size_t i = 0; i < w->n_t; i++)
        ovf |= llv_add_overflow(total, 8 + strlen(w->t[i].name) + 4 + 8 * (size_t)w->t[i].n_dims + 4 + 8, &total);
    size_t data_start = total, data_bytes = 0;
    if (w->n_t > 0) {
        ovf |= llv_add_overflow(total, align - 1, &data_start);
        data_start = data_start / align * align;
        for (size_t i = 0; i < w->n_t; i++)
            ovf |= llv_add_overflow(data_bytes, pad_to(w->t[i].nbytes, align), &data_bytes);
    }
    size_t file_size;
    ovf |= llv_add_overflow(data_start, data_bytes, &file_size);
    if (ovf)
        return llv_fail(err, LLAVA_E_NOMEM, "GGUF output size overflows");

    uint8_t *buf = llv_calloc(1, file_size), *p = buf; /* zeroed: padding is 0x00 */
    if (!buf)
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory for %zu bytes of GGUF output", file_size);
    memcpy(p, "GGUF", 4);
    put_u32(p + 4, 3);
    put_u64(p + 8, w->n_t);
    put_u64(p + 16, w->n_kv);
    p += 24;
    for (size_t i = 0; i < w->n_kv; i++) {
        size_t kl = strlen(w->kv[i].key);
        put_u64(p, kl);
        memcpy(p + 8, w->kv[i].key, kl);
        p += 8 + kl;
        put_u32(p, (uint32_t)w->kv[i].type);
        memcpy(p + 4, w->kv[i].raw, w->kv[i].raw_len);
        p += 4 + w->kv[i].raw_len;
    }
    size_t offset = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        size_t nl = strlen(t->name);
        put_u64(p, nl);
        memcpy(p + 8, t->name, nl);
        p += 8 + nl;
        put_u32(p, t->n_dims);
        p += 4;
        for (uint32_t d = 0; d < t->n_dims; d++, p += 8)
            put_u64(p, (uint64_t)t->ne[d]);
        put_u32(p, (uint32_t)t->type);
        put_u64(p + 4, offset);
        p += 12;
        memcpy(buf + data_start + offset, t->data, t->nbytes);
        offset += pad_to(t->nbytes, align);
    }
    *out = buf;
    *size = file_size;
    return LLAVA_OK;
}

int llv_gguf_write_file(const llv_gguf_writer *w, const char *path, llv_err *err)
{
    if (!path)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "NULL path");
    void *buf;
    size_t size;
    int rc = llv_gguf_write_memory(w, &buf, &size, err);
    if (rc)
        return rc;
    FILE *f = fopen(path, "wb");
    if (!f) {
        llv_free(buf);
        return llv_fail(err, LLAVA_E_IO, "cannot create '%s'", path);
    }
    size_t wrote = fwrite(buf, 1, size, f);
    int close_rc = fclose(f);
    llv_free(buf);
    if (wrote != size || close_rc != 0)
        return llv_fail(err, LLAVA_E_IO, "write to '%s' failed", path);
    return LLAVA_OK;
}
