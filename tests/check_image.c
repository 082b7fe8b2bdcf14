/*
 * check_image.c - images: decoding failures of every class, raw pixels,
 * EXIF orientation, the padded resize against the plain reference resize,
 * normalisation, allocation failures.
 *
 * Test inputs are written here with libpng's and libjpeg's own encoders
 * (not with libllava); expected pixels are worked out by hand from the
 * documented Pillow behaviour. Byte-identity with Pillow itself is checked
 * by test_preprocess.py.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>

#include "image.h"
#include "image_codec.h"
#include "image_resample.h"
#include "llava.h"

/* Allocation failure injection of the test build (error.c). */
LLV_INTERNAL void llv_alloc_fail_inject(long n);

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* ---- in-memory encoders ------------------------------------------------ */

typedef struct membuf {
    uint8_t *p;
    size_t n, cap;
} membuf;

static void mb_put(membuf *m, const void *d, size_t n)
{
    if (m->n + n > m->cap) {
        m->cap = (m->n + n) * 2 + 64;
        m->p = realloc(m->p, m->cap);
        ck_assert_ptr_nonnull(m->p);
    }
    memcpy(m->p + m->n, d, n);
    m->n += n;
}

static void png_w(png_structp png, png_bytep d, size_t n) { mb_put(png_get_io_ptr(png), d, n); }
static void png_f(png_structp png) { (void)png; }

/* rows: h rows of packed PNG samples (rowbytes each). */
static membuf make_png(int w, int h, int color_type, int depth, const uint8_t *rows, size_t rowbytes, int interlace,
                       const png_color *plte, int nplte)
{
    membuf m = { 0 };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    if (setjmp(png_jmpbuf(png)))
        ck_abort_msg("libpng write failed");
    png_set_write_fn(png, &m, png_w, png_f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (plte)
        png_set_PLTE(png, info, plte, nplte);
    png_write_info(png, info);
    if (interlace)
        png_set_interlace_handling(png);
    png_bytep *rp = malloc(sizeof(png_bytep) * (size_t)h);
    for (int y = 0; y < h; y++)
        rp[y] = (png_bytep)rows + (size_t)y * rowbytes;
    png_write_image(png, rp);
    png_write_end(png, info);
    free(rp);
    png_destroy_write_struct(&png, &info);
    return m;
}

static membuf make_png_rgb(int w, int h, const uint8_t *rgb, int interlace)
{
    return make_png(w, h, PNG_COLOR_TYPE_RGB, 8, rgb, (size_t)w * 3, interlace, NULL, 0);
}

/* components 1 (gray), 3 (RGB) or 4 (CMYK, written with an Adobe marker). */
static membuf make_jpeg(int w, int h, int components, const uint8_t *pix, int quality, int progressive)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long outsize = 0;
    jpeg_mem_dest(&c, &out, &outsize);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = components;
    c.in_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    if (progressive)
        jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = (JSAMPROW)(pix + (size_t)c.next_scanline * w * components);
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    membuf m = { 0 };
    mb_put(&m, out, outsize);
    free(out);
    return m;
}

static uint8_t *pattern(int w, int h, int channels, unsigned seed)
{
    uint8_t *p = malloc((size_t)w * h * channels);
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < (size_t)w * h * channels; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (uint8_t)((i * 7 + (s >> 27)) & 0xff);
    }
    return p;
}

/* Plain CRC-32 (PNG chunk CRC), to craft chunks with valid checksums. */
static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static void be32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = (uint8_t)v; }
static uint32_t rbe32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Offset just past the CRC of the last IDAT chunk. */
static size_t png_idat_end(const membuf *m)
{
    size_t pos = 8, end = 0;
    while (pos + 12 <= m->n) {
        uint32_t len = rbe32(m->p + pos);
        if (memcmp(m->p + pos + 4, "IDAT", 4) == 0)
            end = pos + 12 + len;
        pos += 12 + (size_t)len;
    }
    return end;
}

/* A PNG that is only a signature and an IHDR (valid CRC). */
static membuf png_header_only(uint32_t w, uint32_t h)
{
    uint8_t b[8 + 25];
    memcpy(b, "\x89PNG\r\n\x1a\n", 8);
    be32(b + 8, 13);
    memcpy(b + 12, "IHDR", 4);
    be32(b + 16, w);
    be32(b + 20, h);
    b[24] = 8; b[25] = 2; b[26] = 0; b[27] = 0; b[28] = 0; /* 8-bit RGB */
    be32(b + 29, crc32_png(b + 12, 17));
    membuf m = { 0 };
    mb_put(&m, b, sizeof b);
    return m;
}

/* Offset of the SOFn segment's height field in a JPEG (after the marker,
 * length and precision), or 0. */
static size_t jpeg_sof_dims(const membuf *m)
{
    size_t pos = 2;
    while (pos + 4 <= m->n && m->p[pos] == 0xff) {
        uint8_t mk = m->p[pos + 1];
        size_t len = (size_t)m->p[pos + 2] << 8 | m->p[pos + 3];
        if (mk == 0xc0 || mk == 0xc1 || mk == 0xc2)
            return pos + 5;
        pos += 2 + len;
    }
    return 0;
}

static int decode(const membuf *m, const llava_params *p, llava_image **im, char *msg)
{
    return llava_new_image_from_bytes(m->p, m->n, p, im, msg, LLAVA_ERRBUF_SIZE);
}

/* ---- PNG ----------------------------------------------------------------- */

START_TEST(test_png_rgb_roundtrip)
{
    uint8_t *rgb = pattern(13, 9, 3, 1);
    for (int il = 0; il < 2; il++) {
        membuf m = make_png_rgb(13, 9, rgb, il);
        llava_image *im = NULL;
        char msg[LLAVA_ERRBUF_SIZE];
        ck_assert_int_eq(decode(&m, NULL, &im, msg), LLAVA_OK);
        ck_assert_str_eq(msg, "");
        ck_assert_int_eq(llava_image_width(im), 13);
        ck_assert_int_eq(llava_image_height(im), 9);
        ck_assert_mem_eq(llava_image_rgb(im), rgb, 13 * 9 * 3);
        ck_assert_str_eq(llava_errmsg(im), "");
        llava_free_image(im);
        free(m.p);
    }
    free(rgb);
}
END_TEST

START_TEST(test_png_conversions)
{
    llava_image *im = NULL;
    char msg[LLAVA_ERRBUF_SIZE];
    /* gray 16: Pillow's mode "I" clipped to 0..255 (not scaled). */
    const uint16_t g16[6] = { 0, 100, 255, 256, 1000, 65535 };
    const uint8_t g16_want[6] = { 0, 100, 255, 255, 255, 255 };
    uint8_t row16[12];
    for (int i = 0; i < 6; i++) { row16[2 * i] = g16[i] >> 8; row16[2 * i + 1] = g16[i] & 0xff; }
    membuf m = make_png(6, 1, PNG_COLOR_TYPE_GRAY, 16, row16, 12, 0, NULL, 0);
    ck_assert_int_eq(decode(&m, NULL, &im, msg), LLAVA_OK);
    for (int i = 0; i < 6; i++)
        for (int c = 0; c < 3; c++)
            ck_assert_uint_eq(llava_image_rgb(im)[3 * i + c], g16_want[i]);
    llava_free_image(im);
    free(m.p);

    /* gray 2-bit: 0,1,2,3 -> 0,85,170,255. Packed MSB first: 00 01 10 11. */
    uint8_t g2 = 0x1b;
    m = make_png(4, 1, PNG_COLOR_TYPE_GRAY, 2, &g2, 1, 0, NULL, 0);
    ck_assert_int_eq(decode(&m, NULL, &im, msg), LLAVA_OK);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(llava_image_rgb(im)[3 * i + 1], 85 * i);
    llava_free_image(im);
    free(m.p);

    /* palette with 2 entries; index 5 has none: Pillow's ramp (5,5,5). */
    png_color pal[2] = { { 10, 20, 30 }, { 200, 100, 50 } };
    uint8_t idx[3] = { 1, 0, 5 };
    m = make_png(3, 1, PNG_COLOR_TYPE_PALETTE, 8, idx, 3, 0, pal, 2);
    ck_assert_int_eq(decode(&m, NULL, &im, msg), LLAVA_OK);
    const uint8_t want_pal[9] = { 200, 100, 50, 10, 20, 30, 5, 5, 5 };
    ck_assert_mem_eq(llava_image_rgb(im), want_pal, 9);
    llava_free_image(im);
    free(m.p);

    /* gray+alpha 16: the high byte of gray; RGBA 8: alpha dropped. */
    uint8_t la16[8] = { 0x12, 0x34, 0xff, 0xff, 0xab, 0xcd, 0x00, 0x00 };
    m = make_png(2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 16, la16, 8, 0, NULL, 0);
    ck_assert_int_eq(decode(&m, NULL, &im, msg), LLAVA_OK);
    const uint8_t want_la[6] = { 0x12, 0x12, 0x12, 0xab, 0xab, 0xab };
    ck_assert_mem_eq(llava_image_rgb(im), want_la, 6);
    llava_free_image(im);
    free(m.p);
    uint8_t rgba[8] = { 1, 2, 3, 0, 4, 5, 6, 128 };
    m = make_png(2, 1, PNG_COLOR_TYPE_RGB_ALPHA, 8, rgba, 8, 0, NULL, 0);
    ck_assert_int_eq(decode(&m, NULL, &im, msg), LLAVA_OK);
    const uint8_t want_rgba[6] = { 1, 2, 3, 4, 5, 6 };
    ck_assert_mem_eq(llava_image_rgb(im), want_rgba, 6);
    llava_free_image(im);
    free(m.p);
}
END_TEST

START_TEST(test_png_truncated)
{
    uint8_t *rgb = pattern(21, 17, 3, 2);
    for (int il = 0; il < 2; il++) {
        membuf m = make_png_rgb(21, 17, rgb, il);
        size_t idat_end = png_idat_end(&m);
        ck_assert_uint_gt(idat_end, 0);
        for (size_t cut = 0; cut < m.n; cut++) {
            llava_image *im = (llava_image *)&m; /* must be reset to NULL */
            char msg[LLAVA_ERRBUF_SIZE];
            int rc = llava_new_image_from_bytes(m.p, cut, NULL, &im, msg, sizeof msg);
            if (cut < idat_end) {
                ck_assert_msg(rc == LLAVA_E_IMAGE, "cut %zu: rc %d", cut, rc);
                ck_assert_ptr_null(im);
                if (cut == 0)
                    ck_assert_str_eq(msg, "image data is empty");
                else if (cut < 8)
                    ck_assert_str_eq(msg, "not a PNG or JPEG");
                else
                    ck_assert_msg(strncmp(msg, "PNG: ", 5) == 0 && strlen(msg) > 5, "cut %zu: '%s'", cut, msg);
            } else {
                /* Only IEND is missing: the pixels are all there (Pillow
                 * also accepts this). */
                ck_assert_msg(rc == LLAVA_OK, "cut %zu: %s", cut, msg);
                ck_assert_mem_eq(llava_image_rgb(im), rgb, 21 * 17 * 3);
                llava_free_image(im);
            }
        }
        free(m.p);
    }
    free(rgb);
}
END_TEST

START_TEST(test_png_corrupt)
{
    uint8_t *rgb = pattern(11, 7, 3, 3);
    membuf m = make_png_rgb(11, 7, rgb, 0);
    size_t idat_end = png_idat_end(&m);
    /* Any flipped bit before the end of the pixel data breaks a CRC, the
     * signature or the structure. */
    for (size_t pos = 0; pos < idat_end; pos++) {
        for (int bit = 0; bit < 8; bit += 3) {
            m.p[pos] ^= (uint8_t)(1u << bit);
            llava_image *im = NULL;
            char msg[LLAVA_ERRBUF_SIZE];
            int rc = decode(&m, NULL, &im, msg);
            ck_assert_msg(rc == LLAVA_E_IMAGE, "pos %zu bit %d: rc %d", pos, bit, rc);
            ck_assert_ptr_null(im);
            ck_assert_uint_gt(strlen(msg), 0);
            m.p[pos] ^= (uint8_t)(1u << bit);
        }
    }
    /* Corrupt compressed data under a correct CRC: zlib's complaint. */
    size_t pos = 8;
    while (memcmp(m.p + pos + 4, "IDAT", 4) != 0)
        pos += 12 + rbe32(m.p + pos);
    uint32_t len = rbe32(m.p + pos);
    for (uint32_t i = 2; i < len; i++)
        m.p[pos + 8 + i] ^= 0x5a;
    be32(m.p + pos + 8 + len, crc32_png(m.p + pos + 4, len + 4));
    llava_image *im = NULL;
    char msg[LLAVA_ERRBUF_SIZE];
    ck_assert_int_eq(decode(&m, NULL, &im, msg), LLAVA_E_IMAGE);
    ck_assert_msg(strncmp(msg, "PNG: ", 5) == 0, "%s", msg);
    free(m.p);
    free(rgb);
}
END_TEST

/* Run f with the address space limited to 1 GiB, so an allocation of the
 * pixels of a 65535 x 65535 header (12.9 GB) would fail with E_NOMEM
 * instead of the size check's E_IMAGE. Not under ASan (it reserves far
 * more address space). Check runs each test in its own process. */
static void limit_address_space(void)
{
    if (UNDER_ASAN)
        return;
    struct rlimit rl = { (rlim_t)1 << 30, (rlim_t)1 << 30 };
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
}

START_TEST(test_png_huge_header)
{
    limit_address_space();
    llava_image *im = NULL;
    char msg[LLAVA_ERRBUF_SIZE];
    membuf m = png_header_only(65535, 65535);
    ck_assert_int_eq(decode(&m, NULL, &im, msg), LLAVA_E_IMAGE);
    ck_assert_ptr_null(im);
    ck_assert_msg(strstr(msg, "65535x65535") && strstr(msg, "IMAGE_MAX_PIXELS"), "%s", msg);
    free(m.p);
    /* The largest limit (2^32 pixels) still refuses 65536 x 65537. */
    llava_params *p = llava_new_params();
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_IMAGE_MAX_PIXELS, (int64_t)1 << 32), LLAVA_OK);
    m = png_header_only(65536, 65537);
    ck_assert_int_eq(decode(&m, p, &im, msg), LLAVA_E_IMAGE);
    ck_assert_msg(strstr(msg, "IMAGE_MAX_PIXELS"), "%s", msg);
    free(m.p);
    llava_free_params(p);
    /* Width 0 and width >= 2^31 are refused by libpng's IHDR check. */
    m = png_header_only(0, 5);
    ck_assert_int_eq(decode(&m, NULL, &im, msg), LLAVA_E_IMAGE);
    ck_assert_msg(strncmp(msg, "PNG: ", 5) == 0, "%s", msg);
    free(m.p);
    m = png_header_only(0x80000000u, 1);
    ck_assert_int_eq(decode(&m, NULL, &im, msg), LLAVA_E_IMAGE);
    free(m.p);
    /* A header that passes the limit but has no pixel data: truncated. */
    m = png_header_only(300, 200);
    ck_assert_int_eq(decode(&m, NULL, &im, msg), LLAVA_E_IMAGE);
    ck_assert_msg(strstr(msg, "truncated"), "%s", msg);
    free(m.p);
}
END_TEST

START_TEST(test_max_pixels_exact)
{
    uint8_t *rgb = pattern(17, 13, 3, 4);
    membuf png = make_png_rgb(17, 13, rgb, 0);
    membuf jpg = make_jpeg(17, 13, 3, rgb, 90, 0);
    llava_params *p = llava_new_params();
    llava_image *im = NULL;
    char msg[LLAVA_ERRBUF_SIZE];
    for (int k = 0; k < 2; k++) {
        const membuf *m = k ? &jpg : &png;
        ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_IMAGE_MAX_PIXELS, 17 * 13), LLAVA_OK);
        ck_assert_int_eq(decode(m, p, &im, msg), LLAVA_OK);
        llava_free_image(im);
        ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_IMAGE_MAX_PIXELS, 17 * 13 - 1), LLAVA_OK);
        ck_assert_int_eq(decode(m, p, &im, msg), LLAVA_E_IMAGE);
        ck_assert_msg(strstr(msg, "17x13") && strstr(msg, "220"), "%s", msg);
        ck_assert_ptr_null(im);
    }
    /* Raw pixels obey the same limit. */
    ck_assert_int_eq(llava_new_image_from_pixels(rgb, 17, 13, 17 * 3, LLAVA_PIXEL_RGB, 0, p, &im, msg, sizeof msg),
                     LLAVA_E_IMAGE);
    llava_free_params(p);
    free(png.p);
    free(jpg.p);
    free(rgb);
}
END_TEST

/* ---- JPEG ---------------------------------------------------------------- */

START_TEST(test_jpeg_formats)
{
    /* Flat colours survive JPEG exactly enough to check the channel paths. */
    const int w = 16, h = 16;
    uint8_t *rgb = malloc(w * h * 3), *gray = malloc(w * h), *cmyk = malloc(w * h * 4);
    for (int i = 0; i < w * h; i++) {
        rgb[3 * i] = 200; rgb[3 * i + 1] = 40; rgb[3 * i + 2] = 90;
        gray[i] = 77;
        /* Adobe CMYK is stored inverted: stored (255-C,...,255-K). With
         * C=0,M=128,Y=255 and stored K 200 (K=55), Pillow gives
         * (nk - c*nk/255) = (200, 200-100=100, 0). */
        cmyk[4 * i] = 255; cmyk[4 * i + 1] = 127; cmyk[4 * i + 2] = 0; cmyk[4 * i + 3] = 200;
    }
    struct { const uint8_t *pix; int comp; uint8_t want[3]; } cases[] = {
        { rgb, 3, { 200, 40, 90 } }, { gray, 1, { 77, 77, 77 } }, { cmyk, 4, { 200, 100, 0 } },
    };
    for (int k = 0; k < 3; k++) {
        for (int prog = 0; prog < 2; prog++) {
            membuf m = make_jpeg(w, h, cases[k].comp, cases[k].pix, 100, prog);
            llava_image *im = NULL;
            char msg[LLAVA_ERRBUF_SIZE];
            ck_assert_msg(decode(&m, NULL, &im, msg) == LLAVA_OK, "%s", msg);
            ck_assert_int_eq(llava_image_width(im), w);
            const uint8_t *px = llava_image_rgb(im);
            for (int i = 0; i < w * h; i++)
                for (int c = 0; c < 3; c++)
                    ck_assert_msg(abs(px[3 * i + c] - cases[k].want[c]) <= 2, "comp %d px %d c %d: %d vs %d",
                                  cases[k].comp, i, c, px[3 * i + c], cases[k].want[c]);
            llava_free_image(im);
            free(m.p);
        }
    }
    free(rgb); free(gray); free(cmyk);
}
END_TEST

START_TEST(test_jpeg_truncated)
{
    uint8_t *rgb = pattern(40, 24, 3, 5);
    for (int prog = 0; prog < 2; prog++) {
        membuf m = make_jpeg(40, 24, 3, rgb, 90, prog);
        llava_image *full = NULL;
        char msg[LLAVA_ERRBUF_SIZE];
        ck_assert_int_eq(decode(&m, NULL, &full, msg), LLAVA_OK);
        for (size_t cut = 0; cut < m.n; cut++) {
            llava_image *im = (llava_image *)&m;
            int rc = llava_new_image_from_bytes(m.p, cut, NULL, &im, msg, sizeof msg);
            if (cut + 64 <= m.n) {
                ck_assert_msg(rc == LLAVA_E_IMAGE, "prog %d cut %zu/%zu: rc %d", prog, cut, m.n, rc);
                ck_assert_ptr_null(im);
                if (cut >= 3)
                    ck_assert_msg(strncmp(msg, "JPEG: ", 6) == 0, "cut %zu: %s", cut, msg);
            } else {
                /* Near the end (the last entropy bytes, the EOI): libjpeg
                 * may or may not need the missing bytes; Pillow refuses a
                 * file without its EOI and so does the library (checked
                 * against Pillow in test_preprocess.py). Either way the
                 * result is a clean status and a whole image or none. */
                ck_assert(rc == LLAVA_OK || rc == LLAVA_E_IMAGE);
                if (rc == LLAVA_OK)
                    ck_assert_mem_eq(llava_image_rgb(im), llava_image_rgb(full), 40 * 24 * 3);
                else
                    ck_assert_ptr_null(im);
                llava_free_image(rc == LLAVA_OK ? im : NULL);
            }
        }
        llava_free_image(full);
        free(m.p);
    }
    free(rgb);
}
END_TEST

START_TEST(test_jpeg_corrupt)
{
    uint8_t *rgb = pattern(32, 32, 3, 6);
    membuf m = make_jpeg(32, 32, 3, rgb, 85, _i);
    uint8_t *orig = malloc(m.n);
    memcpy(orig, m.p, m.n);
    uint32_t s = 12345;
    int failed = 0, ok = 0;
    for (int trial = 0; trial < 600; trial++) {
        memcpy(m.p, orig, m.n);
        int flips = 1 + trial % 4;
        for (int f = 0; f < flips; f++) {
            s = s * 1664525u + 1013904223u;
            size_t pos = 2 + (s >> 8) % (m.n - 2);
            m.p[pos] ^= (uint8_t)(1 + (s & 0xfe));
        }
        llava_image *im = NULL;
        char msg[LLAVA_ERRBUF_SIZE];
        int rc = decode(&m, NULL, &im, msg);
        if (rc == LLAVA_OK) {
            /* libjpeg recovers from some damage (as Pillow does): the
             * result is still a whole image. */
            ck_assert_int_gt(llava_image_width(im), 0);
            ck_assert_ptr_nonnull(llava_image_rgb(im));
            ok++;
        } else {
            ck_assert_int_eq(rc, LLAVA_E_IMAGE);
            ck_assert_ptr_null(im);
            ck_assert_uint_gt(strlen(msg), 6);
            failed++;
        }
        llava_free_image(im);
    }
    ck_assert_int_gt(failed, 0);
    free(orig);
    free(m.p);
    free(rgb);
}
END_TEST

START_TEST(test_jpeg_huge_header)
{
    limit_address_space();
    uint8_t *rgb = pattern(8, 8, 3, 7);
    membuf m = make_jpeg(8, 8, 3, rgb, 90, 0);
    size_t sof = jpeg_sof_dims(&m);
    ck_assert_uint_gt(sof, 0);
    llava_image *im = NULL;
    char msg[LLAVA_ERRBUF_SIZE];
    /* 65500 x 65500 is the largest libjpeg accepts: our limit refuses it. */
    m.p[sof] = 0xff; m.p[sof + 1] = 0xdc; m.p[sof + 2] = 0xff; m.p[sof + 3] = 0xdc;
    ck_assert_int_eq(decode(&m, NULL, &im, msg), LLAVA_E_IMAGE);
    ck_assert_msg(strstr(msg, "65500x65500") && strstr(msg, "IMAGE_MAX_PIXELS"), "%s", msg);
    ck_assert_ptr_null(im);
    /* 65535 x 65535: libjpeg's own header check. */
    m.p[sof] = 0xff; m.p[sof + 1] = 0xff; m.p[sof + 2] = 0xff; m.p[sof + 3] = 0xff;
    ck_assert_int_eq(decode(&m, NULL, &im, msg), LLAVA_E_IMAGE);
    ck_assert_msg(strncmp(msg, "JPEG: ", 6) == 0, "%s", msg);
    /* Height 0 (a DNL-style header) is refused. */
    m.p[sof] = 0; m.p[sof + 1] = 0; m.p[sof + 2] = 0; m.p[sof + 3] = 8;
    ck_assert_int_eq(decode(&m, NULL, &im, msg), LLAVA_E_IMAGE);
    ck_assert_ptr_null(im);
    free(m.p);
    free(rgb);
}
END_TEST

/* ---- arguments, buffers, messages ---------------------------------------- */

START_TEST(test_not_an_image)
{
    static const char *junk[] = { "hello world", "GIF89a\x01\x00\x01\x00", "BM\x36\x00\x00\x00", "\xff\xd8", "\x89PNG" };
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        llava_image *im = (llava_image *)junk;
        char msg[LLAVA_ERRBUF_SIZE];
        ck_assert_int_eq(llava_new_image_from_bytes(junk[i], strlen(junk[i]), NULL, &im, msg, sizeof msg),
                         LLAVA_E_IMAGE);
        ck_assert_ptr_null(im);
        ck_assert_str_eq(msg, "not a PNG or JPEG");
    }
}
END_TEST

START_TEST(test_null_and_empty)
{
    llava_image *im = (llava_image *)1;
    char msg[LLAVA_ERRBUF_SIZE];
    uint8_t b[4] = { 0 };
    ck_assert_int_eq(llava_new_image_from_bytes(b, 0, NULL, &im, msg, sizeof msg), LLAVA_E_IMAGE);
    ck_assert_ptr_null(im);
    ck_assert_str_eq(msg, "image data is empty");
    ck_assert_int_eq(llava_new_image_from_bytes(NULL, 10, NULL, &im, msg, sizeof msg), LLAVA_E_INVALID_ARG);
    ck_assert_str_eq(msg, "data is NULL");
    ck_assert_int_eq(llava_new_image_from_bytes(b, 4, NULL, NULL, msg, sizeof msg), LLAVA_E_INVALID_ARG);
    ck_assert_str_eq(msg, "out is NULL");
    ck_assert_int_eq(llava_load_image(NULL, NULL, &im, msg, sizeof msg), LLAVA_E_INVALID_ARG);
    ck_assert_str_eq(msg, "path is NULL");
    ck_assert_int_eq(llava_load_image("/x", NULL, NULL, NULL, 0), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_new_image_from_pixels(NULL, 2, 2, 6, LLAVA_PIXEL_RGB, 0, NULL, &im, msg, sizeof msg),
                     LLAVA_E_INVALID_ARG);
    ck_assert_str_eq(msg, "pixels is NULL");
    ck_assert_int_eq(llava_new_image_from_pixels(b, 1, 1, 3, LLAVA_PIXEL_RGB, 0, NULL, NULL, NULL, 0),
                     LLAVA_E_INVALID_ARG);
    /* Something that is not a params object. */
    uint32_t notparams[64] = { 0x12345678u };
    ck_assert_int_eq(llava_new_image_from_pixels(b, 1, 1, 3, LLAVA_PIXEL_RGB, 0, (const llava_params *)notparams, &im,
                                                 msg, sizeof msg), LLAVA_E_INVALID_ARG);
    ck_assert_ptr_null(im);
    /* Accessors and free on NULL / non-images. */
    llava_free_image(NULL);
    ck_assert_int_eq(llava_image_width(NULL), 0);
    ck_assert_int_eq(llava_image_height(NULL), 0);
    ck_assert_ptr_null(llava_image_rgb(NULL));
    ck_assert_int_eq(llava_image_width((const llava_image *)notparams), 0);
}
END_TEST

START_TEST(test_errbuf)
{
    llava_image *im = NULL;
    /* No errbuf at all is fine. */
    ck_assert_int_eq(llava_new_image_from_bytes("xyz", 3, NULL, &im, NULL, 0), LLAVA_E_IMAGE);
    /* A small errbuf is truncated and NUL-terminated. */
    char small[8];
    memset(small, 'Z', sizeof small);
    ck_assert_int_eq(llava_new_image_from_bytes("xyz", 3, NULL, &im, small, sizeof small), LLAVA_E_IMAGE);
    ck_assert_str_eq(small, "not a P");
    /* Success clears the buffer. */
    char msg[LLAVA_ERRBUF_SIZE] = "stale";
    uint8_t px[3] = { 1, 2, 3 };
    ck_assert_int_eq(llava_new_image_from_pixels(px, 1, 1, 3, LLAVA_PIXEL_RGB, 0, NULL, &im, msg, sizeof msg), LLAVA_OK);
    ck_assert_str_eq(msg, "");
    llava_free_image(im);
    /* File errors name the file. */
    ck_assert_int_eq(llava_load_image("/nonexistent/dir/x.png", NULL, &im, msg, sizeof msg), LLAVA_E_IO);
    ck_assert_msg(strstr(msg, "/nonexistent/dir/x.png") != NULL, "%s", msg);
    ck_assert_int_eq(llava_load_image("/", NULL, &im, msg, sizeof msg), LLAVA_E_IO);
    ck_assert_ptr_null(im);
}
END_TEST

START_TEST(test_load_file)
{
    char path[] = "/tmp/llv-check-image-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    uint8_t *rgb = pattern(5, 3, 3, 8);
    membuf m = make_png_rgb(5, 3, rgb, 0);
    ck_assert_int_eq(write(fd, m.p, m.n), (ssize_t)m.n);
    close(fd);
    llava_image *im = NULL;
    char msg[LLAVA_ERRBUF_SIZE];
    ck_assert_int_eq(llava_load_image(path, NULL, &im, msg, sizeof msg), LLAVA_OK);
    ck_assert_mem_eq(llava_image_rgb(im), rgb, 5 * 3 * 3);
    llava_free_image(im);
    /* A damaged file: the message names the file and the decoder. */
    FILE *f = fopen(path, "wb");
    fwrite(m.p, 1, m.n / 2, f);
    fclose(f);
    ck_assert_int_eq(llava_load_image(path, NULL, &im, msg, sizeof msg), LLAVA_E_IMAGE);
    ck_assert_msg(strstr(msg, path) && strstr(msg, "PNG: "), "%s", msg);
    unlink(path);
    free(m.p);
    free(rgb);
}
END_TEST

/* ---- raw pixels ------------------------------------------------------------ */

START_TEST(test_pixels_formats)
{
    /* 2x2, each pixel distinct; rows padded to a stride of 11 bytes. */
    uint8_t rgba[2 * 11], bgra[2 * 11], rgb[2 * 11];
    memset(rgba, 0xee, sizeof rgba); memset(bgra, 0xee, sizeof bgra); memset(rgb, 0xee, sizeof rgb);
    const uint8_t px[4][3] = { { 10, 20, 30 }, { 40, 50, 60 }, { 70, 80, 90 }, { 100, 110, 120 } };
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 2; x++) {
            const uint8_t *p = px[y * 2 + x];
            uint8_t *a = rgba + y * 11 + x * 4, *b = bgra + y * 11 + x * 4, *c = rgb + y * 11 + x * 3;
            a[0] = p[0]; a[1] = p[1]; a[2] = p[2]; a[3] = 7;
            b[0] = p[2]; b[1] = p[1]; b[2] = p[0]; b[3] = 9;
            c[0] = p[0]; c[1] = p[1]; c[2] = p[2];
        }
    const uint8_t top_down[12] = { 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120 };
    const uint8_t bottom_up[12] = { 70, 80, 90, 100, 110, 120, 10, 20, 30, 40, 50, 60 };
    struct { const uint8_t *buf; int fmt; } cases[] = {
        { rgb, LLAVA_PIXEL_RGB }, { rgba, LLAVA_PIXEL_RGBA }, { bgra, LLAVA_PIXEL_BGRA },
    };
    for (int k = 0; k < 3; k++) {
        for (unsigned flags = 0; flags < 2; flags++) {
            llava_image *im = NULL;
            char msg[LLAVA_ERRBUF_SIZE];
            ck_assert_int_eq(llava_new_image_from_pixels(cases[k].buf, 2, 2, 11, cases[k].fmt, flags, NULL, &im, msg,
                                                         sizeof msg), LLAVA_OK);
            ck_assert_int_eq(llava_image_width(im), 2);
            ck_assert_int_eq(llava_image_height(im), 2);
            ck_assert_mem_eq(llava_image_rgb(im), flags ? bottom_up : top_down, 12);
            llava_free_image(im);
        }
    }
}
END_TEST

START_TEST(test_pixels_bad)
{
    uint8_t b[64] = { 0 };
    llava_image *im = (llava_image *)b;
    char msg[LLAVA_ERRBUF_SIZE];
    /* stride below width * bpp */
    ck_assert_int_eq(llava_new_image_from_pixels(b, 4, 2, 11, LLAVA_PIXEL_RGB, 0, NULL, &im, msg, sizeof msg),
                     LLAVA_E_INVALID_ARG);
    ck_assert_ptr_null(im);
    ck_assert_msg(strstr(msg, "stride 11"), "%s", msg);
    ck_assert_int_eq(llava_new_image_from_pixels(b, 4, 2, 15, LLAVA_PIXEL_RGBA, 0, NULL, &im, msg, sizeof msg),
                     LLAVA_E_INVALID_ARG);
    /* stride * height overflows size_t */
    ck_assert_int_eq(llava_new_image_from_pixels(b, 4, 3, SIZE_MAX / 2, LLAVA_PIXEL_RGB, 0, NULL, &im, msg, sizeof msg),
                     LLAVA_E_INVALID_ARG);
    ck_assert_msg(strstr(msg, "overflows"), "%s", msg);
    /* width * bpp overflows... on 32-bit size_t; here it is just a huge stride demand */
    ck_assert_int_eq(llava_new_image_from_pixels(b, INT32_MAX, 1, 12, LLAVA_PIXEL_RGBA, 0, NULL, &im, msg, sizeof msg),
                     LLAVA_E_INVALID_ARG);
    /* formats */
    const int bad_formats[] = { 0, 4, -1, 1000 };
    for (size_t i = 0; i < 4; i++) {
        ck_assert_int_eq(llava_new_image_from_pixels(b, 1, 1, 4, bad_formats[i], 0, NULL, &im, msg, sizeof msg),
                         LLAVA_E_INVALID_ARG);
        ck_assert_msg(strstr(msg, "pixel format"), "%s", msg);
    }
    /* sizes and flags */
    ck_assert_int_eq(llava_new_image_from_pixels(b, 0, 1, 4, LLAVA_PIXEL_RGB, 0, NULL, &im, msg, sizeof msg),
                     LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_new_image_from_pixels(b, 1, -1, 4, LLAVA_PIXEL_RGB, 0, NULL, &im, msg, sizeof msg),
                     LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_new_image_from_pixels(b, 1, 1, 4, LLAVA_PIXEL_RGB, 2u, NULL, &im, msg, sizeof msg),
                     LLAVA_E_INVALID_ARG);
    ck_assert_msg(strstr(msg, "flags"), "%s", msg);
    ck_assert_ptr_null(im);
    /* The last row needs only width*bpp bytes, not a whole stride. */
    ck_assert_int_eq(llava_new_image_from_pixels(b, 2, 3, 20, LLAVA_PIXEL_RGB, 0, NULL, &im, msg, sizeof msg), LLAVA_OK);
    llava_free_image(im);
}
END_TEST

/* ---- EXIF ---------------------------------------------------------------- */

/* A TIFF block with one IFD0 entry. */
static size_t tiff_one(uint8_t *t, int le, uint16_t tag, uint16_t type, uint32_t count, uint32_t value)
{
#define W16(p, v) do { if (le) { (p)[0] = (uint8_t)(v); (p)[1] = (uint8_t)((v) >> 8); } \
                       else { (p)[0] = (uint8_t)((v) >> 8); (p)[1] = (uint8_t)(v); } } while (0)
#define W32(p, v) do { if (le) { (p)[0] = (uint8_t)(v); (p)[1] = (uint8_t)((v) >> 8); (p)[2] = (uint8_t)((v) >> 16); (p)[3] = (uint8_t)((v) >> 24); } \
                       else be32(p, v); } while (0)
    memset(t, 0, 26);
    t[0] = t[1] = le ? 'I' : 'M';
    W16(t + 2, 42);
    W32(t + 4, 8);
    W16(t + 8, 1);
    W16(t + 10, tag);
    W16(t + 12, type);
    W32(t + 14, count);
    if (type == 3)
        W16(t + 18, value);
    else if (type == 4)
        W32(t + 18, value);
    else
        t[18] = (uint8_t)value;
    return 26;
#undef W16
#undef W32
}

START_TEST(test_exif_parse)
{
    uint8_t t[64];
    for (int le = 0; le < 2; le++) {
        for (uint32_t o = 1; o <= 8; o++) {
            size_t n = tiff_one(t, le, 0x0112, 3, 1, o);
            ck_assert_int_eq(llv_exif_orientation(t, n), (int)o);
            /* every truncation is harmless */
            for (size_t cut = 0; cut < n; cut++)
                ck_assert_int_ge(llv_exif_orientation(t, cut), 1);
            ck_assert_int_eq(llv_exif_orientation(t, 19), 1); /* entry cut short */
        }
        ck_assert_int_eq(llv_exif_orientation(t, tiff_one(t, le, 0x0112, 4, 1, 6)), 6);  /* LONG */
        ck_assert_int_eq(llv_exif_orientation(t, tiff_one(t, le, 0x0112, 3, 2, 6)), 1);  /* a pair */
        ck_assert_int_eq(llv_exif_orientation(t, tiff_one(t, le, 0x0112, 3, 1, 9)), 1);  /* out of range */
        ck_assert_int_eq(llv_exif_orientation(t, tiff_one(t, le, 0x0112, 3, 1, 0)), 1);
        ck_assert_int_eq(llv_exif_orientation(t, tiff_one(t, le, 0x0110, 3, 1, 6)), 1);  /* other tag */
        ck_assert_int_eq(llv_exif_orientation(t, tiff_one(t, le, 0x0112, 2, 1, 6)), 1);  /* ASCII type */
        /* IFD offset past the end; entry count far larger than the block */
        tiff_one(t, le, 0x0112, 3, 1, 6);
        t[le ? 4 : 7] = 200;
        ck_assert_int_eq(llv_exif_orientation(t, 26), 1);
        tiff_one(t, le, 0x0112, 3, 1, 6);
        t[8] = t[9] = 0xff;
        ck_assert_int_eq(llv_exif_orientation(t, 26), 6);
    }
    ck_assert_int_eq(llv_exif_orientation((const uint8_t *)"XX*\0\0\0\0\x08", 8), 1);
    ck_assert_int_eq(llv_exif_orientation(NULL, 100), 1);
}
END_TEST

START_TEST(test_exif_apply)
{
    /* 3x2 image, pixel value = 10*row + col:  00 01 02 / 10 11 12.
     * Expected layouts are PIL's transposes (ROTATE_90 is counter-clockwise). */
    static const struct { int o, w, h; uint8_t v[6]; } want[] = {
        { 1, 3, 2, { 0, 1, 2, 10, 11, 12 } },
        { 2, 3, 2, { 2, 1, 0, 12, 11, 10 } },  /* mirror */
        { 3, 3, 2, { 12, 11, 10, 2, 1, 0 } },  /* 180 */
        { 4, 3, 2, { 10, 11, 12, 0, 1, 2 } },  /* flip */
        { 5, 2, 3, { 0, 10, 1, 11, 2, 12 } },  /* transpose */
        { 6, 2, 3, { 10, 0, 11, 1, 12, 2 } },  /* 90 clockwise */
        { 7, 2, 3, { 12, 2, 11, 1, 10, 0 } },  /* transverse */
        { 8, 2, 3, { 2, 12, 1, 11, 0, 10 } },  /* 90 counter-clockwise */
    };
    for (size_t k = 0; k < 8; k++) {
        uint8_t *rgb = malloc(18);
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
                for (int c = 0; c < 3; c++)
                    rgb[(y * 3 + x) * 3 + c] = (uint8_t)(10 * y + x + 100 * c);
        int32_t w = 3, h = 2;
        ck_assert_int_eq(llv_rgb_apply_orientation(&rgb, &w, &h, want[k].o, NULL), LLAVA_OK);
        ck_assert_int_eq(w, want[k].w);
        ck_assert_int_eq(h, want[k].h);
        for (int i = 0; i < 6; i++)
            for (int c = 0; c < 3; c++)
                ck_assert_msg(rgb[3 * i + c] == want[k].v[i] + 100 * c, "o %d i %d", want[k].o, i);
        free(rgb);
    }
}
END_TEST

/* JPEG with an APP1 Exif segment inserted after SOI. */
static membuf jpeg_with_orientation(const membuf *j, int o)
{
    uint8_t tiff[32];
    size_t n = tiff_one(tiff, 0, 0x0112, 3, 1, (uint32_t)o);
    membuf m = { 0 };
    mb_put(&m, j->p, 2);
    uint8_t hdr[10] = { 0xff, 0xe1, 0, 0, 'E', 'x', 'i', 'f', 0, 0 };
    hdr[2] = (uint8_t)((n + 8) >> 8);
    hdr[3] = (uint8_t)(n + 8);
    mb_put(&m, hdr, 10);
    mb_put(&m, tiff, n);
    mb_put(&m, j->p + 2, j->n - 2);
    return m;
}

START_TEST(test_exif_api)
{
    uint8_t *rgb = pattern(24, 16, 3, 9);
    membuf j = make_jpeg(24, 16, 3, rgb, 90, 0);
    llava_params *p = llava_new_params();
    for (int o = 1; o <= 8; o++) {
        membuf m = jpeg_with_orientation(&j, o);
        llava_image *plain = NULL, *turned = NULL;
        char msg[LLAVA_ERRBUF_SIZE];
        /* Default: orientation ignored (as the reference LLaVA). */
        ck_assert_int_eq(decode(&m, NULL, &plain, msg), LLAVA_OK);
        ck_assert_int_eq(llava_image_width(plain), 24);
        ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_IMAGE_EXIF_ORIENT, 1), LLAVA_OK);
        ck_assert_int_eq(decode(&m, p, &turned, msg), LLAVA_OK);
        ck_assert_int_eq(llava_image_width(turned), o >= 5 ? 16 : 24);
        uint8_t *copy = malloc(24 * 16 * 3);
        memcpy(copy, llava_image_rgb(plain), 24 * 16 * 3);
        int32_t w = 24, h = 16;
        ck_assert_int_eq(llv_rgb_apply_orientation(&copy, &w, &h, o, NULL), LLAVA_OK);
        ck_assert_mem_eq(llava_image_rgb(turned), copy, 24 * 16 * 3);
        free(copy);
        llava_free_image(plain);
        llava_free_image(turned);
        free(m.p);
    }
    llava_free_params(p);
    free(j.p);
    free(rgb);
}
END_TEST

/* ---- preprocessing ----------------------------------------------------------- */

static void reference_pad_resize(const uint8_t *rgb, int w, int h, const uint8_t pad[3], int n, uint8_t *out)
{
    int side = w > h ? w : h, ox = (side - w) / 2, oy = (side - h) / 2;
    uint8_t *sq = malloc((size_t)side * side * 3);
    for (size_t i = 0; i < (size_t)side * side; i++)
        memcpy(sq + 3 * i, pad, 3);
    for (int y = 0; y < h; y++)
        memcpy(sq + (((size_t)(y + oy) * side) + ox) * 3, rgb + (size_t)y * w * 3, (size_t)w * 3);
    ck_assert_int_eq(llv_resize_bicubic(sq, side, side, out, n, n, NULL), LLAVA_OK);
    free(sq);
}

START_TEST(test_pad_resize_vs_reference)
{
    static const int sizes[][2] = { { 1, 1 }, { 2, 3 }, { 3, 2 }, { 17, 300 }, { 300, 17 }, { 1, 700 }, { 900, 3 },
                                    { 100, 60 }, { 335, 335 }, { 337, 200 }, { 336, 100 }, { 641, 479 }, { 50, 51 } };
    static const int targets[] = { 336, 224, 7, 1, 500 };
    const uint8_t pad[3] = { 122, 116, 104 };
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        uint8_t *rgb = pattern(w, h, 3, (unsigned)s);
        for (size_t t = 0; t < sizeof targets / sizeof *targets; t++) {
            int n = targets[t];
            uint8_t *want = malloc((size_t)n * n * 3), *got = malloc((size_t)n * n * 3);
            reference_pad_resize(rgb, w, h, pad, n, want);
            for (int cached = 0; cached < 2; cached++) {
                memset(got, 0x55, (size_t)n * n * 3);
                ck_assert_int_eq(llv_preprocess_pad_resize_cap(rgb, w, h, pad, n, got, cached ? SIZE_MAX : 0, NULL),
                                 LLAVA_OK);
                size_t diff = 0;
                for (size_t i = 0; i < (size_t)n * n * 3; i++)
                    diff += got[i] != want[i];
                ck_assert_msg(diff == 0, "%dx%d -> %d (cached %d): %zu bytes differ", w, h, n, cached, diff);
            }
            free(want);
            free(got);
        }
        free(rgb);
    }
}
END_TEST

START_TEST(test_resize_properties)
{
    /* A flat image stays flat (the taps of every output sum to 1.0 within
     * rounding); a same-size resize is a copy; the pad colour fills what
     * lies far from the picture. */
    const uint8_t pad[3] = { 122, 116, 104 };
    uint8_t *flat = malloc(40 * 40 * 3), *out = malloc(336 * 336 * 3);
    for (int i = 0; i < 40 * 40; i++) { flat[3 * i] = 122; flat[3 * i + 1] = 116; flat[3 * i + 2] = 104; }
    ck_assert_int_eq(llv_preprocess_pad_resize(flat, 40, 7, pad, 336, out, NULL), LLAVA_OK);
    for (int i = 0; i < 336 * 336; i++)
        ck_assert_mem_eq(out + 3 * i, pad, 3);
    uint8_t *rgb = pattern(336, 200, 3, 11);
    ck_assert_int_eq(llv_preprocess_pad_resize(rgb, 336, 200, pad, 336, out, NULL), LLAVA_OK);
    ck_assert_mem_eq(out, pad, 3);                                    /* row 0 is pad */
    ck_assert_mem_eq(out + (size_t)68 * 336 * 3, rgb, 336 * 3);       /* row 68 = image row 0 */
    ck_assert_mem_eq(out + (size_t)267 * 336 * 3, rgb + 199 * 336 * 3, 336 * 3);
    ck_assert_mem_eq(out + (size_t)268 * 336 * 3, pad, 3);
    uint8_t *same = malloc(336 * 200 * 3);
    ck_assert_int_eq(llv_resize_bicubic(rgb, 336, 200, same, 336, 200, NULL), LLAVA_OK);
    ck_assert_mem_eq(same, rgb, 336 * 200 * 3);
    /* Downscaling a 2x1 black/white pair to 1x1 by hand: scale 2, support 4,
     * center 1.0, taps at x-center+0.5 = -0.5, 0.5 over filterscale 2:
     * bicubic(-0.25) = bicubic(0.25) -> equal weights, 255/2 + 0.5 -> 128. */
    uint8_t bw[6] = { 0, 0, 0, 255, 255, 255 }, one[3];
    ck_assert_int_eq(llv_resize_bicubic(bw, 2, 1, one, 1, 1, NULL), LLAVA_OK);
    ck_assert_uint_eq(one[0], 128);
    /* Bad arguments. */
    ck_assert_int_eq(llv_preprocess_pad_resize(NULL, 1, 1, pad, 336, out, NULL), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llv_preprocess_pad_resize(rgb, 0, 1, pad, 336, out, NULL), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llv_preprocess_pad_resize(rgb, 1, 1, pad, 0, out, NULL), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llv_resize_bicubic(rgb, 1, 1, out, -1, 1, NULL), LLAVA_E_INVALID_ARG);
    free(same);
    free(rgb);
    free(flat);
    free(out);
}
END_TEST

START_TEST(test_extreme_aspect)
{
    /* 1 x 4000 and 5000 x 3 pad to 4000^2 / 5000^2 squares that are never
     * materialised; compared with the reference on the materialised square. */
    static const int sizes[][2] = { { 1, 4000 }, { 5000, 3 } };
    const uint8_t pad[3] = { 122, 116, 104 };
    for (int s = 0; s < 2; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        uint8_t *rgb = pattern(w, h, 3, 20 + s);
        uint8_t *want = malloc(336 * 336 * 3), *got = malloc(336 * 336 * 3);
        reference_pad_resize(rgb, w, h, pad, 336, want);
        ck_assert_int_eq(llv_preprocess_pad_resize(rgb, w, h, pad, 336, got, NULL), LLAVA_OK);
        ck_assert_mem_eq(got, want, 336 * 336 * 3);
        free(rgb); free(want); free(got);
    }
}
END_TEST

START_TEST(test_normalize)
{
    const uint8_t rgb[6] = { 0, 255, 128, 64, 1, 254 };
    const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
    const float std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
    float out[6];
    /* side 1 would use one pixel; use a 1x1 image twice to cover the layout:
     * planar output = [R][G][B], each side*side. */
    llv_normalize_planar(rgb, 1, mean, std, out);
    ck_assert_float_eq(out[0], (0.0f / 255.0f - mean[0]) / std[0]);
    ck_assert_float_eq(out[1], (255.0f / 255.0f - mean[1]) / std[1]);
    ck_assert_float_eq(out[2], (128.0f / 255.0f - mean[2]) / std[2]);
    /* 1.0 exactly for v=255 with mean 0, std 1; 0.5019608 for 128. */
    const float zero[3] = { 0, 0, 0 }, one[3] = { 1, 1, 1 };
    uint8_t px[12] = { 255, 128, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    float o[12];
    llv_normalize_planar(px, 2, zero, one, o);
    ck_assert_float_eq(o[0], 1.0f);         /* R of pixel 0 */
    ck_assert_float_eq(o[4], 128.0f / 255.0f); /* G plane starts at 4: G of pixel 0 */
    ck_assert_float_eq(o[8], 0.0f);         /* B of pixel 0 */
    ck_assert_float_eq(o[1], 1.0f / 255.0f); /* R of pixel 1 */
}
END_TEST

/* ---- allocation failures -------------------------------------------------- */

START_TEST(test_alloc_failures)
{
    uint8_t *rgb = pattern(19, 11, 3, 12);
    membuf png = make_png_rgb(19, 11, rgb, 0), pngi = make_png_rgb(19, 11, rgb, 1);
    membuf jpg = make_jpeg(19, 11, 3, rgb, 90, 1);
    const membuf *inputs[3] = { &png, &pngi, &jpg };
    for (int k = 0; k < 4; k++) {
        int saw_nomem = 0;
        for (long n = 0; n < 10000; n++) {
            llava_image *im = NULL;
            char msg[LLAVA_ERRBUF_SIZE];
            llv_alloc_fail_inject(n);
            int rc = k < 3 ? decode(inputs[k], NULL, &im, msg)
                           : llava_new_image_from_pixels(rgb, 19, 11, 57, LLAVA_PIXEL_RGB, 0, NULL, &im, msg, sizeof msg);
            llv_alloc_fail_inject(-1);
            if (rc == LLAVA_OK) {
                if (k != 2) /* the lossless ones give the pixels back */
                    ck_assert_mem_eq(llava_image_rgb(im), rgb, 19 * 11 * 3);
                llava_free_image(im);
                break;
            }
            ck_assert_msg(rc == LLAVA_E_NOMEM, "input %d, failing alloc %ld: rc %d (%s)", k, n, rc, msg);
            ck_assert_ptr_null(im);
            saw_nomem++;
        }
        ck_assert_int_gt(saw_nomem, 0);
    }
    /* Loading from a file (the read buffer grows by reallocation). */
    char path[] = "/tmp/llv-check-image-alloc-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, pngi.p, pngi.n), (ssize_t)pngi.n);
    close(fd);
    int saw = 0;
    for (long n = 0; n < 10000; n++) {
        llava_image *im = NULL;
        char msg[LLAVA_ERRBUF_SIZE];
        llv_alloc_fail_inject(n);
        int rc = llava_load_image(path, NULL, &im, msg, sizeof msg);
        llv_alloc_fail_inject(-1);
        if (rc == LLAVA_OK) {
            ck_assert_mem_eq(llava_image_rgb(im), rgb, 19 * 11 * 3);
            llava_free_image(im);
            break;
        }
        ck_assert_msg(rc == LLAVA_E_NOMEM, "load, failing alloc %ld: rc %d (%s)", n, rc, msg);
        saw++;
    }
    ck_assert_int_gt(saw, 0);
    unlink(path);
    /* And the resize. */
    uint8_t *out = malloc(336 * 336 * 3);
    const uint8_t pad[3] = { 1, 2, 3 };
    for (long n = 0; n < 1000; n++) {
        llv_alloc_fail_inject(n);
        int rc = llv_preprocess_pad_resize(rgb, 19, 11, pad, 336, out, NULL);
        llv_alloc_fail_inject(-1);
        if (rc == LLAVA_OK)
            break;
        ck_assert_int_eq(rc, LLAVA_E_NOMEM);
    }
    free(out);
    free(png.p); free(pngi.p); free(jpg.p);
    free(rgb);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image");
    TCase *dec = tcase_create("decode");
    tcase_add_test(dec, test_png_rgb_roundtrip);
    tcase_add_test(dec, test_png_conversions);
    tcase_add_test(dec, test_png_truncated);
    tcase_add_test(dec, test_png_corrupt);
    tcase_add_test(dec, test_png_huge_header);
    tcase_add_test(dec, test_max_pixels_exact);
    tcase_add_test(dec, test_jpeg_formats);
    tcase_add_test(dec, test_jpeg_truncated);
    tcase_add_loop_test(dec, test_jpeg_corrupt, 0, 2);
    tcase_add_test(dec, test_jpeg_huge_header);
    tcase_add_test(dec, test_not_an_image);
    tcase_add_test(dec, test_null_and_empty);
    tcase_add_test(dec, test_errbuf);
    tcase_add_test(dec, test_load_file);
    suite_add_tcase(s, dec);
    TCase *px = tcase_create("pixels");
    tcase_add_test(px, test_pixels_formats);
    tcase_add_test(px, test_pixels_bad);
    tcase_add_test(px, test_exif_parse);
    tcase_add_test(px, test_exif_apply);
    tcase_add_test(px, test_exif_api);
    suite_add_tcase(s, px);
    TCase *pre = tcase_create("preprocess");
    tcase_set_timeout(pre, 600);
    tcase_add_test(pre, test_pad_resize_vs_reference);
    tcase_add_test(pre, test_resize_properties);
    tcase_add_test(pre, test_extreme_aspect);
    tcase_add_test(pre, test_normalize);
    tcase_add_test(pre, test_alloc_failures);
    suite_add_tcase(s, pre);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
