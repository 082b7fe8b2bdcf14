/*
 * check_embed.c - image embeddings: construction, accessors and the
 * versioned blob (format documented in lib/embed.c). Expected bytes are
 * worked out here from the documented layout, with a CRC-32 written
 * independently (bitwise, checked on the standard "123456789" vector).
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llava.h"

#define HDR 32

/* Bitwise CRC-32 (IEEE 802.3, reflected, as zlib's crc32). */
static uint32_t crc32_bitwise(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static void wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

/* A small embedding with awkward values: signs, zeros, subnormals, extremes. */
static llava_embed *make_embed(int32_t nt, int32_t ne, float **data_out)
{
    float *d = malloc(sizeof(float) * nt * ne);
    uint32_t s = 12345;
    for (int i = 0; i < nt * ne; i++) {
        s = s * 1664525u + 1013904223u;
        d[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 100.0f;
    }
    d[0] = -0.0f;
    if (nt * ne > 3) {
        d[1] = 1e-45f;     /* smallest subnormal */
        d[2] = 3.4028235e38f;
        d[3] = -3.4028235e38f;
    }
    llava_embed *e = NULL;
    char errbuf[LLAVA_ERRBUF_SIZE];
    ck_assert_int_eq(llava_new_embed(d, nt, ne, &e, errbuf, sizeof errbuf), LLAVA_OK);
    *data_out = d;
    return e;
}

static uint8_t *save_blob(const llava_embed *e, size_t *size)
{
    size_t need = 0;
    ck_assert_int_eq(llava_embed_save(e, NULL, 0, &need), LLAVA_E_BUFFER_TOO_SMALL);
    uint8_t *buf = malloc(need);
    ck_assert_int_eq(llava_embed_save(e, buf, need - 1, size), LLAVA_E_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(*size, need);
    ck_assert_int_eq(llava_embed_save(e, buf, need, size), LLAVA_OK);
    ck_assert_uint_eq(*size, need);
    return buf;
}

START_TEST(test_new_and_accessors)
{
    float *d;
    llava_embed *e = make_embed(3, 5, &d);
    ck_assert_int_eq(llava_embed_n_tokens(e), 3);
    ck_assert_int_eq(llava_embed_n_embd(e), 5);
    ck_assert_ptr_ne(llava_embed_data(e), d); /* copied */
    ck_assert_mem_eq(llava_embed_data(e), d, sizeof(float) * 15);
    ck_assert_str_eq(llava_errmsg(e), "");
    d[4] = 7.0f; /* the caller's buffer is not referenced */
    ck_assert_float_ne(llava_embed_data(e)[4], 7.0f);
    llava_free_embed(e);
    free(d);

    ck_assert_int_eq(llava_embed_n_tokens(NULL), 0);
    ck_assert_int_eq(llava_embed_n_embd(NULL), 0);
    ck_assert_ptr_null(llava_embed_data(NULL));
    llava_free_embed(NULL);
}
END_TEST

START_TEST(test_new_rejects)
{
    char errbuf[LLAVA_ERRBUF_SIZE];
    float d[8] = { 0 };
    llava_embed *e = (llava_embed *)d; /* must become NULL */
    ck_assert_int_eq(llava_new_embed(NULL, 1, 1, &e, errbuf, sizeof errbuf), LLAVA_E_INVALID_ARG);
    ck_assert_ptr_null(e);
    ck_assert_int_eq(llava_new_embed(d, 1, 1, NULL, errbuf, sizeof errbuf), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_new_embed(d, 0, 8, &e, errbuf, sizeof errbuf), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_new_embed(d, 8, 0, &e, errbuf, sizeof errbuf), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_new_embed(d, -1, 8, &e, errbuf, sizeof errbuf), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_new_embed(d, 1 << 30, 1 << 30, &e, errbuf, sizeof errbuf), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_new_embed(d, INT32_MAX, 1, &e, NULL, 0), LLAVA_E_INVALID_ARG);
    ck_assert_ptr_null(e);
    d[5] = NAN;
    ck_assert_int_eq(llava_new_embed(d, 2, 4, &e, errbuf, sizeof errbuf), LLAVA_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(errbuf, "finite"));
    d[5] = INFINITY;
    ck_assert_int_eq(llava_new_embed(d, 2, 4, &e, errbuf, sizeof errbuf), LLAVA_E_INVALID_ARG);
    ck_assert_ptr_null(e);
}
END_TEST

START_TEST(test_blob_layout)
{
    ck_assert_uint_eq(crc32_bitwise((const uint8_t *)"123456789", 9), 0xCBF43926u);
    float *d;
    llava_embed *e = make_embed(7, 9, &d);
    size_t size;
    uint8_t *b = save_blob(e, &size);
    ck_assert_uint_eq(size, HDR + 4 * 7 * 9);
    ck_assert_mem_eq(b, "LLVE", 4);
    ck_assert_uint_eq(rd32(b + 4), 1);
    ck_assert_uint_eq(rd32(b + 8), 7);
    ck_assert_uint_eq(rd32(b + 12), 9);
    ck_assert_uint_eq(rd32(b + 16), 4 * 7 * 9);
    ck_assert_uint_eq(rd32(b + 20), 0);
    ck_assert_uint_eq(rd32(b + 24), crc32_bitwise(b + HDR, 4 * 7 * 9));
    ck_assert_uint_eq(rd32(b + 28), 0);
    for (int i = 0; i < 7 * 9; i++) { /* little-endian f32 payload */
        uint32_t bits;
        memcpy(&bits, &d[i], 4);
        ck_assert_uint_eq(rd32(b + HDR + 4 * i), bits);
    }
    free(b);
    free(d);
    llava_free_embed(e);
}
END_TEST

START_TEST(test_round_trip)
{
    float *d;
    llava_embed *e = make_embed(576, 16, &d);
    size_t size;
    uint8_t *b = save_blob(e, &size);
    llava_embed *r = NULL;
    char errbuf[LLAVA_ERRBUF_SIZE];
    ck_assert_int_eq(llava_embed_load(b, size, &r, errbuf, sizeof errbuf), LLAVA_OK);
    ck_assert_int_eq(llava_embed_n_tokens(r), 576);
    ck_assert_int_eq(llava_embed_n_embd(r), 16);
    ck_assert_mem_eq(llava_embed_data(r), d, sizeof(float) * 576 * 16); /* bit-exact, -0 and subnormals too */
    /* Saving the loaded copy gives the same bytes. */
    size_t size2;
    uint8_t *b2 = save_blob(r, &size2);
    ck_assert_uint_eq(size, size2);
    ck_assert_mem_eq(b, b2, size);
    free(b2);
    free(b);
    free(d);
    llava_free_embed(r);
    llava_free_embed(e);
}
END_TEST

START_TEST(test_every_truncation)
{
    float *d;
    llava_embed *e = make_embed(5, 6, &d);
    size_t size;
    uint8_t *b = save_blob(e, &size);
    char errbuf[LLAVA_ERRBUF_SIZE];
    for (size_t n = 0; n < size; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan catches over-reads */
        memcpy(copy, b, n);
        llava_embed *r = (llava_embed *)copy;
        ck_assert_msg(llava_embed_load(copy, n, &r, errbuf, sizeof errbuf) == LLAVA_E_FORMAT, "length %zu", n);
        ck_assert_ptr_null(r);
        free(copy);
    }
    /* One trailing byte is rejected too. */
    uint8_t *longer = malloc(size + 1);
    memcpy(longer, b, size);
    longer[size] = 0;
    llava_embed *r = NULL;
    ck_assert_int_eq(llava_embed_load(longer, size + 1, &r, errbuf, sizeof errbuf), LLAVA_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(errbuf, "trailing"));
    ck_assert_int_eq(llava_embed_load(NULL, 0, &r, errbuf, sizeof errbuf), LLAVA_E_FORMAT);
    ck_assert_int_eq(llava_embed_load(NULL, 10, &r, errbuf, sizeof errbuf), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_embed_load(b, size, NULL, errbuf, sizeof errbuf), LLAVA_E_INVALID_ARG);
    free(longer);
    free(b);
    free(d);
    llava_free_embed(e);
}
END_TEST

/* One corrupted field each; fix_crc recomputes the checksum so that the
 * field itself (not the CRC) must be what is caught. */
typedef struct corruption {
    const char *name;
    size_t offset;
    uint32_t value;
    bool fix_crc;
    const char *msg;
} corruption;

static const corruption corruptions[] = {
    { "magic", 0, 0x45564c4d /* "MLVE" */, false, "magic" },
    { "version 0", 4, 0, false, "version" },
    { "version 2", 4, 2, false, "version" },
    { "n_tokens 0", 8, 0, false, "shape" },
    { "n_tokens 6 (size mismatch)", 8, 6, false, "payload" },
    { "n_tokens 2^31", 8, 0x80000000u, false, "shape" },
    { "n_tokens 2^32-1", 8, 0xffffffffu, false, "shape" },
    { "n_embd 0", 12, 0, false, "shape" },
    { "n_embd 3", 12, 3, false, "payload" },
    { "n_embd 2^31", 12, 0x80000000u, false, "shape" },
    { "payload low", 16, 4, false, "payload" },
    { "payload high", 20, 1, false, "payload" },
    { "checksum", 24, 0x12345678u, false, "checksum" },
    { "reserved", 28, 1, false, "reserved" },
    { "payload bit flip", HDR + 8, 0x3f800001u, false, "checksum" },
    { "payload NaN", HDR + 8, 0x7fc00000u, true, "finite" },
    { "payload +Inf", HDR + 4 * 29, 0x7f800000u, true, "finite" },
};

START_TEST(test_corrupted_header)
{
    const corruption *c = &corruptions[_i];
    float *d;
    llava_embed *e = make_embed(5, 6, &d);
    size_t size;
    uint8_t *b = save_blob(e, &size);
    wr32(b + c->offset, c->value);
    if (c->fix_crc)
        wr32(b + 24, crc32_bitwise(b + HDR, size - HDR));
    llava_embed *r = NULL;
    char errbuf[LLAVA_ERRBUF_SIZE] = "";
    int rc = llava_embed_load(b, size, &r, errbuf, sizeof errbuf);
    printf("%-28s %d \"%s\"\n", c->name, rc, errbuf);
    ck_assert_int_eq(rc, LLAVA_E_FORMAT);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(errbuf, c->msg) != NULL, "%s: \"%s\" lacks \"%s\"", c->name, errbuf, c->msg);
    free(b);
    free(d);
    llava_free_embed(e);
}
END_TEST

START_TEST(test_files)
{
    char dir[] = "/tmp/check_embed_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256], path2[256];
    snprintf(path, sizeof path, "%s/a.llve", dir);
    snprintf(path2, sizeof path2, "%s/b.llve", dir);
    float *d;
    llava_embed *e = make_embed(9, 11, &d);
    ck_assert_int_eq(llava_embed_save_file(e, path), LLAVA_OK);

    /* The file holds exactly the memory blob. */
    size_t size;
    uint8_t *b = save_blob(e, &size);
    FILE *f = fopen(path, "rb");
    uint8_t *fb = malloc(size + 1);
    ck_assert_uint_eq(fread(fb, 1, size + 1, f), size);
    fclose(f);
    ck_assert_mem_eq(fb, b, size);

    llava_embed *r = NULL;
    char errbuf[LLAVA_ERRBUF_SIZE];
    ck_assert_int_eq(llava_embed_load_file(path, &r, errbuf, sizeof errbuf), LLAVA_OK);
    ck_assert_mem_eq(llava_embed_data(r), d, sizeof(float) * 9 * 11);
    llava_free_embed(r);

    /* Truncated files (a few lengths) and a corrupted one. */
    const size_t lens[] = { 0, 1, 31, 32, 33, size - 4, size - 1 };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        f = fopen(path2, "wb");
        ck_assert_uint_eq(fwrite(b, 1, lens[i], f), lens[i]);
        fclose(f);
        r = (llava_embed *)b;
        ck_assert_msg(llava_embed_load_file(path2, &r, errbuf, sizeof errbuf) == LLAVA_E_FORMAT, "length %zu: %s",
                      lens[i], errbuf);
        ck_assert_ptr_null(r);
    }
    b[HDR + 3] ^= 0x40;
    f = fopen(path2, "wb");
    fwrite(b, 1, size, f);
    fclose(f);
    ck_assert_int_eq(llava_embed_load_file(path2, &r, errbuf, sizeof errbuf), LLAVA_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(errbuf, "checksum"));

    /* I/O errors. */
    ck_assert_int_eq(llava_embed_load_file("/nonexistent/dir/x.llve", &r, errbuf, sizeof errbuf), LLAVA_E_IO);
    ck_assert_int_eq(llava_embed_save_file(e, "/nonexistent/dir/x.llve"), LLAVA_E_IO);
    ck_assert_int_eq(llava_embed_save_file(NULL, path), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_embed_save_file(e, NULL), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_embed_load_file(NULL, &r, errbuf, sizeof errbuf), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_embed_save(NULL, b, size, &size), LLAVA_E_INVALID_ARG);

    unlink(path);
    unlink(path2);
    rmdir(dir);
    free(fb);
    free(b);
    free(d);
    llava_free_embed(e);
}
END_TEST

static Suite *embed_suite(void)
{
    Suite *s = suite_create("embed");
    TCase *tc = tcase_create("embed");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_new_and_accessors);
    tcase_add_test(tc, test_new_rejects);
    tcase_add_test(tc, test_blob_layout);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_every_truncation);
    tcase_add_loop_test(tc, test_corrupted_header, 0, (int)(sizeof corruptions / sizeof corruptions[0]));
    tcase_add_test(tc, test_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(embed_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
