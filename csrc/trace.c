/* Tracing behind hooks: see trace.h. */
#include <Python.h> /* PyThread_get_thread_ident and _native_id only: no objects */

#include "trace.h"

#include <stdlib.h>
#include <string.h>

#include "platform.h"

#define PL_NAME_ITEM(id, name) name,
const char *const pl_kernel_names[] = {PL_KERNELS(PL_NAME_ITEM) NULL};
const char *const pl_trace_field_names[] = {PL_TRACE_FIELDS(PL_NAME_ITEM) NULL};

struct pl_trace_buffer {
    ptrdiff_t capacity;
    _Atomic ptrdiff_t next;    /* slots handed out, may pass capacity */
    _Atomic int64_t next_call; /* call ids */
    _Atomic int refs;          /* the trace itself while active, plus calls in flight */
    int cpu_time;              /* also read the thread's CPU clock (a syscall, ~0.5 us) */
    int64_t (*rec)[PL_TRACE_NFIELDS];
    /* written[i] becomes 1 once record i is whole: a release store by its
     * writer after filling it, an acquire load by pl_trace_copy, in the thread
     * that stops the trace, before reading it. The cursor `next` is relaxed
     * and orders nothing: without this flag the reader could copy a record
     * that a call ending as the trace stops is still writing (calls in flight
     * go on writing into a detached buffer), and would read even finished
     * records of other threads without their writing happening before. */
    _Atomic unsigned char *written;
};

/* The active trace. Joining it (load + reference) and detaching it happen
 * under `active_lock`, so a call never references a buffer being freed; the
 * lock-free load in front keeps untraced calls at one relaxed load. */
static _Atomic(pl_trace_buffer *) active;
static pl_mutex active_lock = PL_MUTEX_INIT;
static _Atomic int64_t next_thread_seq = 1;
static PL_THREAD_LOCAL int64_t thread_seq; /* 0: this thread has no number yet */

int64_t pl_trace_enter(void)
{
#ifdef PARLAB_NO_TRACE
    return -1;
#else
    return atomic_load_explicit(&active, memory_order_relaxed) ? pl_now_ns() : -1;
#endif
}

static pl_trace_buffer *join_active(void)
{
#ifdef PARLAB_NO_TRACE
    /* Tracing compiled out: the baseline the tracing overhead is measured against. */
    return NULL;
#else
    if (atomic_load_explicit(&active, memory_order_relaxed) == NULL)
        return NULL;
    pl_mutex_lock(&active_lock);
    pl_trace_buffer *tb = atomic_load(&active);
    if (tb)
        atomic_fetch_add(&tb->refs, 1);
    pl_mutex_unlock(&active_lock);
    return tb;
#endif
}

void pl_trace_begin(pl_trace_call *c, pl_kernel kernel, int64_t t_enter, int release)
{
    c->tb = join_active();
    if (c->tb == NULL)
        return;
    c->call = atomic_fetch_add_explicit(&c->tb->next_call, 1, memory_order_relaxed);
    c->kernel = kernel;
    c->release = release;
    c->wait_ns = c->n_waits = 0;
    c->t_work_start = pl_now_ns();
    /* Tracing may have started while the arguments were being parsed. */
    c->t_enter = t_enter >= 0 ? t_enter : c->t_work_start;
    c->t_released = release ? c->t_work_start : -1;
    c->t_reacquired = -1;
    c->cpu_start = c->tb->cpu_time ? pl_thread_cpu_ns() : -1;
}

/* A slot for one record, or -1 once the buffer is full (counted as dropped). */
static ptrdiff_t slot(pl_trace_buffer *tb)
{
#ifdef PARLAB_PLANT_RACE
    /* Test-only (scripts/ci-tsan.sh's negative check): the cursor bumped by a
     * plain load and store, a data race between threads recording at once
     * that ThreadSanitizer must report. */
    ptrdiff_t *cursor = (ptrdiff_t *)&tb->next;
    ptrdiff_t i = (*cursor)++;
#else
    ptrdiff_t i = atomic_fetch_add_explicit(&tb->next, 1, memory_order_relaxed);
#endif
    return i < tb->capacity ? i : -1;
}

/* Record i is whole: pl_trace_copy may read it from now on. */
static void publish(pl_trace_buffer *tb, ptrdiff_t i)
{
    atomic_store_explicit(&tb->written[i], 1, memory_order_release);
}

int64_t pl_trace_thread_seq(void)
{
    if (thread_seq == 0)
        thread_seq = atomic_fetch_add_explicit(&next_thread_seq, 1, memory_order_relaxed);
    return thread_seq;
}

static void fill(int64_t *r, const pl_trace_call *c, int64_t kind)
{
    for (int f = 0; f < PL_TRACE_NFIELDS; f++)
        r[f] = -1;
    r[F_KIND] = kind;
    r[F_CALL] = c->call;
    r[F_KERNEL] = c->kernel;
    r[F_THREAD] = (int64_t)PyThread_get_thread_ident();
    r[F_NATIVE_THREAD] = (int64_t)PyThread_get_thread_native_id();
    r[F_THREAD_SEQ] = pl_trace_thread_seq();
}

void pl_trace_wait(pl_trace_call *c, int64_t asked, int64_t got, int separate)
{
    if (c->tb == NULL)
        return;
    c->t_reacquired = got;
    c->wait_ns += got - asked;
    if (!separate)
        return;
    c->n_waits++;
    const ptrdiff_t i = slot(c->tb);
    if (i >= 0) {
        int64_t *r = c->tb->rec[i];
        fill(r, c, 1);
        r[F_T_ENTER] = asked;
        r[F_T_RETURN] = got;
        publish(c->tb, i);
    }
}

void pl_trace_end(pl_trace_call *c, int64_t t_work_end, int completed, int n_threads)
{
    if (c->tb == NULL)
        return;
    const ptrdiff_t i = slot(c->tb);
    if (i >= 0) {
        int64_t *r = c->tb->rec[i];
        fill(r, c, 0);
        r[F_T_ENTER] = c->t_enter;
        r[F_T_WORK_START] = c->t_work_start;
        r[F_T_RELEASED] = c->t_released;
        r[F_T_WORK_END] = t_work_end;
        r[F_T_REACQUIRED] = c->release ? c->t_reacquired : -1;
        r[F_T_RETURN] = pl_now_ns();
        r[F_WAIT_NS] = c->wait_ns;
        r[F_N_WAITS] = c->n_waits;
        r[F_GIL_HELD] = !c->release;
        r[F_COMPLETED] = completed;
        r[F_CPU_NS] = c->cpu_start >= 0 ? pl_thread_cpu_ns() - c->cpu_start : -1;
        r[F_N_THREADS] = n_threads;
        publish(c->tb, i);
    }
    pl_trace_release(c->tb);
    c->tb = NULL;
}

int pl_trace_start(int64_t capacity, int cpu_time)
{
    pl_trace_buffer *tb = calloc(1, sizeof *tb);
    if (tb == NULL || (tb->rec = calloc((size_t)capacity, sizeof *tb->rec)) == NULL ||
        (tb->written = calloc((size_t)capacity, sizeof *tb->written)) == NULL) {
        if (tb)
            free(tb->rec);
        free(tb);
        return -2;
    }
    tb->capacity = (ptrdiff_t)capacity;
    tb->cpu_time = cpu_time;
    atomic_init(&tb->next, 0);
    atomic_init(&tb->next_call, 0);
    atomic_init(&tb->refs, 1);
    pl_mutex_lock(&active_lock);
    pl_trace_buffer *expected = NULL;
    const int started = atomic_compare_exchange_strong(&active, &expected, tb);
    pl_mutex_unlock(&active_lock);
    if (!started) {
        free(tb->written);
        free(tb->rec);
        free(tb);
        return -1;
    }
    return 0;
}

pl_trace_buffer *pl_trace_detach(void)
{
    pl_mutex_lock(&active_lock);
    pl_trace_buffer *tb = atomic_exchange(&active, NULL);
    pl_mutex_unlock(&active_lock);
    return tb;
}

ptrdiff_t pl_trace_claimed(pl_trace_buffer *tb, ptrdiff_t *dropped)
{
    const ptrdiff_t used = atomic_load(&tb->next);
    const ptrdiff_t rows = used < tb->capacity ? used : tb->capacity;
    *dropped = used - rows;
    return rows;
}

ptrdiff_t pl_trace_copy(pl_trace_buffer *tb, ptrdiff_t rows, int64_t *dst)
{
    ptrdiff_t n = 0;
    for (ptrdiff_t i = 0; i < rows; i++) {
        if (!atomic_load_explicit(&tb->written[i], memory_order_acquire))
            continue;
        memcpy(dst + n * PL_TRACE_NFIELDS, tb->rec[i], sizeof tb->rec[i]);
        n++;
    }
    return n;
}

void pl_trace_release(pl_trace_buffer *tb)
{
    if (atomic_fetch_sub(&tb->refs, 1) == 1) {
        free(tb->written);
        free(tb->rec);
        free(tb);
    }
}

void pl_trace_after_fork_child(void)
{
    /* The forking thread is the child's only thread. The parent's buffer is
     * left alone: its references belong to threads the child does not have. */
    pl_mutex_init(&active_lock);
    atomic_store(&active, NULL);
}
