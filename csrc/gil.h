/* The GIL policy and the chunked run loop: the one place where parlab
 * releases, holds or re-takes the GIL.
 *
 * A kernel binding cuts its work into items of bounded cost (well under a
 * millisecond each) and calls pl_run_chunked once. With release_gil=True the
 * items run with the GIL released, exactly as SciPy's or NumPy's kernels do:
 * a call from any thread but the main one never takes the GIL back before
 * the work ends; the main thread takes it back at most every 50 ms, only to
 * run signal handlers (Ctrl-C). With release_gil=False the call holds the
 * GIL throughout and still runs signal handlers in the main thread.
 *
 * Without a GIL (free-threaded CPython while its GIL is off, or a build with
 * -DPARLAB_EMULATE_GIL) "held" is emulated: held calls take one process-wide
 * lock of parlab's for their whole work, so two of them never overlap, as
 * under a GIL. A free-threaded CPython can run with its GIL on (PYTHON_GIL=1,
 * or for good once a module that does not declare Py_mod_gil is imported):
 * then held calls keep the real GIL. Each held call decides as it starts. */
#ifndef PARLAB_GIL_H
#define PARLAB_GIL_H

#include <stdint.h>

#include "trace.h"

/* More native threads than this in one call are refused as a mistake. */
#define PL_MAX_THREADS 1024

/* Runs one item. `worker` (0 .. n_workers-1) lets items keep per-worker
 * results without sharing a cache line. Never touches a Python object. */
typedef void (*pl_item_fn)(void *ctx, int64_t item, int worker);

typedef struct {
    pl_kernel kernel;
    int release;       /* release_gil */
    int n_threads;     /* native threads asked for, 1 .. PL_MAX_THREADS */
    int64_t n_items;
    pl_item_fn fn;
    void *ctx;
    int64_t t_enter;   /* pl_trace_enter() at the call's entry */
} pl_job;

/* Runs fn for every item of [0, n_items) under the GIL policy, on up to
 * n_threads native threads (the calling thread is one of them). Each item
 * goes to whichever thread is free; on one thread they run in order, which
 * the calls that carry a state from item to item rely on.
 * Must be called with the GIL (an attached thread state). Returns the number
 * of threads used, or -1 with an exception set: a signal handler raised
 * (KeyboardInterrupt), after the items already started have finished. */
int pl_run_chunked(const pl_job *job);

/* ceil(n / d) for n >= 0, d > 0, without the n + d - 1 that overflows
 * near 2**63. */
static inline int64_t pl_ceil_div(int64_t n, int64_t d)
{
    return n / d + (n % d != 0);
}

/* Workers for a job: n_threads, but never more than there are items. */
int pl_workers_for(int n_threads, int64_t n_items);

/* Whether a held call starting now emulates the GIL: 1 or 0, or -1 with an
 * exception set. Must be called with the GIL (an attached thread state). */
int pl_held_emulated(void);

/* Once per process, from the module's exec: learns the main thread. 0 or -1
 * with an exception set. */
int pl_gil_init(void);

#endif
