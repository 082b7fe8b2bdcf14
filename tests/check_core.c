/*
 * check_core.c - params table, status text, handle messages, versions.
 * Expected values come from llava.h (the contract), not from params.c.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llava.h"

START_TEST(test_version)
{
    ck_assert_int_eq(llava_version_number(), LLAVA_VERSION_NUMBER);
    ck_assert_int_eq(LLAVA_VERSION_NUMBER, LLAVA_VERSION_MAJOR * 10000 + LLAVA_VERSION_MINOR * 100 + LLAVA_VERSION_PATCH);
    ck_assert_str_eq(llava_version_string(), LLAVA_VERSION_STRING);
}
END_TEST

START_TEST(test_strerror)
{
    /* Every code 0..12 has its own text; unknown codes a fixed one. */
    for (int i = LLAVA_OK; i <= LLAVA_E_INTERNAL; i++) {
        ck_assert_ptr_nonnull(llava_strerror(i));
        ck_assert_str_ne(llava_strerror(i), "unknown status");
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(llava_strerror(i), llava_strerror(j));
    }
    ck_assert_str_eq(llava_strerror(-1), "unknown status");
    ck_assert_str_eq(llava_strerror(9999), "unknown status");
    /* The values are ABI: pinned here. */
    ck_assert_int_eq(LLAVA_E_INVALID_ARG, 1);
    ck_assert_int_eq(LLAVA_E_FORMAT, 4);
    ck_assert_int_eq(LLAVA_E_UNSUPPORTED, 5);
    ck_assert_int_eq(LLAVA_E_INTERNAL, 12);
}
END_TEST

/* Defaults documented in llava.h, key by key. */
static const struct { int key; int type; double def; } documented[] = {
    { LLAVA_PARAM_N_THREADS, LLAVA_PARAM_TYPE_INT, 0 },
    { LLAVA_PARAM_USE_MMAP, LLAVA_PARAM_TYPE_INT, 1 },
    { LLAVA_PARAM_N_CTX, LLAVA_PARAM_TYPE_INT, 0 },
    { LLAVA_PARAM_KV_TYPE, LLAVA_PARAM_TYPE_INT, 1 },
    { LLAVA_PARAM_N_BATCH, LLAVA_PARAM_TYPE_INT, 512 },
    { LLAVA_PARAM_SEED, LLAVA_PARAM_TYPE_INT, -1 },
    { LLAVA_PARAM_TEMPERATURE, LLAVA_PARAM_TYPE_FLOAT, 0.8 },
    { LLAVA_PARAM_TOP_K, LLAVA_PARAM_TYPE_INT, 40 },
    { LLAVA_PARAM_TOP_P, LLAVA_PARAM_TYPE_FLOAT, 0.95 },
    { LLAVA_PARAM_MIN_P, LLAVA_PARAM_TYPE_FLOAT, 0.05 },
    { LLAVA_PARAM_REPEAT_PENALTY, LLAVA_PARAM_TYPE_FLOAT, 1.0 },
    { LLAVA_PARAM_REPEAT_LAST_N, LLAVA_PARAM_TYPE_INT, 64 },
    { LLAVA_PARAM_FREQUENCY_PENALTY, LLAVA_PARAM_TYPE_FLOAT, 0 },
    { LLAVA_PARAM_PRESENCE_PENALTY, LLAVA_PARAM_TYPE_FLOAT, 0 },
    { LLAVA_PARAM_IMAGE_MAX_PIXELS, LLAVA_PARAM_TYPE_INT, 67108864 },
    { LLAVA_PARAM_IMAGE_EXIF_ORIENT, LLAVA_PARAM_TYPE_INT, 0 },
    { LLAVA_PARAM_CHAT_TEMPLATE, LLAVA_PARAM_TYPE_INT, LLAVA_TEMPLATE_AUTO },
    { LLAVA_PARAM_MAX_TOKENS, LLAVA_PARAM_TYPE_INT, 0 },
};

START_TEST(test_param_defaults)
{
    llava_params *p = llava_new_params();
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < sizeof documented / sizeof documented[0]; i++) {
        int type = 0;
        double lo, hi, def;
        ck_assert_int_eq(llava_get_param_info(documented[i].key, &type, &lo, &hi, &def), LLAVA_OK);
        ck_assert_int_eq(type, documented[i].type);
        ck_assert_double_eq_tol(def, documented[i].def, 1e-12);
        ck_assert(lo <= def && def <= hi);
        if (type == LLAVA_PARAM_TYPE_INT) {
            int64_t v;
            ck_assert_int_eq(llava_get_param_int(p, documented[i].key, &v), LLAVA_OK);
            ck_assert_int_eq(v, (int64_t)documented[i].def);
        } else {
            double v;
            ck_assert_int_eq(llava_get_param_float(p, documented[i].key, &v), LLAVA_OK);
            ck_assert_double_eq_tol(v, documented[i].def, 1e-12);
        }
    }
    llava_free_params(p);
}
END_TEST

START_TEST(test_param_errors)
{
    llava_params *p = llava_new_params();
    int64_t v;
    /* Unknown key: unsupported, with a message naming it. */
    ck_assert_int_eq(llava_set_param_int(p, 12345, 1), LLAVA_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(llava_errmsg(p), "12345"));
    ck_assert_int_eq(llava_get_param_info(12345, NULL, NULL, NULL, NULL), LLAVA_E_UNSUPPORTED);
    /* Wrong setter type. */
    ck_assert_int_eq(llava_set_param_float(p, LLAVA_PARAM_N_THREADS, 2.0), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_TEMPERATURE, 1), LLAVA_E_INVALID_ARG);
    /* Out of bounds leaves the value unchanged. */
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_N_THREADS, 4), LLAVA_OK);
    ck_assert_str_eq(llava_errmsg(p), "");
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_N_THREADS, -1), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_get_param_int(p, LLAVA_PARAM_N_THREADS, &v), LLAVA_OK);
    ck_assert_int_eq(v, 4);
    ck_assert_int_eq(llava_set_param_float(p, LLAVA_PARAM_TOP_P, NAN), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_set_param_float(p, LLAVA_PARAM_TOP_P, 1.5), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_USE_MMAP, 2), LLAVA_E_INVALID_ARG);
    /* Large seeds are kept exactly. */
    ck_assert_int_eq(llava_set_param_int(p, LLAVA_PARAM_SEED, 9007199254740991LL), LLAVA_OK);
    ck_assert_int_eq(llava_get_param_int(p, LLAVA_PARAM_SEED, &v), LLAVA_OK);
    ck_assert_int_eq(v, 9007199254740991LL);
    /* NULL handles. */
    ck_assert_int_eq(llava_set_param_int(NULL, LLAVA_PARAM_N_THREADS, 1), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_get_param_int(NULL, LLAVA_PARAM_N_THREADS, &v), LLAVA_E_INVALID_ARG);
    ck_assert_int_eq(llava_set_abort_callback(NULL, NULL, NULL), LLAVA_E_INVALID_ARG);
    /* dup copies values. */
    llava_params *d = llava_dup_params(p);
    ck_assert_int_eq(llava_get_param_int(d, LLAVA_PARAM_N_THREADS, &v), LLAVA_OK);
    ck_assert_int_eq(v, 4);
    llava_free_params(d);
    llava_free_params(p);
    llava_free_params(NULL);
}
END_TEST

START_TEST(test_errmsg_handles)
{
    ck_assert_str_eq(llava_errmsg(NULL), "no handle (NULL)");
    int not_a_handle[16] = { 0 };
    ck_assert_str_eq(llava_errmsg(not_a_handle), "not a live libllava handle");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_strerror);
    tcase_add_test(tc, test_param_defaults);
    tcase_add_test(tc, test_param_errors);
    tcase_add_test(tc, test_errmsg_handles);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
