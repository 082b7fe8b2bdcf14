/*
 * llv-anyres-bench - time llava_encode_image on a synthetic WxH image, with
 * the tiles batched automatically and with one image per tower pass.
 *   llv-anyres-bench MMPROJ.gguf [WIDTH HEIGHT [THREADS [REPEATS]]]
 * Not installed; used for the numbers in the LLaVA-1.6 note.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "llava.h"
#include "vision.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MMPROJ.gguf [WIDTH HEIGHT [THREADS [REPEATS]]]\n", argv[0]);
        return 2;
    }
    int w = argc > 3 ? atoi(argv[2]) : 672, h = argc > 3 ? atoi(argv[3]) : 672;
    int nt = argc > 4 ? atoi(argv[4]) : 2, reps = argc > 5 ? atoi(argv[5]) : 1;
    char err[LLAVA_ERRBUF_SIZE];
    llava_params *params = llava_new_params();
    llava_set_param_int(params, LLAVA_PARAM_N_THREADS, nt);
    llava_vision *v = NULL;
    llava_projector *p = NULL;
    if (llava_load_vision(argv[1], params, &v, err, sizeof err) || llava_load_projector(argv[1], params, &p, err, sizeof err)) {
        fprintf(stderr, "load: %s\n", err);
        return 1;
    }
    unsigned char *px = malloc((size_t)w * h * 3);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        px[i] = (unsigned char)((i * 2654435761u) >> 24);
    llava_image *im = NULL;
    if (llava_new_image_from_pixels(px, w, h, (size_t)w * 3, LLAVA_PIXEL_RGB, 0, NULL, &im, err, sizeof err)) {
        fprintf(stderr, "image: %s\n", err);
        return 1;
    }
    printf("%dx%d image, %d threads: %d tokens expected\n", w, h, nt, llava_vision_n_tokens_for(v, p, w, h));
    /* batch 0 = automatic (all tiles of a 672x672 image in one pass) */
    static const int batches[] = { 0, 1 };
    for (int mode = 0; mode < 2; mode++) {
        llv_anyres_force_batch(batches[mode]);
        for (int r = 0; r < reps; r++) {
            llava_embed *e = NULL;
            double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
            int rc = llava_encode_image(v, p, im, params, &e);
            double t1 = clock_s(CLOCK_MONOTONIC), c1 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
            if (rc) {
                fprintf(stderr, "encode: %s\n", llava_errmsg(im));
                return 1;
            }
            printf("%-20s %d tokens: wall %.2f s, cpu %.2f s\n", mode == 0 ? "batched (auto)" : "one image per pass",
                   llava_embed_n_tokens(e), t1 - t0, c1 - c0);
            llava_free_embed(e);
        }
    }
    llava_free_image(im);
    free(px);
    llava_free_projector(p);
    llava_free_vision(v);
    llava_free_params(params);
    return 0;
}
