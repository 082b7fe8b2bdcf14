/*
 * check_gguf.c - the GGUF reader, getters and writer.
 *
 * Expected values come from outside the code under test:
 *   - the golden files and shared/data/README.md / spec §1 (shapes, keys);
 *   - well-known vocabulary facts (LLaMA SPM token ids, GPT-2 sizes);
 *   - files built byte by byte in this test (gguf_bytes.h), independently of
 *     the writer, so every malformed class is exactly the bytes we intend.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf_internal.h" /* llv_gguf_tensor_size */
#include "quant.h"
#include "gguf_bytes.h"

#ifndef LLAVA_TEST_DATA
#define LLAVA_TEST_DATA "../shared/data"
#endif

LLV_INTERNAL void llv_alloc_fail_inject(long n); /* error.c, test hook */

static char data_path[1024];

static const char *datafile(const char *rel)
{
    const char *root = getenv("LLAVA_TEST_DATA");
    snprintf(data_path, sizeof data_path, "%s/%s", root && *root ? root : LLAVA_TEST_DATA, rel);
    return data_path;
}

static llv_gguf *open_ok(const char *rel, int use_mmap)
{
    llv_gguf *g = NULL;
    llv_err err = { 0 };
    int rc = llv_gguf_open_file(datafile(rel), use_mmap, &g, &err);
    ck_assert_msg(rc == LLAVA_OK, "%s: %s", rel, err.msg);
    return g;
}

static uint32_t u32_of(const llv_gguf *g, const char *key)
{
    uint32_t v = 0;
    llv_err err = { 0 };
    ck_assert_msg(llv_gguf_get_u32(g, key, &v, &err) == LLAVA_OK, "%s", err.msg);
    return v;
}

static void assert_str(const llv_gguf *g, const char *key, const char *want)
{
    llv_str s;
    llv_err err = { 0 };
    ck_assert_msg(llv_gguf_get_str(g, key, &s, &err) == LLAVA_OK, "%s", err.msg);
    ck_assert_int_eq(s.len, strlen(want));
    ck_assert(memcmp(s.ptr, want, s.len) == 0);
}

static void assert_tensor(const llv_gguf *g, const char *name, int type, uint32_t n_dims, int64_t ne0, int64_t ne1,
                          int64_t ne2, int64_t ne3)
{
    const llv_gguf_tensor *t = llv_gguf_find_tensor(g, name);
    ck_assert_msg(t != NULL, "tensor %s missing", name);
    ck_assert_msg(t->type == type, "%s: type %d, want %d", name, t->type, type);
    ck_assert_uint_eq(t->n_dims, n_dims);
    ck_assert_int_eq(t->ne[0], ne0);
    ck_assert_int_eq(t->ne[1], ne1);
    ck_assert_int_eq(t->ne[2], ne2);
    ck_assert_int_eq(t->ne[3], ne3);
    ck_assert_int_eq(t->n_elements, ne0 * ne1 * ne2 * ne3);
    size_t esize = type == 0 ? 4 : 2; /* golden files hold F32 and F16 only */
    ck_assert_uint_eq(t->nbytes, (size_t)(ne0 * ne1 * ne2 * ne3) * esize);
    /* data inside the file, at data_offset + offset */
    ck_assert_uint_eq(t->offset % llv_gguf_alignment(g), 0);
    ck_assert_uint_le(llv_gguf_data_offset(g) + t->offset + t->nbytes, llv_gguf_file_size(g));
}

/* Every tensor is where §1.1 says: offset_i = running sum of padded sizes. */
static void assert_running_sum_layout(const llv_gguf *g)
{
    uint64_t expect = 0;
    size_t a = llv_gguf_alignment(g);
    for (int64_t i = 0; i < llv_gguf_n_tensors(g); i++) {
        const llv_gguf_tensor *t = llv_gguf_tensor_at(g, i);
        ck_assert_uint_eq(t->offset, expect);
        expect += (t->nbytes + a - 1) / a * a;
    }
}

/* ======================================================================
 * Golden files
 * ====================================================================== */

START_TEST(test_golden_lm)
{
    for (int use_mmap = 0; use_mmap <= 1; use_mmap++) {
        llv_gguf *g = open_ok("golden/tiny-dev/model-lm.gguf", use_mmap);
        ck_assert_uint_eq(llv_gguf_version(g), 3);
        ck_assert_uint_eq(llv_gguf_alignment(g), 32);
        ck_assert_uint_eq(llv_gguf_data_offset(g) % 32, 0);
        assert_str(g, "general.architecture", "llama");
        ck_assert_uint_eq(u32_of(g, "llama.embedding_length"), 128);
        ck_assert_uint_eq(u32_of(g, "llama.attention.head_count"), 4);
        ck_assert_uint_eq(u32_of(g, "llama.attention.head_count_kv"), 2);
        ck_assert_uint_eq(u32_of(g, "llama.block_count"), 2);
        ck_assert_uint_eq(u32_of(g, "llama.feed_forward_length"), 256);
        float eps = 0;
        llv_err err = { 0 };
        ck_assert_int_eq(llv_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps, &err), LLAVA_OK);
        ck_assert(eps > 0 && eps < 1e-3f);

        uint64_t n_vocab = 0;
        ck_assert_int_eq(llv_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &n_vocab, &err), LLAVA_OK);
        ck_assert_uint_eq(n_vocab, 32000);
        int64_t ti = llv_gguf_find_key(g, "tokenizer.ggml.tokens");
        llv_str s = llv_gguf_arr_str(g, ti, 1);
        ck_assert(s.len == 3 && memcmp(s.ptr, "<s>", 3) == 0);

        /* E=128, 4 heads of 32, 2 KV heads -> K/V rows 64; FFN 256; F16 matrices. */
        assert_tensor(g, "token_embd.weight", 1, 2, 128, 32000, 1, 1);
        for (int l = 0; l < 2; l++) {
            char n[64];
            snprintf(n, sizeof n, "blk.%d.attn_q.weight", l); assert_tensor(g, n, 1, 2, 128, 128, 1, 1);
            snprintf(n, sizeof n, "blk.%d.attn_k.weight", l); assert_tensor(g, n, 1, 2, 128, 64, 1, 1);
            snprintf(n, sizeof n, "blk.%d.attn_v.weight", l); assert_tensor(g, n, 1, 2, 128, 64, 1, 1);
            snprintf(n, sizeof n, "blk.%d.attn_output.weight", l); assert_tensor(g, n, 1, 2, 128, 128, 1, 1);
            snprintf(n, sizeof n, "blk.%d.ffn_gate.weight", l); assert_tensor(g, n, 1, 2, 128, 256, 1, 1);
            snprintf(n, sizeof n, "blk.%d.ffn_up.weight", l); assert_tensor(g, n, 1, 2, 128, 256, 1, 1);
            snprintf(n, sizeof n, "blk.%d.ffn_down.weight", l); assert_tensor(g, n, 1, 2, 256, 128, 1, 1);
            snprintf(n, sizeof n, "blk.%d.attn_norm.weight", l); assert_tensor(g, n, 0, 1, 128, 1, 1, 1);
            snprintf(n, sizeof n, "blk.%d.ffn_norm.weight", l); assert_tensor(g, n, 0, 1, 128, 1, 1, 1);
        }
        assert_tensor(g, "output_norm.weight", 0, 1, 128, 1, 1, 1);
        ck_assert_ptr_null(llv_gguf_find_tensor(g, "blk.2.attn_q.weight"));
        ck_assert_ptr_null(llv_gguf_find_tensor(g, "blk.0.attn_q.weigh"));
        assert_running_sum_layout(g);
        /* The data pointer is base + data_offset + offset: the last tensor
         * ends at most at the end of the file. */
        const llv_gguf_tensor *t0 = llv_gguf_tensor_at(g, 0);
        ck_assert_ptr_nonnull(t0->data);
        llv_gguf_close(g);
    }
}
END_TEST

START_TEST(test_golden_mmproj)
{
    llv_gguf *g = open_ok("golden/tiny-dev/model-mmproj.gguf", 1);
    llv_err err = { 0 };
    assert_str(g, "general.architecture", "clip");
    assert_str(g, "clip.projector_type", "mlp");
    ck_assert_uint_eq(u32_of(g, "clip.vision.image_size"), 336);
    ck_assert_uint_eq(u32_of(g, "clip.vision.patch_size"), 14);
    ck_assert_uint_eq(u32_of(g, "clip.vision.embedding_length"), 64);
    ck_assert_uint_eq(u32_of(g, "clip.vision.attention.head_count"), 4);
    ck_assert_uint_eq(u32_of(g, "clip.vision.block_count"), 2);
    bool b = true;
    ck_assert_int_eq(llv_gguf_get_bool(g, "clip.has_vision_encoder", &b, &err), LLAVA_OK);
    ck_assert(b);
    ck_assert_int_eq(llv_gguf_get_bool_opt(g, "clip.use_gelu", true, &b, &err), LLAVA_OK);
    ck_assert(!b); /* quick-GELU per README */

    /* image_mean: the README's pad colour is int(mean*255) = (122,116,104). */
    const void *data;
    uint64_t n;
    ck_assert_int_eq(llv_gguf_get_arr(g, "clip.vision.image_mean", LLV_GGUF_FLOAT32, &data, &n, &err), LLAVA_OK);
    ck_assert_uint_eq(n, 3);
    int64_t mi = llv_gguf_find_key(g, "clip.vision.image_mean");
    const int pad[3] = { 122, 116, 104 };
    for (int c = 0; c < 3; c++) {
        float f;
        memcpy(&f, (const char *)data + 4 * c, 4);
        ck_assert_int_eq((int)(f * 255), pad[c]);
        ck_assert(llv_gguf_arr_get_float(g, mi, (uint64_t)c) == (double)f);
    }

    /* D=64, 336/14 = 24 -> 576 patches + class = 577 positions; mlp to E=128. */
    assert_tensor(g, "v.patch_embd.weight", 1, 4, 14, 14, 3, 64);
    assert_tensor(g, "v.position_embd.weight", 0, 2, 64, 577, 1, 1);
    assert_tensor(g, "v.class_embd", 0, 1, 64, 1, 1, 1);
    assert_tensor(g, "mm.0.weight", 1, 2, 64, 128, 1, 1);
    assert_tensor(g, "mm.0.bias", 0, 1, 128, 1, 1, 1);
    assert_tensor(g, "mm.2.weight", 1, 2, 128, 128, 1, 1);
    for (int l = 0; l < 2; l++) {
        char nm[64];
        snprintf(nm, sizeof nm, "v.blk.%d.attn_q.weight", l); assert_tensor(g, nm, 1, 2, 64, 64, 1, 1);
        snprintf(nm, sizeof nm, "v.blk.%d.ln1.weight", l); assert_tensor(g, nm, 0, 1, 64, 1, 1, 1);
        /* legacy naming: "ffn_down" is the first FFN matrix (D -> FFN 128) */
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_down.weight", l); assert_tensor(g, nm, 1, 2, 64, 128, 1, 1);
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_up.weight", l); assert_tensor(g, nm, 1, 2, 128, 64, 1, 1);
    }
    ck_assert_ptr_null(llv_gguf_find_tensor(g, "v.blk.2.attn_q.weight"));
    assert_running_sum_layout(g);
    llv_gguf_close(g);
}
END_TEST

static const char *tok(const llv_gguf *g, int64_t ki, uint64_t id, char *buf)
{
    llv_str s = llv_gguf_arr_str(g, ki, id);
    ck_assert_ptr_nonnull(s.ptr);
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = '\0';
    return buf;
}

START_TEST(test_vocab_files)
{
    char buf[256];
    llv_err err = { 0 };
    uint64_t n;

    llv_gguf *g = open_ok("vocab/ggml-vocab-llama-spm.gguf", 0);
    ck_assert_int_eq(llv_gguf_n_tensors(g), 0);
    assert_str(g, "tokenizer.ggml.model", "llama");
    ck_assert_int_eq(llv_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &n, &err), LLAVA_OK);
    ck_assert_uint_eq(n, 32000);
    int64_t ki = llv_gguf_find_key(g, "tokenizer.ggml.tokens");
    ck_assert_str_eq(tok(g, ki, 0, buf), "<unk>");
    ck_assert_str_eq(tok(g, ki, 1, buf), "<s>");
    ck_assert_str_eq(tok(g, ki, 2, buf), "</s>");
    ck_assert_str_eq(tok(g, ki, 13, buf), "<0x0A>");
    ck_assert_str_eq(tok(g, ki, 29871, buf), "\xe2\x96\x81"); /* U+2581 */
    ck_assert_ptr_null(llv_gguf_arr_str(g, ki, 32000).ptr);    /* past the end */
    const void *d;
    ck_assert_int_eq(llv_gguf_get_arr(g, "tokenizer.ggml.scores", LLV_GGUF_FLOAT32, &d, &n, &err), LLAVA_OK);
    ck_assert_uint_eq(n, 32000);
    ck_assert_int_eq(llv_gguf_get_arr(g, "tokenizer.ggml.token_type", LLV_GGUF_INT32, &d, &n, &err), LLAVA_OK);
    ck_assert_uint_eq(n, 32000);
    int64_t tt = llv_gguf_find_key(g, "tokenizer.ggml.token_type");
    ck_assert_int_eq(llv_gguf_arr_get_int(g, tt, 0), 2);  /* UNKNOWN */
    ck_assert_int_eq(llv_gguf_arr_get_int(g, tt, 1), 3);  /* CONTROL */
    ck_assert_int_eq(llv_gguf_arr_get_int(g, tt, 13), 6); /* BYTE */
    ck_assert_int_eq(llv_gguf_arr_get_int(g, tt, 29871), 1); /* NORMAL */
    ck_assert_uint_eq(u32_of(g, "tokenizer.ggml.bos_token_id"), 1);
    ck_assert_uint_eq(u32_of(g, "tokenizer.ggml.eos_token_id"), 2);
    llv_gguf_close(g);

    g = open_ok("vocab/ggml-vocab-phi-3.gguf", 1);
    ck_assert_int_eq(llv_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &n, &err), LLAVA_OK);
    ck_assert_uint_eq(n, 32064);
    ki = llv_gguf_find_key(g, "tokenizer.ggml.tokens");
    ck_assert_str_eq(tok(g, ki, 32000, buf), "<|endoftext|>");
    ck_assert_str_eq(tok(g, ki, 29871, buf), "\xe2\x96\x81");
    llv_gguf_close(g);

    g = open_ok("vocab/ggml-vocab-gpt-2.gguf", 1);
    assert_str(g, "tokenizer.ggml.model", "gpt2");
    ck_assert_int_eq(llv_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &n, &err), LLAVA_OK);
    ck_assert_uint_eq(n, 50257);
    ki = llv_gguf_find_key(g, "tokenizer.ggml.tokens");
    ck_assert_str_eq(tok(g, ki, 50256, buf), "<|endoftext|>");
    ck_assert_str_eq(tok(g, ki, 0, buf), "!");
    ck_assert_int_eq(llv_gguf_get_arr_str(g, "tokenizer.ggml.merges", &n, &err), LLAVA_OK);
    ck_assert_uint_eq(n, 50000);
    ck_assert_str_eq(tok(g, llv_gguf_find_key(g, "tokenizer.ggml.merges"), 0, buf), "\xc4\xa0 t"); /* "Ġ t" */
    llv_gguf_close(g);
}
END_TEST

START_TEST(test_open_errors)
{
    llv_gguf *g = (llv_gguf *)1;
    llv_err err = { 0 };
    ck_assert_int_eq(llv_gguf_open_file("/nonexistent/x.gguf", 1, &g, &err), LLAVA_E_IO);
    ck_assert_ptr_null(g);
    ck_assert_int_eq(llv_gguf_open_file("/", 1, &g, &err), LLAVA_E_IO);
    char path[] = "/tmp/check_gguf_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(llv_gguf_open_file(path, 1, &g, &err), LLAVA_E_FORMAT); /* empty */
    ck_assert_ptr_nonnull(strstr(err.msg, "empty"));
    ck_assert_int_eq(llv_gguf_open_file(path, 0, &g, &err), LLAVA_E_FORMAT);
    /* a malformed file through both file paths (mapping / buffer released) */
    gb b;
    gb_valid_file(&b, 3);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b.p, 1, b.n - 20, f), b.n - 20); /* cut inside tensor b */
    fclose(f);
    for (int m = 0; m <= 1; m++) {
        ck_assert_int_eq(llv_gguf_open_file(path, m, &g, &err), LLAVA_E_FORMAT);
        ck_assert_ptr_nonnull(strstr(err.msg, "tensor 'b'"));
        ck_assert_ptr_null(g);
    }
    gb_free(&b);
    unlink(path);
    ck_assert_int_eq(llv_gguf_open_memory(NULL, 10, 0, &g, &err), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llv_gguf_open_memory("", 0, 0, &g, &err), LLAVA_E_FORMAT);
    ck_assert_int_eq(llv_gguf_open_file(NULL, 1, &g, &err), LLAVA_E_INVALID_ARG);
    llv_gguf_close(NULL);
}
END_TEST

/* ======================================================================
 * Malformed files, built byte by byte
 * ====================================================================== */

/* Open a copy of exactly `size` bytes (so ASan sees any over-read) and
 * expect failure with `code` and a message containing `needle`. */
static void expect_reject_at(const uint8_t *bytes, size_t size, int code, const char *needle, int line)
{
    uint8_t *exact = malloc(size ? size : 1);
    memcpy(exact, bytes, size);
    for (int copy = 0; copy <= 1; copy++) {
        llv_gguf *g = (llv_gguf *)1;
        llv_err err = { 0 };
        int rc = llv_gguf_open_memory(exact, size, copy, &g, &err);
        ck_assert_msg(rc == code, "line %d: rc %d, want %d (%s)", line, rc, code, err.msg);
        ck_assert_ptr_null(g);
        ck_assert_msg(err.msg[0] != '\0', "line %d: empty message", line);
        if (needle)
            ck_assert_msg(strstr(err.msg, needle) != NULL, "line %d: message '%s' lacks '%s'", line, err.msg, needle);
    }
    free(exact);
}
#define expect_reject(b, code, needle) expect_reject_at((b)->p, (b)->n, code, needle, __LINE__)

static llv_gguf *expect_open(const gb *b)
{
    llv_gguf *g = NULL;
    llv_err err = { 0 };
    int rc = llv_gguf_open_memory(b->p, b->n, 1, &g, &err);
    ck_assert_msg(rc == LLAVA_OK, "%s", err.msg);
    return g;
}

START_TEST(test_valid_reference)
{
    /* The byte-built reference file is valid and reads back as built. */
    gb b;
    gb_valid_file(&b, 3);
    llv_gguf *g = expect_open(&b);
    ck_assert_int_eq(llv_gguf_n_kv(g), 3);
    ck_assert_int_eq(llv_gguf_n_tensors(g), 2);
    ck_assert_uint_eq(llv_gguf_data_offset(g), b.data_start);
    const llv_gguf_tensor *t = llv_gguf_find_tensor(g, "b");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->type, 1);
    ck_assert_uint_eq(t->nbytes, 16);
    ck_assert_int_eq((const uint8_t *)t->data - (const uint8_t *)llv_gguf_tensor_at(g, 0)->data, 32);
    ck_assert_uint_eq(((const uint8_t *)t->data)[0], 0xb0);
    llv_gguf_close(g);
    gb_free(&b);

    gb_valid_file(&b, 2); /* version 2 reads the same */
    g = expect_open(&b);
    ck_assert_uint_eq(llv_gguf_version(g), 2);
    llv_gguf_close(g);
    gb_free(&b);
}
END_TEST

START_TEST(test_bad_header)
{
    gb b;
    gb_valid_file(&b, 3);
    memcpy(b.p, "GGML", 4);
    expect_reject(&b, LLAVA_E_FORMAT, "bad magic");
    gb_free(&b);

    const uint32_t versions[] = { 1, 4, 0, 0xFFFFFFFFu };
    const char *msgs[] = { "version 1", "version 4", "version 0", "version 4294967295" };
    for (int i = 0; i < 4; i++) {
        gb_valid_file(&b, versions[i]);
        expect_reject(&b, LLAVA_E_UNSUPPORTED, msgs[i]);
        gb_free(&b);
    }
    /* a big-endian writer stores version 3 as 00 00 00 03 */
    gb_valid_file(&b, 3);
    gb_put_be32_at(&b, 4, 3);
    expect_reject(&b, LLAVA_E_UNSUPPORTED, "big-endian");
    gb_free(&b);

    gb_init(&b);
    gb_bytes(&b, "GGUF", 4);
    gb_u32(&b, 3);
    expect_reject(&b, LLAVA_E_FORMAT, "24-byte");
    gb_free(&b);
}
END_TEST

START_TEST(test_huge_counts)
{
    /* CVE-2024-23605 style: n_kv / n_tensors far beyond the file size. */
    const uint64_t huge[] = { 1000, (uint64_t)1 << 32, ((uint64_t)1 << 63) - 1, (uint64_t)1 << 63, UINT64_MAX,
                              UINT64_MAX / 14 + 1 };
    for (int i = 0; i < 6; i++) {
        gb b;
        gb_init(&b);
        gb_header(&b, 3, 0, huge[i]);
        gb_kv_u32(&b, "a", 1);
        expect_reject(&b, LLAVA_E_FORMAT, "metadata count");
        gb_free(&b);

        gb_init(&b);
        gb_header(&b, 3, huge[i], 1);
        gb_kv_u32(&b, "a", 1);
        expect_reject(&b, LLAVA_E_FORMAT, "tensor count");
        gb_free(&b);
    }
}
END_TEST

START_TEST(test_bad_strings)
{
    gb b;
    /* key length past the end of the file */
    gb_init(&b);
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, 1000);
    gb_bytes(&b, "general.name", 12);
    gb_u32(&b, LLV_GGUF_UINT8);
    gb_u8(&b, 0);
    expect_reject(&b, LLAVA_E_FORMAT, "past the end");
    gb_free(&b);

    /* string value length > 2^30 (and one that wraps a size_t sum) */
    const uint64_t lens[] = { ((uint64_t)1 << 30) + 1, UINT64_MAX, UINT64_MAX - 7 };
    for (int i = 0; i < 3; i++) {
        gb_init(&b);
        gb_header(&b, 3, 0, 1);
        gb_str(&b, "k");
        gb_u32(&b, LLV_GGUF_STRING);
        gb_u64(&b, lens[i]);
        gb_bytes(&b, "abcdefghijklmnop", 16);
        expect_reject(&b, LLAVA_E_FORMAT, "2^30");
        gb_free(&b);
    }
    /* string value past the end */
    gb_init(&b);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k");
    gb_u32(&b, LLV_GGUF_STRING);
    gb_u64(&b, 17);
    gb_bytes(&b, "abcdefghijklmnop", 16);
    expect_reject(&b, LLAVA_E_FORMAT, "past the end");
    gb_free(&b);
}
END_TEST

START_TEST(test_bad_arrays)
{
    gb b;
    /* array count above 2^30 */
    gb_init(&b);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "arr");
    gb_u32(&b, LLV_GGUF_ARRAY);
    gb_u32(&b, LLV_GGUF_UINT8);
    gb_u64(&b, (uint64_t)1 << 40);
    gb_zeros(&b, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "array count");
    gb_free(&b);

    /* numeric array running past the end of the file (each element type size) */
    const int types[] = { LLV_GGUF_UINT8, LLV_GGUF_INT16, LLV_GGUF_FLOAT32, LLV_GGUF_FLOAT64, LLV_GGUF_BOOL };
    for (int i = 0; i < 5; i++) {
        gb_init(&b);
        gb_header(&b, 3, 0, 1);
        gb_str(&b, "arr");
        gb_u32(&b, LLV_GGUF_ARRAY);
        gb_u32(&b, (uint32_t)types[i]);
        gb_u64(&b, 1000);
        gb_zeros(&b, 999);
        expect_reject(&b, LLAVA_E_FORMAT, "past the end");
        gb_free(&b);
    }
    /* string array with more elements than 8-byte lengths fit */
    gb_init(&b);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "arr");
    gb_u32(&b, LLV_GGUF_ARRAY);
    gb_u32(&b, LLV_GGUF_STRING);
    gb_u64(&b, 1000000);
    gb_str(&b, "x");
    expect_reject(&b, LLAVA_E_FORMAT, "past the end");
    gb_free(&b);
    /* string array whose 2nd element is too long */
    gb_init(&b);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "arr");
    gb_u32(&b, LLV_GGUF_ARRAY);
    gb_u32(&b, LLV_GGUF_STRING);
    gb_u64(&b, 2);
    gb_str(&b, "x");
    gb_u64(&b, 100);
    gb_zeros(&b, 32);
    expect_reject(&b, LLAVA_E_FORMAT, "element 1");
    gb_free(&b);

    /* array header cut inside the count */
    gb_init(&b);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "arr");
    gb_u32(&b, LLV_GGUF_ARRAY);
    gb_u32(&b, LLV_GGUF_UINT8);
    gb_u32(&b, 1);
    expect_reject(&b, LLAVA_E_FORMAT, "key 'arr': truncated file: array count");
    gb_free(&b);

    /* array of arrays */
    gb_init(&b);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "arr");
    gb_u32(&b, LLV_GGUF_ARRAY);
    gb_u32(&b, LLV_GGUF_ARRAY);
    gb_u64(&b, 1);
    gb_u32(&b, LLV_GGUF_UINT8);
    gb_u64(&b, 1);
    gb_u8(&b, 0);
    expect_reject(&b, LLAVA_E_FORMAT, "arrays of arrays");
    gb_free(&b);

    /* unknown element type */
    const int32_t bad[] = { 13, -1, 1000 };
    for (int i = 0; i < 3; i++) {
        gb_init(&b);
        gb_header(&b, 3, 0, 1);
        gb_str(&b, "arr");
        gb_u32(&b, LLV_GGUF_ARRAY);
        gb_u32(&b, (uint32_t)bad[i]);
        gb_u64(&b, 1);
        gb_zeros(&b, 16);
        expect_reject(&b, LLAVA_E_FORMAT, "unknown array element type");
        gb_free(&b);
    }
}
END_TEST

START_TEST(test_bad_kv)
{
    gb b;
    const int32_t bad[] = { 13, -1, 0x7fffffff };
    for (int i = 0; i < 3; i++) {
        gb_init(&b);
        gb_header(&b, 3, 0, 1);
        gb_str(&b, "general.thing");
        gb_u32(&b, (uint32_t)bad[i]);
        gb_zeros(&b, 16);
        expect_reject(&b, LLAVA_E_FORMAT, "unknown value type");
        gb_free(&b);
    }
    /* the message names the key */
    gb_init(&b);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "general.thing");
    gb_u32(&b, 13);
    gb_zeros(&b, 16);
    expect_reject(&b, LLAVA_E_FORMAT, "general.thing");
    gb_free(&b);

    gb_init(&b);
    gb_header(&b, 3, 0, 2);
    gb_kv_u32(&b, "a", 1);
    gb_kv_u32(&b, "", 2);
    expect_reject(&b, LLAVA_E_FORMAT, "empty key");
    gb_free(&b);

    gb_init(&b);
    gb_header(&b, 3, 0, 3);
    gb_kv_u32(&b, "general.x", 1);
    gb_kv_u32(&b, "general.y", 1);
    gb_kv_str(&b, "general.x", "again");
    expect_reject(&b, LLAVA_E_FORMAT, "duplicate key 'general.x'");
    gb_free(&b);

    /* control bytes of a hostile key do not reach the message */
    gb_init(&b);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "evil\x1b[2J\n");
    gb_u32(&b, 77);
    gb_zeros(&b, 16);
    expect_reject(&b, LLAVA_E_FORMAT, "key 'evil?[2J?': unknown value type 77");
    gb_free(&b);

    /* scalar value cut off */
    gb_init(&b);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k");
    gb_u32(&b, LLV_GGUF_UINT64);
    gb_u32(&b, 0);
    expect_reject(&b, LLAVA_E_FORMAT, "past the end");
    gb_free(&b);
}
END_TEST

/* A file with one tensor described by (n_dims, ne, type, offset), enough
 * data for `data_bytes`, alignment 32. */
static void one_tensor(gb *b, const char *name, uint32_t n_dims, const int64_t *ne, int32_t type, uint64_t offset,
                       size_t data_bytes)
{
    gb_init(b);
    gb_header(b, 3, 1, 1);
    gb_kv_str(b, "general.architecture", "test");
    gb_tensor_info(b, name, n_dims, ne, type, offset);
    gb_pad(b, 32);
    gb_zeros(b, data_bytes);
}

START_TEST(test_bad_dims)
{
    gb b;
    int64_t ne[8] = { 4, 4, 4, 4, 4, 4, 4, 4 };
    one_tensor(&b, "t", 0, ne, 0, 0, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "n_dims 0");
    gb_free(&b);
    one_tensor(&b, "t", 5, ne, 0, 0, 4096);
    expect_reject(&b, LLAVA_E_FORMAT, "n_dims 5");
    gb_free(&b);
    one_tensor(&b, "t", 0xffffffffu, ne, 0, 0, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "n_dims");
    gb_free(&b);

    /* negative and zero dimensions (CVE-2024-21802 class) */
    const int64_t bad[] = { -1, 0, INT64_MIN };
    for (int i = 0; i < 3; i++) {
        int64_t e[2] = { 4, bad[i] };
        one_tensor(&b, "t", 2, e, 0, 0, 64);
        expect_reject(&b, LLAVA_E_FORMAT, "ne[1]");
        gb_free(&b);
    }
    /* element count overflows int64: 2^32 * 2^32 */
    int64_t big[2] = { (int64_t)1 << 32, (int64_t)1 << 32 };
    one_tensor(&b, "t", 2, big, 0, 0, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "element count overflows");
    gb_free(&b);
    int64_t big4[4] = { 1 << 16, 1 << 16, 1 << 16, 1 << 16 };
    one_tensor(&b, "t", 4, big4, 1, 0, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "element count overflows");
    gb_free(&b);

    /* GHSA-96jg: element count fits int64, byte size does not fit size_t */
    int64_t g96[2] = { (int64_t)1 << 42, (int64_t)1 << 20 }; /* 2^62 F32 elements = 2^64 bytes */
    one_tensor(&b, "t", 2, g96, 0, 0, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "byte size overflows");
    gb_free(&b);
    int64_t g96b[1] = { (int64_t)1 << 61 }; /* 2^63 bytes: fits size_t, not int64 */
    one_tensor(&b, "t", 1, g96b, 0, 0, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "byte size overflows");
    gb_free(&b);
    /* quantized: Q8_0 with ne0 = 2^63 - 32 elements (fits int64) ->
     * (2^58 - 1) blocks * 34 bytes > INT64_MAX */
    int64_t q[1] = { INT64_MAX - 31 };
    one_tensor(&b, "t", 1, q, 8, 0, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "byte size overflows");
    gb_free(&b);
}
END_TEST

START_TEST(test_bad_types)
{
    gb b;
    int64_t ne[2] = { 256, 2 };
    const int32_t invalid[] = { 43, 1000, -1, INT32_MIN, 4, 5, 31, 32, 33, 36, 37, 38 };
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        one_tensor(&b, "t", 2, ne, invalid[i], 0, 4096);
        expect_reject(&b, LLAVA_E_FORMAT, "invalid ggml type");
        gb_free(&b);
    }
    /* a real ggml id whose block geometry we do not know */
    one_tensor(&b, "t", 2, ne, 41, 0, 4096);
    expect_reject(&b, LLAVA_E_UNSUPPORTED, "unknown block size");
    gb_free(&b);

    /* ne[0] not a multiple of the block: Q4_0 (32), Q4_K (256) */
    int64_t ne16[2] = { 16, 2 };
    one_tensor(&b, "t", 2, ne16, 2, 0, 4096);
    expect_reject(&b, LLAVA_E_FORMAT, "not a multiple of the Q4_0 block size 32");
    gb_free(&b);
    int64_t ne128[1] = { 128 };
    one_tensor(&b, "t", 1, ne128, 12, 0, 4096);
    expect_reject(&b, LLAVA_E_FORMAT, "not a multiple of the Q4_K block size 256");
    gb_free(&b);

    /* the geometry table against spec §1.3: a one-block tensor of each
     * type is accepted with exactly the spec's byte size */
    static const struct { int id, blck, size; } spec[] = {
        { 0, 1, 4 }, { 1, 1, 2 }, { 2, 32, 18 }, { 3, 32, 20 }, { 6, 32, 22 }, { 7, 32, 24 }, { 8, 32, 34 },
        { 9, 32, 36 }, { 10, 256, 84 }, { 11, 256, 110 }, { 12, 256, 144 }, { 13, 256, 176 }, { 14, 256, 210 },
        { 15, 256, 292 }, { 30, 1, 2 },
    };
    for (size_t i = 0; i < sizeof spec / sizeof *spec; i++) {
        int64_t e[2] = { spec[i].blck, 3 };
        one_tensor(&b, "t", 2, e, spec[i].id, 0, 3 * (size_t)spec[i].size);
        llv_gguf *g = expect_open(&b);
        ck_assert_uint_eq(llv_gguf_tensor_at(g, 0)->nbytes, 3 * (size_t)spec[i].size);
        llv_gguf_close(g);
        gb_free(&b);
        /* one byte less of data: rejected */
        one_tensor(&b, "t", 2, e, spec[i].id, 0, 3 * (size_t)spec[i].size - 1);
        expect_reject(&b, LLAVA_E_FORMAT, "outside the data section");
        gb_free(&b);
    }
}
END_TEST

START_TEST(test_types_agree_with_quant)
{
    /* gguf keeps its own geometry table (so the container layer does not
     * depend on the compute layer); it must agree with quant.c's, written
     * separately from the same spec table. */
    for (int id = -3; id < 64; id++) {
        const llv_type_info *ti = llv_type_get(id);
        int64_t ne[1] = { ti && ti->blck > 0 ? ti->blck : 1 };
        int64_t n_el;
        size_t nbytes;
        int rc = llv_gguf_tensor_size("t", id, 1, ne, &n_el, &nbytes, NULL);
        if (!ti) {
            ck_assert_msg(rc == LLAVA_E_FORMAT, "id %d", id);
            ck_assert_str_eq(llv_gguf_ggml_type_name(id), "?");
        } else if (ti->size == 0) {
            ck_assert_msg(rc == LLAVA_E_UNSUPPORTED, "id %d", id);
        } else {
            ck_assert_msg(rc == LLAVA_OK, "id %d", id);
            ck_assert_uint_eq(nbytes, ti->size);
            ck_assert_str_eq(llv_gguf_ggml_type_name(id), ti->name);
        }
    }
}
END_TEST

START_TEST(test_bad_names)
{
    gb b;
    int64_t ne[1] = { 8 };
    one_tensor(&b, "", 1, ne, 0, 0, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "empty tensor name");
    gb_free(&b);

    char name[80];
    memset(name, 'n', sizeof name);
    name[64] = '\0'; /* 64 bytes: one too many */
    one_tensor(&b, name, 1, ne, 0, 0, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "too long");
    gb_free(&b);
    name[63] = '\0'; /* 63 bytes: fine */
    one_tensor(&b, name, 1, ne, 0, 0, 64);
    llv_gguf *g = expect_open(&b);
    ck_assert_ptr_nonnull(llv_gguf_find_tensor(g, name));
    llv_gguf_close(g);
    gb_free(&b);

    /* embedded NUL */
    gb_init(&b);
    gb_header(&b, 3, 1, 0);
    gb_u64(&b, 3);
    gb_bytes(&b, "a\0b", 3);
    gb_u32(&b, 1);
    gb_u64(&b, 8);
    gb_u32(&b, 0);
    gb_u64(&b, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 32);
    expect_reject(&b, LLAVA_E_FORMAT, "NUL");
    gb_free(&b);

    /* duplicate name */
    gb_init(&b);
    gb_header(&b, 3, 2, 0);
    gb_tensor_info(&b, "w", 1, ne, 0, 0);
    gb_tensor_info(&b, "w", 1, ne, 0, 32);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "duplicate tensor name 'w'");
    gb_free(&b);
}
END_TEST

/* A file with general.alignment written as (type, bytes). */
static void with_alignment(gb *b, int type, uint64_t value, size_t vbytes)
{
    int64_t ne[1] = { 8 };
    gb_init(b);
    gb_header(b, 3, 1, 1);
    gb_str(b, "general.alignment");
    gb_u32(b, (uint32_t)type);
    for (size_t i = 0; i < vbytes; i++)
        gb_u8(b, (uint8_t)(value >> (8 * i)));
    gb_tensor_info(b, "t", 1, ne, 0, 0);
    gb_pad(b, 64);
    gb_zeros(b, 64);
}

START_TEST(test_bad_alignment)
{
    gb b;
    with_alignment(&b, LLV_GGUF_UINT32, 48, 4);
    expect_reject(&b, LLAVA_E_FORMAT, "not a power of two");
    gb_free(&b);
    with_alignment(&b, LLV_GGUF_UINT32, 0, 4);
    expect_reject(&b, LLAVA_E_FORMAT, "not a power of two");
    gb_free(&b);
    with_alignment(&b, LLV_GGUF_UINT32, 0x80000000u, 4);
    expect_reject(&b, LLAVA_E_FORMAT, "exceeds the limit");
    gb_free(&b);
    with_alignment(&b, LLV_GGUF_INT32, 32, 4);
    expect_reject(&b, LLAVA_E_FORMAT, "expected uint32");
    gb_free(&b);
    with_alignment(&b, LLV_GGUF_UINT64, 32, 8);
    expect_reject(&b, LLAVA_E_FORMAT, "expected uint32");
    gb_free(&b);
    /* alignment 64 is honoured: the data section starts at a multiple of 64 */
    with_alignment(&b, LLV_GGUF_UINT32, 64, 4);
    llv_gguf *g = expect_open(&b);
    ck_assert_uint_eq(llv_gguf_alignment(g), 64);
    ck_assert_uint_eq(llv_gguf_data_offset(g) % 64, 0);
    ck_assert_uint_eq(llv_gguf_data_offset(g), b.data_start);
    llv_gguf_close(g);
    gb_free(&b);
    /* alignment 1 is a power of two, but tensor data must still be 4-byte
     * aligned to be read in place: of offsets 0..3, exactly one is */
    int opened = 0;
    for (uint64_t off = 0; off < 4; off++) {
        int64_t ne1[1] = { 8 };
        gb_init(&b);
        gb_header(&b, 3, 1, 1);
        gb_str(&b, "general.alignment");
        gb_u32(&b, LLV_GGUF_UINT32);
        gb_u32(&b, 1);
        gb_tensor_info(&b, "t", 1, ne1, 0, off);
        gb_zeros(&b, 64);
        uint8_t *copy = llv_malloc_aligned(b.n); /* a 64-byte aligned base */
        memcpy(copy, b.p, b.n);
        llv_gguf *g1 = NULL;
        llv_err err = { 0 };
        int rc = llv_gguf_open_memory(copy, b.n, 0, &g1, &err);
        if (rc == LLAVA_OK) {
            opened++;
            ck_assert_uint_eq((uintptr_t)llv_gguf_find_tensor(g1, "t")->data % 4, 0);
            llv_gguf_close(g1);
        } else {
            ck_assert_int_eq(rc, LLAVA_E_FORMAT);
            ck_assert_msg(strstr(err.msg, "not 4-byte aligned") != NULL, "%s", err.msg);
        }
        llv_free_aligned(copy);
        gb_free(&b);
    }
    ck_assert_int_eq(opened, 1);
    /* 16 is valid, and then offset 16 is aligned */
    with_alignment(&b, LLV_GGUF_UINT32, 16, 4);
    g = expect_open(&b);
    ck_assert_uint_eq(llv_gguf_alignment(g), 16);
    llv_gguf_close(g);
    gb_free(&b);
}
END_TEST

START_TEST(test_bad_offsets)
{
    gb b;
    int64_t ne[1] = { 8 }; /* F32: 32 bytes */
    one_tensor(&b, "t", 1, ne, 0, 8, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "not a multiple of the alignment");
    gb_free(&b);
    /* offset + size past EOF ("Bleeding Llama") */
    one_tensor(&b, "t", 1, ne, 0, 32, 63);
    expect_reject(&b, LLAVA_E_FORMAT, "outside the data section");
    gb_free(&b);
    /* offset near 2^64: offset + size wraps (CVE-2025-53630 / GGML_PAD class) */
    one_tensor(&b, "t", 1, ne, 0, UINT64_MAX - 31, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "outside the data section");
    gb_free(&b);
    /* two tensors of 2^62 bytes each: their padded running sum would wrap a
     * 64-bit size in RC; here each must lie in the file */
    gb_init(&b);
    gb_header(&b, 3, 2, 0);
    int64_t q[1] = { (int64_t)1 << 62 };
    gb_tensor_info(&b, "a", 1, q, 24 /* I8 */, 0);
    gb_tensor_info(&b, "b", 1, q, 24, (uint64_t)1 << 62);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "outside the data section");
    gb_free(&b);
    /* a tensor of INT64_MAX-ish bytes: PAD() must not wrap */
    int64_t m[1] = { INT64_MAX };
    one_tensor(&b, "t", 1, m, 24, 0, 64);
    expect_reject(&b, LLAVA_E_FORMAT, "outside the data section");
    gb_free(&b);

    /* data section starts past EOF: tensor infos end, no padding/data */
    gb_init(&b);
    gb_header(&b, 3, 1, 0);
    gb_tensor_info(&b, "t", 1, ne, 0, 0);
    expect_reject(&b, LLAVA_E_FORMAT, "data section");
    gb_free(&b);

    /* overlapping tensors */
    gb_init(&b);
    gb_header(&b, 3, 2, 0);
    int64_t ne16[1] = { 16 }; /* 64 bytes */
    gb_tensor_info(&b, "a", 1, ne16, 0, 0);
    gb_tensor_info(&b, "b", 1, ne, 0, 32);
    gb_pad(&b, 32);
    gb_zeros(&b, 128);
    expect_reject(&b, LLAVA_E_FORMAT, "overlap");
    gb_free(&b);

    /* not RC's running-sum order, but aligned, disjoint and in the file: accepted */
    gb_init(&b);
    gb_header(&b, 3, 2, 0);
    gb_tensor_info(&b, "a", 1, ne, 0, 64);
    gb_tensor_info(&b, "b", 1, ne, 0, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 96);
    b.p[b.data_start + 64] = 0xAA;
    llv_gguf *g = expect_open(&b);
    ck_assert_uint_eq(((const uint8_t *)llv_gguf_find_tensor(g, "a")->data)[0], 0xAA);
    llv_gguf_close(g);
    gb_free(&b);
}
END_TEST

START_TEST(test_truncation)
{
    /* Every proper prefix of a valid file must fail cleanly (run under ASan:
     * each prefix is opened from an exact-size heap copy). */
    gb b;
    gb_valid_file(&b, 3);
    /* The last tensor ends at data_start + 48; the 16 bytes of padding
     * after it are not needed (trailing padding is not required). */
    for (size_t n = b.data_start + 48; n <= b.n; n++) {
        llv_gguf *g = NULL;
        ck_assert_int_eq(llv_gguf_open_memory(b.p, n, 0, &g, NULL), LLAVA_OK);
        llv_gguf_close(g);
    }
    for (size_t n = 0; n < b.data_start + 48; n++) {
        if (n == 0) {
            llv_gguf *g;
            ck_assert_int_eq(llv_gguf_open_memory(b.p, 0, 0, &g, NULL), LLAVA_E_FORMAT);
            continue;
        }
        expect_reject_at(b.p, n, LLAVA_E_FORMAT, NULL, __LINE__);
    }
    gb_free(&b);
    /* A metadata-only file with one value of every type: with no tensors
     * the count bound is weak, so prefixes end inside every kind of value. */
    gb_init(&b);
    gb_header(&b, 3, 0, 14);
    for (int t = 0; t < LLV_GGUF_TYPE_COUNT; t++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", t);
        gb_str(&b, key);
        gb_u32(&b, (uint32_t)t);
        if (t == LLV_GGUF_STRING) {
            gb_str(&b, "value");
        } else if (t == LLV_GGUF_ARRAY) {
            gb_u32(&b, LLV_GGUF_STRING);
            gb_u64(&b, 2);
            gb_str(&b, "ab");
            gb_str(&b, "cde");
        } else {
            gb_zeros(&b, t == 0 || t == 1 || t == 7 ? 1 : t <= 3 ? 2 : t <= 6 ? 4 : 8);
        }
    }
    gb_str(&b, "k.f32arr");
    gb_u32(&b, LLV_GGUF_ARRAY);
    gb_u32(&b, LLV_GGUF_FLOAT32);
    gb_u64(&b, 2);
    gb_zeros(&b, 8);
    {
        llv_gguf *g = expect_open(&b);
        ck_assert_int_eq(llv_gguf_n_kv(g), 14);
        llv_gguf_close(g);
    }
    for (size_t n = 1; n < b.n; n++)
        expect_reject_at(b.p, n, LLAVA_E_FORMAT, NULL, __LINE__);
    gb_free(&b);

    /* and every prefix of the golden mmproj's header + metadata + infos */
    FILE *f = fopen(datafile("golden/tiny-dev/model-mmproj.gguf"), "rb");
    ck_assert_ptr_nonnull(f);
    uint8_t *buf = malloc(4096);
    size_t got = fread(buf, 1, 4096, f);
    fclose(f);
    ck_assert_uint_eq(got, 4096);
    for (size_t n = 1; n <= 3072; n += 1) /* 3072 = its data offset */
        expect_reject_at(buf, n, LLAVA_E_FORMAT, NULL, __LINE__);
    free(buf);
}
END_TEST

static int inside(const void *p, size_t n, const uint8_t *buf, size_t size)
{
    const uint8_t *q = p;
    return q >= buf && q <= buf + size && n <= (size_t)(buf + size - q);
}

/* Whatever a successful open returns lies inside the buffer. */
static void check_invariants(const llv_gguf *g, const uint8_t *buf, size_t size)
{
    for (int64_t i = 0; i < llv_gguf_n_kv(g); i++) {
        llv_str k = llv_gguf_key(g, i);
        ck_assert(k.len > 0 && inside(k.ptr, k.len, buf, size));
        int t = llv_gguf_kv_type(g, i);
        ck_assert(t >= 0 && t < LLV_GGUF_TYPE_COUNT);
        if (t == LLV_GGUF_STRING) {
            llv_str v = llv_gguf_kv_str(g, i);
            ck_assert(inside(v.ptr, v.len, buf, size));
        } else if (t == LLV_GGUF_ARRAY && llv_gguf_arr_type(g, i) == LLV_GGUF_STRING) {
            for (uint64_t j = 0; j < llv_gguf_arr_n(g, i); j++) {
                llv_str v = llv_gguf_arr_str(g, i, j);
                ck_assert(inside(v.ptr, v.len, buf, size));
            }
        } else if (t == LLV_GGUF_ARRAY) {
            ck_assert(llv_gguf_arr_type(g, i) != LLV_GGUF_ARRAY);
            (void)llv_gguf_arr_get_float(g, i, llv_gguf_arr_n(g, i) - 1);
        }
    }
    for (int64_t i = 0; i < llv_gguf_n_tensors(g); i++) {
        const llv_gguf_tensor *t = llv_gguf_tensor_at(g, i);
        ck_assert(inside(t->data, t->nbytes, buf, size));
        ck_assert(t->n_dims >= 1 && t->n_dims <= 4);
        ck_assert(strlen(t->name) > 0 && strlen(t->name) < 64);
        ck_assert(llv_gguf_find_tensor(g, t->name) == t);
    }
}

START_TEST(test_mutations)
{
    /* Random corruption of two valid files (one byte, or a 4/8-byte field
     * set to an extreme value): each open fails with a message or yields an
     * index whose every pointer lies inside the buffer. Under ASan any
     * over-read fails the test. */
    gb b, v;
    gb_valid_file(&b, 3);
    gb_init(&v); /* a vocab-like file: string arrays and scalars */
    gb_header(&v, 3, 1, 3);
    gb_str(&v, "tok"); gb_u32(&v, LLV_GGUF_ARRAY); gb_u32(&v, LLV_GGUF_STRING); gb_u64(&v, 3);
    gb_str(&v, "<s>"); gb_str(&v, ""); gb_str(&v, "abc");
    gb_kv_u32(&v, "general.alignment", 16);
    gb_kv_str(&v, "name", "x");
    int64_t ne[2] = { 32, 1 };
    gb_tensor_info(&v, "q", 2, ne, 2 /* Q4_0 */, 0);
    gb_pad(&v, 16);
    gb_zeros(&v, 18);
    const gb *files[2] = { &b, &v };
    static const uint64_t extremes[] = { 0, 1, 0x7f, 0xff, 0xffff, 0x7fffffff, 0x80000000u, 0xffffffffu,
                                         (uint64_t)1 << 30, ((uint64_t)1 << 30) + 1, (uint64_t)INT64_MAX,
                                         (uint64_t)INT64_MAX + 1, UINT64_MAX, UINT64_MAX - 31 };
    unsigned seed = 1;
    int opened = 0, rejected = 0;
    for (int iter = 0; iter < 40000; iter++) {
        const gb *src = files[iter & 1];
        uint8_t *m = malloc(src->n);
        memcpy(m, src->p, src->n);
        seed = seed * 1103515245u + 12345u;
        size_t pos = (seed >> 8) % src->n;
        seed = seed * 1103515245u + 12345u;
        unsigned kind = (seed >> 16) % 3;
        seed = seed * 1103515245u + 12345u;
        uint64_t x = kind == 0 ? (seed >> 16) & 0xff : extremes[(seed >> 16) % (sizeof extremes / sizeof *extremes)];
        size_t width = kind == 0 ? 1 : kind == 1 ? 4 : 8;
        for (size_t k = 0; k < width && pos + k < src->n; k++)
            m[pos + k] = (uint8_t)(x >> (8 * k));
        llv_gguf *g = NULL;
        llv_err err = { 0 };
        int rc = llv_gguf_open_memory(m, src->n, 0, &g, &err);
        if (rc == LLAVA_OK) {
            opened++;
            check_invariants(g, m, src->n);
            llv_gguf_close(g);
        } else {
            rejected++;
            ck_assert_msg(rc == LLAVA_E_FORMAT || rc == LLAVA_E_UNSUPPORTED, "rc %d: %s", rc, err.msg);
            ck_assert(err.msg[0] != '\0');
            ck_assert_ptr_null(g);
        }
        free(m);
    }
    ck_assert_int_gt(opened, 1000); /* both outcomes are exercised */
    ck_assert_int_gt(rejected, 1000);
    gb_free(&b);
    gb_free(&v);
}
END_TEST

START_TEST(test_alloc_failures)
{
    /* Every allocation of open (copy=1) failing in turn: E_NOMEM, no leak
     * (ASan/LSan), never a crash; then it succeeds. */
    gb b;
    gb_valid_file(&b, 3);
    int ok = 0;
    for (long k = 0; k < 50 && !ok; k++) {
        llv_gguf *g = NULL;
        llv_err err = { 0 };
        llv_alloc_fail_inject(k);
        int rc = llv_gguf_open_memory(b.p, b.n, 1, &g, &err);
        llv_alloc_fail_inject(-1);
        if (rc == LLAVA_OK) {
            ok = 1;
            llv_gguf_close(g);
        } else {
            ck_assert_int_eq(rc, LLAVA_E_NOMEM);
            ck_assert_ptr_null(g);
        }
    }
    ck_assert(ok);
    gb_free(&b);
}
END_TEST

/* ======================================================================
 * Getters
 * ====================================================================== */

START_TEST(test_getters)
{
    gb b;
    gb_init(&b);
    gb_header(&b, 3, 0, 12);
    gb_kv_u32(&b, "u32", 4000000000u);
    gb_kv_str(&b, "str", "hello");
    gb_str(&b, "i32neg"); gb_u32(&b, LLV_GGUF_INT32); gb_u32(&b, (uint32_t)-5);
    gb_str(&b, "u64big"); gb_u32(&b, LLV_GGUF_UINT64); gb_u64(&b, (uint64_t)1 << 33);
    gb_str(&b, "u64max"); gb_u32(&b, LLV_GGUF_UINT64); gb_u64(&b, UINT64_MAX);
    gb_str(&b, "u8"); gb_u32(&b, LLV_GGUF_UINT8); gb_u8(&b, 200);
    gb_str(&b, "flag"); gb_u32(&b, LLV_GGUF_BOOL); gb_u8(&b, 1);
    gb_str(&b, "f64"); gb_u32(&b, LLV_GGUF_FLOAT64); { double d = 0.25; uint64_t u; memcpy(&u, &d, 8); gb_u64(&b, u); }
    gb_str(&b, "f64big"); gb_u32(&b, LLV_GGUF_FLOAT64); { double d = 1e300; uint64_t u; memcpy(&u, &d, 8); gb_u64(&b, u); }
    gb_str(&b, "f32"); gb_u32(&b, LLV_GGUF_FLOAT32); { float f = 1.5f; uint32_t u; memcpy(&u, &f, 4); gb_u32(&b, u); }
    gb_str(&b, "farr"); gb_u32(&b, LLV_GGUF_ARRAY); gb_u32(&b, LLV_GGUF_FLOAT32); gb_u64(&b, 2);
    { float f[2] = { -2.5f, 7.0f }; uint32_t u; memcpy(&u, &f[0], 4); gb_u32(&b, u); memcpy(&u, &f[1], 4); gb_u32(&b, u); }
    gb_str(&b, "i16arr"); gb_u32(&b, LLV_GGUF_ARRAY); gb_u32(&b, LLV_GGUF_INT16); gb_u64(&b, 2);
    gb_u8(&b, 0xff); gb_u8(&b, 0xff); gb_u8(&b, 0x00); gb_u8(&b, 0x80);
    llv_gguf *g = expect_open(&b);
    llv_err err = { 0 };
    uint32_t u;
    int64_t i64;
    float f;
    bool bo;
    llv_str s;

    ck_assert_int_eq(llv_gguf_get_u32(g, "u32", &u, &err), LLAVA_OK);
    ck_assert_uint_eq(u, 4000000000u);
    ck_assert_int_eq(llv_gguf_get_u32(g, "u8", &u, &err), LLAVA_OK);
    ck_assert_uint_eq(u, 200);
    ck_assert_int_eq(llv_gguf_get_u32(g, "flag", &u, &err), LLAVA_OK); /* bool is an integer */
    ck_assert_uint_eq(u, 1);
    ck_assert_int_eq(llv_gguf_get_i64(g, "i32neg", &i64, &err), LLAVA_OK);
    ck_assert_int_eq(i64, -5);
    ck_assert_int_eq(llv_gguf_get_i64(g, "u64big", &i64, &err), LLAVA_OK);
    ck_assert_int_eq(i64, (int64_t)1 << 33);

    /* out of range, wrong type, absent: E_FORMAT naming the key */
    ck_assert_int_eq(llv_gguf_get_u32(g, "i32neg", &u, &err), LLAVA_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "'i32neg' = -5 is out of range"));
    ck_assert_int_eq(llv_gguf_get_u32(g, "u64big", &u, &err), LLAVA_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "'u64big' = 8589934592 is out of range"));
    ck_assert_int_eq(llv_gguf_get_i64(g, "u64max", &i64, &err), LLAVA_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "u64max"));
    ck_assert_int_eq(llv_gguf_get_u32(g, "str", &u, &err), LLAVA_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "key 'str' has type string"));
    ck_assert_int_eq(llv_gguf_get_u32(g, "f32", &u, &err), LLAVA_E_FORMAT);
    ck_assert_int_eq(llv_gguf_get_u32(g, "farr", &u, &err), LLAVA_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "array of float32"));
    ck_assert_int_eq(llv_gguf_get_u32(g, "nope", &u, &err), LLAVA_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "key 'nope' not found"));
    ck_assert_int_eq(llv_gguf_get_str(g, "u32", &s, &err), LLAVA_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "'u32' has type uint32, expected string"));
    ck_assert_int_eq(llv_gguf_get_bool(g, "u8", &bo, &err), LLAVA_E_FORMAT);
    ck_assert_int_eq(llv_gguf_get_f32(g, "u32", &f, &err), LLAVA_E_FORMAT);
    ck_assert_int_eq(llv_gguf_get_f32(g, "f64big", &f, &err), LLAVA_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "f64big"));

    ck_assert_int_eq(llv_gguf_get_f32(g, "f64", &f, &err), LLAVA_OK);
    ck_assert(f == 0.25f);
    ck_assert_int_eq(llv_gguf_get_f32(g, "f32", &f, &err), LLAVA_OK);
    ck_assert(f == 1.5f);
    ck_assert_int_eq(llv_gguf_get_bool(g, "flag", &bo, &err), LLAVA_OK);
    ck_assert(bo);
    ck_assert_int_eq(llv_gguf_get_str(g, "str", &s, &err), LLAVA_OK);
    ck_assert(s.len == 5 && memcmp(s.ptr, "hello", 5) == 0);

    /* *_opt: default when absent, still an error on a wrong type */
    ck_assert_int_eq(llv_gguf_get_u32_opt(g, "nope", 17, &u, &err), LLAVA_OK);
    ck_assert_uint_eq(u, 17);
    ck_assert_int_eq(llv_gguf_get_u32_opt(g, "u8", 17, &u, &err), LLAVA_OK);
    ck_assert_uint_eq(u, 200);
    ck_assert_int_eq(llv_gguf_get_u32_opt(g, "str", 17, &u, &err), LLAVA_E_FORMAT);
    ck_assert_int_eq(llv_gguf_get_f32_opt(g, "nope", 2.5f, &f, &err), LLAVA_OK);
    ck_assert(f == 2.5f);
    ck_assert_int_eq(llv_gguf_get_f32_opt(g, "str", 2.5f, &f, &err), LLAVA_E_FORMAT);
    ck_assert_int_eq(llv_gguf_get_bool_opt(g, "nope", true, &bo, &err), LLAVA_OK);
    ck_assert(bo);
    ck_assert_int_eq(llv_gguf_get_bool_opt(g, "u32", true, &bo, &err), LLAVA_E_FORMAT);
    ck_assert_int_eq(llv_gguf_get_str_opt(g, "nope", &s, &err), LLAVA_OK);
    ck_assert_ptr_null(s.ptr);
    ck_assert_int_eq(llv_gguf_get_str_opt(g, "u8", &s, &err), LLAVA_E_FORMAT);

    /* arrays */
    const void *d;
    uint64_t n;
    ck_assert_int_eq(llv_gguf_get_arr(g, "farr", LLV_GGUF_FLOAT32, &d, &n, &err), LLAVA_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(llv_gguf_get_arr(g, "farr", -1, &d, &n, &err), LLAVA_OK);
    ck_assert_int_eq(llv_gguf_get_arr(g, "farr", LLV_GGUF_INT32, &d, &n, &err), LLAVA_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "'farr' has type array of float32, expected array of int32"));
    ck_assert_int_eq(llv_gguf_get_arr(g, "u32", -1, &d, &n, &err), LLAVA_E_FORMAT);
    ck_assert_int_eq(llv_gguf_get_arr_str(g, "farr", &n, &err), LLAVA_E_FORMAT);
    ck_assert_int_eq(llv_gguf_get_arr(g, "nope", -1, &d, &n, &err), LLAVA_E_FORMAT);
    int64_t fa = llv_gguf_find_key(g, "farr"), ia = llv_gguf_find_key(g, "i16arr");
    ck_assert(llv_gguf_arr_get_float(g, fa, 0) == -2.5);
    ck_assert(llv_gguf_arr_get_float(g, fa, 1) == 7.0);
    ck_assert_int_eq(llv_gguf_arr_get_int(g, fa, 1), 7);
    ck_assert_int_eq(llv_gguf_arr_get_int(g, ia, 0), -1);
    ck_assert_int_eq(llv_gguf_arr_get_int(g, ia, 1), -32768);
    ck_assert_int_eq(llv_gguf_arr_get_int(g, ia, 2), 0);  /* out of range: 0 */
    ck_assert_int_eq(llv_gguf_arr_get_int(g, -1, 0), 0);
    ck_assert_int_eq(llv_gguf_arr_get_int(g, 999, 0), 0);
    ck_assert_ptr_null(llv_gguf_arr_str(g, fa, 0).ptr); /* not a string array */
    ck_assert_uint_eq(llv_gguf_arr_n(g, fa), 2);
    ck_assert_int_eq(llv_gguf_arr_type(g, fa), LLV_GGUF_FLOAT32);

    /* by-index accessors */
    int64_t k = llv_gguf_find_key(g, "u64max");
    ck_assert_int_eq(llv_gguf_kv_type(g, k), LLV_GGUF_UINT64);
    ck_assert(llv_gguf_kv_uint(g, k) == UINT64_MAX);
    ck_assert_int_eq(llv_gguf_kv_int(g, llv_gguf_find_key(g, "i32neg")), -5);
    ck_assert(llv_gguf_kv_float(g, llv_gguf_find_key(g, "f64")) == 0.25);
    ck_assert_ptr_null(llv_gguf_kv_str(g, k).ptr);
    ck_assert_int_eq(llv_gguf_kv_type(g, -1), -1);
    ck_assert_ptr_null(llv_gguf_key(g, 12).ptr);
    ck_assert_int_eq(llv_gguf_find_key(g, ""), -1);
    ck_assert_str_eq(llv_gguf_type_name(LLV_GGUF_FLOAT64), "float64");
    ck_assert_str_eq(llv_gguf_type_name(13), "?");
    ck_assert_str_eq(llv_gguf_ggml_type_name(12), "Q4_K");
    ck_assert_str_eq(llv_gguf_ggml_type_name(4), "?");
    ck_assert_ptr_null(llv_gguf_tensor_at(g, 0));
    ck_assert_ptr_null(llv_gguf_find_tensor(g, "x"));
    llv_gguf_close(g);
    gb_free(&b);
}
END_TEST

START_TEST(test_many_keys)
{
    /* 5000 keys and 3000 tensors in scrambled order: every one is found
     * (sorted index + binary search), neighbours and prefixes are not. */
    enum { NK = 5000, NT = 3000 };
    gb b;
    gb_init(&b);
    gb_header(&b, 3, NT, NK);
    char key[32];
    for (int i = 0; i < NK; i++) {
        int k = (i * 7919) % NK;
        snprintf(key, sizeof key, "k.%d", k);
        gb_kv_u32(&b, key, (uint32_t)k * 3);
    }
    int64_t ne[1] = { 1 };
    for (int i = 0; i < NT; i++) {
        int k = (i * 7919) % NT;
        snprintf(key, sizeof key, "t%d", k);
        gb_tensor_info(&b, key, 1, ne, 24 /* I8 */, (uint64_t)i * 32);
    }
    gb_pad(&b, 32);
    gb_zeros(&b, (size_t)NT * 32);
    llv_gguf *g = expect_open(&b);
    llv_err err = { 0 };
    for (int k = 0; k < NK; k++) {
        uint32_t v;
        snprintf(key, sizeof key, "k.%d", k);
        ck_assert_int_eq(llv_gguf_get_u32(g, key, &v, &err), LLAVA_OK);
        ck_assert_uint_eq(v, (uint32_t)k * 3);
    }
    ck_assert_int_eq(llv_gguf_find_key(g, "k."), -1);
    ck_assert_int_eq(llv_gguf_find_key(g, "k.5000"), -1);
    ck_assert_int_eq(llv_gguf_find_key(g, "k.49999"), -1);
    for (int k = 0; k < NT; k++) {
        snprintf(key, sizeof key, "t%d", k);
        const llv_gguf_tensor *t = llv_gguf_find_tensor(g, key);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->name, key);
    }
    ck_assert_ptr_null(llv_gguf_find_tensor(g, "t"));
    ck_assert_ptr_null(llv_gguf_find_tensor(g, "t3000"));
    llv_gguf_close(g);
    gb_free(&b);
}
END_TEST

/* ======================================================================
 * Writer
 * ====================================================================== */

START_TEST(test_writer_matches_bytes)
{
    /* The writer produces exactly the bytes of the hand-built reference. */
    gb b;
    gb_valid_file(&b, 3);
    llv_gguf_writer *w = llv_gguf_writer_new();
    ck_assert_int_eq(llv_gguf_add_str(w, "general.architecture", "llama"), LLAVA_OK);
    ck_assert_int_eq(llv_gguf_add_u32(w, "x.count", 7), LLAVA_OK);
    int32_t arr[3] = { 1, 2, 3 };
    ck_assert_int_eq(llv_gguf_add_arr(w, "x.arr", LLV_GGUF_INT32, arr, 3), LLAVA_OK);
    int64_t ne_a[2] = { 4, 2 }, ne_b[1] = { 8 };
    uint8_t da[32], db[16];
    memcpy(da, b.p + b.data_start, 32);
    memcpy(db, b.p + b.data_start + 32, 16);
    ck_assert_int_eq(llv_gguf_add_tensor(w, "a", 0, 2, ne_a, da, 32), LLAVA_OK);
    ck_assert_int_eq(llv_gguf_add_tensor(w, "b", 1, 1, ne_b, db, 16), LLAVA_OK);
    void *out;
    size_t size;
    llv_err err = { 0 };
    ck_assert_int_eq(llv_gguf_write_memory(w, &out, &size, &err), LLAVA_OK);
    ck_assert_uint_eq(size, b.n);
    ck_assert(memcmp(out, b.p, size) == 0);
    llv_free(out);
    llv_gguf_writer_free(w);
    gb_free(&b);
}
END_TEST

START_TEST(test_writer_roundtrip)
{
    llv_gguf_writer *w = llv_gguf_writer_new();
    ck_assert_ptr_nonnull(w);
    uint8_t u8 = 250; int8_t i8 = -100; uint16_t u16 = 65000; int16_t i16 = -30000;
    uint32_t u32 = 4000000000u; int32_t i32 = -2000000000; uint64_t u64 = UINT64_MAX - 1;
    int64_t i64 = INT64_MIN + 1; float f32 = 3.25f; double f64 = -1e-300; bool bo = true;
    const void *vals[] = { &u8, &i8, &u16, &i16, &u32, &i32, &f32, &bo, NULL, NULL, &u64, &i64, &f64 };
    char key[32];
    for (int t = 0; t < LLV_GGUF_TYPE_COUNT; t++) {
        if (!vals[t])
            continue;
        snprintf(key, sizeof key, "s.%s", llv_gguf_type_name(t));
        ck_assert_int_eq(llv_gguf_add_val(w, key, t, vals[t]), LLAVA_OK);
    }
    ck_assert_int_eq(llv_gguf_add_str(w, "s.string", "quote\" nl\n \xe2\x96\x81"), LLAVA_OK);
    ck_assert_int_eq(llv_gguf_add_str(w, "s.empty", ""), LLAVA_OK);
    ck_assert_int_eq(llv_gguf_add_i32(w, "s.replaced", 1), LLAVA_OK);
    ck_assert_int_eq(llv_gguf_add_f32(w, "s.replaced", 2.0f), LLAVA_OK); /* replaces */
    ck_assert_int_eq(llv_gguf_add_u64(w, "s.u64b", 12345678901234ULL), LLAVA_OK);
    ck_assert_int_eq(llv_gguf_add_bool(w, "s.false", false), LLAVA_OK);
    /* arrays of every numeric type: element j = j*3 - 5 (as that type) */
    for (int t = 0; t < LLV_GGUF_TYPE_COUNT; t++) {
        if (t == LLV_GGUF_STRING || t == LLV_GGUF_ARRAY)
            continue;
        uint8_t raw[10 * 8];
        for (int j = 0; j < 10; j++) {
            int v = j * 3 - 5;
            uint8_t *p = raw + j * (t == LLV_GGUF_BOOL || t <= 1 ? 1 : t <= 3 ? 2 : t <= 6 ? 4 : 8);
            switch (t) {
            case 0: *p = (uint8_t)(v + 5); break;
            case 1: *(int8_t *)p = (int8_t)v; break;
            case 2: { uint16_t x = (uint16_t)(v + 5); memcpy(p, &x, 2); break; }
            case 3: { int16_t x = (int16_t)v; memcpy(p, &x, 2); break; }
            case 4: { uint32_t x = (uint32_t)(v + 5); memcpy(p, &x, 4); break; }
            case 5: { int32_t x = v; memcpy(p, &x, 4); break; }
            case 6: { float x = (float)v; memcpy(p, &x, 4); break; }
            case 7: *p = (uint8_t)(j & 1); break;
            case 10: { uint64_t x = (uint64_t)(v + 5); memcpy(p, &x, 8); break; }
            case 11: { int64_t x = v; memcpy(p, &x, 8); break; }
            case 12: { double x = v; memcpy(p, &x, 8); break; }
            }
        }
        snprintf(key, sizeof key, "a.%s", llv_gguf_type_name(t));
        ck_assert_int_eq(llv_gguf_add_arr(w, key, t, raw, 10), LLAVA_OK);
    }
    ck_assert_int_eq(llv_gguf_add_arr(w, "a.empty", LLV_GGUF_INT32, NULL, 0), LLAVA_OK);
    const char *strs[] = { "zero", "", "two \xe2\x96\x81" };
    ck_assert_int_eq(llv_gguf_add_arr_str(w, "a.strings", strs, 3), LLAVA_OK);
    ck_assert_int_eq(llv_gguf_add_arr_str(w, "a.nostrings", NULL, 0), LLAVA_OK);
    ck_assert_int_eq(llv_gguf_add_arr(w, "a.bad", LLV_GGUF_STRING, strs, 1), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llv_gguf_add_arr(w, "a.bad", LLV_GGUF_ARRAY, strs, 1), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llv_gguf_add_u32(w, "", 1), LLAVA_E_INVALID_ARG);

    /* tensors of several types, random bytes */
    static const struct { int type; uint32_t n_dims; int64_t ne[4]; size_t nbytes; } ts[] = {
        { 0, 2, { 3, 5, 1, 1 }, 60 },           /* F32 */
        { 1, 3, { 7, 2, 3, 1 }, 84 },           /* F16 */
        { 2, 2, { 64, 3, 1, 1 }, 2 * 3 * 18 },  /* Q4_0 */
        { 8, 1, { 96, 1, 1, 1 }, 3 * 34 },      /* Q8_0 */
        { 12, 2, { 256, 2, 1, 1 }, 2 * 144 },   /* Q4_K */
        { 14, 4, { 256, 1, 2, 1 }, 2 * 210 },   /* Q6_K */
        { 30, 1, { 33, 1, 1, 1 }, 66 },         /* BF16 */
    };
    uint8_t *bufs[7];
    unsigned seed = 12345;
    for (int i = 0; i < 7; i++) {
        bufs[i] = malloc(ts[i].nbytes);
        for (size_t j = 0; j < ts[i].nbytes; j++)
            bufs[i][j] = (uint8_t)((seed = seed * 1103515245u + 12345u) >> 16);
        snprintf(key, sizeof key, "t%d.%s", i, llv_gguf_ggml_type_name(ts[i].type));
        ck_assert_int_eq(llv_gguf_add_tensor(w, key, ts[i].type, ts[i].n_dims, ts[i].ne, bufs[i], ts[i].nbytes),
                         LLAVA_OK);
    }
    /* writer input validation */
    ck_assert_int_eq(llv_gguf_add_tensor(w, "t0.F32", 0, 2, ts[0].ne, bufs[0], 60), LLAVA_E_INVALID_ARG); /* dup */
    ck_assert_int_eq(llv_gguf_add_tensor(w, "wrong", 0, 2, ts[0].ne, bufs[0], 59), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llv_gguf_add_tensor(w, "wrong", 2, 1, ts[0].ne, bufs[0], 60), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llv_gguf_add_tensor(w, "wrong", 4, 1, ts[0].ne, bufs[0], 60), LLAVA_E_INVALID_ARG);

    ck_assert_int_eq(llv_gguf_add_u32(w, "general.alignment", 64), LLAVA_OK);
    char path[] = "/tmp/check_gguf_rt_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    llv_err err = { 0 };
    ck_assert_msg(llv_gguf_write_file(w, path, &err) == LLAVA_OK, "%s", err.msg);
    llv_gguf_writer_free(w);

    llv_gguf *g = NULL;
    ck_assert_msg(llv_gguf_open_file(path, 0, &g, &err) == LLAVA_OK, "%s", err.msg);
    unlink(path);
    ck_assert_uint_eq(llv_gguf_version(g), 3);
    ck_assert_uint_eq(llv_gguf_alignment(g), 64);

    for (int t = 0; t < LLV_GGUF_TYPE_COUNT; t++) {
        if (!vals[t])
            continue;
        snprintf(key, sizeof key, "s.%s", llv_gguf_type_name(t));
        int64_t i = llv_gguf_find_key(g, key);
        ck_assert_int_ge(i, 0);
        ck_assert_int_eq(llv_gguf_kv_type(g, i), t);
    }
    ck_assert_int_eq(llv_gguf_kv_int(g, llv_gguf_find_key(g, "s.uint8")), 250);
    ck_assert_int_eq(llv_gguf_kv_int(g, llv_gguf_find_key(g, "s.int8")), -100);
    ck_assert_int_eq(llv_gguf_kv_int(g, llv_gguf_find_key(g, "s.uint16")), 65000);
    ck_assert_int_eq(llv_gguf_kv_int(g, llv_gguf_find_key(g, "s.int16")), -30000);
    ck_assert_int_eq(llv_gguf_kv_int(g, llv_gguf_find_key(g, "s.uint32")), 4000000000LL);
    ck_assert_int_eq(llv_gguf_kv_int(g, llv_gguf_find_key(g, "s.int32")), -2000000000);
    ck_assert(llv_gguf_kv_uint(g, llv_gguf_find_key(g, "s.uint64")) == UINT64_MAX - 1);
    ck_assert_int_eq(llv_gguf_kv_int(g, llv_gguf_find_key(g, "s.int64")), INT64_MIN + 1);
    ck_assert(llv_gguf_kv_float(g, llv_gguf_find_key(g, "s.float32")) == 3.25);
    ck_assert(llv_gguf_kv_float(g, llv_gguf_find_key(g, "s.float64")) == -1e-300);
    ck_assert_int_eq(llv_gguf_kv_int(g, llv_gguf_find_key(g, "s.bool")), 1);
    ck_assert_int_eq(llv_gguf_kv_int(g, llv_gguf_find_key(g, "s.false")), 0);
    ck_assert_int_eq(llv_gguf_kv_int(g, llv_gguf_find_key(g, "s.u64b")), 12345678901234LL);
    int64_t r = llv_gguf_find_key(g, "s.replaced");
    ck_assert_int_eq(llv_gguf_kv_type(g, r), LLV_GGUF_FLOAT32);
    ck_assert(llv_gguf_kv_float(g, r) == 2.0);
    llv_str s = llv_gguf_kv_str(g, llv_gguf_find_key(g, "s.string"));
    ck_assert(s.len == 14 && memcmp(s.ptr, "quote\" nl\n \xe2\x96\x81", 14) == 0);
    s = llv_gguf_kv_str(g, llv_gguf_find_key(g, "s.empty"));
    ck_assert_ptr_nonnull(s.ptr);
    ck_assert_uint_eq(s.len, 0);

    for (int t = 0; t < LLV_GGUF_TYPE_COUNT; t++) {
        if (t == LLV_GGUF_STRING || t == LLV_GGUF_ARRAY)
            continue;
        snprintf(key, sizeof key, "a.%s", llv_gguf_type_name(t));
        int64_t i = llv_gguf_find_key(g, key);
        ck_assert_int_eq(llv_gguf_arr_type(g, i), t);
        ck_assert_uint_eq(llv_gguf_arr_n(g, i), 10);
        for (int j = 0; j < 10; j++) {
            int v = j * 3 - 5;
            int64_t want = t == 7 ? (j & 1) : (t == 0 || t == 2 || t == 4 || t == 10) ? v + 5 : v;
            ck_assert_int_eq(llv_gguf_arr_get_int(g, i, (uint64_t)j), want);
            ck_assert(llv_gguf_arr_get_float(g, i, (uint64_t)j) == (double)want);
        }
    }
    uint64_t n;
    const void *d;
    ck_assert_int_eq(llv_gguf_get_arr(g, "a.empty", LLV_GGUF_INT32, &d, &n, &err), LLAVA_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(llv_gguf_get_arr_str(g, "a.strings", &n, &err), LLAVA_OK);
    ck_assert_uint_eq(n, 3);
    int64_t si = llv_gguf_find_key(g, "a.strings");
    for (int j = 0; j < 3; j++) {
        s = llv_gguf_arr_str(g, si, (uint64_t)j);
        ck_assert(s.len == strlen(strs[j]) && memcmp(s.ptr, strs[j], s.len) == 0);
    }
    ck_assert_int_eq(llv_gguf_get_arr_str(g, "a.nostrings", &n, &err), LLAVA_OK);
    ck_assert_uint_eq(n, 0);

    ck_assert_int_eq(llv_gguf_n_tensors(g), 7);
    ck_assert_uint_eq(llv_gguf_data_offset(g) % 64, 0);
    uint64_t expect_off = 0;
    for (int i = 0; i < 7; i++) {
        const llv_gguf_tensor *t = llv_gguf_tensor_at(g, i);
        snprintf(key, sizeof key, "t%d.%s", i, llv_gguf_ggml_type_name(ts[i].type));
        ck_assert_str_eq(t->name, key);
        ck_assert_int_eq(t->type, ts[i].type);
        ck_assert_uint_eq(t->n_dims, ts[i].n_dims);
        for (int k = 0; k < 4; k++)
            ck_assert_int_eq(t->ne[k], ts[i].ne[k]);
        ck_assert_uint_eq(t->nbytes, ts[i].nbytes);
        ck_assert_uint_eq(t->offset, expect_off); /* running sum of padded sizes */
        expect_off += (ts[i].nbytes + 63) / 64 * 64;
        ck_assert(memcmp(t->data, bufs[i], ts[i].nbytes) == 0);
        free(bufs[i]);
    }
    ck_assert_uint_eq(llv_gguf_file_size(g), llv_gguf_data_offset(g) + expect_off);
    llv_gguf_close(g);
}
END_TEST

START_TEST(test_writer_copy_kv)
{
    llv_gguf *src = open_ok("vocab/ggml-vocab-llama-spm.gguf", 1);
    llv_gguf_writer *w = llv_gguf_writer_new();
    ck_assert_int_eq(llv_gguf_copy_kv(w, src, "llama."), LLAVA_OK);
    void *out;
    size_t size;
    llv_err err = { 0 };
    ck_assert_int_eq(llv_gguf_write_memory(w, &out, &size, &err), LLAVA_OK);
    llv_gguf_writer_free(w);
    llv_gguf *g = NULL;
    ck_assert_msg(llv_gguf_open_memory(out, size, 0, &g, &err) == LLAVA_OK, "%s", err.msg);
    ck_assert_int_eq(llv_gguf_find_key(g, "llama.block_count"), -1);
    ck_assert_int_ge(llv_gguf_find_key(g, "general.architecture"), 0);
    /* every non-llama. key and value is preserved */
    int64_t copied = 0;
    for (int64_t i = 0; i < llv_gguf_n_kv(src); i++) {
        llv_str k = llv_gguf_key(src, i);
        if (k.len >= 6 && memcmp(k.ptr, "llama.", 6) == 0)
            continue;
        copied++;
        char key[128];
        memcpy(key, k.ptr, k.len);
        key[k.len] = '\0';
        int64_t j = llv_gguf_find_key(g, key);
        ck_assert_int_ge(j, 0);
        ck_assert_int_eq(llv_gguf_kv_type(g, j), llv_gguf_kv_type(src, i));
    }
    ck_assert_int_eq(llv_gguf_n_kv(g), copied);
    int64_t a = llv_gguf_find_key(src, "tokenizer.ggml.tokens"), b = llv_gguf_find_key(g, "tokenizer.ggml.tokens");
    for (uint64_t t = 0; t < 32000; t++) {
        llv_str x = llv_gguf_arr_str(src, a, t), y = llv_gguf_arr_str(g, b, t);
        ck_assert(x.len == y.len && memcmp(x.ptr, y.ptr, x.len) == 0);
    }
    llv_gguf_close(g);
    llv_free(out);
    llv_gguf_close(src);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gguf");
    TCase *golden = tcase_create("golden");
    tcase_add_test(golden, test_golden_lm);
    tcase_add_test(golden, test_golden_mmproj);
    tcase_add_test(golden, test_vocab_files);
    tcase_add_test(golden, test_open_errors);
    suite_add_tcase(s, golden);

    TCase *bad = tcase_create("malformed");
    tcase_add_test(bad, test_valid_reference);
    tcase_add_test(bad, test_bad_header);
    tcase_add_test(bad, test_huge_counts);
    tcase_add_test(bad, test_bad_strings);
    tcase_add_test(bad, test_bad_arrays);
    tcase_add_test(bad, test_bad_kv);
    tcase_add_test(bad, test_bad_dims);
    tcase_add_test(bad, test_bad_types);
    tcase_add_test(bad, test_types_agree_with_quant);
    tcase_add_test(bad, test_bad_names);
    tcase_add_test(bad, test_bad_alignment);
    tcase_add_test(bad, test_bad_offsets);
    tcase_add_test(bad, test_truncation);
    tcase_add_test(bad, test_alloc_failures);
    tcase_add_test(bad, test_mutations);
    suite_add_tcase(s, bad);

    TCase *api = tcase_create("api");
    tcase_add_test(api, test_getters);
    tcase_add_test(api, test_many_keys);
    tcase_add_test(api, test_writer_matches_bytes);
    tcase_add_test(api, test_writer_roundtrip);
    tcase_add_test(api, test_writer_copy_kv);
    suite_add_tcase(s, api);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
