/*
 * api_image.c - public entry points for images: decode a PNG/JPEG file or
 * buffer, or copy raw pixels, into an llava_image (8-bit RGB, rows top to
 * bottom).
 */
#include "image_codec.h"
#include "params.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Common start of the constructors: clear *out and check the params. */
static int image_begin(llava_image **out, const llava_params *params, llv_err *err)
{
    if (out)
        *out = NULL;
    if (!out)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "out is NULL");
    if (params && !llv_handle_is(params, LLV_MAGIC_PARAMS))
        return llv_fail(err, LLAVA_E_INVALID_ARG, "params is not a live llava_params");
    return LLAVA_OK;
}

/* Wrap decoded pixels (taking ownership) in a new handle. */
static int image_wrap(uint8_t *rgb, int32_t w, int32_t h, llava_image **out, llv_err *err)
{
    llava_image *im = llv_calloc(1, sizeof *im);
    if (!im) {
        llv_free(rgb);
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory for an image handle");
    }
    llv_handle_init(&im->hdr, LLV_MAGIC_IMAGE);
    im->width = w;
    im->height = h;
    im->rgb = rgb;
    *out = im;
    return LLAVA_OK;
}

static int image_decode(const uint8_t *data, size_t size, const llava_params *params, llava_image **out, llv_err *err)
{
    if (size == 0)
        return llv_fail(err, LLAVA_E_IMAGE, "image data is empty");
    llv_decode_opts opts = {
        .max_pixels = (uint64_t)llv_param_int(params, LLAVA_PARAM_IMAGE_MAX_PIXELS),
        .want_exif = llv_param_int(params, LLAVA_PARAM_IMAGE_EXIF_ORIENT) != 0,
    };
    llv_decoded d;
    int rc;
    if (llv_is_png(data, size))
        rc = llv_decode_png(data, size, &opts, &d, err);
    else if (llv_is_jpeg(data, size))
        rc = llv_decode_jpeg(data, size, &opts, &d, err);
    else
        return llv_fail(err, LLAVA_E_IMAGE, "not a PNG or JPEG");
    if (rc != LLAVA_OK)
        return rc;
    if (opts.want_exif) {
        rc = llv_rgb_apply_orientation(&d.rgb, &d.width, &d.height, d.orientation, err);
        if (rc != LLAVA_OK) {
            llv_free(d.rgb);
            return rc;
        }
    }
    return image_wrap(d.rgb, d.width, d.height, out, err);
}

/* Read a whole file into a new buffer. */
static int read_file(const char *path, uint8_t **data, size_t *size, llv_err *err)
{
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return llv_fail(err, LLAVA_E_IO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = llv_malloc(cap);
    if (!buf) {
        fclose(f);
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory reading %s", path);
    }
    for (;;) {
        if (n == cap) {
            size_t ncap;
            if (llv_mul_overflow(cap, 2, &ncap)) {
                llv_free(buf);
                fclose(f);
                return llv_fail(err, LLAVA_E_IO, "%s is too large", path);
            }
            uint8_t *nb = llv_realloc(buf, ncap);
            if (!nb) {
                llv_free(buf);
                fclose(f);
                return llv_fail(err, LLAVA_E_NOMEM, "out of memory reading %s", path);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                llv_free(buf);
                fclose(f);
                return llv_fail(err, LLAVA_E_IO, "cannot read %s", path);
            }
            break;
        }
    }
    fclose(f);
    *data = buf;
    *size = n;
    return LLAVA_OK;
}

LLAVA_API int llava_load_image(const char *path, const llava_params *params, llava_image **out, char *errbuf,
                               size_t errbuf_size)
{
    llv_err e;
    llv_err_clear(&e);
    int rc = image_begin(out, params, &e);
    if (rc == LLAVA_OK && !path)
        rc = llv_fail(&e, LLAVA_E_INVALID_ARG, "path is NULL");
    uint8_t *data = NULL;
    size_t size = 0;
    if (rc == LLAVA_OK)
        rc = read_file(path, &data, &size, &e);
    if (rc == LLAVA_OK) {
        rc = image_decode(data, size, params, out, &e);
        if (rc != LLAVA_OK)
            llv_err_prefix(&e, "%s", path);
    }
    llv_free(data);
    llv_err_to_buf(&e, errbuf, errbuf_size);
    return rc;
}

LLAVA_API int llava_new_image_from_bytes(const void *data, size_t size, const llava_params *params, llava_image **out,
                                         char *errbuf, size_t errbuf_size)
{
    llv_err e;
    llv_err_clear(&e);
    int rc = image_begin(out, params, &e);
    if (rc == LLAVA_OK && !data)
        rc = llv_fail(&e, LLAVA_E_INVALID_ARG, "data is NULL");
    if (rc == LLAVA_OK)
        rc = image_decode(data, size, params, out, &e);
    llv_err_to_buf(&e, errbuf, errbuf_size);
    return rc;
}

LLAVA_API int llava_new_image_from_pixels(const void *pixels, int32_t width, int32_t height, size_t stride, int format,
                                          unsigned flags, const llava_params *params, llava_image **out, char *errbuf,
                                          size_t errbuf_size)
{
    llv_err e;
    llv_err_clear(&e);
    int rc = image_begin(out, params, &e);
    size_t bpp = format == LLAVA_PIXEL_RGB ? 3 : (format == LLAVA_PIXEL_RGBA || format == LLAVA_PIXEL_BGRA) ? 4 : 0;
    size_t rgb_bytes = 0, row_bytes = 0, span = 0;
    if (rc != LLAVA_OK) {
        /* already recorded */
    } else if (!pixels) {
        rc = llv_fail(&e, LLAVA_E_INVALID_ARG, "pixels is NULL");
    } else if (width <= 0 || height <= 0) {
        rc = llv_fail(&e, LLAVA_E_INVALID_ARG, "bad image size %dx%d", width, height);
    } else if (bpp == 0) {
        rc = llv_fail(&e, LLAVA_E_INVALID_ARG, "unknown pixel format %d", format);
    } else if (flags & ~LLAVA_PIXELS_BOTTOM_UP) {
        rc = llv_fail(&e, LLAVA_E_INVALID_ARG, "unknown flags 0x%x", flags & ~LLAVA_PIXELS_BOTTOM_UP);
    } else if (llv_mul_overflow((size_t)width, bpp, &row_bytes) || stride < row_bytes) {
        rc = llv_fail(&e, LLAVA_E_INVALID_ARG, "stride %zu is less than width * %zu bytes", stride, bpp);
    } else if (llv_mul_overflow(stride, (size_t)(height - 1), &span) || llv_add_overflow(span, row_bytes, &span)) {
        rc = llv_fail(&e, LLAVA_E_INVALID_ARG, "stride %zu x height %d overflows", stride, height);
    } else {
        uint64_t maxp = (uint64_t)llv_param_int(params, LLAVA_PARAM_IMAGE_MAX_PIXELS);
        rc = llv_image_check_size((uint64_t)width, (uint64_t)height, maxp, &rgb_bytes, &e);
    }
    if (rc == LLAVA_OK) {
        uint8_t *rgb = llv_malloc(rgb_bytes);
        if (!rgb) {
            rc = llv_fail(&e, LLAVA_E_NOMEM, "out of memory for a %dx%d image", width, height);
        } else {
            const uint8_t *src = pixels;
            const size_t w = (size_t)width;
            for (size_t y = 0; y < (size_t)height; y++) {
                size_t sy = (flags & LLAVA_PIXELS_BOTTOM_UP) ? (size_t)height - 1 - y : y;
                const uint8_t *s = src + sy * stride;
                uint8_t *d = rgb + y * w * 3;
                if (format == LLAVA_PIXEL_RGB) {
                    memcpy(d, s, w * 3);
                } else if (format == LLAVA_PIXEL_RGBA) {
                    for (size_t x = 0; x < w; x++) {
                        d[3 * x + 0] = s[4 * x + 0];
                        d[3 * x + 1] = s[4 * x + 1];
                        d[3 * x + 2] = s[4 * x + 2];
                    }
                } else { /* BGRA */
                    for (size_t x = 0; x < w; x++) {
                        d[3 * x + 0] = s[4 * x + 2];
                        d[3 * x + 1] = s[4 * x + 1];
                        d[3 * x + 2] = s[4 * x + 0];
                    }
                }
            }
            rc = image_wrap(rgb, width, height, out, &e);
        }
    }
    llv_err_to_buf(&e, errbuf, errbuf_size);
    return rc;
}

LLAVA_API void llava_free_image(llava_image *image)
{
    if (!llv_handle_is(image, LLV_MAGIC_IMAGE))
        return;
    llv_free(image->rgb);
    llv_handle_kill(&image->hdr);
    llv_free(image);
}

LLAVA_API int32_t llava_image_width(const llava_image *image)
{
    return llv_handle_is(image, LLV_MAGIC_IMAGE) ? image->width : 0;
}

LLAVA_API int32_t llava_image_height(const llava_image *image)
{
    return llv_handle_is(image, LLV_MAGIC_IMAGE) ? image->height : 0;
}

LLAVA_API const uint8_t *llava_image_rgb(const llava_image *image)
{
    return llv_handle_is(image, LLV_MAGIC_IMAGE) ? image->rgb : NULL;
}
