/*
 * image_png.c - PNG decoding through libpng into 8-bit RGB, with the
 * colour conversions of Pillow's Image.open(f).convert('RGB'):
 *   gray 1/2/4/8 bit   -> v * 255 / (2^depth - 1), replicated
 *   gray 16 bit        -> Pillow opens it as mode "I" (the 16-bit value) and
 *                         I -> RGB clips to 0..255, so v > 255 gives 255
 *   gray+alpha, RGB, RGBA 16 bit -> the high byte (Pillow's ";16B" unpackers)
 *   palette            -> PLTE lookup; indices past the PLTE entries give
 *                         Pillow's default palette ramp (i, i, i)
 *   alpha, tRNS        -> dropped
 * No gamma, sRGB or ICC processing, as Pillow does none.
 *
 * libpng reports errors by calling our handler, which records the message
 * and longjmps back to the single setjmp in llv_decode_png.
 */
#include "image_codec.h"

#include <png.h>
#include <setjmp.h>
#include <string.h>

typedef struct png_src {
    const uint8_t *data;
    size_t size, pos;
    bool oom; /* an allocation failed (libpng then reports an error) */
    char msg[160];
} png_src;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_src *src = png_get_error_ptr(png);
    snprintf(src->msg, sizeof src->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png; (void)msg; /* the library never prints */
}

static png_voidp png_alloc(png_structp png, png_alloc_size_t n)
{
    void *p = llv_malloc(n);
    if (!p) {
        png_src *src = png_get_mem_ptr(png);
        if (src)
            src->oom = true;
    }
    return p;
}
static void png_dealloc(png_structp png, png_voidp p) { (void)png; llv_free(p); }

static void png_read_mem(png_structp png, png_bytep out, size_t n)
{
    png_src *src = png_get_io_ptr(png);
    if (src->size - src->pos < n)
        png_error(png, "PNG file is truncated");
    memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

/* One unpacked libpng row (png_set_packing: one byte per sample below 8
 * bits, big-endian pairs at 16 bits) -> RGB. */
static void png_row_to_rgb(const uint8_t *in, uint8_t *out, uint32_t w, int color_type, int depth,
                           const uint8_t palette[256][3])
{
    const int bps = depth == 16 ? 2 : 1; /* bytes per sample */
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY:
        for (uint32_t x = 0; x < w; x++) {
            unsigned v;
            if (depth == 16) {
                v = (unsigned)in[2 * x] << 8 | in[2 * x + 1];
                v = v > 255 ? 255 : v;
            } else {
                v = in[x] * (255u / ((1u << depth) - 1)); /* 1: *255, 2: *85, 4: *17, 8: *1 */
            }
            out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = (uint8_t)v;
        }
        break;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
        for (uint32_t x = 0; x < w; x++)
            out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[2 * bps * x];
        break;
    case PNG_COLOR_TYPE_PALETTE:
        for (uint32_t x = 0; x < w; x++)
            memcpy(out + 3 * x, palette[in[x]], 3);
        break;
    case PNG_COLOR_TYPE_RGB:
    case PNG_COLOR_TYPE_RGB_ALPHA: {
        const int spp = color_type == PNG_COLOR_TYPE_RGB ? 3 : 4;
        for (uint32_t x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                out[3 * x + c] = in[(spp * x + c) * bps]; /* high byte at 16 bits */
        break;
    }
    }
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* libpng allocates a chunk's declared length before reading its data (the
 * eXIf handler does, whatever png_set_chunk_malloc_max says), so a 100-byte
 * file can make it ask for 1.9 GB (found by tests/fuzz/fuzz_image). Walk the
 * chunk list first: a chunk that runs past the end of the data is an error
 * before the first IDAT, and after it the data is cut just before that chunk
 * (libpng then meets the end of the data after the pixels, which is ignored
 * like any damaged tail). Returns the usable size, or 0 for an error. */
static size_t png_usable_size(const uint8_t *data, size_t size, llv_err *err)
{
    size_t pos = 8;
    bool seen_idat = false;
    while (size - pos >= 8) {
        uint32_t len = be32(data + pos);
        if (len > size - pos - 8 || size - pos - 8 - len < 4) { /* data + CRC do not fit */
            if (!seen_idat) {
                llv_fail(err, LLAVA_E_IMAGE, "PNG: chunk of %u bytes at offset %zu runs past the end of the data",
                         (unsigned)len, pos);
                return 0;
            }
            return pos;
        }
        if (memcmp(data + pos + 4, "IDAT", 4) == 0)
            seen_idat = true;
        pos += 12 + (size_t)len;
        if (memcmp(data + pos - len - 8, "IEND", 4) == 0)
            return pos;
    }
    return size;
}

int llv_decode_png(const uint8_t *data, size_t size, const llv_decode_opts *opts, llv_decoded *out, llv_err *err)
{
    memset(out, 0, sizeof *out);
    out->orientation = 1;
    /* The size limit applies to the IHDR as soon as it is there, even if
     * the rest of the file is missing (libpng's png_read_info reads on to
     * the first IDAT). libpng validates the IHDR itself below. */
    if (size >= 8 + 8 + 13 && be32(data + 8) == 13 && memcmp(data + 12, "IHDR", 4) == 0) {
        uint32_t w = be32(data + 16), h = be32(data + 20);
        if (w > 0 && h > 0 && w <= INT32_MAX && h <= INT32_MAX &&
            llv_image_check_size(w, h, opts->max_pixels, NULL, err) != LLAVA_OK)
            return LLAVA_E_IMAGE;
    }
    if (size > 8 && (size = png_usable_size(data, size, err)) == 0)
        return LLAVA_E_IMAGE;
    png_src src = { .data = data, .size = size, .pos = 0, .oom = false, .msg = "" };
    png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning,
                                               &src, png_alloc, png_dealloc);
    if (!png)
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory creating the PNG decoder");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory creating the PNG decoder");
    }

    /* Everything assigned after setjmp and read after a longjmp is volatile. */
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile raw = NULL;
    png_bytep *volatile rows = NULL;
    volatile int status = LLAVA_OK;
    volatile int stage = 0; /* 0: header and pixels, 1: chunks after the pixels */
    volatile int32_t width = 0, height = 0;

    if (setjmp(png_jmpbuf(png))) {
        if (stage == 1) {
            /* The pixels are complete; Pillow also ignores a damaged or
             * truncated tail after the image data. */
            status = LLAVA_OK;
            goto done;
        }
        if (status == LLAVA_OK)
            status = llv_fail(err, src.oom ? LLAVA_E_NOMEM : LLAVA_E_IMAGE, "PNG: %s", src.msg);
        goto done;
    }

    png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    /* Our own IMAGE_MAX_PIXELS replaces libpng's 1e6 x 1e6 default limits. */
    png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu);
    /* Decompressed ancillary chunks (iCCP, zTXt) can still grow: cap them. */
    png_set_chunk_malloc_max(png, 16u << 20);
    png_set_read_fn(png, &src, png_read_mem);
    png_read_info(png, info);

    png_uint_32 w32, h32;
    int depth, color_type, interlace;
    png_get_IHDR(png, info, &w32, &h32, &depth, &color_type, &interlace, NULL, NULL);
    size_t rgb_bytes;
    if (llv_image_check_size(w32, h32, opts->max_pixels, &rgb_bytes, err) != LLAVA_OK) {
        status = LLAVA_E_IMAGE;
        goto done;
    }
    width = (int32_t)w32;
    height = (int32_t)h32;

    uint8_t palette[256][3];
    for (int i = 0; i < 256; i++)
        palette[i][0] = palette[i][1] = palette[i][2] = (uint8_t)i;
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_colorp plte = NULL;
        int n = 0;
        if (png_get_PLTE(png, info, &plte, &n) && plte) {
            for (int i = 0; i < n && i < 256; i++) {
                palette[i][0] = plte[i].red;
                palette[i][1] = plte[i].green;
                palette[i][2] = plte[i].blue;
            }
        }
    }

    if (depth < 8)
        png_set_packing(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);

    uint8_t *pix = llv_malloc(rgb_bytes);
    rgb = pix;
    if (!pix) {
        status = llv_fail(err, LLAVA_E_NOMEM, "out of memory for a %dx%d image", width, height);
        goto done;
    }
    if (passes == 1) {
        /* Row by row through one buffer. */
        uint8_t *row = llv_malloc(rowbytes);
        raw = row;
        if (!row) {
            status = llv_fail(err, LLAVA_E_NOMEM, "out of memory for a PNG row");
            goto done;
        }
        for (int32_t y = 0; y < height; y++) {
            png_read_row(png, row, NULL);
            png_row_to_rgb(row, pix + (size_t)y * width * 3, (uint32_t)width, color_type, depth,
                           (const uint8_t(*)[3])palette);
        }
    } else {
        /* Adam7 needs every row kept across the passes. */
        size_t raw_bytes;
        if (llv_mul_overflow(rowbytes, (size_t)height, &raw_bytes)) {
            status = llv_fail(err, LLAVA_E_IMAGE, "interlaced PNG %dx%d is too large", width, height);
            goto done;
        }
        uint8_t *all = llv_malloc(raw_bytes);
        raw = all;
        png_bytep *rp = llv_malloc(sizeof(png_bytep) * (size_t)height);
        rows = rp;
        if (!all || !rp) {
            status = llv_fail(err, LLAVA_E_NOMEM, "out of memory for an interlaced PNG");
            goto done;
        }
        for (int32_t y = 0; y < height; y++)
            rp[y] = all + (size_t)y * rowbytes;
        png_read_image(png, rp);
        for (int32_t y = 0; y < height; y++)
            png_row_to_rgb(rp[y], pix + (size_t)y * width * 3, (uint32_t)width, color_type, depth,
                           (const uint8_t(*)[3])palette);
    }

    if (opts->want_exif) {
        /* eXIf may follow the image data; read the rest of the chunks. */
        stage = 1;
        png_read_end(png, info);
    }

done:
    if (status == LLAVA_OK && opts->want_exif) {
        png_bytep exif = NULL;
        png_uint_32 n = 0;
        if (png_get_eXIf_1(png, info, &n, &exif) && exif)
            out->orientation = llv_exif_orientation(exif, n);
    }
    png_destroy_read_struct(&png, &info, NULL);
    llv_free(rows);
    llv_free(raw);
    if (status != LLAVA_OK) {
        llv_free(rgb);
        return status;
    }
    out->width = width;
    out->height = height;
    out->rgb = rgb;
    return LLAVA_OK;
}
