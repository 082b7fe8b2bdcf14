/*
 * llv-image-dump - test helper: decode an image with libllava and write
 * raw bytes so a Python test can compare them with Pillow.
 *
 *   llv-image-dump [--exif] [--max-pixels N] [--preprocess N [--normalize]] [--reference] IN OUT
 *
 * Writes the decoded RGB bytes (width*height*3) to OUT, or with
 * --preprocess N the pad-to-square (122,116,104) + bicubic N x N bytes
 * (--reference: through the plain materialised-square resize instead of
 * the fast path); --normalize then writes llv_normalize_planar's float32
 * planes [3][N][N] with CLIP's mean/std instead. Prints "WIDTH HEIGHT" of
 * the decoded image on stdout.
 * Exit status: 0 ok, 1 library error (message on stderr), 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "llava.h"

static int usage(void)
{
    fprintf(stderr, "usage: llv-image-dump [--exif] [--max-pixels N] [--preprocess N [--normalize]] [--reference] IN OUT\n");
    return 2;
}

/* expand2square + llv_resize_bicubic on the materialised square. */
static int reference_pad_resize(const uint8_t *rgb, int w, int h, const uint8_t pad[3], int n, uint8_t *out)
{
    int side = w > h ? w : h, ox = (side - w) / 2, oy = (side - h) / 2;
    uint8_t *sq = malloc((size_t)side * side * 3);
    if (!sq)
        return LLAVA_E_NOMEM;
    for (size_t i = 0; i < (size_t)side * side; i++)
        memcpy(sq + 3 * i, pad, 3);
    for (int y = 0; y < h; y++)
        memcpy(sq + (((size_t)(y + oy) * side) + ox) * 3, rgb + (size_t)y * w * 3, (size_t)w * 3);
    llv_err e;
    int rc = llv_resize_bicubic(sq, side, side, out, n, n, &e);
    if (rc != LLAVA_OK)
        fprintf(stderr, "resize: %s\n", e.msg);
    free(sq);
    return rc;
}

int main(int argc, char **argv)
{
    int exif = 0, reference = 0, normalize = 0;
    long long max_pixels = -1, pre = 0;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (!strcmp(argv[i], "--exif"))
            exif = 1;
        else if (!strcmp(argv[i], "--reference"))
            reference = 1;
        else if (!strcmp(argv[i], "--normalize"))
            normalize = 1;
        else if (!strcmp(argv[i], "--max-pixels") && i + 1 < argc)
            max_pixels = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--preprocess") && i + 1 < argc)
            pre = atoll(argv[++i]);
        else
            return usage();
    }
    if (argc - i != 2 || pre < 0 || pre > 4096 || (normalize && !pre))
        return usage();
    const char *in = argv[i], *outp = argv[i + 1];

    llava_params *p = llava_new_params();
    if (!p)
        return 1;
    llava_set_param_int(p, LLAVA_PARAM_IMAGE_EXIF_ORIENT, exif);
    if (max_pixels > 0 && llava_set_param_int(p, LLAVA_PARAM_IMAGE_MAX_PIXELS, max_pixels) != LLAVA_OK) {
        fprintf(stderr, "bad --max-pixels\n");
        return 2;
    }
    char msg[LLAVA_ERRBUF_SIZE];
    llava_image *im = NULL;
    int rc = llava_load_image(in, p, &im, msg, sizeof msg);
    llava_free_params(p);
    if (rc != LLAVA_OK) {
        fprintf(stderr, "error %d (%s): %s\n", rc, llava_strerror(rc), msg);
        return 1;
    }
    int w = llava_image_width(im), h = llava_image_height(im);
    const uint8_t *rgb = llava_image_rgb(im);
    uint8_t *buf = NULL;
    size_t n = (size_t)w * h * 3;
    if (pre > 0) {
        static const uint8_t pad[3] = { 122, 116, 104 };
        n = (size_t)pre * pre * 3;
        buf = malloc(n);
        if (!buf)
            return 1;
        llv_err e;
        rc = reference ? reference_pad_resize(rgb, w, h, pad, (int)pre, buf)
                       : llv_preprocess_pad_resize(rgb, w, h, pad, (int32_t)pre, buf, &e);
        if (rc != LLAVA_OK) {
            fprintf(stderr, "preprocess error %d: %s\n", rc, reference ? "" : e.msg);
            return 1;
        }
        rgb = buf;
        if (normalize) {
            /* CLIP's image_mean / image_std (the values in LLaVA mmproj files). */
            static const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
            static const float std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
            float *planes = malloc(n * sizeof(float));
            if (!planes)
                return 1;
            llv_normalize_planar(buf, (int32_t)pre, mean, std, planes);
            free(buf);
            buf = (uint8_t *)planes;
            rgb = buf;
            n *= sizeof(float);
        }
    }
    FILE *f = fopen(outp, "wb");
    if (!f || fwrite(rgb, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", outp);
        return 1;
    }
    printf("%d %d\n", w, h);
    free(buf);
    llava_free_image(im);
    return 0;
}
