/*
 * fuzz_embed.c - libFuzzer harness for embedding blobs (llava_embed_load),
 * untrusted input by contract. Seeds (tests/fuzz/corpus/embed): blobs saved
 * by llava_embed_save of small embeddings.
 *
 * Properties: no crash or leak; a rejected blob gives *out NULL and a
 * message with LLAVA_E_FORMAT (or NOMEM); an accepted blob has a positive
 * shape, and saving it again and reloading gives the same shape and the
 * same float bits.
 */
#include "fuzz.h"
#include "llava.h"

FUZZ_DEFINE_REJECTED

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char errbuf[LLAVA_ERRBUF_SIZE] = "";
    llava_embed *e = (llava_embed *)&errbuf;
    int rc = llava_embed_load(data, size, &e, errbuf, sizeof errbuf);
    fuzz_rejected = rc != LLAVA_OK;
    if (rc != LLAVA_OK) {
        FUZZ_CHECK(e == NULL && errbuf[0] != '\0');
        FUZZ_CHECK(rc == LLAVA_E_FORMAT || rc == LLAVA_E_NOMEM || rc == LLAVA_E_INVALID_ARG ||
                   rc == LLAVA_E_UNSUPPORTED);
        return 0;
    }
    int32_t nt = llava_embed_n_tokens(e), ne = llava_embed_n_embd(e);
    FUZZ_CHECK(nt > 0 && ne > 0 && llava_embed_data(e) != NULL);
    size_t need = 0;
    FUZZ_CHECK(llava_embed_save(e, NULL, 0, &need) == LLAVA_E_BUFFER_TOO_SMALL);
    FUZZ_CHECK(need >= (size_t)nt * ne * sizeof(float) && need <= size);
    void *buf = malloc(need);
    if (buf) {
        FUZZ_CHECK(llava_embed_save(e, buf, need, &need) == LLAVA_OK);
        llava_embed *e2 = NULL;
        FUZZ_CHECK(llava_embed_load(buf, need, &e2, NULL, 0) == LLAVA_OK);
        FUZZ_CHECK(llava_embed_n_tokens(e2) == nt && llava_embed_n_embd(e2) == ne);
        FUZZ_CHECK(memcmp(llava_embed_data(e2), llava_embed_data(e), (size_t)nt * ne * sizeof(float)) == 0);
        llava_free_embed(e2);
        free(buf);
    }
    llava_free_embed(e);
    return 0;
}
