/*
 * image.h - decoded images and LLaVA preprocessing.
 * Only image_png.c and image_jpeg.c see libpng/libjpeg; their setjmp error
 * handling stays inside one function each, never inside a parallel region.
 */
#ifndef LLV_IMAGE_H
#define LLV_IMAGE_H

#include "handle.h"

struct llava_image {
    llv_handle hdr;
    int32_t    width, height;
    uint8_t   *rgb;          /* width*height*3 bytes, rows top to bottom */
};

/* Pad to a square of side max(w,h) at the original resolution with colour
 * pad_rgb, pasted at ((side-w)/2, (side-h)/2) (integer division), then
 * resize to target x target with Pillow's antialiased bicubic (its
 * fixed-point separable algorithm, byte-identical to Pillow). out_rgb gets
 * target*target*3 bytes. This is the reference LLaVA-1.5 `expand2square` +
 * CLIPImageProcessor resize (spec Decisions 4, §5.1 "Reference"). */
LLV_INTERNAL int llv_preprocess_pad_resize(const uint8_t *rgb, int32_t w, int32_t h, const uint8_t pad_rgb[3],
                                           int32_t target, uint8_t *out_rgb, llv_err *err);
/* Pillow-exact bicubic resize of an RGB image (the building block). */
LLV_INTERNAL int llv_resize_bicubic(const uint8_t *src, int32_t sw, int32_t sh, uint8_t *dst,
                                    int32_t dw, int32_t dh, llv_err *err);
/* u8 RGB (interleaved, side x side) -> planar f32 [3][side][side]:
 * (v/255 - mean[c]) / std[c]. */
LLV_INTERNAL void llv_normalize_planar(const uint8_t *rgb, int32_t side, const float mean[3], const float std[3],
                                       float *out);

#endif /* LLV_IMAGE_H */
