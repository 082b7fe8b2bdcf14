/*
 * gguf.h - bounds-checked GGUF (v2/v3) reader and an in-memory writer.
 *
 * The reader treats the file as hostile: every count, length, dimension,
 * type id, offset and size is validated with checked arithmetic before use
 * (see gguf.c). Once llv_gguf_open_* succeeds, every tensor's bytes lie inside
 * the mapping and every string/array is in bounds, so users of this API need
 * no further range checks on the container itself.
 *
 * Layout facts: shared/spec/llava-format.md §1.
 */
#ifndef LLV_GGUF_H
#define LLV_GGUF_H

#include "common.h"

/* Metadata value types (spec §1.2). */
enum llv_gguf_type {
    LLV_GGUF_UINT8 = 0, LLV_GGUF_INT8 = 1, LLV_GGUF_UINT16 = 2, LLV_GGUF_INT16 = 3,
    LLV_GGUF_UINT32 = 4, LLV_GGUF_INT32 = 5, LLV_GGUF_FLOAT32 = 6, LLV_GGUF_BOOL = 7,
    LLV_GGUF_STRING = 8, LLV_GGUF_ARRAY = 9, LLV_GGUF_UINT64 = 10, LLV_GGUF_INT64 = 11,
    LLV_GGUF_FLOAT64 = 12,
    LLV_GGUF_TYPE_COUNT = 13
};

#define LLV_GGUF_DEFAULT_ALIGNMENT 32
#define LLV_GGUF_MAX_DIMS 4
#define LLV_GGUF_MAX_NAME 64         /* tensor names are < 64 bytes */

typedef struct llv_gguf llv_gguf;

/* A string inside the file: NOT NUL-terminated. */
typedef struct llv_str {
    const char *ptr;
    size_t      len;
} llv_str;

typedef struct llv_gguf_tensor {
    char        name[LLV_GGUF_MAX_NAME]; /* NUL-terminated copy */
    uint32_t    n_dims;                  /* 1..4 */
    int64_t     ne[LLV_GGUF_MAX_DIMS];   /* missing dims are 1; ne[0] fastest */
    int         type;                    /* ggml type id (quant.h), a known id */
    uint64_t    offset;                  /* relative to the data section */
    size_t      nbytes;                  /* checked: fits in the file */
    int64_t     n_elements;              /* checked product of ne */
    const void *data;                    /* points into the mapping */
} llv_gguf_tensor;

/* ---- opening ---- */

/* Open a file. use_mmap=0 reads it into memory instead (64-byte aligned).
 * Errors: E_IO (open/stat/read/mmap, not a regular file), E_FORMAT (any
 * malformed content), E_UNSUPPORTED (version 1, >= 4, big-endian; a ggml
 * type id whose block size is unknown), E_NOMEM. *out is NULL on failure.
 * Accepted beyond RC: any aligned, non-overlapping tensor layout (RC insists
 * on offsets = running sum); rejected beyond RC: ne <= 0, overlapping
 * tensors, NUL in tensor names, general.alignment > 1 MiB. */
LLV_INTERNAL int llv_gguf_open_file(const char *path, int use_mmap, llv_gguf **out, llv_err *err);
/* Parse a buffer. copy=0: the buffer is used in place and must outlive the
 * handle; copy=1: it is copied first. */
LLV_INTERNAL int llv_gguf_open_memory(const void *data, size_t size, int copy, llv_gguf **out, llv_err *err);
LLV_INTERNAL void llv_gguf_close(llv_gguf *g);

LLV_INTERNAL uint32_t llv_gguf_version(const llv_gguf *g);
LLV_INTERNAL size_t   llv_gguf_alignment(const llv_gguf *g);
LLV_INTERNAL size_t   llv_gguf_data_offset(const llv_gguf *g); /* start of the data section in the file */
LLV_INTERNAL size_t   llv_gguf_file_size(const llv_gguf *g);

/* ---- metadata ---- */

LLV_INTERNAL int64_t  llv_gguf_n_kv(const llv_gguf *g);
/* Index of a key, or -1 (binary search over a sorted index: O(log n)). */
LLV_INTERNAL int64_t  llv_gguf_find_key(const llv_gguf *g, const char *key);
LLV_INTERNAL llv_str  llv_gguf_key(const llv_gguf *g, int64_t i);
LLV_INTERNAL int      llv_gguf_kv_type(const llv_gguf *g, int64_t i);      /* enum llv_gguf_type */
LLV_INTERNAL int      llv_gguf_arr_type(const llv_gguf *g, int64_t i);     /* element type, if ARRAY */
LLV_INTERNAL uint64_t llv_gguf_arr_n(const llv_gguf *g, int64_t i);        /* element count, if ARRAY */
LLV_INTERNAL const char *llv_gguf_type_name(int type);                     /* "uint32", ...; "?" if unknown */

/* Typed getters by key. Return LLAVA_OK; LLAVA_E_FORMAT (message names the
 * key) if the key is absent, or its type is not acceptable. Integer getters
 * accept any integer type (and bool) whose value fits the target; float
 * getters accept FLOAT32/FLOAT64. The *_opt variants return LLAVA_OK with
 * *out = def when the key is absent, and still fail on a wrong type. */
LLV_INTERNAL int llv_gguf_get_u32(const llv_gguf *g, const char *key, uint32_t *out, llv_err *err);
LLV_INTERNAL int llv_gguf_get_i64(const llv_gguf *g, const char *key, int64_t *out, llv_err *err);
LLV_INTERNAL int llv_gguf_get_f32(const llv_gguf *g, const char *key, float *out, llv_err *err);
LLV_INTERNAL int llv_gguf_get_bool(const llv_gguf *g, const char *key, bool *out, llv_err *err);
LLV_INTERNAL int llv_gguf_get_str(const llv_gguf *g, const char *key, llv_str *out, llv_err *err);
LLV_INTERNAL int llv_gguf_get_u32_opt(const llv_gguf *g, const char *key, uint32_t def, uint32_t *out, llv_err *err);
LLV_INTERNAL int llv_gguf_get_f32_opt(const llv_gguf *g, const char *key, float def, float *out, llv_err *err);
LLV_INTERNAL int llv_gguf_get_bool_opt(const llv_gguf *g, const char *key, bool def, bool *out, llv_err *err);
/* Optional string: out->ptr = NULL, len 0 when absent. */
LLV_INTERNAL int llv_gguf_get_str_opt(const llv_gguf *g, const char *key, llv_str *out, llv_err *err);

/* Arrays. llv_gguf_get_arr checks the key is an ARRAY of elem_type (or, for
 * elem_type = -1, of any type) and returns count and a pointer to the raw
 * little-endian packed elements (not aligned: read with memcpy or the
 * helpers below). Arrays of strings: use llv_gguf_get_arr_str. */
LLV_INTERNAL int llv_gguf_get_arr(const llv_gguf *g, const char *key, int elem_type,
                                  const void **data, uint64_t *count, llv_err *err);
/* Element i of a numeric array as int64 / double (any numeric element type).
 * Return 0 for a bad kv_index, a non-array entry or i >= count; int of a
 * float element truncates (saturating), UINT64 above INT64_MAX saturates. */
LLV_INTERNAL int64_t llv_gguf_arr_get_int(const llv_gguf *g, int64_t kv_index, uint64_t i);
LLV_INTERNAL double  llv_gguf_arr_get_float(const llv_gguf *g, int64_t kv_index, uint64_t i);
/* String array: count, and element i (an index built at open time, O(1);
 * {NULL, 0} for a bad index). */
LLV_INTERNAL int llv_gguf_get_arr_str(const llv_gguf *g, const char *key, uint64_t *count, llv_err *err);
LLV_INTERNAL llv_str llv_gguf_arr_str(const llv_gguf *g, int64_t kv_index, uint64_t i);

/* Scalar value of entry i (for printing): as int64 / double / string. */
LLV_INTERNAL int64_t llv_gguf_kv_int(const llv_gguf *g, int64_t i);
LLV_INTERNAL double  llv_gguf_kv_float(const llv_gguf *g, int64_t i);
LLV_INTERNAL llv_str llv_gguf_kv_str(const llv_gguf *g, int64_t i);
/* (Added by the gguf area.) Unsigned value of an integer/bool entry: exact
 * for UINT64 values above INT64_MAX (kv_int would wrap them); 0 otherwise. */
LLV_INTERNAL uint64_t llv_gguf_kv_uint(const llv_gguf *g, int64_t i);
/* (Added.) Name of a ggml tensor type id from gguf's own table ("F16",
 * "Q4_K", ...; "?" if unknown), so tools need not link quant.c. */
LLV_INTERNAL const char *llv_gguf_ggml_type_name(int type);

/* ---- tensors ---- */

LLV_INTERNAL int64_t llv_gguf_n_tensors(const llv_gguf *g);
LLV_INTERNAL const llv_gguf_tensor *llv_gguf_tensor_at(const llv_gguf *g, int64_t i);
/* NULL if absent. */
LLV_INTERNAL const llv_gguf_tensor *llv_gguf_find_tensor(const llv_gguf *g, const char *name);

/* ---- writer (tools and tests) ---- */

typedef struct llv_gguf_writer llv_gguf_writer;

LLV_INTERNAL llv_gguf_writer *llv_gguf_writer_new(void);
LLV_INTERNAL void llv_gguf_writer_free(llv_gguf_writer *w);
/* Scalars. Keys are copied. A duplicate key replaces the earlier value. */
LLV_INTERNAL int llv_gguf_add_u32(llv_gguf_writer *w, const char *key, uint32_t v);
LLV_INTERNAL int llv_gguf_add_i32(llv_gguf_writer *w, const char *key, int32_t v);
LLV_INTERNAL int llv_gguf_add_u64(llv_gguf_writer *w, const char *key, uint64_t v);
LLV_INTERNAL int llv_gguf_add_f32(llv_gguf_writer *w, const char *key, float v);
LLV_INTERNAL int llv_gguf_add_bool(llv_gguf_writer *w, const char *key, bool v);
LLV_INTERNAL int llv_gguf_add_str(llv_gguf_writer *w, const char *key, const char *v);
/* (Added by the gguf area.) A scalar of any numeric/bool type: value points
 * to a native uint8_t/int8_t/.../bool/double of that type. */
LLV_INTERNAL int llv_gguf_add_val(llv_gguf_writer *w, const char *key, int type, const void *value);
/* Numeric array of elem_type with n packed little-endian elements (copied). */
LLV_INTERNAL int llv_gguf_add_arr(llv_gguf_writer *w, const char *key, int elem_type, const void *data, uint64_t n);
LLV_INTERNAL int llv_gguf_add_arr_str(llv_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
/* Copy every KV pair of a reader into the writer (e.g. a vocabulary), except
 * keys starting with skip_prefix (NULL: none). */
LLV_INTERNAL int llv_gguf_copy_kv(llv_gguf_writer *w, const llv_gguf *src, const char *skip_prefix);
/* A tensor: type is a ggml type id; ne[0..n_dims-1]; data holds the exact
 * byte size (copied). */
LLV_INTERNAL int llv_gguf_add_tensor(llv_gguf_writer *w, const char *name, int type, uint32_t n_dims,
                                     const int64_t *ne, const void *data, size_t nbytes);
/* Serialise (version 3, alignment from "general.alignment" if set, else 32).
 * *out is allocated with llv_malloc: free it with llv_free. The add_*
 * functions return LLAVA_OK, LLAVA_E_NOMEM or LLAVA_E_INVALID_ARG (empty key,
 * bad type, tensor name empty/too long/duplicate, nbytes not the exact size). */
LLV_INTERNAL int llv_gguf_write_memory(const llv_gguf_writer *w, void **out, size_t *size, llv_err *err);
LLV_INTERNAL int llv_gguf_write_file(const llv_gguf_writer *w, const char *path, llv_err *err);

#endif /* LLV_GGUF_H */
