/*
 * quant.h - ggml tensor types: ids, block geometry, dequantization and
 * quantization (reference C, exactly per shared/spec/llava-format.md §1.3, §2).
 */
#ifndef LLV_QUANT_H
#define LLV_QUANT_H

#include "common.h"

/* ggml type ids as stored in GGUF files (spec §1.3). */
enum llv_type {
    LLV_TYPE_F32 = 0, LLV_TYPE_F16 = 1, LLV_TYPE_Q4_0 = 2, LLV_TYPE_Q4_1 = 3,
    LLV_TYPE_Q5_0 = 6, LLV_TYPE_Q5_1 = 7, LLV_TYPE_Q8_0 = 8, LLV_TYPE_Q8_1 = 9,
    LLV_TYPE_Q2_K = 10, LLV_TYPE_Q3_K = 11, LLV_TYPE_Q4_K = 12, LLV_TYPE_Q5_K = 13,
    LLV_TYPE_Q6_K = 14, LLV_TYPE_Q8_K = 15, LLV_TYPE_BF16 = 30,
    LLV_TYPE_COUNT = 43 /* ids >= this are invalid in a file */
};

typedef struct llv_type_info {
    const char *name;     /* "F16", "Q4_K", ...; for retired ids NULL */
    int64_t     blck;     /* elements per block (1 for float types) */
    size_t      size;     /* bytes per block; 0 if the geometry is unknown */
    bool        weights;  /* true if libllava can compute with it as weights */
} llv_type_info;

/* Info for a type id; NULL if the id is negative, >= LLV_TYPE_COUNT or retired
 * (4, 5, 31-33, 36-38). Known-but-unsupported ids (IQ*, TQ*, ...) return a
 * record with weights = false and their block geometry where known. */
LLV_INTERNAL const llv_type_info *llv_type_get(int type);
LLV_INTERNAL const char *llv_type_name(int type); /* never NULL */

/* Bytes of a row of n elements: fails (false) if n is not a multiple of the
 * block size, or on overflow. */
LLV_INTERNAL bool llv_row_bytes(int type, int64_t n, size_t *out);

/* The activation type of the integer dot products for a weight type (spec
 * §2.1, as llama.cpp's vec_dot_type): LLV_TYPE_Q8_0 for Q4_0..Q8_0,
 * LLV_TYPE_Q8_K for Q2_K..Q6_K, -1 for everything else. */
LLV_INTERNAL int llv_vec_dot_type(int type);

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block from
 * its 12 packed scale bytes S (spec §2, llama.cpp's get_scale_min_k4).
 * Inline: the dequantizers and kernels call it in their block loops. */
static inline void llv_k4_scale_min(const uint8_t *S, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = S[j] & 63;
        *m = S[j + 4] & 63;
    } else {
        *sc = (S[j + 4] & 15) | ((S[j - 4] >> 6) << 4);
        *m = (S[j + 4] >> 4) | ((S[j] >> 6) << 4);
    }
}

/* FP16/BF16 conversions (round to nearest even). */
LLV_INTERNAL float    llv_fp16_to_fp32(uint16_t h);
LLV_INTERNAL uint16_t llv_fp32_to_fp16(float f);
LLV_INTERNAL float    llv_bf16_to_fp32(uint16_t h);
LLV_INTERNAL uint16_t llv_fp32_to_bf16(float f);

/* Dequantize n elements (a multiple of the block size) of a row. Type must
 * have weights = true (or Q8_K). */
LLV_INTERNAL void llv_dequantize_row(int type, const void *src, float *dst, int64_t n);
/* Quantize n elements into dst (llv_row_bytes(type, n) bytes). Returns
 * LLAVA_E_UNSUPPORTED for types without a quantizer. */
LLV_INTERNAL int llv_quantize_row(int type, const float *src, void *dst, int64_t n);

#endif /* LLV_QUANT_H */
