/*
 * mkseeds.c - writes the seed inputs of the embed, session, pixels and
 * tokenizer harnesses into tests/fuzz/corpus/ (run by hand from the top of
 * the source tree after a format change; not built by make):
 *
 *   cc -Iinclude -Ilib -Itests/fuzz tests/fuzz/mkseeds.c BUILD/.libs/libllava.so -o mkseeds
 *   ./mkseeds tests/fuzz/data/lm.gguf tests/fuzz/corpus
 *
 * The GGUF seeds (gguf, lm, mmproj) are llava-mkmodel files and the image
 * seeds are written with Pillow; see tests/fuzz/README.
 */
#include "fuzz.h"
#include "llava.h"

static void put(const char *dir, const char *kind, const char *name, const void *b, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", dir, kind, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void embed_seed(const char *dir, const char *name, int32_t nt, int32_t ne)
{
    float data[64];
    for (int i = 0; i < nt * ne; i++)
        data[i] = (float)i * 0.25f - 1.0f;
    llava_embed *e;
    if (llava_new_embed(data, nt, ne, &e, NULL, 0) != LLAVA_OK)
        exit(1);
    uint8_t buf[1024];
    size_t n;
    if (llava_embed_save(e, buf, sizeof buf, &n) != LLAVA_OK)
        exit(1);
    put(dir, "embed", name, buf, n);
    llava_free_embed(e);
}

static void session_seed(const char *dir, const llava_lm *lm, const char *name, int kv_type, int n_tokens)
{
    llava_params *p = llava_new_params();
    llava_set_param_int(p, LLAVA_PARAM_N_CTX, 32);
    llava_set_param_int(p, LLAVA_PARAM_KV_TYPE, kv_type);
    llava_set_param_int(p, LLAVA_PARAM_N_THREADS, 1);
    llava_session *s;
    if (llava_new_session(lm, p, &s, NULL, 0) != LLAVA_OK)
        exit(1);
    int32_t toks[8] = { 1, 72, 105, 33, 10, 200, 300, 2 };
    if (n_tokens && llava_eval_tokens(s, toks, (size_t)n_tokens) != LLAVA_OK)
        exit(1);
    static uint8_t buf[1 << 16];
    buf[0] = (uint8_t)kv_type; /* byte 0: KV type of the loading session */
    size_t n;
    if (llava_session_save(s, buf + 1, sizeof buf - 1, &n) != LLAVA_OK)
        exit(1);
    put(dir, "session", name, buf, n + 1);
    llava_free_session(s);
    llava_free_params(p);
}

static void pixels_seed(const char *dir, const char *name, int32_t w, int32_t h, uint64_t stride, int fmt,
                        int flags, uint32_t maxp)
{
    uint8_t b[23 + 64];
    size_t o = 0;
    for (int i = 0; i < 4; i++) b[o++] = (uint8_t)((uint32_t)w >> (8 * i));
    for (int i = 0; i < 4; i++) b[o++] = (uint8_t)((uint32_t)h >> (8 * i));
    for (int i = 0; i < 8; i++) b[o++] = (uint8_t)(stride >> (8 * i));
    b[o++] = (uint8_t)fmt;
    b[o++] = (uint8_t)flags;
    for (int i = 0; i < 4; i++) b[o++] = (uint8_t)(maxp >> (8 * i));
    for (int i = 0; i < 64; i++) b[o++] = (uint8_t)(i * 29 + 3);
    put(dir, "pixels", name, b, o);
}

static void text_seed(const char *dir, const char *name, int vocab, int flags, const char *text)
{
    uint8_t b[512];
    size_t n = strlen(text);
    b[0] = (uint8_t)vocab;
    b[1] = (uint8_t)flags;
    memcpy(b + 2, text, n);
    put(dir, "tokenizer", name, b, n + 2);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: mkseeds LM.gguf CORPUSDIR\n");
        return 2;
    }
    const char *dir = argv[2];
    embed_seed(dir, "1x8", 1, 8);
    embed_seed(dir, "4x8", 4, 8);
    embed_seed(dir, "3x5", 3, 5);

    llava_lm *lm;
    char errbuf[LLAVA_ERRBUF_SIZE];
    if (llava_load_lm(argv[1], NULL, &lm, errbuf, sizeof errbuf) != LLAVA_OK) {
        fprintf(stderr, "%s\n", errbuf);
        return 1;
    }
    session_seed(dir, lm, "f16-empty", 1, 0);
    session_seed(dir, lm, "f16-1", 1, 1);
    session_seed(dir, lm, "f16-8", 1, 8);
    session_seed(dir, lm, "f32-5", 0, 5);
    llava_free_lm(lm);

    pixels_seed(dir, "rgb-4x3", 4, 3, 12, LLAVA_PIXEL_RGB, 0, 1000);
    pixels_seed(dir, "rgba-3x2-pad", 3, 2, 16, LLAVA_PIXEL_RGBA, 0, 1000);
    pixels_seed(dir, "bgra-2x5-flip", 2, 5, 8, LLAVA_PIXEL_BGRA, LLAVA_PIXELS_BOTTOM_UP, 1000);
    pixels_seed(dir, "too-many", 100, 100, 300, LLAVA_PIXEL_RGB, 0, 50);
    pixels_seed(dir, "short-stride", 5, 2, 14, LLAVA_PIXEL_RGB, 0, 1000);
    pixels_seed(dir, "huge-stride", 2, 3, UINT64_MAX / 2, LLAVA_PIXEL_RGB, 0, 1000);
    pixels_seed(dir, "negative", -4, 3, 12, LLAVA_PIXEL_RGB, 0, 1000);

    text_seed(dir, "spm-plain", 0, 1, "Hello world! What is in this image?");
    text_seed(dir, "spm-special", 0, 3, "<s>USER: hi</s> ASSISTANT:");
    text_seed(dir, "llama-utf8", 1, 1, " caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\n\n\t  x");
    text_seed(dir, "gpt2-mixed", 2, 0, "I'm 123,456 don't\n\n  spaces<|endoftext|>");
    text_seed(dir, "phi3-bad-utf8", 3, 2, "a\xff\xfe\xc3 \xe2\x82 <|user|>");
    return 0;
}
