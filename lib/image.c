/*
 * image.c - pixel helpers shared by the decoders: signature sniffing, size
 * limits, EXIF orientation (parsing and applying).
 */
#include "image_codec.h"

#include <string.h>

bool llv_is_png(const uint8_t *data, size_t size)
{
    static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    return data && size >= 8 && memcmp(data, sig, 8) == 0;
}

bool llv_is_jpeg(const uint8_t *data, size_t size)
{
    /* SOI followed by the start of a marker, as Pillow's _accept checks. */
    return data && size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff;
}

int llv_image_check_size(uint64_t width, uint64_t height, uint64_t max_pixels, size_t *rgb_bytes, llv_err *err)
{
    if (width == 0 || height == 0)
        return llv_fail(err, LLAVA_E_IMAGE, "image has zero size (%llux%llu)",
                        (unsigned long long)width, (unsigned long long)height);
    if (width > INT32_MAX || height > INT32_MAX)
        return llv_fail(err, LLAVA_E_IMAGE, "image size %llux%llu is too large",
                        (unsigned long long)width, (unsigned long long)height);
    uint64_t pixels = width * height; /* both < 2^31: no overflow in 64 bits */
    if (pixels > max_pixels)
        return llv_fail(err, LLAVA_E_IMAGE, "image size %llux%llu exceeds the limit of %llu pixels (IMAGE_MAX_PIXELS)",
                        (unsigned long long)width, (unsigned long long)height, (unsigned long long)max_pixels);
    size_t n;
    if (pixels > SIZE_MAX || llv_mul_overflow((size_t)pixels, 3, &n))
        return llv_fail(err, LLAVA_E_IMAGE, "image size %llux%llu is too large for memory",
                        (unsigned long long)width, (unsigned long long)height);
    if (rgb_bytes)
        *rgb_bytes = n;
    return LLAVA_OK;
}

/* ---- EXIF orientation ----------------------------------------------------
 * TIFF layout: "II" (little-endian) or "MM" (big-endian), the number 42,
 * the offset of IFD0; an IFD is a u16 count and count 12-byte entries
 * (tag u16, type u16, count u32, value-or-offset 4 bytes). Orientation is
 * tag 0x0112, normally SHORT with count 1, the value in the entry itself. */

static uint32_t rd16(const uint8_t *p, bool le) { return le ? (uint32_t)(p[0] | p[1] << 8) : (uint32_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p, bool le)
{
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int llv_exif_orientation(const uint8_t *tiff, size_t size)
{
    if (!tiff || size < 8)
        return 1;
    bool le;
    if (tiff[0] == 'I' && tiff[1] == 'I')
        le = true;
    else if (tiff[0] == 'M' && tiff[1] == 'M')
        le = false;
    else
        return 1;
    if (rd16(tiff + 2, le) != 42)
        return 1;
    uint32_t ifd = rd32(tiff + 4, le);
    if (ifd > size || size - ifd < 2)
        return 1;
    uint32_t count = rd16(tiff + ifd, le);
    size_t pos = (size_t)ifd + 2;
    int orientation = 1;
    for (uint32_t i = 0; i < count; i++, pos += 12) {
        if (size - pos < 12)
            break; /* truncated directory: keep what was read */
        const uint8_t *e = tiff + pos;
        if (rd16(e, le) != 0x0112)
            continue;
        uint32_t type = rd16(e + 2, le), n = rd32(e + 4, le);
        uint32_t v;
        if (n != 1)
            v = 1; /* a tuple value: exif_transpose ignores it */
        else if (type == 3) /* SHORT */
            v = rd16(e + 8, le);
        else if (type == 4) /* LONG */
            v = rd32(e + 8, le);
        else if (type == 1) /* BYTE */
            v = e[8];
        else if (type == 8) /* SSHORT: negative values are no orientation */
            v = (int16_t)rd16(e + 8, le) < 0 ? 1 : rd16(e + 8, le);
        else if (type == 9) /* SLONG */
            v = (int32_t)rd32(e + 8, le) < 0 ? 1 : rd32(e + 8, le);
        else
            v = 1;
        /* A repeated tag: the last one wins, as in Pillow's directory. */
        orientation = (v >= 1 && v <= 8) ? (int)v : 1;
    }
    return orientation;
}

int llv_rgb_apply_orientation(uint8_t **rgb, int32_t *w, int32_t *h, int orientation, llv_err *err)
{
    if (orientation < 2 || orientation > 8)
        return LLAVA_OK;
    const size_t W = (size_t)*w, H = (size_t)*h;
    const bool swap = orientation >= 5;
    const size_t ow = swap ? H : W, oh = swap ? W : H;
    uint8_t *dst = llv_malloc(W * H * 3); /* same byte count as the source, already checked */
    if (!dst)
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory rotating a %zux%zu image", W, H);
    const uint8_t *src = *rgb;
    /* For each output pixel (x, y) pick the source pixel (sx, sy); the
     * names are PIL's Image.Transpose members that exif_transpose uses. */
    for (size_t y = 0; y < oh; y++) {
        for (size_t x = 0; x < ow; x++) {
            size_t sx, sy;
            switch (orientation) {
            case 2:  sx = W - 1 - x; sy = y;         break; /* FLIP_LEFT_RIGHT */
            case 3:  sx = W - 1 - x; sy = H - 1 - y; break; /* ROTATE_180 */
            case 4:  sx = x;         sy = H - 1 - y; break; /* FLIP_TOP_BOTTOM */
            case 5:  sx = y;         sy = x;         break; /* TRANSPOSE */
            case 6:  sx = y;         sy = H - 1 - x; break; /* ROTATE_270 (90 clockwise) */
            case 7:  sx = W - 1 - y; sy = H - 1 - x; break; /* TRANSVERSE */
            default: sx = W - 1 - y; sy = x;         break; /* 8: ROTATE_90 (counter-clockwise) */
            }
            memcpy(dst + (y * ow + x) * 3, src + (sy * W + sx) * 3, 3);
        }
    }
    llv_free(*rgb);
    *rgb = dst;
    *w = (int32_t)ow;
    *h = (int32_t)oh;
    return LLAVA_OK;
}
