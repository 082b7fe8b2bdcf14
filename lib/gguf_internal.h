/*
 * gguf_internal.h - the parsed representation shared by the GGUF reader
 * (gguf.c), its getters (gguf_get.c) and the writer (gguf_writer.c).
 * Not used outside the gguf_*.c files.
 */
#ifndef LLV_GGUF_INTERNAL_H
#define LLV_GGUF_INTERNAL_H

#include "gguf.h"

/* Sanity caps (RC uses the same 2^30 caps for strings and array counts). */
#define LLV_GGUF_MAX_STRING     ((uint64_t)1 << 30)
#define LLV_GGUF_MAX_ARRAY      ((uint64_t)1 << 30)
#define LLV_GGUF_MAX_ALIGNMENT  ((uint32_t)1 << 20)

/* One metadata entry. All pointers point into the file image. */
typedef struct llv_gguf_kv {
    const char    *key;
    size_t         key_len;
    int            type;      /* enum llv_gguf_type */
    int            arr_type;  /* element type if type == ARRAY, else -1 */
    uint64_t       arr_n;     /* element count if ARRAY */
    const uint8_t *val;       /* scalar bytes; string bytes; packed array elements */
    uint64_t       str_len;   /* STRING: byte length */
    const uint8_t *raw;       /* serialized value (after the type id): for copying */
    size_t         raw_len;
    size_t         str_first; /* ARRAY of STRING: first entry in g->strs */
} llv_gguf_kv;

/* A name and the index of its entry. Lookups binary-search arrays of these
 * sorted by name: O(log n) with no hash an attacker could make collide. */
typedef struct llv_gguf_name {
    const char *ptr;
    size_t      len;
    int64_t     index;
} llv_gguf_name;

struct llv_gguf {
    const uint8_t   *base;
    size_t           size;
    int              owner;    /* LLV_GGUF_OWN_* */
    uint32_t         version;
    size_t           alignment;
    size_t           data_offset;

    int64_t          n_kv;
    llv_gguf_kv     *kv;
    llv_gguf_name   *kv_sorted; /* keys sorted, for find_key and duplicates */

    llv_str         *strs;     /* elements of every string array, in order */
    size_t           n_strs;

    int64_t          n_tensors;
    llv_gguf_tensor *tensors;
    llv_gguf_name   *t_sorted;  /* tensor names sorted */
};

enum { LLV_GGUF_OWN_NONE = 0, LLV_GGUF_OWN_HEAP = 1, LLV_GGUF_OWN_MMAP = 2 };

/* Little-endian loads from unaligned file bytes (host-order independent). */
static inline uint16_t llv_le16(const uint8_t *b) { return (uint16_t)(b[0] | b[1] << 8); }
static inline uint32_t llv_le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline uint64_t llv_le64(const uint8_t *b) { return (uint64_t)llv_le32(b + 4) << 32 | llv_le32(b); }

/* Size in bytes of a scalar value type; 0 for STRING/ARRAY/unknown. */
LLV_INTERNAL size_t llv_gguf_scalar_size(int type);

/* ggml type geometry (own table, spec §1.3; independent of quant.c).
 * Returns false for negative/retired/unknown ids (>= 43). *size = 0 means a
 * known id whose block geometry libllava does not know. */
LLV_INTERNAL bool llv_gguf_ggml_geometry(int type, int64_t *blck, size_t *size);

/* Byte size of a tensor of this type and shape, with every check of spec
 * §1.4 (ne > 0, product fits int64, ne[0] a multiple of the block, bytes fit
 * size_t). On failure returns an error naming `what` (a tensor name). */
LLV_INTERNAL int llv_gguf_tensor_size(const char *what, int type, uint32_t n_dims, const int64_t *ne,
                                      int64_t *n_elements, size_t *nbytes, llv_err *err);

/* Order of names: bytewise, then shorter first. */
LLV_INTERNAL int llv_gguf_name_cmp(const void *a, const void *b);
/* Entry index of name in a sorted array, or -1. */
LLV_INTERNAL int64_t llv_gguf_name_find(const llv_gguf_name *sorted, int64_t n, const char *name, size_t len);

#endif /* LLV_GGUF_INTERNAL_H */
