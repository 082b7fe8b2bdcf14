/*
 * gguf_bytes.h - a byte-level GGUF builder for tests. Independent of
 * lib/gguf_writer.c: it writes exactly the fields it is told to, in the
 * order of spec §1.1, so tests control every byte of malformed files.
 * Test helper: aborts on out-of-memory.
 */
#ifndef GGUF_BYTES_H
#define GGUF_BYTES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct gb {
    uint8_t *p;
    size_t   n, cap;
    size_t   data_start; /* set by gb_pad */
} gb;

static inline void gb_init(gb *b)
{
    b->p = NULL;
    b->n = b->cap = b->data_start = 0;
}

static inline void gb_free(gb *b)
{
    free(b->p);
    gb_init(b);
}

static inline void gb_bytes(gb *b, const void *s, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
}

static inline void gb_u8(gb *b, uint8_t v) { gb_bytes(b, &v, 1); }

static inline void gb_u32(gb *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    gb_bytes(b, x, 4);
}

static inline void gb_u64(gb *b, uint64_t v)
{
    gb_u32(b, (uint32_t)v);
    gb_u32(b, (uint32_t)(v >> 32));
}

static inline void gb_zeros(gb *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gb_u8(b, 0);
}

static inline void gb_str(gb *b, const char *s)
{
    gb_u64(b, strlen(s));
    gb_bytes(b, s, strlen(s));
}

static inline void gb_put_be32_at(gb *b, size_t pos, uint32_t v)
{
    b->p[pos] = (uint8_t)(v >> 24);
    b->p[pos + 1] = (uint8_t)(v >> 16);
    b->p[pos + 2] = (uint8_t)(v >> 8);
    b->p[pos + 3] = (uint8_t)v;
}

/* magic, version, n_tensors, n_kv */
static inline void gb_header(gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    gb_bytes(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}

static inline void gb_kv_u32(gb *b, const char *key, uint32_t v)
{
    gb_str(b, key);
    gb_u32(b, 4 /* UINT32 */);
    gb_u32(b, v);
}

static inline void gb_kv_str(gb *b, const char *key, const char *v)
{
    gb_str(b, key);
    gb_u32(b, 8 /* STRING */);
    gb_str(b, v);
}

/* name, n_dims, ne[0..min(n_dims,8)-1], type, offset */
static inline void gb_tensor_info(gb *b, const char *name, uint32_t n_dims, const int64_t *ne, int32_t type,
                                  uint64_t offset)
{
    gb_str(b, name);
    gb_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims && i < 8; i++)
        gb_u64(b, (uint64_t)ne[i]);
    gb_u32(b, (uint32_t)type);
    gb_u64(b, offset);
}

/* zero bytes up to a multiple of align; the data section starts here */
static inline void gb_pad(gb *b, size_t align)
{
    while (b->n % align)
        gb_u8(b, 0);
    b->data_start = b->n;
}

/* The reference valid file: 3 KVs (string, uint32, int32 array), tensors
 * "a" F32 [4,2] at 0 (bytes a0..bf) and "b" F16 [8] at 32 (b0..bf),
 * alignment 32, the last tensor padded with zeros. */
static inline void gb_valid_file(gb *b, uint32_t version)
{
    int64_t ne_a[2] = { 4, 2 }, ne_b[1] = { 8 };
    gb_init(b);
    gb_header(b, version, 2, 3);
    gb_kv_str(b, "general.architecture", "llama");
    gb_kv_u32(b, "x.count", 7);
    gb_str(b, "x.arr");
    gb_u32(b, 9 /* ARRAY */);
    gb_u32(b, 5 /* INT32 */);
    gb_u64(b, 3);
    gb_u32(b, 1);
    gb_u32(b, 2);
    gb_u32(b, 3);
    gb_tensor_info(b, "a", 2, ne_a, 0, 0);
    gb_tensor_info(b, "b", 1, ne_b, 1, 32);
    gb_pad(b, 32);
    for (int i = 0; i < 32; i++)
        gb_u8(b, (uint8_t)(0xa0 + i));
    for (int i = 0; i < 16; i++)
        gb_u8(b, (uint8_t)(0xb0 + i));
    gb_zeros(b, 16);
}

#endif /* GGUF_BYTES_H */
