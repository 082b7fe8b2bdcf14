/*
 * fuzz_image.c - libFuzzer harness: PNG and JPEG decoding from memory
 * (llava_new_image_from_bytes) followed by the reference preprocessing
 * (llv_preprocess_pad_resize: pad to square + Pillow bicubic).
 * Seeds (tests/fuzz/corpus/image): small PNGs (gray, palette, RGBA, 16-bit,
 * interlaced, with eXIf) and JPEGs (baseline, progressive, gray, CMYK, EXIF
 * orientation). The lowest bit of the last byte turns EXIF orientation on.
 *
 * Properties: no crash or leak; failures give LLAVA_E_IMAGE (or NOMEM),
 * *out NULL and a message; a decoded image has 1..max_pixels pixels and
 * its buffer is fully readable; preprocessing it succeeds.
 */
#include "fuzz.h"
#include "llava.h"
#include "image.h"

FUZZ_DEFINE_REJECTED

#define MAX_PIXELS (1 << 16) /* 256 x 256: keeps a mutated huge header fast */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llava_params *p = llava_new_params();
    if (!p)
        return 0;
    llava_set_param_int(p, LLAVA_PARAM_IMAGE_MAX_PIXELS, MAX_PIXELS);
    llava_set_param_int(p, LLAVA_PARAM_IMAGE_EXIF_ORIENT, size > 0 && (data[size - 1] & 1));

    char errbuf[LLAVA_ERRBUF_SIZE] = "";
    llava_image *img = (llava_image *)&errbuf;
    int rc = llava_new_image_from_bytes(data, size, p, &img, errbuf, sizeof errbuf);
    fuzz_rejected = rc != LLAVA_OK;
    if (rc != LLAVA_OK) {
        FUZZ_CHECK(img == NULL && errbuf[0] != '\0');
        FUZZ_CHECK(rc == LLAVA_E_IMAGE || rc == LLAVA_E_NOMEM || rc == LLAVA_E_INVALID_ARG);
        llava_free_params(p);
        return 0;
    }
    int32_t w = llava_image_width(img), h = llava_image_height(img);
    FUZZ_CHECK(w > 0 && h > 0 && (int64_t)w * h <= MAX_PIXELS);
    const uint8_t *rgb = llava_image_rgb(img);
    FUZZ_CHECK(rgb != NULL);
    unsigned sum = 0; /* touch every byte: ASan checks the buffer is whole */
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        sum += rgb[i];
    (void)sum;

    static const uint8_t pad[3] = { 122, 116, 104 };
    uint8_t out[24 * 24 * 3];
    llv_err err = { 0 };
    int32_t target = 1 + (int32_t)(size % 24);
    rc = llv_preprocess_pad_resize(rgb, w, h, pad, target, out, &err);
    FUZZ_CHECK(rc == LLAVA_OK || rc == LLAVA_E_NOMEM);
    llava_free_image(img);
    llava_free_params(p);
    return 0;
}
