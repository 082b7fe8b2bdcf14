/*
 * llava-quantize - convert an F32/F16/BF16 GGUF (LLaVA language model or
 * mmproj) to another weight type.
 *
 *   llava-quantize IN.gguf OUT.gguf TYPE [N_THREADS]
 *
 * TYPE: f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k, or the
 * mixed preset q4_k_m.
 *
 * Which tensor gets which type (llama.cpp's conventions):
 *  - 1-D tensors (norms, biases, class embedding) are stored F32;
 *  - 4-D tensors (the vision patch embedding, a conv kernel) stay F16 (F32 if
 *    TYPE is f32), as llama.cpp's converter keeps them;
 *  - tensors that are already quantized are copied unchanged (quantizing a
 *    quantized tensor again would only add error);
 *  - everything else (2-D/3-D matrices) becomes TYPE, unless ne[0] is not a
 *    multiple of TYPE's block size: then the tensor keeps its original type
 *    and a note says so on stderr.
 * q4_k_m: Q4_K everywhere, except Q6_K for output.weight and, in the LM
 *   blocks "blk.N.", for attn_v.weight and ffn_down.weight of the layers
 *   where llama.cpp's use_more_bits(N, n_layer) holds: the first eighth, the
 *   last eighth, and every third layer in between
 *   (N < L/8 || N >= 7L/8 || (N - L/8) % 3 == 2). Vision ("v.blk.N.") and
 *   projector tensors use plain Q4_K.
 *
 * Metadata is copied unchanged, then general.file_type is set to llama.cpp's
 * llama_ftype number for the result (F32 0, F16 1, Q4_0 2, Q4_1 3, Q8_0 7,
 * Q5_0 8, Q5_1 9, Q2_K 10, Q3_K_S 11 for q3_k, Q4_K_S 14 for q4_k, Q4_K_M 15,
 * Q5_K_S 16 for q5_k, Q6_K 18, BF16 32) and, for quantized outputs,
 * general.quantization_version = 2.
 *
 * Rows are converted in parallel (OpenMP). The whole output is assembled in
 * memory by the GGUF writer before being written.
 */
#include "gguf.h"
#include "quant.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct target {
    const char *name;
    int         type;    /* main ggml type */
    uint32_t    ftype;   /* llama_ftype written to general.file_type */
    int         mixed;   /* 1: the q4_k_m rule */
} target;

static const target targets[] = {
    { "f32", LLV_TYPE_F32, 0, 0 },    { "f16", LLV_TYPE_F16, 1, 0 },    { "bf16", LLV_TYPE_BF16, 32, 0 },
    { "q4_0", LLV_TYPE_Q4_0, 2, 0 },  { "q4_1", LLV_TYPE_Q4_1, 3, 0 },  { "q5_0", LLV_TYPE_Q5_0, 8, 0 },
    { "q5_1", LLV_TYPE_Q5_1, 9, 0 },  { "q8_0", LLV_TYPE_Q8_0, 7, 0 },  { "q2_k", LLV_TYPE_Q2_K, 10, 0 },
    { "q3_k", LLV_TYPE_Q3_K, 11, 0 }, { "q4_k", LLV_TYPE_Q4_K, 14, 0 }, { "q5_k", LLV_TYPE_Q5_K, 16, 0 },
    { "q6_k", LLV_TYPE_Q6_K, 18, 0 }, { "q4_k_m", LLV_TYPE_Q4_K, 15, 1 },
};

static const target *find_target(const char *s)
{
    char low[16];
    size_t n = strlen(s);
    if (n >= sizeof low)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] - 'A' + 'a' : s[i]);
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
        if (!strcmp(low, targets[i].name))
            return &targets[i];
    return NULL;
}

static bool is_float_type(int t) { return t == LLV_TYPE_F32 || t == LLV_TYPE_F16 || t == LLV_TYPE_BF16; }

/* llama.cpp's use_more_bits: layers that get the higher-precision type. */
static bool use_more_bits(int64_t i, int64_t n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* Layer index of an LM tensor "blk.N.<suffix>" whose suffix is one of the
 * q4_k_m upgrade candidates; -1 otherwise. */
static int64_t lm_upgrade_layer(const char *name)
{
    if (strncmp(name, "blk.", 4) != 0)
        return -1;
    char *end;
    errno = 0;
    long long l = strtoll(name + 4, &end, 10);
    if (errno || end == name + 4 || *end != '.' || l < 0)
        return -1;
    if (strcmp(end + 1, "attn_v.weight") && strcmp(end + 1, "ffn_down.weight"))
        return -1;
    return (int64_t)l;
}

/* Number of LM layers: one more than the largest N in "blk.N." names. */
static int64_t count_lm_layers(const llv_gguf *g)
{
    int64_t n = 0;
    for (int64_t i = 0; i < llv_gguf_n_tensors(g); i++) {
        const char *name = llv_gguf_tensor_at(g, i)->name;
        if (strncmp(name, "blk.", 4) != 0)
            continue;
        long long l = strtoll(name + 4, NULL, 10);
        if (l >= 0 && l + 1 > n)
            n = (int64_t)l + 1;
    }
    return n;
}

/* The type a tensor should get; *why receives a note when the rule had to
 * fall back (NULL otherwise). */
static int choose_type(const llv_gguf_tensor *t, const target *tg, int64_t n_layer, const char **why)
{
    *why = NULL;
    if (!is_float_type(t->type)) {
        *why = "already quantized: copied unchanged";
        return t->type;
    }
    if (t->n_dims == 1)
        return LLV_TYPE_F32;
    if (t->n_dims == 4)
        return tg->type == LLV_TYPE_F32 ? LLV_TYPE_F32 : LLV_TYPE_F16;
    int want = tg->type;
    if (tg->mixed) {
        int64_t l = lm_upgrade_layer(t->name);
        if (!strcmp(t->name, "output.weight") || (l >= 0 && use_more_bits(l, n_layer)))
            want = LLV_TYPE_Q6_K;
    }
    const llv_type_info *ti = llv_type_get(want);
    if (t->ne[0] % ti->blck != 0) {
        *why = "ne[0] is not a multiple of the block size: kept in its original type";
        return t->type;
    }
    return want;
}

/* Convert one tensor to type out (n_rows rows of ne[0] values). Returns
 * LLAVA_OK or an error status; *data is llv_malloc'ed. */
static int convert_tensor(const llv_gguf_tensor *t, int out, int n_threads, void **data, size_t *nbytes)
{
    const int64_t n0 = t->ne[0], n_rows = t->n_elements / n0;
    size_t in_rb, out_rb, total;
    if (!llv_row_bytes(t->type, n0, &in_rb) || !llv_row_bytes(out, n0, &out_rb) ||
        llv_mul_overflow(out_rb, (size_t)n_rows, &total))
        return LLAVA_E_FORMAT;
    uint8_t *dst = llv_malloc(total ? total : 1);
    if (!dst)
        return LLAVA_E_NOMEM;
    int rc = LLAVA_OK;
    if (out == t->type) {
        memcpy(dst, t->data, total);
    } else {
        /* rows in parallel; each thread dequantizes into its own f32 row */
        const uint8_t *src = t->data;
        int fail = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(n_threads) reduction(| : fail)
#endif
        {
            float *row = llv_malloc((size_t)n0 * sizeof(float));
            if (!row)
                fail |= 1;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 16)
#endif
            for (int64_t r = 0; r < n_rows; r++) {
                if (!row)
                    continue;
                llv_dequantize_row(t->type, src + (size_t)r * in_rb, row, n0);
                if (llv_quantize_row(out, row, dst + (size_t)r * out_rb, n0) != LLAVA_OK)
                    fail |= 2;
            }
            llv_free(row);
        }
        if (fail)
            rc = (fail & 1) ? LLAVA_E_NOMEM : LLAVA_E_UNSUPPORTED;
    }
    *data = dst;
    *nbytes = total;
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: llava-quantize IN.gguf OUT.gguf TYPE [N_THREADS]\n"
               "  TYPE: f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k q4_k_m\n"
               "  Converts the matrices of an F32/F16/BF16 GGUF (LLaVA LM or mmproj) to TYPE;\n"
               "  1-D tensors are stored F32, 4-D tensors F16, metadata is copied.\n");
}

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc < 4 || argc > 5) {
        usage(stderr);
        return 2;
    }
    const char *in_path = argv[1], *out_path = argv[2];
    const target *tg = find_target(argv[3]);
    if (!tg) {
        fprintf(stderr, "llava-quantize: unknown type '%s'\n", argv[3]);
        usage(stderr);
        return 2;
    }
    int n_threads = 0;
    if (argc == 5) {
        char *end;
        long v = strtol(argv[4], &end, 10);
        if (*end || v < 1 || v > 1024) {
            fprintf(stderr, "llava-quantize: bad thread count '%s' (1..1024)\n", argv[4]);
            return 2;
        }
        n_threads = (int)v;
    }
#ifdef _OPENMP
    if (n_threads == 0)
        n_threads = omp_get_max_threads();
#else
    n_threads = 1;
#endif

    /* The input stays mapped while the output is written: never the same file. */
    struct stat st_in, st_out;
    if (stat(in_path, &st_in) == 0 && stat(out_path, &st_out) == 0 && st_in.st_dev == st_out.st_dev &&
        st_in.st_ino == st_out.st_ino) {
        fprintf(stderr, "llava-quantize: the output %s is the input file\n", out_path);
        return 1;
    }

    llv_err err = {0};
    llv_gguf *g = NULL;
    if (llv_gguf_open_file(in_path, 1, &g, &err) != LLAVA_OK) {
        fprintf(stderr, "llava-quantize: reading the input failed: %s\n", err.msg);
        return 1;
    }
    llv_gguf_writer *w = llv_gguf_writer_new();
    int rc = w ? llv_gguf_copy_kv(w, g, NULL) : LLAVA_E_NOMEM;
    if (rc == LLAVA_OK)
        rc = llv_gguf_add_u32(w, "general.file_type", tg->ftype);
    if (rc == LLAVA_OK && !is_float_type(tg->type))
        rc = llv_gguf_add_u32(w, "general.quantization_version", 2);
    if (rc != LLAVA_OK) {
        fprintf(stderr, "llava-quantize: copying the metadata failed (status %d)\n", rc);
        llv_gguf_writer_free(w);
        llv_gguf_close(g);
        return 1;
    }

    const int64_t n_t = llv_gguf_n_tensors(g), n_layer = count_lm_layers(g);
    size_t in_total = 0, out_total = 0;
    for (int64_t i = 0; i < n_t && rc == LLAVA_OK; i++) {
        const llv_gguf_tensor *t = llv_gguf_tensor_at(g, i);
        const char *why;
        int out = choose_type(t, tg, n_layer, &why);
        void *data = NULL;
        size_t nbytes = 0;
        rc = convert_tensor(t, out, n_threads, &data, &nbytes);
        if (rc != LLAVA_OK) {
            fprintf(stderr, "llava-quantize: tensor %s: conversion %s -> %s failed (status %d)\n", t->name,
                    llv_type_name(t->type), llv_type_name(out), rc);
            break;
        }
        rc = llv_gguf_add_tensor(w, t->name, out, t->n_dims, t->ne, data, nbytes);
        llv_free(data);
        if (rc != LLAVA_OK) {
            fprintf(stderr, "llava-quantize: tensor %s: adding it to the output failed (status %d)\n", t->name, rc);
            break;
        }
        in_total += t->nbytes;
        out_total += nbytes;
        char shape[96];
        int len = snprintf(shape, sizeof shape, "%lld", (long long)t->ne[0]);
        for (uint32_t d = 1; d < t->n_dims && len > 0 && (size_t)len < sizeof shape; d++)
            len += snprintf(shape + len, sizeof shape - (size_t)len, " x %lld", (long long)t->ne[d]);
        fprintf(stderr, "[%4lld/%4lld] %-36s [%s] %s -> %s, %.1f KiB -> %.1f KiB\n", (long long)i + 1,
                (long long)n_t, t->name, shape, llv_type_name(t->type), llv_type_name(out),
                (double)t->nbytes / 1024.0, (double)nbytes / 1024.0);
        if (why && out != tg->type && !(t->n_dims == 1 || t->n_dims == 4))
            fprintf(stderr, "        note: %s: %s\n", t->name, why);
    }
    if (rc == LLAVA_OK && (rc = llv_gguf_write_file(w, out_path, &err)) != LLAVA_OK)
        fprintf(stderr, "llava-quantize: writing %s failed: %s\n", out_path, err.msg);
    if (rc == LLAVA_OK)
        fprintf(stderr, "llava-quantize: %s -> %s (%s, file_type %u): tensors %.2f MiB -> %.2f MiB\n", in_path,
                out_path, tg->name, tg->ftype, (double)in_total / 1048576.0, (double)out_total / 1048576.0);
    llv_gguf_writer_free(w);
    llv_gguf_close(g);
    return rc == LLAVA_OK ? 0 : 1;
}
