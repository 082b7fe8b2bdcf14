/*
 * check_anyres.c - LLaVA-1.6 any-resolution layout, batching and errors.
 *
 * Values are worked out by hand from the reference algorithm (spec §5.3)
 * with LLaVA-1.6's pinpoints; the encoder itself is compared with the
 * PyTorch reference in tests/test_anyres_ref.py. Models: the golden tiny
 * mmproj (336 px, patch 14, G = 24) rebuilt with pinpoint keys and an
 * image_newline tensor.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llava.h"
#include "embed.h"
#include "gguf.h"
#include "vision.h"

static const char *data_path(const char *rel)
{
    static char buf[1024];
    const char *d = getenv("LLAVA_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", d && *d ? d : LLAVA_TEST_DATA, rel);
    return buf;
}

static const int32_t llava_pins[10] = { 336, 672, 672, 336, 672, 672, 1008, 336, 336, 1008 };

/* ---- selection and layout by hand ---------------------------------------- */

START_TEST(test_select_best)
{
    llv_anyres a;
    memset(&a, 0, sizeof a);
    a.n_pinpoints = 5;
    memcpy(a.pinpoints, llava_pins, sizeof llava_pins);
    /* 640x480: effective pixels 84672, 150528, min(338688, 307200), 150528, 84672 -> 672x672 */
    ck_assert_int_eq(llv_anyres_select(&a, 640, 480), 2);
    /* 1000x300: 1008x336 keeps 1008x302 >= 300000 pixels, more than any other */
    ck_assert_int_eq(llv_anyres_select(&a, 1000, 300), 3);
    ck_assert_int_eq(llv_anyres_select(&a, 300, 1000), 4);
    /* 100x100: every candidate keeps all 10000 pixels; least waste 336*672, first of the tie */
    ck_assert_int_eq(llv_anyres_select(&a, 100, 100), 0);
    /* 700x350: 672x336 (225792) ties with 672x672 and 1008x336 but wastes least */
    ck_assert_int_eq(llv_anyres_select(&a, 700, 350), 1);
    ck_assert_int_eq(llv_anyres_select(&a, 350, 700), 0);
}
END_TEST

/* ---- model files ---------------------------------------------------------- */

typedef struct variant {
    const char *merge;        /* mm_patch_merge_type or NULL */
    const char *newline_name; /* NULL: none */
    int64_t     newline_len;  /* 0: the projector width */
    int         n_pins;       /* values of image_grid_pinpoints */
    const int32_t *pins;
} variant;

static void *build(const variant *va, size_t *size)
{
    llv_err err;
    llv_gguf *g = NULL;
    ck_assert_int_eq(llv_gguf_open_file(data_path("golden/tiny-dev/model-mmproj.gguf"), 0, &g, &err), LLAVA_OK);
    llv_gguf_writer *w = llv_gguf_writer_new();
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(llv_gguf_copy_kv(w, g, NULL), LLAVA_OK);
    if (va->n_pins)
        ck_assert_int_eq(llv_gguf_add_arr(w, "clip.vision.image_grid_pinpoints", LLV_GGUF_INT32, va->pins,
                                          (uint64_t)va->n_pins), LLAVA_OK);
    if (va->merge)
        ck_assert_int_eq(llv_gguf_add_str(w, "clip.vision.mm_patch_merge_type", va->merge), LLAVA_OK);
    int64_t width = 0;
    for (int64_t i = 0; i < llv_gguf_n_tensors(g); i++) {
        const llv_gguf_tensor *t = llv_gguf_tensor_at(g, i);
        if (strcmp(t->name, "mm.2.weight") == 0)
            width = t->ne[1];
        ck_assert_int_eq(llv_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->nbytes), LLAVA_OK);
    }
    if (va->newline_name) {
        int64_t n = va->newline_len ? va->newline_len : width;
        float *nl = malloc((size_t)n * sizeof *nl);
        for (int64_t i = 0; i < n; i++)
            nl[i] = (float)sin(0.37 * (double)i) * 2.0f;
        ck_assert_int_eq(llv_gguf_add_tensor(w, va->newline_name, LLV_TYPE_F32, 1, &n, nl, (size_t)n * 4), LLAVA_OK);
        free(nl);
    }
    void *buf;
    ck_assert_int_eq(llv_gguf_write_memory(w, &buf, size, &err), LLAVA_OK);
    llv_gguf_writer_free(w);
    llv_gguf_close(g);
    return buf;
}

static const variant v_unpad = { "spatial_unpad", "model.image_newline", 0, 10, llava_pins };
static const variant v_flat = { "flat", NULL, 0, 10, llava_pins };

/* The returned file image must outlive v and p (memory loads may borrow it). */
static void *load_pair(const variant *va, llava_vision **v, llava_projector **p, const llava_params *params)
{
    size_t size;
    void *buf = build(va, &size);
    char errbuf[LLAVA_ERRBUF_SIZE];
    ck_assert_msg(llava_load_vision_from_memory(buf, size, params, v, errbuf, sizeof errbuf) == LLAVA_OK, "%s", errbuf);
    ck_assert_msg(llava_load_projector_from_memory(buf, size, params, p, errbuf, sizeof errbuf) == LLAVA_OK, "%s",
                  errbuf);
    return buf;
}

START_TEST(test_token_counts)
{
    llava_vision *v;
    llava_projector *p;
    void *buf = load_pair(&v_unpad, &v, &p, NULL);
    /* 640x480 -> 672x672 (2x2 tiles, 48x48 map); W/H > 1: new_h = int(480*48/640) = 36,
     * pad 6 -> 36 rows of 48 + newline: 576 + 36*49 */
    ck_assert_int_eq(llava_vision_n_tokens_for(v, p, 640, 480), 576 + 36 * 49);
    /* 672x672 -> 672x672, nothing removed: 576 + 48*49 */
    ck_assert_int_eq(llava_vision_n_tokens_for(v, p, 672, 672), 576 + 48 * 49);
    /* 1000x300 -> 1008x336 (3x1, 24x72 map); new_h = int(300*0.072) = 21, pad 1 -> 22 rows of 72 + 1 */
    ck_assert_int_eq(llava_vision_n_tokens_for(v, p, 1000, 300), 576 + 22 * 73);
    /* 300x1000 -> 336x1008 (72x24 map), W/H < 1/3: new_w = 21, pad 1 -> 72 rows of 22 + 1 */
    ck_assert_int_eq(llava_vision_n_tokens_for(v, p, 300, 1000), 576 + 72 * 23);
    /* 100x100 -> 336x672 (48 rows x 24 cols); W/H = 1 > 0.5: new_h = int(100*24/100) = 24,
     * pad 12 -> 24 rows of 24 + 1 */
    ck_assert_int_eq(llava_vision_n_tokens_for(v, p, 100, 100), 576 + 24 * 25);
    ck_assert_int_eq(llava_vision_n_tokens_for(v, p, 0, 100), 0);
    ck_assert_int_eq(llava_vision_n_tokens_for(NULL, p, 10, 10), 0);
    ck_assert_int_eq(llava_vision_n_tokens_for(v, NULL, 10, 10), 0);
    llava_free_projector(p);
    llava_free_vision(v);
    free(buf);

    buf = load_pair(&v_flat, &v, &p, NULL);
    ck_assert_int_eq(llava_vision_n_tokens_for(v, p, 640, 480), 5 * 576);
    ck_assert_int_eq(llava_vision_n_tokens_for(v, p, 1000, 300), 4 * 576);
    llava_free_projector(p);
    llava_free_vision(v);
    free(buf);

    /* LLaVA-1.5 file: 576 for any size */
    char errbuf[LLAVA_ERRBUF_SIZE];
    ck_assert_int_eq(llava_load_vision(data_path("golden/tiny-dev/model-mmproj.gguf"), NULL, &v, errbuf,
                                       sizeof errbuf), LLAVA_OK);
    ck_assert_int_eq(llava_load_projector(data_path("golden/tiny-dev/model-mmproj.gguf"), NULL, &p, errbuf,
                                          sizeof errbuf), LLAVA_OK);
    ck_assert_int_eq(llava_vision_n_tokens_for(v, p, 640, 480), 576);
    ck_assert_int_eq(llava_vision_n_tokens_for(v, p, 5, 3000), 576);
    llava_free_projector(p);
    llava_free_vision(v);
}
END_TEST

/* ---- batching and abort --------------------------------------------------- */

static llava_image *test_image(int w, int h)
{
    unsigned char *px = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *q = px + ((size_t)y * w + x) * 3;
            q[0] = (unsigned char)(x * 255 / w);
            q[1] = (unsigned char)(y * 255 / h);
            q[2] = (unsigned char)((x * 7 + y * 13) & 255);
        }
    llava_image *im = NULL;
    ck_assert_int_eq(llava_new_image_from_pixels(px, w, h, (size_t)w * 3, LLAVA_PIXEL_RGB, 0, NULL, &im, NULL, 0),
                     LLAVA_OK);
    free(px);
    return im;
}

/* Batched tower passes (all five images through one GEMM, or two at a time)
 * give the same embedding as one image per pass (the plain path). */
START_TEST(test_batch_matches_single)
{
    llava_params *params = llava_new_params();
    llava_set_param_int(params, LLAVA_PARAM_N_THREADS, 2);
    llava_vision *v;
    llava_projector *p;
    void *buf = load_pair(&v_unpad, &v, &p, params);
    llava_image *im = test_image(640, 480);
    llava_embed *e[3];
    const int batch[3] = { 1, 0, 2 };
    for (int i = 0; i < 3; i++) {
        llv_anyres_force_batch(batch[i]);
        ck_assert_msg(llava_encode_image(v, p, im, params, &e[i]) == LLAVA_OK, "%s", llava_errmsg(im));
    }
    llv_anyres_force_batch(0);
    const size_t n = (size_t)llava_embed_n_tokens(e[0]) * (size_t)llava_embed_n_embd(e[0]);
    ck_assert_int_eq(llava_embed_n_tokens(e[0]), 576 + 36 * 49);
    for (int i = 1; i < 3; i++) {
        ck_assert_int_eq(llava_embed_n_tokens(e[i]), llava_embed_n_tokens(e[0]));
        double max_d = 0, max_v = 0;
        const float *a = llava_embed_data(e[0]), *b = llava_embed_data(e[i]);
        for (size_t k = 0; k < n; k++) {
            max_d = fmax(max_d, fabs((double)a[k] - b[k]));
            max_v = fmax(max_v, fabs((double)a[k]));
        }
        printf("batch %d vs 1: max abs diff %.3g (max %.3g)\n", batch[i], max_d, max_v);
        ck_assert_msg(max_d <= 1e-5 * max_v, "batch %d differs: %g", batch[i], max_d);
    }
    /* the newline rows: token 576 + 48 (after the first unpadded row) is image_newline */
    const float *row = llava_embed_data(e[0]) + (size_t)(576 + 48) * (size_t)llava_embed_n_embd(e[0]);
    for (int k = 0; k < llava_embed_n_embd(e[0]); k++)
        ck_assert_float_eq_tol(row[k], (float)sin(0.37 * k) * 2.0f, 1e-6f);
    for (int i = 0; i < 3; i++)
        llava_free_embed(e[i]);
    llava_free_image(im);
    llava_free_projector(p);
    llava_free_vision(v);
    llava_free_params(params);
    free(buf);
}
END_TEST

typedef struct { int calls, stop_at; } abort_state;

static int count_abort(void *ud)
{
    abort_state *s = ud;
    s->calls++;
    return s->stop_at > 0 && s->calls >= s->stop_at;
}

START_TEST(test_abort_between_tiles)
{
    abort_state st = { 0, 0 };
    llava_params *params = llava_new_params();
    llava_set_param_int(params, LLAVA_PARAM_N_THREADS, 2);
    llava_set_abort_callback(params, count_abort, &st);
    llava_vision *v;
    llava_projector *p;
    void *buf = load_pair(&v_unpad, &v, &p, params);
    llava_image *im = test_image(640, 480);
    llava_embed *e = NULL;
    llv_anyres_force_batch(1);
    ck_assert_int_eq(llava_encode_image(v, p, im, params, &e), LLAVA_OK);
    llava_free_embed(e);
    /* polled before every block of every one of the 5 images */
    int full = st.calls;
    ck_assert_int_ge(full, 5 * 2);
    /* stop in the middle: after the first images, before the last */
    st.calls = 0;
    st.stop_at = full / 2;
    ck_assert_int_eq(llava_encode_image(v, p, im, params, &e), LLAVA_E_ABORTED);
    ck_assert_ptr_null(e);
    ck_assert_int_eq(st.calls, full / 2);
    printf("abort: %d polls per encode, stopped at poll %d: %s\n", full, full / 2, llava_errmsg(im));
    llv_anyres_force_batch(0);
    llava_free_image(im);
    llava_free_projector(p);
    llava_free_vision(v);
    llava_free_params(params);
    free(buf);
}
END_TEST

/* ---- hostile files ---------------------------------------------------------- */

static const int32_t pins_odd[3] = { 336, 672, 672 };
static const int32_t pins_500[2] = { 500, 336 };
static const int32_t pins_many[2] = { 336 * 9, 336 * 8 };

typedef struct hostile {
    variant     va;
    int         rc_vision;
    const char *msg;
} hostile;

static const hostile hostiles[] = {
    { { "spatial_unpad", "model.image_newline", 0, 3, pins_odd }, LLAVA_E_FORMAT, "pairs" },
    { { "spatial_unpad", "model.image_newline", 0, 2, pins_500 }, LLAVA_E_FORMAT, "500x336" },
    { { "spatial_unpad", "model.image_newline", 0, 2, pins_many }, LLAVA_E_FORMAT, "at most 64 tiles" },
    { { "spatial_unpad", NULL, 0, 10, llava_pins }, LLAVA_E_FORMAT, "image_newline" },
    { { "unpad_anyres_max_9", "model.image_newline", 0, 10, llava_pins }, LLAVA_E_UNSUPPORTED, "'unpad_anyres_max_9'" },
    { { NULL, "v.image_newline", 0, 10, llava_pins }, LLAVA_OK, NULL },
    { { NULL, NULL, 0, 10, llava_pins }, LLAVA_OK, NULL },
    { { "spatial_unpad", "v.image_newline", 7, 10, llava_pins }, LLAVA_OK, NULL }, /* width checked at encode */
};

START_TEST(test_hostile)
{
    const hostile *h = &hostiles[_i];
    size_t size;
    void *buf = build(&h->va, &size);
    char errbuf[LLAVA_ERRBUF_SIZE] = "";
    llava_vision *v = NULL;
    int rc = llava_load_vision_from_memory(buf, size, NULL, &v, errbuf, sizeof errbuf);
    ck_assert_msg(rc == h->rc_vision, "case %d: status %d, expected %d (%s)", _i, rc, h->rc_vision, errbuf);
    if (h->msg)
        ck_assert_msg(strstr(errbuf, h->msg) != NULL, "case %d: message '%s' lacks '%s'", _i, errbuf, h->msg);
    if (rc == LLAVA_OK && h->va.newline_len) {
        /* newline of the wrong width: encode fails with MISMATCH, nothing leaks */
        llava_projector *p = NULL;
        ck_assert_int_eq(llava_load_projector_from_memory(buf, size, NULL, &p, errbuf, sizeof errbuf), LLAVA_OK);
        llava_image *im = test_image(50, 40);
        llava_embed *e = NULL;
        ck_assert_int_eq(llava_encode_image(v, p, im, NULL, &e), LLAVA_E_MISMATCH);
        ck_assert_ptr_null(e);
        ck_assert_ptr_nonnull(strstr(llava_errmsg(im), "image_newline"));
        llava_free_image(im);
        llava_free_projector(p);
    }
    llava_free_vision(v);
    free(buf);
}
END_TEST

static Suite *anyres_suite(void)
{
    Suite *s = suite_create("anyres");
    TCase *tc = tcase_create("layout");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_select_best);
    tcase_add_test(tc, test_token_counts);
    tcase_add_loop_test(tc, test_hostile, 0, (int)(sizeof hostiles / sizeof hostiles[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("encode");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, test_batch_matches_single);
    tcase_add_test(tc, test_abort_between_tiles);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(anyres_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
