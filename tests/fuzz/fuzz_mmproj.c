/*
 * fuzz_mmproj.c - libFuzzer harness: an mmproj GGUF file (CLIP vision tower
 * + projector) loaded from memory, then used to encode a small image.
 * Seeds (tests/fuzz/corpus/mmproj) are tiny llava-mkmodel mmproj files, so
 * mutations lie about image/patch sizes, widths, head counts and tensors.
 *
 * Properties: loading never crashes or leaks; rejected files give *out NULL
 * and a message; an accepted pair has sane facts and encodes an image into
 * an embedding of n_tokens x projector width, or fails with a clean status.
 */
#include "fuzz.h"
#include "llava.h"

FUZZ_DEFINE_REJECTED

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llava_params *p = llava_new_params();
    if (!p)
        return 0;
    llava_set_param_int(p, LLAVA_PARAM_N_THREADS, 1);
    llava_set_param_int(p, LLAVA_PARAM_USE_MMAP, 1);

    char errbuf[LLAVA_ERRBUF_SIZE] = "";
    llava_vision *v = (llava_vision *)&errbuf;
    llava_projector *pr = (llava_projector *)&errbuf;
    int rc = llava_load_vision_from_memory(data, size, p, &v, errbuf, sizeof errbuf);
    fuzz_rejected = rc != LLAVA_OK;
    if (rc != LLAVA_OK) {
        FUZZ_CHECK(v == NULL && errbuf[0] != '\0');
        FUZZ_CHECK(rc != LLAVA_E_INTERNAL);
    } else {
        FUZZ_CHECK(llava_vision_image_size(v) > 0 && llava_vision_n_tokens(v) > 0);
    }
    errbuf[0] = '\0';
    rc = llava_load_projector_from_memory(data, size, p, &pr, errbuf, sizeof errbuf);
    fuzz_rejected |= rc != LLAVA_OK;
    if (rc != LLAVA_OK) {
        FUZZ_CHECK(pr == NULL && errbuf[0] != '\0');
        FUZZ_CHECK(rc != LLAVA_E_INTERNAL);
    } else {
        FUZZ_CHECK(llava_projector_n_embd(pr) > 0);
    }

    if (v && pr) {
        /* A 5x3 image: not square, so padding is exercised too. */
        uint8_t px[5 * 3 * 3];
        for (size_t i = 0; i < sizeof px; i++)
            px[i] = (uint8_t)(i * 37);
        llava_image *img = NULL;
        FUZZ_CHECK(llava_new_image_from_pixels(px, 5, 3, 15, LLAVA_PIXEL_RGB, 0, NULL, &img, NULL, 0) == LLAVA_OK);
        llava_embed *e = NULL;
        rc = llava_encode_image(v, pr, img, p, &e);
        if (rc == LLAVA_OK) {
            FUZZ_CHECK(llava_embed_n_tokens(e) == llava_vision_n_tokens_for(v, pr, 5, 3));
            FUZZ_CHECK(llava_embed_n_embd(e) == llava_projector_n_embd(pr));
            FUZZ_CHECK(llava_embed_data(e) != NULL);
        } else {
            FUZZ_CHECK(e == NULL && rc != LLAVA_E_INTERNAL && llava_errmsg(img)[0] != '\0');
        }
        llava_free_embed(e);
        llava_free_image(img);
    }
    llava_free_projector(pr);
    llava_free_vision(v);
    llava_free_params(p);
    return 0;
}
