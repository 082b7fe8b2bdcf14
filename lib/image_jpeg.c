/*
 * image_jpeg.c - JPEG decoding through libjpeg(-turbo)'s libjpeg API into
 * 8-bit RGB, set up as Pillow's JPEG plugin does so the pixels are
 * identical: libjpeg's defaults (islow DCT, fancy upsampling), output
 * colour space RGB for 3 components, GRAYSCALE for 1 (then replicated),
 * CMYK for 4 (YCCK is converted to CMYK by libjpeg), and Pillow's
 * CMYK -> RGB conversion with Adobe (inverted) polarity, which Pillow
 * assumes for every 4-component JPEG.
 *
 * Truncation: Pillow's decoder suspends when data runs out, which fails
 * the load unless every scanline was already delivered (then
 * jpeg_finish_decompress may stay suspended). libjpeg's memory source
 * reports running out as the warning JWRN_JPEG_EOF: an error before the
 * last scanline, ignored after it. A libjpeg error is an error at any
 * point, also in jpeg_finish_decompress, as in Pillow. Other warnings
 * (corrupt data libjpeg recovers from) are ignored, as Pillow ignores
 * them.
 */
#include "image_codec.h"

#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct jpeg_failure {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    volatile int pixels_done; /* set after the last scanline */
    char msg[JMSG_LENGTH_MAX];
} jpeg_failure;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    cinfo->err->format_message(cinfo, f->msg);
    longjmp(f->jump, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    if (level < 0) {
        if (cinfo->err->msg_code == JWRN_JPEG_EOF && !f->pixels_done) {
            snprintf(f->msg, sizeof f->msg, "JPEG file is truncated");
            longjmp(f->jump, 1);
        }
        cinfo->err->num_warnings++;
    }
    /* Trace messages (level >= 0) are ignored: the library never prints. */
}

static void jpeg_on_output(j_common_ptr cinfo) { (void)cinfo; }

/* Pillow's CMYK -> RGB: with the inverted ("CMYK;I") samples s,
 * c = 255 - s_c, nk = 255 - k = s_k, and out = nk - c*nk/255 with its
 * rounding division ((t >> 8) + t) >> 8 of t = c*nk + 128. */
static uint8_t cmyk_channel(unsigned stored_c, unsigned stored_k)
{
    unsigned c = 255 - stored_c, nk = stored_k;
    unsigned t = c * nk + 128;
    int v = (int)nk - (int)(((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

int llv_decode_jpeg(const uint8_t *data, size_t size, const llv_decode_opts *opts, llv_decoded *out, llv_err *err)
{
    memset(out, 0, sizeof *out);
    out->orientation = 1;
#if SIZE_MAX > ULONG_MAX
    if (size > (size_t)ULONG_MAX)
        return llv_fail(err, LLAVA_E_IMAGE, "JPEG data is too large");
#endif

    struct jpeg_decompress_struct cinfo;
    jpeg_failure fail;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&fail, 0, sizeof fail);
    cinfo.err = jpeg_std_error(&fail.pub);
    fail.pub.error_exit = jpeg_on_error;
    fail.pub.emit_message = jpeg_on_message;
    fail.pub.output_message = jpeg_on_output;

    /* Assigned after setjmp and read after a longjmp: volatile. */
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile row = NULL;
    volatile int status = LLAVA_OK;
    volatile bool created = false;
    volatile int32_t width = 0, height = 0;
    volatile int orientation = 1;

    if (setjmp(fail.jump)) {
        if (status == LLAVA_OK)
            status = llv_fail(err, LLAVA_E_IMAGE, "JPEG: %s", fail.msg);
        goto done;
    }

    jpeg_create_decompress(&cinfo);
    created = true;
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)size);
    if (opts->want_exif)
        jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(&cinfo, TRUE);

    size_t rgb_bytes;
    if (llv_image_check_size(cinfo.image_width, cinfo.image_height, opts->max_pixels, &rgb_bytes, err) != LLAVA_OK) {
        status = LLAVA_E_IMAGE;
        goto done;
    }
    width = (int32_t)cinfo.image_width;
    height = (int32_t)cinfo.image_height;

    if (opts->want_exif) {
        /* The first APP1 that starts with "Exif\0" (as Pillow keeps it);
         * the TIFF block follows the 6-byte "Exif\0\0" header. */
        for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
            if (m->marker == JPEG_APP0 + 1 && m->data_length >= 5 && memcmp(m->data, "Exif", 5) == 0) {
                if (m->data_length >= 6 && m->data[5] == 0)
                    orientation = llv_exif_orientation(m->data + 6, m->data_length - 6);
                break;
            }
        }
    }

    int ncomp = cinfo.num_components;
    if (ncomp == 1)
        cinfo.out_color_space = JCS_GRAYSCALE;
    else if (ncomp == 3)
        cinfo.out_color_space = JCS_RGB;
    else if (ncomp == 4)
        cinfo.out_color_space = JCS_CMYK;
    else {
        status = llv_fail(err, LLAVA_E_IMAGE, "JPEG: cannot handle %d-component images", ncomp);
        goto done;
    }
    jpeg_start_decompress(&cinfo);

    size_t row_bytes;
    if (llv_mul_overflow((size_t)cinfo.output_width, (size_t)cinfo.output_components, &row_bytes)) {
        status = llv_fail(err, LLAVA_E_IMAGE, "JPEG row too large");
        goto done;
    }
    uint8_t *pix = llv_malloc(rgb_bytes);
    rgb = pix;
    uint8_t *line = llv_malloc(row_bytes);
    row = line;
    if (!pix || !line) {
        status = llv_fail(err, LLAVA_E_NOMEM, "out of memory for a %dx%d image", width, height);
        goto done;
    }
    const size_t w = (size_t)width;
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        JSAMPROW rp = line;
        if (jpeg_read_scanlines(&cinfo, &rp, 1) != 1) {
            status = llv_fail(err, LLAVA_E_IMAGE, "JPEG: decoder returned no scanline");
            goto done;
        }
        uint8_t *o = pix + y * w * 3;
        if (ncomp == 3) {
            memcpy(o, line, w * 3);
        } else if (ncomp == 1) {
            for (size_t x = 0; x < w; x++)
                o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = line[x];
        } else {
            for (size_t x = 0; x < w; x++)
                for (int c = 0; c < 3; c++)
                    o[3 * x + c] = cmyk_channel(line[4 * x + c], line[4 * x + 3]);
        }
    }
    fail.pixels_done = 1;
    jpeg_finish_decompress(&cinfo);

done:
    if (created)
        jpeg_destroy_decompress(&cinfo);
    llv_free(row);
    if (status != LLAVA_OK) {
        llv_free(rgb);
        return status;
    }
    out->width = width;
    out->height = height;
    out->rgb = rgb;
    out->orientation = orientation;
    return LLAVA_OK;
}
