/*
 * threadpool.c - llv_parallel_for: persistent workers that claim work items.
 *
 * Why not an OpenMP parallel region: every region ends in a join that waits
 * for all of its threads. On a busy machine (a game, a phone, a shared
 * server) one of them is often descheduled, and decoding one token runs
 * ~100 regions, so each token waits for the scheduler again and again
 * (Q4_0 decode with 2 threads on a loaded 2-core machine took 0.56-2.1 s
 * per token under libgomp, against 0.09 s with 1 thread). Here the caller
 * claims items itself and then waits only for items another thread has
 * already started; a worker that wakes late finds nothing left and goes
 * back to sleep.
 *
 * Protocol. One 64-bit word holds the job generation (high 32 bits), the
 * slots still free for workers (10 bits) and the units not yet claimed (22
 * bits). A claim is a compare-and-swap on the whole word that decrements
 * the units left (and, for a worker's first claim, the free slots), so
 * whether a unit can be taken is decided by the word alone: a late worker
 * can never take a unit of a later job, or one of a finished job. Only after
 * a successful claim does a thread read the job's fields (written before the
 * generation was published); it then holds an unfinished unit, so the job
 * cannot end and its fields cannot be replaced until that unit is done.
 * Unit = units - (units left before the claim). The caller is slot 0; a
 * worker gets slot n_threads - (free slots before its first claim).
 *
 * One job at a time: a caller that finds the pool busy (another host
 * thread, or a call from inside fn) runs its loop alone. The child of a
 * fork() gets a fresh, empty pool (pthread_atfork).
 */
#define _GNU_SOURCE   /* sched_getaffinity, CPU_COUNT */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#  include <immintrin.h>
#  define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#  define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#  define cpu_relax() ((void)0)
#endif

#if LLV_THREADS_OPENMP
#  include <omp.h>
#endif

typedef void (*item_fn)(void *ctx, int64_t i, int slot);

static void run_serial(int64_t n, item_fn fn, void *ctx)
{
    for (int64_t i = 0; i < n; i++)
        fn(ctx, i, 0);
}

int llv_cpu_count(void)
{
#if LLV_THREADS_OPENMP
    int n = omp_get_num_procs();
#elif defined(__linux__)
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
#else
    int n = (int)sysconf(_SC_NPROCESSORS_ONLN);
#endif
    return n > 0 ? n : 1;
}

#if LLV_THREADS_OPENMP

const char *llv_threads_backend(void) { return "openmp"; }
void llv_pool_test_stall_workers(int on) { (void)on; }
void llv_pool_test_delay_claims(int us) { (void)us; }

void llv_parallel_for(int64_t n, int n_threads, item_fn fn, void *ctx)
{
    if (n_threads > n)
        n_threads = (int)n;
    if (n_threads <= 1) {
        run_serial(n, fn, ctx);
        return;
    }
#pragma omp parallel num_threads(n_threads)
    {
        int slot = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < n; i++)
            fn(ctx, i, slot);
    }
}

#else /* the pool */

#define LEFT_BITS   22            /* units not yet claimed */
#define FREE_BITS   10            /* worker slots not yet taken */
#define GEN_SHIFT   (LEFT_BITS + FREE_BITS)
#define LEFT_MASK   ((UINT64_C(1) << LEFT_BITS) - 1)
#define FREE_MASK   ((UINT64_C(1) << FREE_BITS) - 1)
#define GEN_MASK    UINT64_C(0xFFFFFFFF)
#define UNITS_MAX   ((int64_t)LEFT_MASK)
/* A worker that finds no job spins this long before it sleeps: the gaps
 * between the loops of one decode step are microseconds, and a wake-up
 * from a condition variable costs tens of them. */
#define SPIN_NS     200000

_Static_assert(LLV_POOL_MAX_THREADS - 1 <= (int)FREE_MASK, "free-slot field too narrow");

typedef struct {
    item_fn fn;
    void   *ctx;
    int64_t n, per;   /* n items in units of `per` consecutive items */
} job;

static struct {
    _Atomic uint64_t word;       /* generation | workers joined | next unit */
    _Atomic int64_t  done;       /* units finished in the current job */
    atomic_int       busy;       /* a caller owns the pool */
    atomic_int       sleepers;   /* workers in pthread_cond_wait */
    atomic_int       stall;      /* test hooks */
    atomic_int       test_claim_delay_us;
    /* the current job; written by its caller before it is published */
    _Atomic(item_fn) fn;
    _Atomic(void *)  ctx;
    _Atomic int64_t  n, per, units;
    atomic_int       n_threads;
    /* sleeping and thread creation */
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
    int              n_workers;  /* under mu */
    int              grow_failed; /* under mu: pthread_create failed, stop trying */
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

const char *llv_threads_backend(void) { return "pool"; }
void llv_pool_test_stall_workers(int on) { atomic_store(&pool.stall, on ? 1 : 0); }
void llv_pool_test_delay_claims(int us) { atomic_store(&pool.test_claim_delay_us, us > 0 ? us : 0); }

static uint64_t gen_of(uint64_t w) { return w >> GEN_SHIFT; }

/* Test hook: a thread that stops between reading the word and claiming. */
static void test_delay(void)
{
    const int us = atomic_load_explicit(&pool.test_claim_delay_us, memory_order_relaxed);
    struct timespec ts = { 0, (long)us * 1000 };
    nanosleep(&ts, NULL);
}

/* Claims the next unit of job `gen` and fills *j; returns the unit, -1 when
 * the job is over or has no unit left, or NO_SLOT when units are left but
 * no slot for a worker that has not joined yet (*slot < 0; the first claim
 * sets it). */
#define NO_SLOT (-2)
static int64_t claim(uint64_t gen, int *slot, job *j)
{
    uint64_t w = atomic_load_explicit(&pool.word, memory_order_acquire);
    for (;;) {
        if (gen_of(w) != gen)
            return -1;
        const uint64_t left = w & LEFT_MASK, free_slots = (w >> LEFT_BITS) & FREE_MASK;
        if (left == 0)
            return -1;
        uint64_t want = w - 1;
        if (*slot < 0) {
            if (free_slots == 0)
                return NO_SLOT;
            want -= UINT64_C(1) << LEFT_BITS;
        }
        if (*slot != 0 && atomic_load_explicit(&pool.test_claim_delay_us, memory_order_relaxed))
            test_delay();   /* workers only */
        if (atomic_compare_exchange_weak_explicit(&pool.word, &w, want, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            /* a unit of this job is ours and unfinished: its fields are stable */
            const int64_t units = atomic_load_explicit(&pool.units, memory_order_relaxed);
            if (*slot < 0)
                *slot = atomic_load_explicit(&pool.n_threads, memory_order_relaxed) - (int)free_slots;
            j->fn = atomic_load_explicit(&pool.fn, memory_order_relaxed);
            j->ctx = atomic_load_explicit(&pool.ctx, memory_order_relaxed);
            j->n = atomic_load_explicit(&pool.n, memory_order_relaxed);
            j->per = atomic_load_explicit(&pool.per, memory_order_relaxed);
            return units - (int64_t)left;
        }
    }
}

static void run_unit(const job *j, int64_t unit, int slot)
{
    int64_t i1 = (unit + 1) * j->per;
    if (i1 > j->n)
        i1 = j->n;
    for (int64_t i = unit * j->per; i < i1; i++)
        j->fn(j->ctx, i, slot);
    atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Waits until the generation differs from `seen`; returns it. Spins first
 * unless `spin` is false. */
static uint64_t wait_for_job(uint64_t seen, bool spin)
{
    uint64_t g;
    const int64_t t0 = now_ns();
    for (unsigned i = 1; spin; i++) {
        if ((g = gen_of(atomic_load_explicit(&pool.word, memory_order_acquire))) != seen)
            return g;
        cpu_relax();
        if (i % 256 == 0 && now_ns() - t0 > SPIN_NS)
            break;
    }
    /* seq_cst pairs with the caller's publish: either it sees a sleeper and
     * signals under the mutex, or this load sees its new generation. */
    pthread_mutex_lock(&pool.mu);
    atomic_fetch_add(&pool.sleepers, 1);
    while ((g = gen_of(atomic_load(&pool.word))) == seen)
        pthread_cond_wait(&pool.cv, &pool.mu);
    atomic_fetch_sub(&pool.sleepers, 1);
    pthread_mutex_unlock(&pool.mu);
    return g;
}

static void *worker_main(void *arg)
{
    uint64_t seen = (uint64_t)(uintptr_t)arg;
    bool spin = true;
    for (;;) {
        const uint64_t gen = wait_for_job(seen, spin);
        seen = gen;
        if (atomic_load_explicit(&pool.stall, memory_order_relaxed))
            continue;
        int slot = -1;
        job j;
        int64_t u;
        while ((u = claim(gen, &slot, &j)) >= 0)
            run_unit(&j, u, slot);
        /* More workers than the loops use (an earlier call asked for more
         * threads): this one sleeps at once instead of spinning. */
        spin = u != NO_SLOT;
    }
    return NULL;
}

/* fork(): the child has none of the workers; it starts with an empty pool.
 * The mutex is held across fork so the child never inherits it locked. */
static void atfork_prepare(void) { pthread_mutex_lock(&pool.mu); }
static void atfork_parent(void) { pthread_mutex_unlock(&pool.mu); }
static void atfork_child(void)
{
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.cv, NULL);
    pool.n_workers = 0;
    pool.grow_failed = 0;
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.busy, 0);
}
static void register_atfork(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

/* Called with the pool owned (busy): starts workers up to `want`. Workers
 * that cannot be created are simply not there; the caller covers for them. */
static void grow(int want)
{
    if (pool.n_workers >= want || pool.grow_failed)   /* only the pool's owner changes them */
        return;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&pool.mu);
    if (pool.n_workers < want) {
        sigset_t all, old;
        sigfillset(&all);   /* host signal handlers run on host threads only */
        pthread_sigmask(SIG_SETMASK, &all, &old);
        const uint64_t gen = gen_of(atomic_load(&pool.word));
        while (pool.n_workers < want) {
            pthread_t t;
            pthread_attr_t attr;
            if (pthread_attr_init(&attr) != 0) {
                pool.grow_failed = 1;
                break;
            }
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            int rc = pthread_create(&t, &attr, worker_main, (void *)(uintptr_t)gen);
            pthread_attr_destroy(&attr);
            if (rc != 0) {
                pool.grow_failed = 1;   /* e.g. a thread limit: not retried on every loop */
                break;
            }
            pool.n_workers++;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_mutex_unlock(&pool.mu);
}

void llv_parallel_for(int64_t n, int n_threads, item_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (n_threads > n)
        n_threads = (int)n;
    if (n_threads > LLV_POOL_MAX_THREADS)
        n_threads = LLV_POOL_MAX_THREADS;
    int idle = 0;
    if (n_threads <= 1 || !atomic_compare_exchange_strong(&pool.busy, &idle, 1)) {
        run_serial(n, fn, ctx);
        return;
    }
    grow(n_threads - 1);

    const int64_t per = (n + UNITS_MAX - 1) / UNITS_MAX, units = (n + per - 1) / per;
    atomic_store_explicit(&pool.fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool.ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&pool.n, n, memory_order_relaxed);
    atomic_store_explicit(&pool.per, per, memory_order_relaxed);
    atomic_store_explicit(&pool.units, units, memory_order_relaxed);
    atomic_store_explicit(&pool.n_threads, n_threads, memory_order_relaxed);
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    const uint64_t gen = (gen_of(atomic_load_explicit(&pool.word, memory_order_relaxed)) + 1) & GEN_MASK;
    /* publish (seq_cst: see wait_for_job) */
    atomic_store(&pool.word, gen << GEN_SHIFT | (uint64_t)(n_threads - 1) << LEFT_BITS | (uint64_t)units);
    /* Wake only as many sleepers as the loop has slots for workers. */
    const int sleeping = atomic_load(&pool.sleepers);
    if (sleeping > 0) {
        pthread_mutex_lock(&pool.mu);
        for (int k = 0; k < sleeping && k < n_threads - 1; k++)
            pthread_cond_signal(&pool.cv);
        pthread_mutex_unlock(&pool.mu);
    }

    int slot = 0;
    job j;
    for (int64_t u; (u = claim(gen, &slot, &j)) >= 0;)
        run_unit(&j, u, 0);
    /* Only units that a worker has started are left; give it the CPU if it
     * shares ours. */
    for (unsigned spins = 0; atomic_load_explicit(&pool.done, memory_order_acquire) < units; spins++) {
        if (spins < 4096)
            cpu_relax();
        else
            sched_yield();
    }
    atomic_store_explicit(&pool.busy, 0, memory_order_release);
}

#endif

/* ---- llv_parallel_rows (both back ends) ----------------------------------- */

typedef struct {
    void (*fn)(void *ctx, int64_t r0, int64_t r1);
    void *ctx;
    int64_t rows, chunk;
} rows_job;

static void rows_item(void *ctx, int64_t c, int slot)
{
    const rows_job *j = ctx;
    (void)slot;
    const int64_t r0 = c * j->chunk;
    j->fn(j->ctx, r0, r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows);
}

void llv_parallel_rows(int64_t rows, int64_t chunk, int n_threads, void (*fn)(void *ctx, int64_t r0, int64_t r1),
                       void *ctx)
{
    if (rows <= 0)
        return;
    if (chunk < 1 || rows < 2 * chunk || n_threads < 2) {
        fn(ctx, 0, rows);
        return;
    }
    rows_job j = { fn, ctx, rows, chunk };
    llv_parallel_for((rows + chunk - 1) / chunk, n_threads, rows_item, &j);
}
