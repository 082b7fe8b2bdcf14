/*
 * gguf.c - open and validate a GGUF v2/v3 file (spec §1).
 *
 * The file is hostile input. Parsing walks it with a bounds-checked cursor;
 * every count is compared with the bytes that are left before anything is
 * allocated for it, and every size/offset computation is overflow-checked.
 * After a successful open the rest of libllava can trust the index:
 *   - keys are non-empty and unique, value types and array element types are
 *     valid (no arrays of arrays), every string/array lies inside the file;
 *   - general.alignment, if present, is a UINT32 power of two <= 1 MiB;
 *   - tensor names are non-empty, < 64 bytes, NUL-free and unique; n_dims is
 *     1..4; every ne is > 0 and the element count fits int64; the type id is
 *     a known ggml type with known geometry; ne[0] is a multiple of its block;
 *     the byte size fits; offsets are aligned; each tensor's bytes lie inside
 *     the file and no two tensors overlap.
 * Policy notes: unlike RC we do not require offset_i == running sum of
 * padded sizes (any aligned, in-file, non-overlapping layout is accepted);
 * overlapping tensors are rejected because no writer produces them and
 * aliasing weights would only hide a corrupted file.
 */
#include "gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Minimum encoded sizes, used to bound counts before allocating. */
#define MIN_KV_BYTES     (8 + 1 + 4 + 1)           /* key len, 1 key byte, type, 1 value byte */
#define MIN_TENSOR_BYTES (8 + 1 + 4 + 8 + 4 + 8)   /* name len, 1 name byte, n_dims, ne0, type, offset */
#define HEADER_BYTES     24

/* ---- bounds-checked cursor ---- */

typedef struct cursor {
    const uint8_t *p;
    size_t         size;
    size_t         pos;
} cursor;

static size_t left(const cursor *c) { return c->size - c->pos; }

static int truncated(const cursor *c, const char *what, llv_err *err)
{
    return llv_fail(err, LLAVA_E_FORMAT, "truncated file: %s at offset %zu runs past the end (file size %zu)",
                    what, c->pos, c->size);
}

static int rd_u32(cursor *c, uint32_t *v, const char *what, llv_err *err)
{
    if (left(c) < 4)
        return truncated(c, what, err);
    *v = llv_le32(c->p + c->pos);
    c->pos += 4;
    return LLAVA_OK;
}

static int rd_i32(cursor *c, int32_t *v, const char *what, llv_err *err)
{
    uint32_t u;
    int rc = rd_u32(c, &u, what, err);
    if (rc == LLAVA_OK)
        memcpy(v, &u, 4); /* two's complement reinterpretation */
    return rc;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what, llv_err *err)
{
    uint32_t lo, hi;
    if (left(c) < 8)
        return truncated(c, what, err);
    rd_u32(c, &lo, what, err);
    rd_u32(c, &hi, what, err);
    *v = (uint64_t)hi << 32 | lo;
    return LLAVA_OK;
}

/* A GGUF string: u64 length + bytes, capped and bounded by the file. */
static int rd_str(cursor *c, const uint8_t **s, uint64_t *len, const char *what, llv_err *err)
{
    int rc = rd_u64(c, len, what, err);
    if (rc)
        return rc;
    if (*len > LLV_GGUF_MAX_STRING)
        return llv_fail(err, LLAVA_E_FORMAT, "%s at offset %zu: string length %llu exceeds the limit of 2^30",
                        what, c->pos - 8, (unsigned long long)*len);
    if (*len > left(c))
        return llv_fail(err, LLAVA_E_FORMAT, "%s at offset %zu: string length %llu runs past the end of the file",
                        what, c->pos - 8, (unsigned long long)*len);
    *s = c->p + c->pos;
    c->pos += (size_t)*len;
    return LLAVA_OK;
}

/* ---- names in messages ---- */

/* A file's name for a message: at most 80 bytes, control bytes as '?', so a
 * hostile key cannot put terminal escapes into an error message. */
static const char *printable(const char *p, size_t n, char *buf)
{
    size_t m = LLV_MIN(n, 80);
    for (size_t i = 0; i < m; i++) {
        unsigned char c = (unsigned char)p[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (n > m)
        memcpy(buf + m, "...", 4);
    else
        buf[m] = '\0';
    return buf;
}
#define NAMEBUF ((char[88]){ 0 })

/* ---- name indexes ---- */

/* Sort names[0..n) and reject the first duplicate (what: "key"/"tensor name").
 * qsort is O(n log n) worst case in glibc (merge sort / introsort), so a
 * hostile file cannot make this quadratic. */
static int sort_names(llv_gguf_name *names, int64_t n, const char *what, llv_err *err)
{
    if (n > 1)
        qsort(names, (size_t)n, sizeof *names, llv_gguf_name_cmp);
    for (int64_t i = 1; i < n; i++)
        if (llv_gguf_name_cmp(&names[i - 1], &names[i]) == 0)
            return llv_fail(err, LLAVA_E_FORMAT, "duplicate %s '%s'", what,
                            printable(names[i].ptr, names[i].len, NAMEBUF));
    return LLAVA_OK;
}

/* ---- metadata ---- */

#define KEYFMT "key '%s'"
#define KEYARG(kv) printable((kv)->key, (kv)->key_len, NAMEBUF)

static int parse_value(cursor *c, llv_gguf_kv *kv, size_t *n_strs, llv_err *err)
{
    int rc;
    size_t start = c->pos;
    kv->arr_type = -1;

    if (kv->type == LLV_GGUF_STRING) {
        if ((rc = rd_str(c, &kv->val, &kv->str_len, "string value", err)))
            return llv_err_prefix(err, KEYFMT, KEYARG(kv));
    } else if (kv->type == LLV_GGUF_ARRAY) {
        int32_t et;
        uint64_t n;
        if ((rc = rd_i32(c, &et, "array element type", err)) || (rc = rd_u64(c, &n, "array count", err)))
            return llv_err_prefix(err, KEYFMT, KEYARG(kv));
        if (et == LLV_GGUF_ARRAY)
            return llv_fail(err, LLAVA_E_FORMAT, KEYFMT ": arrays of arrays are not supported", KEYARG(kv));
        if (et < 0 || et >= LLV_GGUF_TYPE_COUNT)
            return llv_fail(err, LLAVA_E_FORMAT, KEYFMT ": unknown array element type %d", KEYARG(kv), (int)et);
        if (n > LLV_GGUF_MAX_ARRAY)
            return llv_fail(err, LLAVA_E_FORMAT, KEYFMT ": array count %llu exceeds the limit of 2^30",
                            KEYARG(kv), (unsigned long long)n);
        kv->arr_type = et;
        kv->arr_n = n;
        kv->val = c->p + c->pos;
        if (et == LLV_GGUF_STRING) {
            /* each element needs at least its 8-byte length */
            if (n > left(c) / 8)
                return llv_fail(err, LLAVA_E_FORMAT, KEYFMT ": array count %llu runs past the end of the file",
                                KEYARG(kv), (unsigned long long)n);
            for (uint64_t i = 0; i < n; i++) {
                const uint8_t *s;
                uint64_t len;
                if ((rc = rd_str(c, &s, &len, "string array element", err)))
                    return llv_err_prefix(err, KEYFMT " element %llu", KEYARG(kv), (unsigned long long)i);
            }
            kv->str_first = *n_strs;
            *n_strs += (size_t)n;
        } else {
            size_t es = llv_gguf_scalar_size(et); /* n <= 2^30, es <= 8: no overflow */
            if (n * es > left(c))
                return llv_fail(err, LLAVA_E_FORMAT, KEYFMT ": array of %llu %s runs past the end of the file",
                                KEYARG(kv), (unsigned long long)n, llv_gguf_type_name(et));
            c->pos += (size_t)(n * es);
        }
    } else {
        size_t es = llv_gguf_scalar_size(kv->type);
        if (es == 0)
            return llv_fail(err, LLAVA_E_FORMAT, KEYFMT ": unknown value type %d", KEYARG(kv), kv->type);
        if (es > left(c))
            return llv_fail(err, LLAVA_E_FORMAT, KEYFMT ": %s value runs past the end of the file",
                            KEYARG(kv), llv_gguf_type_name(kv->type));
        kv->val = c->p + c->pos;
        c->pos += es;
    }
    kv->raw = c->p + start;
    kv->raw_len = c->pos - start;
    return LLAVA_OK;
}

static int parse_kvs(llv_gguf *g, cursor *c, llv_err *err)
{
    int rc;
    size_t n_strs = 0;

    g->kv = llv_calloc((size_t)LLV_MAX(g->n_kv, 1), sizeof *g->kv);
    g->kv_sorted = llv_calloc((size_t)LLV_MAX(g->n_kv, 1), sizeof *g->kv_sorted);
    if (!g->kv || !g->kv_sorted)
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory for %lld metadata entries", (long long)g->n_kv);

    for (int64_t i = 0; i < g->n_kv; i++) {
        llv_gguf_kv *kv = &g->kv[i];
        const uint8_t *key;
        uint64_t key_len;
        int32_t type;
        if ((rc = rd_str(c, &key, &key_len, "metadata key", err)))
            return llv_err_prefix(err, "metadata entry %lld", (long long)i);
        if (key_len == 0)
            return llv_fail(err, LLAVA_E_FORMAT, "metadata entry %lld: empty key", (long long)i);
        kv->key = (const char *)key;
        kv->key_len = (size_t)key_len;
        g->kv_sorted[i] = (llv_gguf_name){ kv->key, kv->key_len, i };
        if ((rc = rd_i32(c, &type, "value type", err)))
            return llv_err_prefix(err, KEYFMT, KEYARG(kv));
        if (type < 0 || type >= LLV_GGUF_TYPE_COUNT)
            return llv_fail(err, LLAVA_E_FORMAT, KEYFMT ": unknown value type %d", KEYARG(kv), (int)type);
        kv->type = type;
        if ((rc = parse_value(c, kv, &n_strs, err)))
            return rc;
    }
    if ((rc = sort_names(g->kv_sorted, g->n_kv, "key", err)))
        return rc;

    /* Index every string-array element so llv_gguf_arr_str is O(1). The
     * strings were validated above, so this second walk cannot fail. */
    g->n_strs = n_strs;
    g->strs = llv_calloc(LLV_MAX(n_strs, 1), sizeof *g->strs);
    if (!g->strs)
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory for %zu array strings", n_strs);
    for (int64_t i = 0; i < g->n_kv; i++) {
        llv_gguf_kv *kv = &g->kv[i];
        if (kv->type != LLV_GGUF_ARRAY || kv->arr_type != LLV_GGUF_STRING)
            continue;
        const uint8_t *p = kv->val;
        for (uint64_t j = 0; j < kv->arr_n; j++) {
            uint64_t len = llv_le64(p); /* validated above */
            g->strs[kv->str_first + j] = (llv_str){ (const char *)p + 8, (size_t)len };
            p += 8 + len;
        }
    }
    return LLAVA_OK;
}

static int parse_alignment(llv_gguf *g, llv_err *err)
{
    g->alignment = LLV_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = llv_gguf_find_key(g, "general.alignment");
    if (i < 0)
        return LLAVA_OK;
    const llv_gguf_kv *kv = &g->kv[i];
    if (kv->type != LLV_GGUF_UINT32)
        return llv_fail(err, LLAVA_E_FORMAT, "key 'general.alignment' has type %s, expected uint32",
                        llv_gguf_type_name(kv->type));
    uint32_t a = llv_le32(kv->val);
    if (a == 0 || (a & (a - 1)) != 0)
        return llv_fail(err, LLAVA_E_FORMAT, "key 'general.alignment' = %u is not a power of two", a);
    if (a > LLV_GGUF_MAX_ALIGNMENT)
        return llv_fail(err, LLAVA_E_FORMAT, "key 'general.alignment' = %u exceeds the limit of %u",
                        a, LLV_GGUF_MAX_ALIGNMENT);
    g->alignment = a;
    return LLAVA_OK;
}

/* ---- tensor infos ---- */

static int parse_tensor_info(llv_gguf *g, cursor *c, int64_t i, llv_err *err)
{
    llv_gguf_tensor *t = &g->tensors[i];
    const uint8_t *name;
    uint64_t name_len, offset;
    uint32_t n_dims;
    int32_t type;
    int rc;

    if ((rc = rd_str(c, &name, &name_len, "tensor name", err)))
        return llv_err_prefix(err, "tensor info %lld", (long long)i);
    if (name_len == 0)
        return llv_fail(err, LLAVA_E_FORMAT, "tensor info %lld: empty tensor name", (long long)i);
    if (name_len >= LLV_GGUF_MAX_NAME)
        return llv_fail(err, LLAVA_E_FORMAT, "tensor info %lld: tensor name of %llu bytes is too long (max %d)",
                        (long long)i, (unsigned long long)name_len, LLV_GGUF_MAX_NAME - 1);
    if (memchr(name, 0, (size_t)name_len))
        return llv_fail(err, LLAVA_E_FORMAT, "tensor info %lld: tensor name contains a NUL byte", (long long)i);
    memcpy(t->name, name, (size_t)name_len);
    t->name[name_len] = '\0';
    char tn[88];
    printable(t->name, (size_t)name_len, tn);
    g->t_sorted[i] = (llv_gguf_name){ t->name, (size_t)name_len, i };

    if ((rc = rd_u32(c, &n_dims, "tensor n_dims", err)))
        return llv_err_prefix(err, "tensor '%s'", tn);
    if (n_dims < 1 || n_dims > LLV_GGUF_MAX_DIMS)
        return llv_fail(err, LLAVA_E_FORMAT, "tensor '%s': n_dims %u out of range 1..%d",
                        tn, n_dims, LLV_GGUF_MAX_DIMS);
    t->n_dims = n_dims;
    for (int d = 0; d < LLV_GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t v;
        if ((rc = rd_u64(c, &v, "tensor dimension", err)))
            return llv_err_prefix(err, "tensor '%s'", tn);
        memcpy(&t->ne[d], &v, 8); /* stored as int64 */
    }
    if ((rc = rd_i32(c, &type, "tensor type", err)) || (rc = rd_u64(c, &offset, "tensor offset", err)))
        return llv_err_prefix(err, "tensor '%s'", tn);
    t->type = type;
    t->offset = offset;
    /* ne > 0, element count, known type, block multiple, byte size. */
    if ((rc = llv_gguf_tensor_size(tn, type, n_dims, t->ne, &t->n_elements, &t->nbytes, err)))
        return rc;
    if (offset % g->alignment != 0)
        return llv_fail(err, LLAVA_E_FORMAT, "tensor '%s': offset %llu is not a multiple of the alignment %zu",
                        tn, (unsigned long long)offset, g->alignment);
    /* PAD(nbytes) must be representable too (CVE-2025-53630 class), even
     * though we never sum the padded sizes. */
    size_t padded;
    if (llv_add_overflow(t->nbytes, g->alignment - 1, &padded))
        return llv_fail(err, LLAVA_E_FORMAT, "tensor '%s': padded byte size overflows", tn);
    return LLAVA_OK;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const llv_gguf_tensor *x = *(const llv_gguf_tensor *const *)a, *y = *(const llv_gguf_tensor *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

static int place_tensors(llv_gguf *g, size_t end_of_infos, llv_err *err)
{
    size_t a = g->alignment, start;
    if (llv_add_overflow(end_of_infos, a - 1, &start))
        return llv_fail(err, LLAVA_E_FORMAT, "data section offset overflows");
    start = start / a * a;
    if (g->n_tensors == 0) {
        /* Writers pad only when there are tensors: no data section needed. */
        g->data_offset = start <= g->size ? start : end_of_infos;
        return LLAVA_OK;
    }
    if (start > g->size)
        return llv_fail(err, LLAVA_E_FORMAT, "data section at offset %zu starts past the end of the file (size %zu)",
                        start, g->size);
    g->data_offset = start;
    size_t room = g->size - start;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        llv_gguf_tensor *t = &g->tensors[i];
        if (t->offset > room || t->nbytes > room - t->offset)
            return llv_fail(err, LLAVA_E_FORMAT,
                            "tensor '%s': data [%llu, +%zu) lies outside the data section (%zu bytes)",
                            printable(t->name, strlen(t->name), NAMEBUF), (unsigned long long)t->offset,
                            t->nbytes, room);
        t->data = g->base + start + t->offset;
        /* Weights are read in place as float/uint16 (and blocks holding them):
         * an address that is not 4-byte aligned (general.alignment 1 or 2, or
         * an in-place buffer at an odd address) would be undefined behaviour. */
        if ((uintptr_t)t->data % 4 != 0)
            return llv_fail(err, LLAVA_E_FORMAT,
                            "tensor '%s': data at byte %zu is not 4-byte aligned (general.alignment %zu%s)",
                            printable(t->name, strlen(t->name), NAMEBUF), start + (size_t)t->offset, a,
                            (uintptr_t)g->base % 4 ? ", buffer at an unaligned address" : "");
    }

    /* Reject overlapping tensors: sort by offset, compare neighbours. */
    const llv_gguf_tensor **order = llv_malloc((size_t)g->n_tensors * sizeof *order);
    if (!order)
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory checking tensor layout");
    for (int64_t i = 0; i < g->n_tensors; i++)
        order[i] = &g->tensors[i];
    qsort(order, (size_t)g->n_tensors, sizeof *order, cmp_by_offset);
    int rc = LLAVA_OK;
    for (int64_t i = 1; i < g->n_tensors; i++)
        if (order[i]->offset < order[i - 1]->offset + order[i - 1]->nbytes) {
            rc = llv_fail(err, LLAVA_E_FORMAT, "tensors '%s' and '%s' overlap in the data section",
                          printable(order[i - 1]->name, strlen(order[i - 1]->name), NAMEBUF),
                          printable(order[i]->name, strlen(order[i]->name), NAMEBUF));
            break;
        }
    llv_free(order);
    return rc;
}

/* ---- whole file ---- */

static int parse(llv_gguf *g, llv_err *err)
{
    cursor c = { g->base, g->size, 0 };
    int rc;

    if (g->size >= 4 && memcmp(g->base, "GGUF", 4) != 0) {
        char m[4];
        for (int i = 0; i < 4; i++)
            m[i] = (g->base[i] >= 0x20 && g->base[i] < 0x7f) ? (char)g->base[i] : '?';
        return llv_fail(err, LLAVA_E_FORMAT, "not a GGUF file (bad magic '%.4s')", m);
    }
    if (g->size < HEADER_BYTES)
        return llv_fail(err, LLAVA_E_FORMAT, "truncated file: %zu bytes is shorter than the 24-byte GGUF header",
                        g->size);
    c.pos = 4;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    rd_u32(&c, &version, "version", err);
    if ((version & 0xFFFF) == 0 && version != 0)
        return llv_fail(err, LLAVA_E_UNSUPPORTED,
                        "big-endian GGUF file (version field 0x%08x): only little-endian files are supported",
                        version);
    if (version == 1)
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "GGUF version 1 is not supported (only versions 2 and 3)");
    if (version != 2 && version != 3)
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "unsupported GGUF version %u (only versions 2 and 3)", version);
    g->version = version;
    rd_u64(&c, &n_tensors, "tensor count", err);
    rd_u64(&c, &n_kv, "metadata count", err);

    /* Bound the counts by the bytes that are left before allocating. */
    if (n_kv > (uint64_t)INT64_MAX || n_kv > left(&c) / MIN_KV_BYTES)
        return llv_fail(err, LLAVA_E_FORMAT, "metadata count %llu is too large for a file of %zu bytes",
                        (unsigned long long)n_kv, g->size);
    if (n_tensors > (uint64_t)INT64_MAX || n_tensors > (left(&c) - n_kv * MIN_KV_BYTES) / MIN_TENSOR_BYTES)
        return llv_fail(err, LLAVA_E_FORMAT, "tensor count %llu is too large for a file of %zu bytes",
                        (unsigned long long)n_tensors, g->size);
    g->n_kv = (int64_t)n_kv;
    g->n_tensors = (int64_t)n_tensors;

    if ((rc = parse_kvs(g, &c, err)) || (rc = parse_alignment(g, err)))
        return rc;

    g->tensors = llv_calloc((size_t)LLV_MAX(g->n_tensors, 1), sizeof *g->tensors);
    g->t_sorted = llv_calloc((size_t)LLV_MAX(g->n_tensors, 1), sizeof *g->t_sorted);
    if (!g->tensors || !g->t_sorted)
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory for %lld tensor infos", (long long)g->n_tensors);
    for (int64_t i = 0; i < g->n_tensors; i++)
        if ((rc = parse_tensor_info(g, &c, i, err)))
            return rc;
    if ((rc = sort_names(g->t_sorted, g->n_tensors, "tensor name", err)))
        return rc;
    return place_tensors(g, c.pos, err);
}

static int open_buffer(const uint8_t *base, size_t size, int owner, llv_gguf **out, llv_err *err)
{
    llv_gguf *g = llv_calloc(1, sizeof *g);
    if (!g) {
        if (owner == LLV_GGUF_OWN_MMAP)
            munmap((void *)base, size);
        else if (owner == LLV_GGUF_OWN_HEAP)
            llv_free_aligned((void *)base);
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory");
    }
    g->base = base;
    g->size = size;
    g->owner = owner;
    int rc = parse(g, err);
    if (rc != LLAVA_OK) {
        llv_gguf_close(g);
        return rc;
    }
    *out = g;
    return LLAVA_OK;
}

int llv_gguf_open_memory(const void *data, size_t size, int copy, llv_gguf **out, llv_err *err)
{
    if (!out)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "NULL output pointer");
    *out = NULL;
    if (!data && size > 0)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "NULL buffer");
    if (size == 0)
        return llv_fail(err, LLAVA_E_FORMAT, "empty buffer: not a GGUF file");
    if (!copy)
        return open_buffer(data, size, LLV_GGUF_OWN_NONE, out, err);
    uint8_t *buf = llv_malloc_aligned(size);
    if (!buf)
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory copying %zu bytes", size);
    memcpy(buf, data, size);
    return open_buffer(buf, size, LLV_GGUF_OWN_HEAP, out, err);
}

static int read_all(int fd, uint8_t *buf, size_t size, llv_err *err)
{
    size_t done = 0;
    while (done < size) {
        ssize_t r = read(fd, buf + done, LLV_MIN(size - done, (size_t)1 << 30));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return llv_fail(err, LLAVA_E_IO, "read failed: %s", strerror(errno));
        if (r == 0)
            return llv_fail(err, LLAVA_E_IO, "file shrank while reading (%zu of %zu bytes)", done, size);
        done += (size_t)r;
    }
    return LLAVA_OK;
}

static int open_file(const char *path, int use_mmap, llv_gguf **out, llv_err *err)
{
    if (!out)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "NULL output pointer");
    *out = NULL;
    if (!path)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "NULL path");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return llv_fail(err, LLAVA_E_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return llv_fail(err, LLAVA_E_IO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return llv_fail(err, LLAVA_E_IO, "not a regular file");
    }
    if (st.st_size <= 0) {
        close(fd);
        return llv_fail(err, LLAVA_E_FORMAT, "empty file: not a GGUF file");
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return llv_fail(err, LLAVA_E_IO, "file too large to map");
    }
    size_t size = (size_t)st.st_size;
    int rc;
    if (use_mmap) {
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        int e = errno;
        close(fd);
        if (m == MAP_FAILED)
            return llv_fail(err, LLAVA_E_IO, "mmap failed: %s", strerror(e));
        return open_buffer(m, size, LLV_GGUF_OWN_MMAP, out, err);
    }
    uint8_t *buf = llv_malloc_aligned(size);
    if (!buf) {
        close(fd);
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory reading %zu bytes", size);
    }
    rc = read_all(fd, buf, size, err);
    close(fd);
    if (rc != LLAVA_OK) {
        llv_free_aligned(buf);
        return rc;
    }
    return open_buffer(buf, size, LLV_GGUF_OWN_HEAP, out, err);
}

void llv_gguf_close(llv_gguf *g)
{
    if (!g)
        return;
    if (g->owner == LLV_GGUF_OWN_MMAP)
        munmap((void *)g->base, g->size);
    else if (g->owner == LLV_GGUF_OWN_HEAP)
        llv_free_aligned((void *)g->base);
    llv_free(g->kv);
    llv_free(g->kv_sorted);
    llv_free(g->strs);
    llv_free(g->tensors);
    llv_free(g->t_sorted);
    llv_free(g);
}

/* Every failure names the file: users load several. */
int llv_gguf_open_file(const char *path, int use_mmap, llv_gguf **out, llv_err *err)
{
    int rc = open_file(path, use_mmap, out, err);
    if (rc != LLAVA_OK && path && err)
        llv_err_prefix(err, "%s", path);
    return rc;
}
