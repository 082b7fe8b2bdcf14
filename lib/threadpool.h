/*
 * threadpool.h - the library's one parallel loop (see threadpool.c).
 */
#ifndef LLV_THREADPOOL_H
#define LLV_THREADPOOL_H

#include <stdint.h>

#include "common.h"

/* Most threads one loop can use (the caller included). */
#define LLV_POOL_MAX_THREADS 1024

/* Run fn(ctx, i, slot) once for every i in [0, n), on up to n_threads
 * threads: the calling thread and pool workers claim items one at a time.
 * slot (0 <= slot < min(n_threads, n)) names the thread running the item,
 * for per-thread scratch: two items with the same slot never run at the
 * same time. Returns when every item has finished. The caller never waits
 * for a worker that has not started an item, so a descheduled worker costs
 * nothing. Safe to call from several host threads and from inside fn: the
 * pool runs one loop at a time, and a call that finds it busy runs on its
 * calling thread alone. Never fails: without workers
 * (none could be created, after fork) the caller runs every item. */
LLV_INTERNAL void llv_parallel_for(int64_t n, int n_threads, void (*fn)(void *ctx, int64_t i, int slot), void *ctx);

/* Row-wise work over rows [0, rows): fn(ctx, r0, r1) on chunks of `chunk`
 * rows through llv_parallel_for, or once over all rows on the calling
 * thread when they make fewer than 2 chunks or n_threads < 2 (a decoded
 * token's row is not worth waking threads for). */
LLV_INTERNAL void llv_parallel_rows(int64_t rows, int64_t chunk, int n_threads,
                                    void (*fn)(void *ctx, int64_t r0, int64_t r1), void *ctx);

/* CPUs this process may run on (its affinity mask; at least 1). */
LLV_INTERNAL int llv_cpu_count(void);

/* The threading layer in use: "pool" or "openmp" (configure --with-threads). */
LLV_INTERNAL const char *llv_threads_backend(void);

/* Tests: while on, pool workers stop claiming items (they stand for
 * descheduled threads); loops must still finish, run by their callers. */
LLV_INTERNAL void llv_pool_test_stall_workers(int on);
/* Tests: pool workers sleep `us` microseconds between reading the job word
 * and claiming (late threads); 0 turns it off. */
LLV_INTERNAL void llv_pool_test_delay_claims(int us);

#endif
