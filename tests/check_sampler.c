/*
 * check_sampler.c - the sampling chain on hand-built logits, with expected
 * values worked out by hand, and the PRNG against published / independently
 * computed vectors.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"

static llv_sampler_params base_params(void)
{
    llv_sampler_params sp = {
        .temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .repeat_penalty = 1.0f,
        .repeat_last_n = 64, .frequency_penalty = 0.0f, .presence_penalty = 0.0f, .seed = 1,
    };
    return sp;
}

static llv_sampler_work work(int32_t n_vocab)
{
    llv_sampler_work w;
    ck_assert_int_eq(llv_sampler_work_init(&w, n_vocab, 64, NULL), 0);
    return w;
}

/* ---- PRNG ------------------------------------------------------------------ */

START_TEST(test_rng_vectors)
{
    /* xoshiro256** from the state {1,2,3,4}: the reference implementation's
     * first outputs (as used by other ports' test suites). */
    llv_rng r = { { 1, 2, 3, 4 } };
    ck_assert_uint_eq(llv_rng_next(&r), 11520ull);
    ck_assert_uint_eq(llv_rng_next(&r), 0ull);
    ck_assert_uint_eq(llv_rng_next(&r), 1509978240ull);
    ck_assert_uint_eq(llv_rng_next(&r), 1215971899390074240ull);
    /* seeded through splitmix64 (values from an independent Python model) */
    static const uint64_t seed42[] = { 0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull, 0xae17533239e499a1ull,
                                       0xecb8ad4703b360a1ull };
    llv_rng_seed(&r, 42);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(llv_rng_next(&r), seed42[i]);
    llv_rng_seed(&r, 0);
    ck_assert_uint_eq(llv_rng_next(&r), 0x99ec5f36cb75f2b4ull);
    ck_assert_uint_eq(llv_rng_next(&r), 0xbf6e1f784956452aull);
    /* uniform in [0, 1) with a sane mean */
    double sum = 0.0;
    for (int i = 0; i < 100000; i++) {
        double u = llv_rng_uniform(&r);
        ck_assert(u >= 0.0 && u < 1.0);
        sum += u;
    }
    ck_assert(fabs(sum / 100000 - 0.5) < 0.01);
    ck_assert_uint_ne(llv_rng_time_seed(), 0);
}
END_TEST

/* ---- greedy --------------------------------------------------------------- */

START_TEST(test_greedy_ties)
{
    const float logits[6] = { 1.0f, 3.0f, 3.0f, 2.0f, 3.0f, NAN };
    llv_sampler_params sp = base_params();
    sp.temperature = 0.0f;
    llv_sampler_work w = work(6);
    llv_rng r;
    llv_rng_seed(&r, 1);
    ck_assert_int_eq(llv_sample(&sp, logits, 6, NULL, 0, &r, &w), 1);
    sp.temperature = -5.0f;
    ck_assert_int_eq(llv_sample(&sp, logits, 6, NULL, 0, &r, &w), 1);
    const float neg[3] = { -INFINITY, -INFINITY, -INFINITY };
    ck_assert_int_eq(llv_sample(&sp, neg, 3, NULL, 0, &r, &w), 0);
    llv_sampler_work_free(&w);
}
END_TEST

/* top-k = 1 is greedy whatever the temperature and seed. */
START_TEST(test_top_k_1)
{
    enum { N = 1000 };
    float logits[N];
    llv_rng g;
    llv_rng_seed(&g, 99);
    for (int i = 0; i < N; i++)
        logits[i] = (float)(llv_rng_uniform(&g) * 10.0 - 5.0);
    int32_t best = 0;
    for (int i = 1; i < N; i++)
        if (logits[i] > logits[best])
            best = i;
    llv_sampler_params sp = base_params();
    sp.top_k = 1;
    sp.temperature = 100.0f;
    llv_sampler_work w = work(N);
    for (uint64_t seed = 0; seed < 50; seed++) {
        llv_rng r;
        llv_rng_seed(&r, seed);
        ck_assert_int_eq(llv_sample(&sp, logits, N, NULL, 0, &r, &w), best);
    }
    llv_sampler_work_free(&w);
}
END_TEST

/* ---- penalties -------------------------------------------------------------- */

START_TEST(test_penalties)
{
    float logits[5] = { 2.0f, -1.0f, 0.5f, 3.0f, 1.0f };
    const int32_t recent[] = { 0, 3, 0, 1, -1, 77, -5 }; /* -1, 77, -5: not tokens, ignored */
    llv_sampler_params sp = base_params();
    sp.repeat_penalty = 2.0f;
    sp.frequency_penalty = 0.5f;
    sp.presence_penalty = 0.25f;
    llv_sampler_work w = work(5);
    llv_sampler_penalize(&sp, logits, 5, recent, 7, &w);
    /* by hand: positive / 2, non-positive * 2, then - count*0.5 - 0.25 */
    ck_assert_float_eq_tol(logits[0], 2.0f / 2 - 2 * 0.5f - 0.25f, 1e-6); /* -0.25 */
    ck_assert_float_eq_tol(logits[1], -1.0f * 2 - 0.5f - 0.25f, 1e-6);    /* -2.75 */
    ck_assert_float_eq(logits[2], 0.5f);
    ck_assert_float_eq_tol(logits[3], 3.0f / 2 - 0.5f - 0.25f, 1e-6);     /* 0.75 */
    ck_assert_float_eq(logits[4], 1.0f);

    /* greedy after penalties: id 4 (1.0) now beats id 3 (0.75) */
    const float orig[5] = { 2.0f, -1.0f, 0.5f, 3.0f, 1.0f };
    sp.temperature = 0.0f;
    llv_rng r;
    llv_rng_seed(&r, 1);
    ck_assert_int_eq(llv_sample(&sp, orig, 5, recent, 7, &r, &w), 4);
    /* no penalties: 3 */
    ck_assert_int_eq(llv_sample(&sp, orig, 5, NULL, 0, &r, &w), 3);
    /* the caller's logits are not modified */
    ck_assert_float_eq(orig[3], 3.0f);
    llv_sampler_work_free(&w);
}
END_TEST

/* ---- stochastic paths --------------------------------------------------------- */

/* logits = ln p for p = {0.5, 0.3, 0.15, 0.05}: draw many times and count. */
static void draw_counts(const llv_sampler_params *sp, int n_draws, double freq[4])
{
    const float logits[4] = { logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f) };
    llv_sampler_work w = work(4);
    llv_rng r;
    llv_rng_seed(&r, 2024);
    int cnt[4] = { 0 };
    for (int i = 0; i < n_draws; i++) {
        int32_t t = llv_sample(sp, logits, 4, NULL, 0, &r, &w);
        ck_assert(t >= 0 && t < 4);
        cnt[t]++;
    }
    for (int i = 0; i < 4; i++)
        freq[i] = (double)cnt[i] / n_draws;
    llv_sampler_work_free(&w);
}

#define NDRAW 40000
#define TOL 0.015

START_TEST(test_plain_softmax)
{
    llv_sampler_params sp = base_params();
    double f[4];
    draw_counts(&sp, NDRAW, f);
    const double want[4] = { 0.5, 0.3, 0.15, 0.05 };
    for (int i = 0; i < 4; i++)
        ck_assert_msg(fabs(f[i] - want[i]) < TOL, "id %d: %g vs %g", i, f[i], want[i]);
}
END_TEST

START_TEST(test_top_p)
{
    llv_sampler_params sp = base_params();
    sp.top_p = 0.75f; /* 0.5 < 0.75 <= 0.8: keeps {0, 1}, renormalised 0.625 / 0.375 */
    double f[4];
    draw_counts(&sp, NDRAW, f);
    ck_assert(fabs(f[0] - 0.625) < TOL && fabs(f[1] - 0.375) < TOL && f[2] == 0.0 && f[3] == 0.0);
    sp.top_p = 0.45f; /* the first alone reaches it */
    draw_counts(&sp, 1000, f);
    ck_assert(f[0] == 1.0);
    sp.top_p = 0.9f; /* 0.8 < 0.9 <= 0.95: {0, 1, 2} */
    draw_counts(&sp, NDRAW, f);
    ck_assert(fabs(f[0] - 0.5 / 0.95) < TOL && fabs(f[2] - 0.15 / 0.95) < TOL && f[3] == 0.0);
}
END_TEST

START_TEST(test_min_p)
{
    llv_sampler_params sp = base_params();
    sp.min_p = 0.2f; /* keep p >= 0.2 * 0.5 = 0.1: {0, 1, 2} */
    double f[4];
    draw_counts(&sp, NDRAW, f);
    ck_assert(fabs(f[0] - 0.5 / 0.95) < TOL && fabs(f[1] - 0.3 / 0.95) < TOL && f[3] == 0.0);
    sp.min_p = 0.61f; /* 0.3 / 0.5 = 0.6 < 0.61: only {0} */
    draw_counts(&sp, 1000, f);
    ck_assert(f[0] == 1.0);
}
END_TEST

START_TEST(test_top_k)
{
    llv_sampler_params sp = base_params();
    sp.top_k = 2;
    double f[4];
    draw_counts(&sp, NDRAW, f);
    ck_assert(fabs(f[0] - 0.625) < TOL && fabs(f[1] - 0.375) < TOL && f[2] == 0.0 && f[3] == 0.0);
    sp.top_k = 10; /* more than the vocabulary: off */
    draw_counts(&sp, NDRAW, f);
    ck_assert(fabs(f[3] - 0.05) < TOL);
}
END_TEST

START_TEST(test_temperature_extremes)
{
    llv_sampler_params sp = base_params();
    double f[4];
    sp.temperature = 1e-6f; /* effectively greedy */
    draw_counts(&sp, 2000, f);
    ck_assert(f[0] == 1.0);
    sp.temperature = 1e6f; /* effectively uniform */
    draw_counts(&sp, NDRAW, f);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(fabs(f[i] - 0.25) < TOL, "id %d: %g", i, f[i]);
    sp.temperature = 0.5f; /* p^2 renormalised: 0.25, 0.09, 0.0225, 0.0025 over 0.365 */
    draw_counts(&sp, NDRAW, f);
    ck_assert(fabs(f[0] - 0.25 / 0.365) < TOL && fabs(f[1] - 0.09 / 0.365) < TOL);
}
END_TEST

/* The same seed gives the same sequence; another seed another one. */
START_TEST(test_seed_reproducible)
{
    enum { N = 300 };
    float logits[N];
    for (int i = 0; i < N; i++)
        logits[i] = (float)sin(i * 0.37) * 3.0f;
    llv_sampler_params sp = base_params();
    sp.top_k = 40;
    sp.top_p = 0.95f;
    sp.min_p = 0.05f;
    sp.temperature = 0.8f;
    llv_sampler_work w = work(N);
    int32_t a[200], b[200], c[200];
    llv_rng r;
    llv_rng_seed(&r, 5);
    for (int i = 0; i < 200; i++)
        a[i] = llv_sample(&sp, logits, N, NULL, 0, &r, &w);
    llv_rng_seed(&r, 5);
    for (int i = 0; i < 200; i++)
        b[i] = llv_sample(&sp, logits, N, NULL, 0, &r, &w);
    llv_rng_seed(&r, 6);
    for (int i = 0; i < 200; i++)
        c[i] = llv_sample(&sp, logits, N, NULL, 0, &r, &w);
    ck_assert(memcmp(a, b, sizeof a) == 0);
    ck_assert(memcmp(a, c, sizeof a) != 0);
    llv_sampler_work_free(&w);
}
END_TEST

/* top-k selection (heap) agrees with a full sort on ties and order:
 * with top_k = 3 over logits with a three-way tie at the top, only the three
 * lowest ids of the tie can be drawn. */
START_TEST(test_top_k_ties)
{
    const float logits[8] = { 0.0f, 5.0f, 1.0f, 5.0f, 5.0f, 5.0f, 2.0f, 5.0f };
    llv_sampler_params sp = base_params();
    sp.top_k = 3;
    llv_sampler_work w = work(8);
    llv_rng r;
    llv_rng_seed(&r, 3);
    int seen[8] = { 0 };
    for (int i = 0; i < 3000; i++)
        seen[llv_sample(&sp, logits, 8, NULL, 0, &r, &w)]++;
    ck_assert(seen[1] > 0 && seen[3] > 0 && seen[4] > 0);
    ck_assert(seen[5] == 0 && seen[7] == 0 && seen[0] == 0 && seen[2] == 0 && seen[6] == 0);
    llv_sampler_work_free(&w);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("sampler");
    TCase *tc = tcase_create("sampler");
    tcase_add_test(tc, test_rng_vectors);
    tcase_add_test(tc, test_greedy_ties);
    tcase_add_test(tc, test_top_k_1);
    tcase_add_test(tc, test_penalties);
    tcase_add_test(tc, test_plain_softmax);
    tcase_add_test(tc, test_top_p);
    tcase_add_test(tc, test_min_p);
    tcase_add_test(tc, test_top_k);
    tcase_add_test(tc, test_temperature_extremes);
    tcase_add_test(tc, test_seed_reproducible);
    tcase_add_test(tc, test_top_k_ties);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
