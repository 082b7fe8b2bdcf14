/*
 * image_codec.h - private interface between the image API (api_image.c),
 * the decoders (image_png.c, image_jpeg.c) and the pixel helpers
 * (image.c). Nothing here is seen outside the image area.
 *
 * Every decoder produces 8-bit RGB exactly as Pillow's
 * Image.open(f).convert('RGB') does (Pillow 9.4 on Debian 12, which decodes
 * JPEG with the same libjpeg-turbo), so the preprocessing that follows can
 * be byte-identical to the reference LLaVA pipeline.
 */
#ifndef LLV_IMAGE_CODEC_H
#define LLV_IMAGE_CODEC_H

#include "image.h"

/* What a decoder hands back. rgb is llv_malloc'd (width*height*3 bytes,
 * rows top to bottom); orientation is the EXIF orientation 1..8 found in
 * the file (1 when absent, unreadable or not asked for). */
typedef struct llv_decoded {
    int32_t  width, height;
    uint8_t *rgb;
    int      orientation;
} llv_decoded;

/* Limits a decoder applies to the header, before any pixel memory. */
typedef struct llv_decode_opts {
    uint64_t max_pixels; /* width*height must not exceed this */
    bool     want_exif;  /* look for the EXIF orientation */
} llv_decode_opts;

LLV_INTERNAL bool llv_is_png(const uint8_t *data, size_t size);
LLV_INTERNAL bool llv_is_jpeg(const uint8_t *data, size_t size);

/* Decode a whole PNG / JPEG held in memory. On failure out->rgb is NULL,
 * the status is LLAVA_E_IMAGE (bad data, too large) or LLAVA_E_NOMEM. */
LLV_INTERNAL int llv_decode_png(const uint8_t *data, size_t size, const llv_decode_opts *opts,
                                llv_decoded *out, llv_err *err);
LLV_INTERNAL int llv_decode_jpeg(const uint8_t *data, size_t size, const llv_decode_opts *opts,
                                 llv_decoded *out, llv_err *err);

/* Check a header size against the limits and compute the RGB byte count:
 * rejects 0, sizes above INT32_MAX, width*height > max_pixels and byte
 * counts that overflow size_t. */
LLV_INTERNAL int llv_image_check_size(uint64_t width, uint64_t height, uint64_t max_pixels, size_t *rgb_bytes,
                                      llv_err *err);

/* EXIF orientation (tag 0x0112 of IFD0) from a TIFF block as stored after
 * the "Exif\0\0" header of a JPEG APP1 segment or in a PNG eXIf chunk.
 * Bounds-checked; returns 1 when the block is malformed or has no valid
 * single-valued tag (as PIL.ImageOps.exif_transpose then does nothing). */
LLV_INTERNAL int llv_exif_orientation(const uint8_t *tiff, size_t size);

/* Apply an EXIF orientation (2..8) to an RGB image the way
 * PIL.ImageOps.exif_transpose does; 1 or any other value leaves it alone.
 * Replaces the pixel buffer (freeing the old one); width and height swap for 5..8. */
LLV_INTERNAL int llv_rgb_apply_orientation(uint8_t **rgb, int32_t *w, int32_t *h, int orientation, llv_err *err);

#endif /* LLV_IMAGE_CODEC_H */
