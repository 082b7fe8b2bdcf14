/*
 * fuzz_pixels.c - libFuzzer harness for raw pixel input
 * (llava_new_image_from_pixels) with hostile width, height, stride, format,
 * flags and pixel limit, all read from the fuzz input:
 *
 *   int32 width | int32 height | uint64 stride | uint8 format | uint8 flags |
 *   uint32 max_pixels | pixel bytes...
 *
 * The library cannot know the size of the caller's buffer, so the harness
 * models the contract: the call must succeed exactly when width, height > 0,
 * the format is known, stride >= width * bpp and width * height <= max_pixels.
 * When it should succeed the harness passes a buffer of exactly
 * stride * (height - 1) + width * bpp bytes (so ASan sees any over-read) and
 * checks every output pixel against the input (format, BGRA swap, bottom-up
 * flip). When it should fail it passes a 1-byte buffer: the library must
 * reject the call without reading it.
 */
#include "fuzz.h"
#include "llava.h"
#include "image.h"

FUZZ_DEFINE_REJECTED

#define BUF_CAP ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *q = data;
    size_t left = size;
    int32_t w = (int32_t)(uint32_t)fuzz_take(&q, &left, 4);
    int32_t h = (int32_t)(uint32_t)fuzz_take(&q, &left, 4);
    size_t stride = (size_t)fuzz_take(&q, &left, 8);
    int format = (int)fuzz_take(&q, &left, 1);
    unsigned flags = (unsigned)fuzz_take(&q, &left, 1) & 0x3u; /* bit 1 is not a flag */
    int64_t max_pixels = (int64_t)(fuzz_take(&q, &left, 4) % (1u << 14)) + 1;

    int bpp = format == LLAVA_PIXEL_RGB ? 3 : (format == LLAVA_PIXEL_RGBA || format == LLAVA_PIXEL_BGRA) ? 4 : 0;
    int expect_ok = w > 0 && h > 0 && bpp > 0 && (int64_t)w * h <= max_pixels &&
                    stride >= (size_t)w * (size_t)bpp && !(flags & ~LLAVA_PIXELS_BOTTOM_UP);
    size_t need = 1;
    if (expect_ok) {
        size_t row = (size_t)w * bpp;
        /* keep the buffer small: a valid but huge stride is shortened */
        if (stride > BUF_CAP || (size_t)(h - 1) * stride > BUF_CAP)
            stride = row + stride % 16;
        need = (size_t)(h - 1) * stride + row;
    }
    uint8_t *px = malloc(need);
    if (!px)
        return 0;
    for (size_t i = 0; i < need; i++)
        px[i] = left ? q[i % left] : (uint8_t)i;

    llava_params *p = llava_new_params();
    if (!p) {
        free(px);
        return 0;
    }
    FUZZ_CHECK(llava_set_param_int(p, LLAVA_PARAM_IMAGE_MAX_PIXELS, max_pixels) == LLAVA_OK);

    char errbuf[LLAVA_ERRBUF_SIZE] = "";
    llava_image *img = (llava_image *)&errbuf;
    int rc = llava_new_image_from_pixels(px, w, h, stride, format, flags, p, &img, errbuf, sizeof errbuf);
    fuzz_rejected = rc != LLAVA_OK;
    if (!expect_ok) {
        FUZZ_CHECK(rc != LLAVA_OK && img == NULL && errbuf[0] != '\0');
    } else if (rc == LLAVA_OK) {
        FUZZ_CHECK(llava_image_width(img) == w && llava_image_height(img) == h);
        const uint8_t *rgb = llava_image_rgb(img);
        for (int32_t y = 0; y < h; y++) {
            int32_t sy = (flags & LLAVA_PIXELS_BOTTOM_UP) ? h - 1 - y : y;
            for (int32_t x = 0; x < w; x++) {
                const uint8_t *s = px + (size_t)sy * stride + (size_t)x * bpp;
                const uint8_t *d = rgb + ((size_t)y * w + x) * 3;
                if (format == LLAVA_PIXEL_BGRA)
                    FUZZ_CHECK(d[0] == s[2] && d[1] == s[1] && d[2] == s[0]);
                else
                    FUZZ_CHECK(d[0] == s[0] && d[1] == s[1] && d[2] == s[2]);
            }
        }
        static const uint8_t pad[3] = { 0, 0, 0 };
        uint8_t out[7 * 7 * 3];
        llv_err err = { 0 };
        rc = llv_preprocess_pad_resize(rgb, w, h, pad, 7, out, &err);
        FUZZ_CHECK(rc == LLAVA_OK || rc == LLAVA_E_NOMEM);
        llava_free_image(img);
    } else {
        FUZZ_CHECK(rc == LLAVA_E_NOMEM && img == NULL);
    }
    llava_free_params(p);
    free(px);
    return 0;
}
