/*
 * check_threadpool.c - llv_parallel_for (lib/threadpool.c) against what a
 * parallel loop must do, whatever the scheduler does:
 *  - every item runs exactly once, for item counts around the unit limit;
 *  - slots stay below min(n_threads, n) and one slot never runs two items
 *    at once (per-slot scratch depends on it);
 *  - the loop finishes, run by its caller, when no worker ever takes an
 *    item (stalled workers stand for descheduled threads);
 *  - a worker does take items (two items that wait for each other finish);
 *  - workers that stop between reading the job word and claiming (a test
 *    hook) never run an item of another job or share a slot, over
 *    thousands of back-to-back loops of changing sizes;
 *  - calls from inside an item and from several host threads at once;
 *  - a forked child can still run loops.
 * The serial loop (n_threads = 1) is the reference for computed results.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "threadpool.h"

typedef struct {
    int64_t n;
    int n_threads;
    atomic_int *count;       /* per item */
    atomic_int busy[64];     /* per slot: an item is running */
    atomic_int bad_slot, overlap, max_slot;
    int spin;                /* busy work per item (makes overlaps visible) */
} count_job;

static void count_item(void *ctx, int64_t i, int slot)
{
    count_job *j = ctx;
    int lim = (int)LLV_MIN((int64_t)j->n_threads, j->n);
    if (slot < 0 || slot >= lim || slot >= 64) {
        atomic_fetch_add(&j->bad_slot, 1);
        return;
    }
    if (atomic_exchange(&j->busy[slot], 1))
        atomic_fetch_add(&j->overlap, 1);
    volatile unsigned sink = 0;   /* per call: no shared write */
    for (int k = 0; k < j->spin; k++)
        sink += (unsigned)k;
    int m = atomic_load(&j->max_slot);
    while (slot > m && !atomic_compare_exchange_weak(&j->max_slot, &m, slot))
        ;
    atomic_fetch_add(&j->count[i], 1);
    atomic_store(&j->busy[slot], 0);
}

/* Runs one counting loop; returns the number of items not run exactly once. */
static int64_t run_count_spin(int64_t n, int n_threads, int spin, count_job *j)
{
    memset(j, 0, sizeof *j);
    j->spin = spin;
    j->n = n;
    j->n_threads = n_threads;
    j->count = calloc((size_t)LLV_MAX(n, 1), sizeof *j->count);
    ck_assert_ptr_nonnull(j->count);
    llv_parallel_for(n, n_threads, count_item, j);
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; i++)
        wrong += atomic_load(&j->count[i]) != 1;
    free(j->count);
    return wrong;
}

static int64_t run_count(int64_t n, int n_threads, count_job *j) { return run_count_spin(n, n_threads, 0, j); }

START_TEST(every_item_once)
{
    const int64_t ns[] = { 0, 1, 2, 3, 7, 64, 1000, 100003 };
    const int ts[] = { 1, 2, 3, 4, 8, 64 };
    count_job j;
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof ts / sizeof ts[0]; b++) {
            ck_assert_msg(run_count(ns[a], ts[b], &j) == 0, "n=%lld threads=%d", (long long)ns[a], ts[b]);
            ck_assert_int_eq(atomic_load(&j.bad_slot), 0);
            ck_assert_int_eq(atomic_load(&j.overlap), 0);
        }
}
END_TEST

/* Around the most units one job word can count (2^22 - 1): past it items
 * are grouped, and every one must still run once. */
START_TEST(more_items_than_units)
{
    count_job j;
    const int64_t ns[] = { ((int64_t)1 << 22) - 1, (int64_t)1 << 22, ((int64_t)1 << 22) + 5 };
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(run_count(ns[i], 2, &j) == 0, "n=%lld", (long long)ns[i]);
        ck_assert_int_eq(atomic_load(&j.bad_slot), 0);
        ck_assert_int_eq(atomic_load(&j.overlap), 0);
    }
}
END_TEST

/* Late workers: each stops 30 us between reading the job word and its
 * claim, so claims race the end of a loop and the start of the next one
 * (the caller's next loop begins as soon as its items are done). */
START_TEST(late_workers_stress)
{
    count_job j;
    llv_pool_test_delay_claims(30);
    for (int rep = 0; rep < 3000; rep++) {
        const int64_t n = 1 + rep % 7;
        const int nt = 2 + rep % 3;
        ck_assert_msg(run_count_spin(n, nt, 200, &j) == 0, "rep %d n=%lld threads=%d", rep, (long long)n, nt);
        ck_assert_int_eq(atomic_load(&j.bad_slot), 0);
        ck_assert_int_eq(atomic_load(&j.overlap), 0);
    }
    llv_pool_test_delay_claims(0);
}
END_TEST

/* A computed result: serial (n_threads 1, the reference) = parallel, bit for bit. */
typedef struct { const float *x; float *y; int64_t len; } rows_job;

static void row_sum(void *ctx, int64_t i, int slot)
{
    const rows_job *r = ctx;
    (void)slot;
    float s = 0.0f;
    for (int64_t k = 0; k < r->len; k++)
        s += sinf(r->x[i * r->len + k]) * (float)(k + 1);
    r->y[i] = s;
}

START_TEST(parallel_equals_serial)
{
    const int64_t rows = 517, len = 300;
    float *x = malloc(sizeof(float) * rows * len), *y1 = malloc(sizeof(float) * rows),
          *y4 = malloc(sizeof(float) * rows);
    ck_assert(x && y1 && y4);
    for (int64_t i = 0; i < rows * len; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 100.0f;
    rows_job a = { x, y1, len }, b = { x, y4, len };
    llv_parallel_for(rows, 1, row_sum, &a);
    llv_parallel_for(rows, 4, row_sum, &b);
    ck_assert_int_eq(memcmp(y1, y4, sizeof(float) * rows), 0);
    free(x);
    free(y1);
    free(y4);
}
END_TEST

START_TEST(stalled_workers)
{
    if (strcmp(llv_threads_backend(), "pool") != 0)
        return;
    count_job j;
    llv_pool_test_stall_workers(1);
    for (int rep = 0; rep < 50; rep++) {
        ck_assert_int_eq(run_count(200, 4, &j), 0);
        ck_assert_int_eq(atomic_load(&j.max_slot), 0);   /* the caller ran them all */
        ck_assert_int_eq(atomic_load(&j.bad_slot), 0);
    }
    llv_pool_test_stall_workers(0);
    ck_assert_int_eq(run_count(200, 4, &j), 0);
}
END_TEST

/* Two items that each wait for the other to have started: only finishes
 * (before the deadline) if a second thread takes one of them. */
typedef struct { atomic_int started; atomic_int timed_out; } meet_job;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void meet_item(void *ctx, int64_t i, int slot)
{
    meet_job *m = ctx;
    (void)i;
    (void)slot;
    atomic_fetch_add(&m->started, 1);
    const double t0 = now_s();
    while (atomic_load(&m->started) < 2)
        if (now_s() - t0 > 60.0) {   /* generous: CI machines are shared */
            atomic_store(&m->timed_out, 1);
            return;
        }
}

START_TEST(workers_take_items)
{
    meet_job m = { 0 };
    llv_parallel_for(2, 2, meet_item, &m);
    ck_assert_int_eq(atomic_load(&m.started), 2);
    ck_assert_int_eq(atomic_load(&m.timed_out), 0);
}
END_TEST

/* A loop inside an item runs on that thread alone, with slot 0. */
typedef struct { atomic_int outer; atomic_int inner_ok; atomic_int inner_bad; } nest_job;

static void inner_item(void *ctx, int64_t i, int slot)
{
    atomic_int *hits = ctx;
    if (slot != 0)
        atomic_fetch_add(&hits[64], 1);
    atomic_fetch_add(&hits[i], 1);
}

static void outer_item(void *ctx, int64_t i, int slot)
{
    nest_job *nj = ctx;
    atomic_int hits[65] = { 0 };
    (void)i;
    (void)slot;
    llv_parallel_for(64, 4, inner_item, hits);
    int ok = atomic_load(&hits[64]) == 0;
    for (int k = 0; k < 64; k++)
        ok &= atomic_load(&hits[k]) == 1;
    atomic_fetch_add(ok ? &nj->inner_ok : &nj->inner_bad, 1);
    atomic_fetch_add(&nj->outer, 1);
}

START_TEST(nested_calls)
{
    nest_job nj = { 0 };
    llv_parallel_for(10, 2, outer_item, &nj);
    ck_assert_int_eq(atomic_load(&nj.outer), 10);
    ck_assert_int_eq(atomic_load(&nj.inner_ok), 10);
    ck_assert_int_eq(atomic_load(&nj.inner_bad), 0);
}
END_TEST

static void *host_thread(void *arg)
{
    atomic_int *bad = arg;
    count_job *j = malloc(sizeof *j);
    if (!j) {
        atomic_fetch_add(bad, 1);
        return NULL;
    }
    for (int rep = 0; rep < 300; rep++)
        if (run_count(37 + rep % 50, 1 + rep % 4, j) != 0 || atomic_load(&j->bad_slot) || atomic_load(&j->overlap))
            atomic_fetch_add(bad, 1);
    free(j);
    return NULL;
}

START_TEST(several_host_threads)
{
    pthread_t t[4];
    atomic_int bad = 0;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, host_thread, &bad), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&bad), 0);
}
END_TEST

/* ThreadSanitizer cannot start threads in the child of a threaded process. */
#if defined(__SANITIZE_THREAD__)
#  define UNDER_TSAN 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define UNDER_TSAN 1
#  endif
#endif
#ifndef UNDER_TSAN
#  define UNDER_TSAN 0
#endif

/* Pool only: libgomp's team does not survive fork (the child of a process
 * that has run a parallel region hangs in its next one). */
START_TEST(after_fork)
{
    if (UNDER_TSAN || strcmp(llv_threads_backend(), "pool") != 0)
        return;
    count_job j;
    ck_assert_int_eq(run_count(1000, 4, &j), 0);   /* the parent has workers now */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(60);   /* a hang kills the child: the parent sees a signal */
        count_job *cj = malloc(sizeof *cj);
        int ok = cj != NULL;
        for (int rep = 0; ok && rep < 20; rep++)
            ok = run_count(1000, 4, cj) == 0 && atomic_load(&cj->overlap) == 0;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    ck_assert_int_eq(run_count(1000, 4, &j), 0);   /* and the parent still works */
}
END_TEST

START_TEST(cpu_count)
{
    int n = llv_cpu_count();
    ck_assert_int_ge(n, 1);
    ck_assert_int_le(n, (int)sysconf(_SC_NPROCESSORS_CONF) > 0 ? (int)sysconf(_SC_NPROCESSORS_CONF) : n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("threadpool");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, every_item_once);
    tcase_add_test(tc, more_items_than_units);
    tcase_add_test(tc, late_workers_stress);
    tcase_add_test(tc, parallel_equals_serial);
    tcase_add_test(tc, stalled_workers);
    tcase_add_test(tc, workers_take_items);
    tcase_add_test(tc, nested_calls);
    tcase_add_test(tc, several_host_threads);
    tcase_add_test(tc, after_fork);
    tcase_add_test(tc, cpu_count);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
