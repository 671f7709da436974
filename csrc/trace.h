/* Tracing: a bounded, process-wide buffer of per-call records, behind a few
 * hooks that the run loop (gil.c) calls. Plain C with atomics: the hooks run
 * with or without the GIL, from any thread, and cost one relaxed load when no
 * trace is recording. Python never restates the field or kernel names: they
 * are exported from the lists below (_core._TRACE_FIELDS, _TRACE_KERNELS). */
#ifndef PARLAB_TRACE_H
#define PARLAB_TRACE_H

#include <stddef.h>
#include <stdint.h>

/* The traced kernels, in the order of their ids. */
#define PL_KERNELS(X)                                                                       \
    X(PL_K_CDIST, "cdist")                                                                  \
    X(PL_K_COUNT_HITS, "count_hits")                                                        \
    X(PL_K_ESTIMATE_PI, "estimate_pi")                                                      \
    X(PL_K_CPU_WORK, "cpu_work")                                                            \
    X(PL_K_IO_WAIT, "io_wait")                                                              \
    X(PL_K_INCREMENT, "Counter.increment")

#define PL_ENUM_ITEM(id, name) id,
typedef enum { PL_KERNELS(PL_ENUM_ITEM) PL_N_KERNELS } pl_kernel;

/* A record is a kernel call (kind 0) or one wait for the GIL inside a call
 * (kind 1: t_enter = asked for it, t_return = got it). -1: not applicable.
 * thread_seq numbers OS threads in the order they first made a traced call,
 * never reused (Python may reuse a thread ident, the OS a native id). */
#define PL_TRACE_FIELDS(X)                                                                  \
    X(F_KIND, "kind")                                                                       \
    X(F_CALL, "call")                                                                       \
    X(F_KERNEL, "kernel")                                                                   \
    X(F_THREAD, "thread")                                                                   \
    X(F_NATIVE_THREAD, "native_thread")                                                     \
    X(F_THREAD_SEQ, "thread_seq")                                                           \
    X(F_T_ENTER, "t_enter")                                                                 \
    X(F_T_WORK_START, "t_work_start")                                                       \
    X(F_T_RELEASED, "t_released")                                                           \
    X(F_T_WORK_END, "t_work_end")                                                           \
    X(F_T_REACQUIRED, "t_reacquired")                                                       \
    X(F_T_RETURN, "t_return")                                                               \
    X(F_WAIT_NS, "wait_ns")                                                                 \
    X(F_N_WAITS, "n_waits")                                                                 \
    X(F_GIL_HELD, "gil_held")                                                               \
    X(F_COMPLETED, "completed")                                                             \
    X(F_CPU_NS, "cpu_ns")                                                                   \
    X(F_N_THREADS, "n_threads")

typedef enum { PL_TRACE_FIELDS(PL_ENUM_ITEM) PL_TRACE_NFIELDS } pl_trace_field;

extern const char *const pl_kernel_names[];      /* NULL-terminated */
extern const char *const pl_trace_field_names[]; /* NULL-terminated */

typedef struct pl_trace_buffer pl_trace_buffer;

/* One call's tracing state, filled by the hooks; tb == NULL: not traced. */
typedef struct {
    pl_trace_buffer *tb;
    int64_t call, kernel, t_enter, t_work_start, t_released, t_work_end, t_reacquired;
    int64_t wait_ns, n_waits, cpu_start; /* cpu_start < 0: CPU time not recorded */
    int release;
} pl_trace_call;

/* When a call entered, read only while tracing: untraced calls pay one load. */
int64_t pl_trace_enter(void);

/* The work begins: joins the active trace, if any (holding it until
 * pl_trace_end, so stopping the trace meanwhile frees nothing in use). */
void pl_trace_begin(pl_trace_call *c, pl_kernel kernel, int64_t t_enter, int release);

/* A wait for the GIL (or, in held mode without a GIL, for parlab's lock) from
 * `asked` to `got`. `separate`: a wait during the work, with a record of its
 * own; otherwise the final re-acquire, part of the call's record. */
void pl_trace_wait(pl_trace_call *c, int64_t asked, int64_t got, int separate);

/* The work ended at t_work_end (completed or interrupted); writes the call's
 * record and leaves the trace. */
void pl_trace_end(pl_trace_call *c, int64_t t_work_end, int completed, int n_threads);

/* Control, called with the GIL (or the module's lock) held by Python code.
 * pl_trace_start: 0, or -1 when a trace is already recording, -2 out of memory. */
int pl_trace_start(int64_t capacity, int cpu_time);
/* Detaches the active trace: NULL when none. Calls still running keep
 * writing into it; pl_trace_release frees it once the last of them ended. */
pl_trace_buffer *pl_trace_detach(void);
/* The records claimed so far (min(used, capacity): at most this many are
 * whole) and, in *dropped, the number lost to a full buffer. */
ptrdiff_t pl_trace_claimed(pl_trace_buffer *tb, ptrdiff_t *dropped);
/* Copies the whole records among the first `rows` into dst (rows x
 * PL_TRACE_NFIELDS), in order, and returns how many: a record that a call
 * ending as the trace stopped is still writing is left out. */
ptrdiff_t pl_trace_copy(pl_trace_buffer *tb, ptrdiff_t rows, int64_t *dst);
void pl_trace_release(pl_trace_buffer *tb);

/* This thread's number in F_THREAD_SEQ (given on first use). */
int64_t pl_trace_thread_seq(void);

/* In a forked child: no trace is recording (the parent's buffer is not ours). */
void pl_trace_after_fork_child(void);

#endif
