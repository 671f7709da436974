/* The GIL policy and the chunked run loop: see gil.h. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "gil.h"

#include <stdlib.h>

#include "platform.h"

/* How often the main thread runs signal handlers during a call: often enough
 * that Ctrl-C interrupts within 0.2 s, rarely enough to cost nothing. */
#define CHECK_INTERVAL_NS INT64_C(50000000)

#if defined(Py_GIL_DISABLED) || defined(PARLAB_EMULATE_GIL)
#define EMULATED 1
static pl_mutex held_lock = PL_MUTEX_INIT;
#else
#define EMULATED 0
#endif

int pl_held_emulated(void)
{
#if defined(PARLAB_EMULATE_GIL)
    return 1;
#elif defined(Py_GIL_DISABLED)
    /* Asked at every held call: importing a module that does not declare
     * Py_mod_gil turns the GIL on at any time, and no C API reports it. */
    PyObject *is_enabled = PySys_GetObject("_is_gil_enabled");
    if (is_enabled == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "sys._is_gil_enabled is missing");
        return -1;
    }
    PyObject *on = PyObject_CallNoArgs(is_enabled);
    if (on == NULL)
        return -1;
    const int emulated = on == Py_False;
    Py_DECREF(on);
    return emulated;
#else
    return 0;
#endif
}

/* Only the main thread runs Python's signal handlers: other threads have
 * nothing to check, so they never take the GIL back during the work. */
static _Atomic unsigned long main_ident;

static void after_fork_child(void)
{
    /* The forking thread is the child's main thread and its only thread:
     * locks another thread held at the fork would never be unlocked. */
    atomic_store(&main_ident, PyThread_get_thread_ident());
#if EMULATED
    pl_mutex_init(&held_lock);
#endif
    pl_trace_after_fork_child();
}

static pl_once_flag fork_handler_once = PL_ONCE_INIT;

static void register_fork_handler(void)
{
    pl_at_fork_child(after_fork_child);
}

int pl_gil_init(void)
{
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL)
        return -1;
    PyObject *main = PyObject_CallMethod(threading, "main_thread", NULL);
    Py_DECREF(threading);
    if (main == NULL)
        return -1;
    PyObject *ident = PyObject_GetAttrString(main, "ident");
    Py_DECREF(main);
    if (ident == NULL)
        return -1;
    const unsigned long id = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    if (PyErr_Occurred())
        return -1;
    atomic_store(&main_ident, id);
    pl_once(&fork_handler_once, register_fork_handler);
    return 0;
}

int pl_workers_for(int n_threads, int64_t n_items)
{
    return n_items < n_threads ? (n_items > 1 ? (int)n_items : 1) : n_threads;
}

/* The state a run shares between its threads. */
typedef struct {
    const pl_job *job;
    _Atomic int64_t next; /* the next item not yet taken */
    _Atomic int stop;     /* the caller was interrupted: start no new item */
} shared_run;

typedef struct {
    shared_run *run;
    int worker;
} worker_arg;

/* Takes the next item, or returns 0 when none is left or the run stopped. */
static int next_item(shared_run *s, int64_t *item)
{
    if (atomic_load_explicit(&s->stop, memory_order_relaxed))
        return 0;
    *item = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed);
    return *item < s->job->n_items;
}

static void *native_worker(void *p)
{
    const worker_arg *a = p;
    const pl_job *j = a->run->job;
    int64_t i;
    while (next_item(a->run, &i))
        j->fn(j->ctx, i, a->worker);
    return NULL;
}

/* The calling thread: its thread state while detached, and when it next
 * runs signal handlers. */
typedef struct {
    PyThreadState *ts; /* non-NULL while detached */
    int detach;        /* the work runs detached: released, or held with the GIL emulated */
    int check;         /* the main thread: run signal handlers between items */
    int64_t next_check;
    pl_trace_call trace;
} caller;

/* In the main thread, every CHECK_INTERVAL_NS: attach just long enough to run
 * signal handlers. -1 with an exception set, attached, when one raised. */
static int checkpoint(caller *c)
{
    const int64_t now = pl_now_ns();
    if (now < c->next_check)
        return 0;
    if (c->ts) {
        PyEval_RestoreThread(c->ts);
        c->ts = NULL;
        if (c->trace.tb)
            pl_trace_wait(&c->trace, now, pl_now_ns(), 1);
    }
    if (PyErr_CheckSignals() < 0)
        return -1;
    if (c->detach)
        c->ts = PyEval_SaveThread();
    c->next_check = pl_now_ns() + CHECK_INTERVAL_NS;
    return 0;
}

/* The calling thread's share of the items: all of them in order when it runs
 * alone (no atomic per item), else items taken from the shared counter. */
static int caller_items(caller *c, shared_run *s, int alone)
{
    const pl_job *j = s->job;
    if (alone) {
        for (int64_t i = 0; i < j->n_items; i++) {
            j->fn(j->ctx, i, 0);
            if (c->check && checkpoint(c) < 0)
                return -1;
        }
        return 0;
    }
    int64_t i;
    while (next_item(s, &i)) {
        j->fn(j->ctx, i, 0);
        if (c->check && checkpoint(c) < 0) {
            atomic_store(&s->stop, 1);
            return -1;
        }
    }
    return 0;
}

#if EMULATED
/* Held mode without a GIL: parlab's own lock stands in for it. Waiting for
 * it detaches, as waiting for the GIL would; like a wait for the GIL before
 * a call, it is not part of the call's work. */
static void take_held_lock(void)
{
    if (pl_mutex_trylock(&held_lock))
        return;
    Py_BEGIN_ALLOW_THREADS
    pl_mutex_lock(&held_lock);
    Py_END_ALLOW_THREADS
}
#endif

int pl_run_chunked(const pl_job *job)
{
    const int emulate = job->release ? 0 : pl_held_emulated();
    if (emulate < 0)
        return -1;
    caller c = {.detach = job->release || emulate};
    c.check = PyThread_get_thread_ident() == atomic_load_explicit(&main_ident, memory_order_relaxed);
#if EMULATED
    if (emulate)
        take_held_lock();
#endif
    pl_trace_begin(&c.trace, job->kernel, job->t_enter, job->release);
    if (c.check)
        c.next_check = pl_now_ns() + CHECK_INTERVAL_NS;
    if (c.detach)
        c.ts = PyEval_SaveThread();

    /* Between here and the end: no Python objects, no PyErr_*, no PyMem_*
     * while detached; native threads never touch Python at all. */
    shared_run s = {.job = job};
    int workers = pl_workers_for(job->n_threads, job->n_items);
    pl_thread *tids = NULL;
    worker_arg *args = NULL;
    if (workers > 1) {
        tids = malloc((size_t)workers * sizeof *tids);
        args = malloc((size_t)workers * sizeof *args);
        int started = 1;
        if (tids && args) {
            for (; started < workers; started++) {
                args[started] = (worker_arg){&s, started};
                if (pl_thread_start(&tids[started], native_worker, &args[started]) != 0)
                    break; /* fewer threads: same results, less parallel */
            }
        }
        workers = started;
    }
    const int failed = caller_items(&c, &s, workers == 1) < 0;
    for (int w = 1; w < workers; w++)
        pl_thread_join(tids[w]);
    free(tids);
    free(args);

    /* Interrupted: the work stopped when the GIL came back for the handler. */
    const int64_t work_end = !c.trace.tb ? -1
                             : failed && c.detach ? c.trace.t_reacquired
                                                  : pl_now_ns();
#if EMULATED
    if (emulate)
        pl_mutex_unlock(&held_lock);
#endif
    if (c.ts) {
        const int64_t asked = c.trace.tb ? pl_now_ns() : 0;
        PyEval_RestoreThread(c.ts);
        if (c.trace.tb && job->release)
            pl_trace_wait(&c.trace, asked, pl_now_ns(), 0);
    }
    pl_trace_end(&c.trace, work_end, !failed, workers);
    return failed ? -1 : workers;
}
