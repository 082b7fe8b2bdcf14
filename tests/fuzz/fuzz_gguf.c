/*
 * fuzz_gguf.c - libFuzzer harness for the GGUF reader and writer (moved from
 * tests/gguf_fuzz.c; built by `make fuzz`, replayed by `make check`).
 * Seeds: tests/fuzz/corpus/gguf (tiny LM and mmproj files).
 *
 * Properties checked for every input:
 *   - open never crashes, leaks or reads outside the buffer (sanitizers);
 *   - a rejected input leaves *out NULL and a non-empty message;
 *   - an accepted input has every key, string, array element and tensor
 *     inside the buffer, and its tensors' bytes do not overlap;
 *   - an accepted input survives writer round trip: copy every KV and tensor
 *     into a writer, serialise, reopen: same keys, types, tensors and bytes.
 */
#include "fuzz.h"
#include "gguf.h"

#define CHECK FUZZ_CHECK

FUZZ_DEFINE_REJECTED

static int inside(const void *p, size_t n, const uint8_t *buf, size_t size)
{
    const uint8_t *q = p;
    return q >= buf && q <= buf + size && n <= (size_t)(buf + size - q);
}

static void roundtrip(const llv_gguf *g)
{
    llv_gguf_writer *w = llv_gguf_writer_new();
    if (!w)
        return;
    int rc = llv_gguf_copy_kv(w, g, NULL);
    if (rc == LLAVA_E_INVALID_ARG) { /* a key with a NUL byte: not expressible */
        llv_gguf_writer_free(w);
        return;
    }
    CHECK(rc == LLAVA_OK);
    for (int64_t i = 0; i < llv_gguf_n_tensors(g); i++) {
        const llv_gguf_tensor *t = llv_gguf_tensor_at(g, i);
        CHECK(llv_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->nbytes) == LLAVA_OK);
    }
    void *out;
    size_t size;
    llv_err err = { 0 };
    rc = llv_gguf_write_memory(w, &out, &size, &err);
    llv_gguf_writer_free(w);
    if (rc == LLAVA_E_NOMEM) /* e.g. a huge sum of tensor sizes */
        return;
    CHECK(rc == LLAVA_OK);
    llv_gguf *h = NULL;
    rc = llv_gguf_open_memory(out, size, 0, &h, &err);
    CHECK(rc == LLAVA_OK);
    CHECK(llv_gguf_n_kv(h) == llv_gguf_n_kv(g));
    CHECK(llv_gguf_n_tensors(h) == llv_gguf_n_tensors(g));
    CHECK(llv_gguf_alignment(h) == llv_gguf_alignment(g));
    for (int64_t i = 0; i < llv_gguf_n_kv(g); i++) {
        llv_str a = llv_gguf_key(g, i), b = llv_gguf_key(h, i);
        CHECK(a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0);
        CHECK(llv_gguf_kv_type(g, i) == llv_gguf_kv_type(h, i));
        CHECK(llv_gguf_arr_n(g, i) == llv_gguf_arr_n(h, i));
    }
    for (int64_t i = 0; i < llv_gguf_n_tensors(g); i++) {
        const llv_gguf_tensor *a = llv_gguf_tensor_at(g, i), *b = llv_gguf_tensor_at(h, i);
        CHECK(strcmp(a->name, b->name) == 0 && a->type == b->type && a->nbytes == b->nbytes);
        CHECK(memcmp(a->data, b->data, a->nbytes) == 0);
    }
    llv_gguf_close(h);
    llv_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llv_gguf *g = (llv_gguf *)1;
    llv_err err = { 0 };
    int rc = llv_gguf_open_memory(data, size, 0, &g, &err);
    fuzz_rejected = rc != LLAVA_OK;
    if (rc != LLAVA_OK) {
        CHECK(g == NULL && err.msg[0] != '\0');
        return 0;
    }
    for (int64_t i = 0; i < llv_gguf_n_kv(g); i++) {
        llv_str k = llv_gguf_key(g, i);
        CHECK(k.len > 0 && inside(k.ptr, k.len, data, size));
        if (llv_gguf_kv_type(g, i) == LLV_GGUF_STRING) {
            llv_str v = llv_gguf_kv_str(g, i);
            CHECK(inside(v.ptr, v.len, data, size));
        }
        for (uint64_t j = 0; j < llv_gguf_arr_n(g, i); j++) {
            if (llv_gguf_arr_type(g, i) == LLV_GGUF_STRING) {
                llv_str v = llv_gguf_arr_str(g, i, j);
                CHECK(inside(v.ptr, v.len, data, size));
            } else {
                (void)llv_gguf_arr_get_int(g, i, j);
                (void)llv_gguf_arr_get_float(g, i, j);
            }
        }
        (void)llv_gguf_kv_int(g, i);
        (void)llv_gguf_kv_float(g, i);
        char key[256];
        if (k.len < sizeof key && !memchr(k.ptr, 0, k.len)) {
            memcpy(key, k.ptr, k.len);
            key[k.len] = '\0';
            CHECK(llv_gguf_find_key(g, key) == i);
            uint32_t u;
            float f;
            llv_str s;
            (void)llv_gguf_get_u32(g, key, &u, &err);
            (void)llv_gguf_get_f32(g, key, &f, &err);
            (void)llv_gguf_get_str(g, key, &s, &err);
        }
    }
    for (int64_t i = 0; i < llv_gguf_n_tensors(g); i++) {
        const llv_gguf_tensor *t = llv_gguf_tensor_at(g, i);
        CHECK(inside(t->data, t->nbytes, data, size));
        CHECK(llv_gguf_find_tensor(g, t->name) == t);
    }
    roundtrip(g);
    llv_gguf_close(g);
    return 0;
}
