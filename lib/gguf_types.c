/*
 * gguf_types.c - value-type and ggml tensor-type facts used by the GGUF
 * reader and writer: scalar sizes, names, block geometry and the checked
 * tensor byte-size computation (spec §1.2-§1.4).
 *
 * The geometry table is gguf's own (not quant.c's llv_type_get) so that the
 * container layer validates files without depending on the compute layer.
 */
#include "gguf_internal.h"

#include <string.h>

size_t llv_gguf_scalar_size(int type)
{
    switch (type) {
    case LLV_GGUF_UINT8: case LLV_GGUF_INT8: case LLV_GGUF_BOOL: return 1;
    case LLV_GGUF_UINT16: case LLV_GGUF_INT16: return 2;
    case LLV_GGUF_UINT32: case LLV_GGUF_INT32: case LLV_GGUF_FLOAT32: return 4;
    case LLV_GGUF_UINT64: case LLV_GGUF_INT64: case LLV_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

const char *llv_gguf_type_name(int type)
{
    static const char *const names[LLV_GGUF_TYPE_COUNT] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
        "bool", "string", "array", "uint64", "int64", "float64",
    };
    if (type < 0 || type >= LLV_GGUF_TYPE_COUNT)
        return "?";
    return names[type];
}

/* ggml type id -> name, elements per block, bytes per block (spec §1.3).
 * name NULL: retired id. size 0: id known, geometry not known to us. */
static const struct {
    const char *name;
    int         blck;
    int         size;
} ggml_types[] = {
    [0]  = { "F32", 1, 4 },        [1]  = { "F16", 1, 2 },
    [2]  = { "Q4_0", 32, 18 },     [3]  = { "Q4_1", 32, 20 },
    [6]  = { "Q5_0", 32, 22 },     [7]  = { "Q5_1", 32, 24 },
    [8]  = { "Q8_0", 32, 34 },     [9]  = { "Q8_1", 32, 36 },
    [10] = { "Q2_K", 256, 84 },    [11] = { "Q3_K", 256, 110 },
    [12] = { "Q4_K", 256, 144 },   [13] = { "Q5_K", 256, 176 },
    [14] = { "Q6_K", 256, 210 },   [15] = { "Q8_K", 256, 292 },
    [16] = { "IQ2_XXS", 256, 66 }, [17] = { "IQ2_XS", 256, 74 },
    [18] = { "IQ3_XXS", 256, 98 }, [19] = { "IQ1_S", 256, 50 },
    [20] = { "IQ4_NL", 32, 18 },   [21] = { "IQ3_S", 256, 110 },
    [22] = { "IQ2_S", 256, 82 },   [23] = { "IQ4_XS", 256, 136 },
    [24] = { "I8", 1, 1 },         [25] = { "I16", 1, 2 },
    [26] = { "I32", 1, 4 },        [27] = { "I64", 1, 8 },
    [28] = { "F64", 1, 8 },        [29] = { "IQ1_M", 256, 56 },
    [30] = { "BF16", 1, 2 },
    [34] = { "TQ1_0", 256, 54 },   [35] = { "TQ2_0", 256, 66 },
    [39] = { "MXFP4", 32, 17 },    [40] = { "NVFP4", 0, 0 },
    [41] = { "Q1_0", 0, 0 },       [42] = { "Q2_0", 0, 0 },
};
#define GGML_TYPE_LIMIT 43 /* GGML_TYPE_COUNT: ids >= this are invalid */

bool llv_gguf_ggml_geometry(int type, int64_t *blck, size_t *size)
{
    if (type < 0 || type >= GGML_TYPE_LIMIT || !ggml_types[type].name)
        return false;
    *blck = ggml_types[type].blck;
    *size = (size_t)ggml_types[type].size;
    return true;
}

const char *llv_gguf_ggml_type_name(int type)
{
    if (type < 0 || type >= GGML_TYPE_LIMIT || !ggml_types[type].name)
        return "?";
    return ggml_types[type].name;
}

int llv_gguf_tensor_size(const char *what, int type, uint32_t n_dims, const int64_t *ne,
                         int64_t *n_elements, size_t *nbytes, llv_err *err)
{
    int64_t blck;
    size_t bsize;

    if (n_dims < 1 || n_dims > LLV_GGUF_MAX_DIMS)
        return llv_fail(err, LLAVA_E_FORMAT, "tensor '%s': n_dims %u out of range 1..%d",
                        what, n_dims, LLV_GGUF_MAX_DIMS);
    if (!llv_gguf_ggml_geometry(type, &blck, &bsize))
        return llv_fail(err, LLAVA_E_FORMAT, "tensor '%s': invalid ggml type id %d", what, type);
    if (bsize == 0)
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "tensor '%s': ggml type %s (%d) has an unknown block size",
                        what, ggml_types[type].name, type);

    int64_t n = 1;
    for (uint32_t i = 0; i < n_dims; i++) {
        if (ne[i] <= 0)
            return llv_fail(err, LLAVA_E_FORMAT, "tensor '%s': dimension ne[%u] = %lld must be positive",
                            what, i, (long long)ne[i]);
        if (__builtin_mul_overflow(n, ne[i], &n))
            return llv_fail(err, LLAVA_E_FORMAT, "tensor '%s': element count overflows int64", what);
    }
    if (ne[0] % blck != 0)
        return llv_fail(err, LLAVA_E_FORMAT, "tensor '%s': ne[0] = %lld is not a multiple of the %s block size %lld",
                        what, (long long)ne[0], ggml_types[type].name, (long long)blck);

    /* bytes = ne0/blck * bsize * ne1 * ne2 * ne3, every step checked: the
     * element count can fit int64 while the byte count does not fit size_t. */
    size_t bytes;
    if (llv_mul_overflow((size_t)(ne[0] / blck), bsize, &bytes))
        goto too_big;
    for (uint32_t i = 1; i < n_dims; i++)
        if (llv_mul_overflow(bytes, (size_t)ne[i], &bytes))
            goto too_big;
    if (bytes > (size_t)INT64_MAX)
        goto too_big;
    *n_elements = n;
    *nbytes = bytes;
    return LLAVA_OK;
too_big:
    return llv_fail(err, LLAVA_E_FORMAT, "tensor '%s': byte size overflows", what);
}

int llv_gguf_name_cmp(const void *a, const void *b)
{
    const llv_gguf_name *x = a, *y = b;
    int c = memcmp(x->ptr, y->ptr, LLV_MIN(x->len, y->len));
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

int64_t llv_gguf_name_find(const llv_gguf_name *sorted, int64_t n, const char *name, size_t len)
{
    llv_gguf_name key = { name, len, -1 };
    int64_t lo = 0, hi = n; /* [lo, hi) */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = llv_gguf_name_cmp(&sorted[mid], &key);
        if (c == 0)
            return sorted[mid].index;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}
