/* parlab._core: the binding layer. It parses and validates arguments,
 * converts arrays, applies the GIL policy and raises. The work itself is in
 * kernels/, plain C that never touches a Python object.
 *
 * The GIL policy is one idiom (gil_begin / gil_checkpoint / gil_end): with
 * release_gil=True the work runs with the GIL released; with False the call
 * holds it throughout. Either way the work is cut into chunks and, every
 * CHECK_INTERVAL_NS, the GIL is held just long enough to run signal handlers,
 * so Ctrl-C interrupts a long call. Between release and re-acquire there are
 * no Python objects, no PyErr_* and no PyMem_* calls. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_2_0_API_VERSION
#include <numpy/arrayobject.h>

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "kernels/cdist.h"
#include "kernels/counter.h"
#include "kernels/montecarlo.h"
#include "kernels/simd.h"
#include "kernels/work.h"

#define CHECK_INTERVAL_NS INT64_C(5000000)

/* Work per chunk, small enough that a chunk takes tens of microseconds, so
 * the clock is read often enough to keep the check interval. */
#define CDIST_CHUNK_FLOPS (1 << 15)
#define HITS_CHUNK (1 << 14)
#define COUNTER_CHUNK (1 << 10)
#define CPU_CHUNK (1 << 10)

/* ------------------------------------------------------------------ */
/* Module state                                                        */

typedef struct {
    PyObject *SeedSequence; /* numpy.random.SeedSequence */
    PyObject *uint64;       /* numpy.dtype('uint64') */
    PyObject *CounterType;
    PyObject *trace;        /* capsule of the active trace_buffer, or NULL */
} core_state;

static inline core_state *get_state(PyObject *module)
{
    return (core_state *)PyModule_GetState(module);
}

/* ------------------------------------------------------------------ */
/* Tracing: a bounded buffer of per-call records                       */

/* Every record is TRACE_NFIELDS int64 values, in the order of trace_fields
 * (exported as _core._TRACE_FIELDS so Python never restates it). A record is
 * a kernel call (kind 0) or one wait to re-take the GIL inside a call
 * (kind 1: t_enter = asked for the GIL, t_return = got it). -1: not applicable. */
enum {
    F_KIND, F_CALL, F_KERNEL, F_THREAD, F_NATIVE_THREAD, F_T_ENTER, F_T_WORK_START,
    F_T_RELEASED, F_T_WORK_END, F_T_REACQUIRED, F_T_RETURN, F_WAIT_NS, F_N_WAITS,
    F_GIL_HELD, F_COMPLETED, F_CPU_NS, TRACE_NFIELDS
};
static const char *const trace_fields[] = {
    "kind", "call", "kernel", "thread", "native_thread", "t_enter", "t_work_start",
    "t_released", "t_work_end", "t_reacquired", "t_return", "wait_ns", "n_waits",
    "gil_held", "completed", "cpu_ns", NULL};

typedef enum { K_CDIST, K_COUNT_HITS, K_ESTIMATE_PI, K_CPU_WORK, K_IO_WAIT, K_INCREMENT } kernel_id;
static const char *const kernel_names[] = {"cdist", "count_hits", "estimate_pi", "cpu_work",
                                           "io_wait", "Counter.increment", NULL};

typedef struct {
    Py_ssize_t capacity;
    _Atomic Py_ssize_t next;    /* slots handed out, may pass capacity */
    _Atomic int64_t next_call;  /* call ids */
    int cpu_time;               /* also read the thread's CPU clock (a syscall, ~0.5 us) */
    int64_t (*rec)[TRACE_NFIELDS];
} trace_buffer;

#define TRACE_CAPSULE "parlab._core.trace_buffer"

static void trace_buffer_free(PyObject *capsule)
{
    trace_buffer *tb = PyCapsule_GetPointer(capsule, TRACE_CAPSULE);
    PyMem_Free(tb->rec);
    PyMem_Free(tb);
}

/* A slot for one record, or NULL once the buffer is full (counted as dropped). */
static int64_t *trace_slot(trace_buffer *tb)
{
    Py_ssize_t i = atomic_fetch_add_explicit(&tb->next, 1, memory_order_relaxed);
    return i < tb->capacity ? tb->rec[i] : NULL;
}

/* ------------------------------------------------------------------ */
/* The GIL policy                                                      */

typedef struct {
    PyThreadState *ts; /* non-NULL while this call has the GIL released */
    int release;
    int failed;        /* a signal handler raised at a checkpoint */
    int64_t next_check_ns;
    /* Tracing, used only when a trace was active as the work began. */
    PyObject *trace;   /* owned reference to the capsule, or NULL */
    int64_t call, kernel, t_enter, t_work_start, t_released, t_work_end, t_reacquired;
    int64_t wait_ns, n_waits, cpu_start; /* cpu_start < 0: CPU time not recorded */
} gil_policy;

/* When a call entered: read only while tracing, so untraced calls pay one branch. */
static inline int64_t trace_enter(core_state *st)
{
#ifdef PARLAB_NO_TRACE
    return -1;
#else
    return st->trace ? pl_now_ns() : -1;
#endif
}

static void gil_begin(gil_policy *g, core_state *st, kernel_id kernel, int64_t t_enter,
                      int release)
{
    g->release = release;
    g->failed = 0;
#ifdef PARLAB_NO_TRACE
    /* Tracing compiled out: the baseline that the tracing overhead is measured against. */
    g->trace = NULL;
#else
    g->trace = st->trace;
#endif
    if (g->trace) {
        trace_buffer *tb = PyCapsule_GetPointer(g->trace, TRACE_CAPSULE);
        Py_INCREF(g->trace);
        g->call = atomic_fetch_add_explicit(&tb->next_call, 1, memory_order_relaxed);
        g->kernel = kernel;
        g->wait_ns = g->n_waits = 0;
        g->t_work_start = pl_now_ns();
        /* Tracing may have started while the arguments were being parsed. */
        g->t_enter = t_enter >= 0 ? t_enter : g->t_work_start;
        g->t_released = release ? g->t_work_start : -1;
        g->cpu_start = tb->cpu_time ? pl_thread_cpu_ns() : -1;
    }
    g->next_check_ns = pl_now_ns() + CHECK_INTERVAL_NS;
    g->ts = release ? PyEval_SaveThread() : NULL;
}

static void trace_fill(int64_t *r, const gil_policy *g, int64_t kind)
{
    for (int f = 0; f < TRACE_NFIELDS; f++)
        r[f] = -1;
    r[F_KIND] = kind;
    r[F_CALL] = g->call;
    r[F_KERNEL] = g->kernel;
    r[F_THREAD] = (int64_t)PyThread_get_thread_ident();
    r[F_NATIVE_THREAD] = (int64_t)PyThread_get_thread_native_id();
}

/* Takes the GIL back after a released stretch. If traced, adds the wait to
 * the call's total and, for a checkpoint (`separate`), writes a wait record;
 * the final re-acquire is part of the call's own record. */
static void gil_reacquire(gil_policy *g, int separate)
{
    const int64_t asked = g->trace ? pl_now_ns() : 0;
    PyEval_RestoreThread(g->ts);
    g->ts = NULL;
    if (g->trace) {
        const int64_t got = pl_now_ns();
        g->t_reacquired = got;
        g->wait_ns += got - asked;
        if (!separate)
            return;
        g->n_waits++;
        int64_t *r = trace_slot(PyCapsule_GetPointer(g->trace, TRACE_CAPSULE));
        if (r) {
            trace_fill(r, g, 1);
            r[F_T_ENTER] = asked;
            r[F_T_RETURN] = got;
        }
    }
}

/* Called between chunks. Every CHECK_INTERVAL_NS it holds the GIL just long
 * enough to run signal handlers. Returns -1 with an exception set and the GIL
 * held when a handler raised (KeyboardInterrupt); the caller then stops. */
static int gil_checkpoint(gil_policy *g)
{
    if (pl_now_ns() < g->next_check_ns)
        return 0;
    if (g->ts)
        gil_reacquire(g, 1);
    if (PyErr_CheckSignals() < 0) {
        g->failed = 1;
        return -1;
    }
    if (g->release)
        g->ts = PyEval_SaveThread();
    g->next_check_ns = pl_now_ns() + CHECK_INTERVAL_NS;
    return 0;
}

/* Ends the work: takes the GIL back and, if traced, writes the call's record. */
static void gil_end(gil_policy *g)
{
    int64_t cpu_ns = -1;
    if (g->trace) {
        /* Interrupted at a checkpoint: the work stopped when the GIL came back. */
        g->t_work_end = g->failed && g->release ? g->t_reacquired : pl_now_ns();
        if (g->cpu_start >= 0)
            cpu_ns = pl_thread_cpu_ns() - g->cpu_start;
    }
    if (g->ts)
        gil_reacquire(g, 0);
    if (!g->trace)
        return;
    trace_buffer *tb = PyCapsule_GetPointer(g->trace, TRACE_CAPSULE);
    const int64_t now = pl_now_ns();
    int64_t *r = trace_slot(tb);
    if (r) {
        trace_fill(r, g, 0);
        r[F_T_ENTER] = g->t_enter;
        r[F_T_WORK_START] = g->t_work_start;
        r[F_T_RELEASED] = g->t_released;
        r[F_T_WORK_END] = g->t_work_end;
        r[F_T_REACQUIRED] = g->release ? g->t_reacquired : -1;
        r[F_T_RETURN] = now;
        r[F_WAIT_NS] = g->wait_ns;
        r[F_N_WAITS] = g->n_waits;
        r[F_GIL_HELD] = !g->release;
        r[F_COMPLETED] = !g->failed;
        r[F_CPU_NS] = cpu_ns;
    }
    Py_CLEAR(g->trace);
}

/* ------------------------------------------------------------------ */
/* Argument conversion                                                 */

static int parse_release(PyObject *obj, const char *fn, int *release)
{
    if (obj == NULL) {
        *release = 1;
        return 0;
    }
    if (!PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: release_gil must be a bool, not %.200s", fn,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    *release = (obj == Py_True);
    return 0;
}

/* An int (or an object with __index__, such as numpy.int64) in int64 range.
 * bool is refused: True as a count is almost always a mistake. */
static int parse_int64(PyObject *obj, const char *fn, const char *name, int64_t *out)
{
    if (PyBool_Check(obj) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be an int, not %.200s", fn, name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *idx = PyNumber_Index(obj);
    if (idx == NULL)
        return -1;
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(idx, &overflow);
    if (overflow) {
        PyErr_Format(PyExc_OverflowError, "%s: %s must fit in int64 (-2**63 .. 2**63-1), got %S",
                     fn, name, idx);
        Py_DECREF(idx);
        return -1;
    }
    Py_DECREF(idx);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int parse_count(PyObject *obj, const char *fn, const char *name, int64_t *out)
{
    if (parse_int64(obj, fn, name, out) < 0)
        return -1;
    if (*out < 0) {
        PyErr_Format(PyExc_ValueError, "%s: %s must be non-negative, got %lld", fn, name,
                     (long long)*out);
        return -1;
    }
    return 0;
}

/* Matches a str argument against a NULL-terminated list of choices. */
static int parse_choice(PyObject *obj, const char *fn, const char *name,
                        const char *const *choices, int *out)
{
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a str, not %.200s", fn, name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    for (int i = 0; choices[i] != NULL; i++) {
        if (PyUnicode_CompareWithASCIIString(obj, choices[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    char listed[256] = "";
    for (int i = 0; choices[i] != NULL; i++) {
        strncat(listed, i ? ", '" : "'", sizeof listed - strlen(listed) - 1);
        strncat(listed, choices[i], sizeof listed - strlen(listed) - 1);
        strncat(listed, "'", sizeof listed - strlen(listed) - 1);
    }
    PyErr_Format(PyExc_ValueError, "%s: %s must be one of %s; got %R", fn, name, listed, obj);
    return -1;
}

/* numpy.random.SeedSequence-like object -> the first uint64 of its state. */
static int key_from_seedsequence(core_state *st, PyObject *ss, uint64_t *key)
{
    PyObject *state = PyObject_CallMethod(ss, "generate_state", "iO", 1, st->uint64);
    if (state == NULL)
        return -1;
    PyArrayObject *arr =
        (PyArrayObject *)PyArray_FROMANY(state, NPY_UINT64, 1, 1, NPY_ARRAY_CARRAY_RO);
    Py_DECREF(state);
    if (arr == NULL)
        return -1;
    *key = *(npy_uint64 *)PyArray_DATA(arr);
    Py_DECREF(arr);
    return 0;
}

/* The seed convention is NumPy's: the generator key is
 * SeedSequence(seed).generate_state(1, uint64)[0]. Ints below 2**64 take a C
 * path with the same hashing, so small seeded calls stay cheap. */
static int parse_seed(core_state *st, PyObject *seed, const char *fn, uint64_t *key)
{
    if (seed == NULL || seed == Py_None || PyObject_TypeCheck(seed, (PyTypeObject *)st->SeedSequence)) {
        PyObject *ss = (seed == NULL || seed == Py_None)
                           ? PyObject_CallNoArgs(st->SeedSequence)
                           : Py_NewRef(seed);
        if (ss == NULL)
            return -1;
        int rc = key_from_seedsequence(st, ss, key);
        Py_DECREF(ss);
        return rc;
    }
    if (PyBool_Check(seed) || !PyIndex_Check(seed)) {
        PyErr_Format(PyExc_TypeError,
                     "%s: seed must be None, a non-negative int or a numpy.random.SeedSequence, "
                     "not %.200s",
                     fn, Py_TYPE(seed)->tp_name);
        return -1;
    }
    PyObject *idx = PyNumber_Index(seed);
    if (idx == NULL)
        return -1;
    int rc = -1, overflow;
    long long sv = PyLong_AsLongLongAndOverflow(idx, &overflow);
    if (sv == -1 && PyErr_Occurred())
        goto done;
    if (overflow < 0 || (overflow == 0 && sv < 0)) {
        PyErr_Format(PyExc_ValueError, "%s: seed must be non-negative, got %S", fn, idx);
        goto done;
    }
    unsigned long long u = PyLong_AsUnsignedLongLong(idx);
    if (u == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            goto done;
        PyErr_Clear();
        PyObject *ss = PyObject_CallOneArg(st->SeedSequence, idx);
        if (ss == NULL)
            goto done;
        rc = key_from_seedsequence(st, ss, key);
        Py_DECREF(ss);
        goto done;
    }
    *key = pl_seed_key(u);
    rc = 0;
done:
    Py_DECREF(idx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* cdist                                                               */

static const char *const metric_names[] = {"euclidean", "sqeuclidean", NULL};

/* Any array-like of real numbers, as an array of its own dtype, checked to
 * be 2-D. Conversion to float64 comes later, once the result size is known
 * to be allocatable (converting a broadcast view can itself be huge). */
static PyArrayObject *real_matrix(PyObject *obj, const char *name)
{
    PyArrayObject *arr = (PyArrayObject *)PyArray_FromAny(obj, NULL, 0, 0, 0, NULL);
    if (arr == NULL) {
        if (PyErr_ExceptionMatches(PyExc_ValueError) || PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_NormalizeException(&type, &value, &tb);
            PyErr_Format(type, "cdist: %s must be an array-like of real numbers (%S)", name, value);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
        }
        return NULL;
    }
    if (PyArray_NDIM(arr) != 2) {
        PyObject *shape = PyObject_GetAttrString((PyObject *)arr, "shape");
        if (shape) {
            PyErr_Format(PyExc_ValueError, "cdist: %s must be 2-D, got shape %R", name, shape);
            Py_DECREF(shape);
        }
        Py_DECREF(arr);
        return NULL;
    }
    const char kind = PyArray_DESCR(arr)->kind;
    if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f') {
        PyErr_Format(PyExc_TypeError, "cdist: %s must hold real numbers, got dtype %R", name,
                     (PyObject *)PyArray_DESCR(arr));
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

static PyArrayObject *as_float64(PyArrayObject *arr)
{
    return (PyArrayObject *)PyArray_FROM_OTF((PyObject *)arr, NPY_DOUBLE,
                                             NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
}

/* The bytes an array may touch, [lo, hi); lo == hi when it is empty. */
static void byte_extent(PyArrayObject *a, const char **lo, const char **hi)
{
    const char *p = PyArray_BYTES(a);
    *lo = *hi = p;
    if (PyArray_SIZE(a) == 0)
        return;
    for (int d = 0; d < PyArray_NDIM(a); d++) {
        npy_intp off = (PyArray_DIM(a, d) - 1) * PyArray_STRIDE(a, d);
        if (off < 0)
            *lo += off;
        else
            *hi += off;
    }
    *hi += PyArray_ITEMSIZE(a);
}

static int overlaps(PyArrayObject *a, PyArrayObject *b)
{
    const char *alo, *ahi, *blo, *bhi;
    byte_extent(a, &alo, &ahi);
    byte_extent(b, &blo, &bhi);
    return alo < ahi && blo < bhi && alo < bhi && blo < ahi;
}

static int check_out(PyObject *obj, npy_intp mA, npy_intp mB, PyArrayObject *XA,
                     PyArrayObject *XB)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "cdist: out must be a numpy.ndarray, not %.200s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyArrayObject *out = (PyArrayObject *)obj;
    if (PyArray_TYPE(out) != NPY_DOUBLE || !PyArray_ISNOTSWAPPED(out)) {
        PyErr_Format(PyExc_TypeError, "cdist: out must have dtype float64 (native byte order), got %R",
                     (PyObject *)PyArray_DESCR(out));
        return -1;
    }
    if (PyArray_NDIM(out) != 2 || PyArray_DIM(out, 0) != mA || PyArray_DIM(out, 1) != mB) {
        PyObject *shape = PyObject_GetAttrString(obj, "shape");
        if (shape) {
            PyErr_Format(PyExc_ValueError, "cdist: out must have shape (%zd, %zd), got %R",
                         (Py_ssize_t)mA, (Py_ssize_t)mB, shape);
            Py_DECREF(shape);
        }
        return -1;
    }
    if (!PyArray_ISWRITEABLE(out)) {
        PyErr_SetString(PyExc_ValueError, "cdist: out must be writeable");
        return -1;
    }
    if (!PyArray_ISALIGNED(out)) {
        PyErr_SetString(PyExc_ValueError, "cdist: out must be aligned");
        return -1;
    }
    /* Strides of an empty array mean nothing (NumPy 2 makes them 0). */
    if (mA > 0 && mB > 1 && PyArray_STRIDE(out, 1) != (npy_intp)sizeof(double)) {
        PyErr_Format(PyExc_ValueError,
                     "cdist: out rows must be contiguous (strides[1] == 8), got strides[1] == %zd",
                     (Py_ssize_t)PyArray_STRIDE(out, 1));
        return -1;
    }
    npy_intp rs = PyArray_STRIDE(out, 0);
    if (mA > 1 && mB > 0 && (rs < 0 ? -rs : rs) < mB * (npy_intp)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "cdist: out rows must not overlap each other");
        return -1;
    }
    if (overlaps(out, XA) || overlaps(out, XB)) {
        PyErr_Format(PyExc_ValueError, "cdist: out must not overlap the inputs (it overlaps %s)",
                     overlaps(out, XA) ? "XA" : "XB");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(cdist_doc,
"cdist($module, XA, XB, *, metric='euclidean', out=None, release_gil=True)\n"
"--\n"
"\n"
"Distances between every row of XA (mA, n) and every row of XB (mB, n).\n"
"\n"
"Returns a float64 array of shape (mA, mB), equal to\n"
"scipy.spatial.distance.cdist(XA, XB, metric). The direct formula\n"
"sqrt(sum((a - b)**2)) is used, keeping full accuracy for close points.\n"
"\n"
"XA, XB: array-likes of real numbers (ints, bools, floats; any order or\n"
"    strides); converted to float64 only where they are not already\n"
"    C-contiguous float64.\n"
"metric: 'euclidean' or 'sqeuclidean'.\n"
"out: optional writeable float64 array of shape (mA, mB) with contiguous\n"
"    rows, such as a row block D[i:j] of a larger matrix; the result is\n"
"    written there and out is returned. It must not overlap XA or XB. If the\n"
"    call is interrupted, out holds the rows finished so far.\n"
"release_gil: True runs the work with the GIL released, so several threads\n"
"    compute in parallel; False holds the GIL for the whole call.");

static PyObject *core_cdist(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"XA", "XB", "metric", "out", "release_gil", NULL};
    core_state *st = get_state(module);
    const int64_t t_enter = trace_enter(st);
    PyObject *xa_obj, *xb_obj, *metric_obj = NULL, *out_obj = Py_None, *release_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|$OOO:cdist", kwlist, &xa_obj, &xb_obj,
                                     &metric_obj, &out_obj, &release_obj))
        return NULL;
    int metric = PL_EUCLIDEAN, release;
    if (metric_obj && parse_choice(metric_obj, "cdist", "metric", metric_names, &metric) < 0)
        return NULL;
    if (parse_release(release_obj, "cdist", &release) < 0)
        return NULL;

    PyArrayObject *rawA = NULL, *rawB = NULL, *XA = NULL, *XB = NULL, *out = NULL;
    PyObject *result = NULL;
    if (!(rawA = real_matrix(xa_obj, "XA")) || !(rawB = real_matrix(xb_obj, "XB")))
        goto done;
    const npy_intp mA = PyArray_DIM(rawA, 0), mB = PyArray_DIM(rawB, 0);
    const npy_intp n = PyArray_DIM(rawA, 1);
    if (PyArray_DIM(rawB, 1) != n) {
        PyErr_Format(PyExc_ValueError,
                     "cdist: XA and XB must have the same number of columns, got %zd and %zd",
                     (Py_ssize_t)n, (Py_ssize_t)PyArray_DIM(rawB, 1));
        goto done;
    }
    if (out_obj == Py_None) {
        if (mB > 0 && mA > PY_SSIZE_T_MAX / (npy_intp)sizeof(double) / mB) {
            PyErr_Format(PyExc_MemoryError,
                         "cdist: a result of shape (%zd, %zd) is too large to allocate",
                         (Py_ssize_t)mA, (Py_ssize_t)mB);
            goto done;
        }
    }
    else if (check_out(out_obj, mA, mB, rawA, rawB) < 0) {
        goto done;
    }
    if (!(XA = as_float64(rawA)) || !(XB = as_float64(rawB)))
        goto done;
    if (out_obj == Py_None) {
        npy_intp dims[2] = {mA, mB};
        if (!(out = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_DOUBLE)))
            goto done;
    }
    else {
        out = (PyArrayObject *)Py_NewRef(out_obj);
    }

    /* XA, XB and out are owned references: they outlive the released region. */
    const double *a = (const double *)PyArray_DATA(XA);
    const double *b = (const double *)PyArray_DATA(XB);
    double *o = (double *)PyArray_DATA(out);
    const ptrdiff_t row_stride = PyArray_STRIDE(out, 0) / (npy_intp)sizeof(double);
    const npy_intp per_row = mB * (n > 0 ? n : 1);
    const npy_intp chunk = per_row >= CDIST_CHUNK_FLOPS ? 1 : CDIST_CHUNK_FLOPS / (per_row ? per_row : 1);
    gil_policy g;
    gil_begin(&g, st, K_CDIST, t_enter, release);
    for (npy_intp i = 0; i < mA; i += chunk) {
        const npy_intp end = i + chunk < mA ? i + chunk : mA;
        pl_cdist_block(a + i * n, n, b, n, end - i, mB, n, (pl_metric)metric, o + i * row_stride,
                       row_stride);
        if (gil_checkpoint(&g) < 0)
            break;
    }
    gil_end(&g);
    if (!g.failed)
        result = Py_NewRef((PyObject *)out);
done:
    Py_XDECREF(rawA);
    Py_XDECREF(rawB);
    Py_XDECREF(XA);
    Py_XDECREF(XB);
    Py_XDECREF(out);
    return result;
}

/* ------------------------------------------------------------------ */
/* Monte Carlo                                                         */

/* Shared by count_hits and estimate_pi: parse, then count. */
static int count_hits_impl(PyObject *module, PyObject *args, PyObject *kwargs,
                           const char *format, kernel_id kernel, int64_t *hits, int64_t *n)
{
    static char *kwlist[] = {"n_samples", "seed", "start", "release_gil", NULL};
    core_state *st = get_state(module);
    const int64_t t_enter = trace_enter(st);
    const char *fn = kernel_names[kernel];
    PyObject *n_obj, *seed_obj = NULL, *start_obj = NULL, *release_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, format, kwlist, &n_obj, &seed_obj,
                                     &start_obj, &release_obj))
        return -1;
    int64_t start = 0;
    int release;
    uint64_t key;
    if (parse_count(n_obj, fn, "n_samples", n) < 0)
        return -1;
    if (kernel == K_ESTIMATE_PI && *n == 0) {
        PyErr_SetString(PyExc_ValueError,
                        "estimate_pi: n_samples must be positive (no samples, no estimate)");
        return -1;
    }
    if (start_obj && parse_count(start_obj, fn, "start", &start) < 0)
        return -1;
    if ((uint64_t)start + (uint64_t)*n > (UINT64_C(1) << 63)) {
        PyErr_Format(PyExc_OverflowError,
                     "%s: start + n_samples must not exceed 2**63, got %lld + %lld", fn,
                     (long long)start, (long long)*n);
        return -1;
    }
    if (parse_release(release_obj, fn, &release) < 0)
        return -1;
    if (parse_seed(st, seed_obj, fn, &key) < 0)
        return -1;

    int64_t total = 0;
    gil_policy g;
    gil_begin(&g, st, kernel, t_enter, release);
    for (int64_t done = 0; done < *n; done += HITS_CHUNK) {
        const int64_t len = *n - done < HITS_CHUNK ? *n - done : HITS_CHUNK;
        total += pl_count_hits(key, (uint64_t)(start + done), len);
        if (gil_checkpoint(&g) < 0)
            break;
    }
    gil_end(&g);
    *hits = total;
    return g.failed ? -1 : 0;
}

PyDoc_STRVAR(count_hits_doc,
"count_hits($module, n_samples, *, seed=None, start=0, release_gil=True)\n"
"--\n"
"\n"
"Count how many of n_samples uniform points of the unit square fall inside\n"
"the quarter circle x**2 + y**2 <= 1.\n"
"\n"
"The points are samples start .. start + n_samples - 1 of one stream fixed by\n"
"seed (a counter-based SplitMix64 stream: every sample is a pure function of\n"
"the seed and its index). Chunks therefore add up exactly:\n"
"count_hits(n, seed=s) == count_hits(k, seed=s) + count_hits(n - k, seed=s, start=k).\n"
"\n"
"seed: None (fresh entropy from the OS), a non-negative int, or a\n"
"    numpy.random.SeedSequence; the key is\n"
"    SeedSequence(seed).generate_state(1, numpy.uint64)[0], NumPy's convention.\n"
"start: index of the first sample; start + n_samples <= 2**63.\n"
"release_gil: True runs the sampling with the GIL released; False holds it.");

static PyObject *core_count_hits(PyObject *module, PyObject *args, PyObject *kwargs)
{
    int64_t hits, n;
    if (count_hits_impl(module, args, kwargs, "O|$OOO:count_hits", K_COUNT_HITS, &hits, &n) < 0)
        return NULL;
    return PyLong_FromLongLong(hits);
}

PyDoc_STRVAR(estimate_pi_doc,
"estimate_pi($module, n_samples, *, seed=None, start=0, release_gil=True)\n"
"--\n"
"\n"
"Monte Carlo estimate of pi: 4 * count_hits(n_samples, ...) / n_samples.\n"
"\n"
"Takes the same arguments as count_hits; n_samples must be positive.");

static PyObject *core_estimate_pi(PyObject *module, PyObject *args, PyObject *kwargs)
{
    int64_t hits, n;
    if (count_hits_impl(module, args, kwargs, "O|$OOO:estimate_pi", K_ESTIMATE_PI, &hits, &n) < 0)
        return NULL;
    return PyFloat_FromDouble(4.0 * (double)hits / (double)n);
}

/* ------------------------------------------------------------------ */
/* cpu_work and io_wait                                                */

PyDoc_STRVAR(cpu_work_doc,
"cpu_work($module, iterations, *, release_gil=True)\n"
"--\n"
"\n"
"CPU-bound stand-in: the lectures' compute loop, in C.\n"
"\n"
"Starting from x = 0, for y in range(iterations): x = (x - y)**2 if x is even,\n"
"else (x + y)**0.5. Returns the final x so the work cannot be optimised\n"
"away; the result equals the same loop in pure Python. Time grows linearly\n"
"with iterations.\n"
"\n"
"release_gil: True computes with the GIL released (threads run in\n"
"parallel); False holds it, like the pure-Python loop.");

static PyObject *core_cpu_work(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"iterations", "release_gil", NULL};
    core_state *st = get_state(module);
    const int64_t t_enter = trace_enter(st);
    PyObject *it_obj, *release_obj = NULL;
    int64_t iterations;
    int release;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$O:cpu_work", kwlist, &it_obj, &release_obj) ||
        parse_count(it_obj, "cpu_work", "iterations", &iterations) < 0 ||
        parse_release(release_obj, "cpu_work", &release) < 0)
        return NULL;

    pl_cpu_state s = {0.0, 0};
    gil_policy g;
    gil_begin(&g, st, K_CPU_WORK, t_enter, release);
    while (s.y < iterations) {
        const int64_t left = iterations - s.y;
        pl_cpu_work(&s, left < CPU_CHUNK ? left : CPU_CHUNK);
        if (gil_checkpoint(&g) < 0)
            break;
    }
    gil_end(&g);
    return g.failed ? NULL : PyFloat_FromDouble(s.x);
}

#define MAX_WAIT_SECONDS 1e9

PyDoc_STRVAR(io_wait_doc,
"io_wait($module, seconds, *, release_gil=True)\n"
"--\n"
"\n"
"I/O-bound stand-in: block for `seconds` in a real sleep (no spinning).\n"
"\n"
"release_gil: True waits with the GIL released, as real I/O does, so other\n"
"threads run meanwhile; False waits holding the GIL, which blocks every\n"
"other Python thread for the whole wait.");

static PyObject *core_io_wait(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"seconds", "release_gil", NULL};
    core_state *st = get_state(module);
    const int64_t t_enter = trace_enter(st);
    PyObject *sec_obj, *release_obj = NULL;
    int release;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$O:io_wait", kwlist, &sec_obj, &release_obj))
        return NULL;
    double seconds = PyBool_Check(sec_obj) ? -1.0 : PyFloat_AsDouble(sec_obj);
    if (PyBool_Check(sec_obj) || (seconds == -1.0 && PyErr_Occurred())) {
        PyErr_Format(PyExc_TypeError, "io_wait: seconds must be a real number, not %.200s",
                     Py_TYPE(sec_obj)->tp_name);
        return NULL;
    }
    if (!(seconds >= 0.0 && seconds <= MAX_WAIT_SECONDS)) {
        PyErr_Format(PyExc_ValueError,
                     "io_wait: seconds must be finite, non-negative and at most 1e9, got %R", sec_obj);
        return NULL;
    }
    if (parse_release(release_obj, "io_wait", &release) < 0)
        return NULL;

    gil_policy g;
    gil_begin(&g, st, K_IO_WAIT, t_enter, release);
    const int64_t deadline = pl_now_ns() + (int64_t)(seconds * 1e9);
    for (int64_t now = pl_now_ns(); now < deadline; now = pl_now_ns()) {
        pl_sleep_until(deadline - now > CHECK_INTERVAL_NS ? now + CHECK_INTERVAL_NS : deadline);
        if (gil_checkpoint(&g) < 0)
            break;
    }
    gil_end(&g);
    if (g.failed)
        return NULL;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ */
/* Trace control (private: parlab.trace() is the public face)          */

#define MAX_TRACE_CAPACITY (INT64_C(1) << 28)

PyDoc_STRVAR(trace_start_doc,
"_trace_start($module, capacity, cpu_time, /)\n"
"--\n"
"\n"
"Start recording kernel calls into a buffer of `capacity` records; with\n"
"cpu_time, also each call's thread CPU time.");

static PyObject *core_trace_start(PyObject *module, PyObject *args)
{
    core_state *st = get_state(module);
    PyObject *cap_obj, *cpu_obj;
    int64_t capacity;
    if (!PyArg_ParseTuple(args, "OO!:_trace_start", &cap_obj, &PyBool_Type, &cpu_obj) ||
        parse_int64(cap_obj, "trace", "capacity", &capacity) < 0)
        return NULL;
    if (capacity < 1 || capacity > MAX_TRACE_CAPACITY) {
        PyErr_Format(PyExc_ValueError, "trace: capacity must be between 1 and 2**28, got %lld",
                     (long long)capacity);
        return NULL;
    }
    if (st->trace) {
        PyErr_SetString(PyExc_RuntimeError, "trace: a trace is already recording");
        return NULL;
    }
    trace_buffer *tb = PyMem_Calloc(1, sizeof *tb);
    if (tb == NULL)
        return PyErr_NoMemory();
    tb->rec = PyMem_Calloc((size_t)capacity, sizeof *tb->rec);
    if (tb->rec == NULL) {
        PyMem_Free(tb);
        return PyErr_NoMemory();
    }
    tb->capacity = (Py_ssize_t)capacity;
    tb->cpu_time = cpu_obj == Py_True;
    atomic_init(&tb->next, 0);
    atomic_init(&tb->next_call, 0);
    st->trace = PyCapsule_New(tb, TRACE_CAPSULE, trace_buffer_free);
    if (st->trace == NULL) {
        PyMem_Free(tb->rec);
        PyMem_Free(tb);
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(trace_stop_doc,
"_trace_stop($module, /)\n"
"--\n"
"\n"
"Stop recording. Returns (records, dropped): an int64 array with one row per\n"
"record and one column per name in _TRACE_FIELDS, and the number of records\n"
"lost to a full buffer. Calls still running are not recorded.");

static PyObject *core_trace_stop(PyObject *module, PyObject *unused)
{
    core_state *st = get_state(module);
    if (st->trace == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "trace: no trace is recording");
        return NULL;
    }
    /* Detach first: calls still running keep their own reference and write
     * into a buffer nobody reads; it is freed when the last of them ends. */
    PyObject *capsule = st->trace;
    st->trace = NULL;
    trace_buffer *tb = PyCapsule_GetPointer(capsule, TRACE_CAPSULE);
    const Py_ssize_t used = atomic_load(&tb->next);
    npy_intp dims[2] = {used < tb->capacity ? used : tb->capacity, TRACE_NFIELDS};
    PyObject *records = PyArray_SimpleNew(2, dims, NPY_INT64);
    if (records)
        memcpy(PyArray_DATA((PyArrayObject *)records), tb->rec,
               (size_t)dims[0] * sizeof *tb->rec);
    const Py_ssize_t dropped = used - dims[0];
    Py_DECREF(capsule);
    if (records == NULL)
        return NULL;
    return Py_BuildValue("(Nn)", records, dropped);
}

/* ------------------------------------------------------------------ */
/* Counter                                                             */

typedef struct {
    PyObject_HEAD
    pl_counter c;
} CounterObject;

static const char *const mode_names[] = {"racy", "locked", "atomic", NULL};

static PyObject *Counter_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    CounterObject *self = (CounterObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    int err = pl_counter_init(&self->c, 0);
    if (err) {
        /* The mutex never came to be: free without running tp_dealloc. */
        type->tp_free((PyObject *)self);
        Py_DECREF(type);
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return (PyObject *)self;
}

static int Counter_init(CounterObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"value", NULL};
    PyObject *value_obj = NULL;
    int64_t value = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:Counter", kwlist, &value_obj))
        return -1;
    if (value_obj && parse_int64(value_obj, "Counter", "value", &value) < 0)
        return -1;
    pl_counter_set(&self->c, value);
    return 0;
}

static void Counter_dealloc(CounterObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    pl_counter_destroy(&self->c);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyObject *Counter_repr(CounterObject *self)
{
    return PyUnicode_FromFormat("parlab.Counter(value=%lld)", (long long)pl_counter_get(&self->c));
}

static PyObject *Counter_get_value(CounterObject *self, void *closure)
{
    return PyLong_FromLongLong(pl_counter_get(&self->c));
}

static int Counter_set_value(CounterObject *self, PyObject *value, void *closure)
{
    int64_t v;
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "Counter: value cannot be deleted");
        return -1;
    }
    if (parse_int64(value, "Counter", "value", &v) < 0)
        return -1;
    pl_counter_set(&self->c, v);
    return 0;
}

PyDoc_STRVAR(increment_doc,
"increment($self, n, *, mode='racy', release_gil=True)\n"
"--\n"
"\n"
"Add 1 to value, n times, the way `mode` says:\n"
"\n"
"'racy': each increment loads value, then stores value + 1, like the\n"
"    lectures' `last[0] = last[0] + 1`. Two threads doing this with the GIL\n"
"    released lose updates (one thread's store overwrites the other's);\n"
"    with the GIL held they cannot, as the calls take turns.\n"
"'locked': a mutex inside the Counter is taken and released around each\n"
"    increment (the lectures' `with lock:`): exact, at a cost.\n"
"'atomic': one atomic fetch-add per increment: exact and cheaper.\n"
"\n"
"An interrupted call (Ctrl-C) keeps the increments already made.");

static PyObject *Counter_increment(CounterObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"n", "mode", "release_gil", NULL};
    core_state *st = PyType_GetModuleState(Py_TYPE(self));
    const int64_t t_enter = trace_enter(st);
    PyObject *n_obj, *mode_obj = NULL, *release_obj = NULL;
    int64_t n;
    int mode = PL_RACY, release;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$OO:increment", kwlist, &n_obj, &mode_obj,
                                     &release_obj) ||
        parse_count(n_obj, "increment", "n", &n) < 0 ||
        (mode_obj && parse_choice(mode_obj, "increment", "mode", mode_names, &mode) < 0) ||
        parse_release(release_obj, "increment", &release) < 0)
        return NULL;

    /* Keep the Counter (and so its mutex) alive while other threads run. */
    Py_INCREF(self);
    gil_policy g;
    gil_begin(&g, st, K_INCREMENT, t_enter, release);
    for (int64_t done = 0; done < n; done += COUNTER_CHUNK) {
        pl_counter_add(&self->c, n - done < COUNTER_CHUNK ? n - done : COUNTER_CHUNK,
                       (pl_counter_mode)mode);
        if (gil_checkpoint(&g) < 0)
            break;
    }
    gil_end(&g);
    Py_DECREF(self);
    if (g.failed)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef Counter_methods[] = {
    {"increment", (PyCFunction)(void (*)(void))Counter_increment, METH_VARARGS | METH_KEYWORDS,
     increment_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Counter_getset[] = {
    {"value", (getter)Counter_get_value, (setter)Counter_set_value,
     "The current count (int64). Reading and writing are atomic.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Counter_doc,
"Counter(value=0)\n"
"--\n"
"\n"
"A 64-bit counter shared by threads, to show a race condition and its fixes.\n"
"\n"
"Call increment(n, mode=..., release_gil=...) from several threads and read\n"
"value afterwards. Why a C counter: since CPython 3.10 the interpreter only\n"
"switches threads at backward jumps and calls, so a pure-Python `x += 1`\n"
"loop no longer loses updates in practice, although it is not atomic. The\n"
"'racy' mode with the GIL released loses updates reliably, as real races do,\n"
"when the threads overlap: a million C increments take under a millisecond,\n"
"so start the threads together and give each tens of millions.");

static PyType_Slot Counter_slots[] = {
    {Py_tp_new, Counter_new},
    {Py_tp_init, Counter_init},
    {Py_tp_dealloc, Counter_dealloc},
    {Py_tp_repr, Counter_repr},
    {Py_tp_methods, Counter_methods},
    {Py_tp_getset, Counter_getset},
    {Py_tp_doc, (void *)Counter_doc},
    {0, NULL},
};

static PyType_Spec Counter_spec = {
    .name = "parlab.Counter",
    .basicsize = sizeof(CounterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Counter_slots,
};

/* ------------------------------------------------------------------ */
/* Module                                                              */

static PyMethodDef core_methods[] = {
    {"cdist", (PyCFunction)(void (*)(void))core_cdist, METH_VARARGS | METH_KEYWORDS, cdist_doc},
    {"count_hits", (PyCFunction)(void (*)(void))core_count_hits, METH_VARARGS | METH_KEYWORDS,
     count_hits_doc},
    {"estimate_pi", (PyCFunction)(void (*)(void))core_estimate_pi, METH_VARARGS | METH_KEYWORDS,
     estimate_pi_doc},
    {"cpu_work", (PyCFunction)(void (*)(void))core_cpu_work, METH_VARARGS | METH_KEYWORDS,
     cpu_work_doc},
    {"io_wait", (PyCFunction)(void (*)(void))core_io_wait, METH_VARARGS | METH_KEYWORDS,
     io_wait_doc},
    {"_trace_start", core_trace_start, METH_VARARGS, trace_start_doc},
    {"_trace_stop", core_trace_stop, METH_NOARGS, trace_stop_doc},
    {NULL, NULL, 0, NULL},
};

/* A tuple of str from a NULL-terminated list. */
static PyObject *str_tuple(const char *const *names)
{
    Py_ssize_t n = 0;
    while (names[n])
        n++;
    PyObject *t = PyTuple_New(n);
    for (Py_ssize_t i = 0; t && i < n; i++) {
        PyObject *s = PyUnicode_FromString(names[i]);
        if (s == NULL) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    return t;
}

static int add_str_tuple(PyObject *module, const char *name, const char *const *names)
{
    PyObject *t = str_tuple(names);
    if (t == NULL)
        return -1;
    int rc = PyModule_AddObjectRef(module, name, t);
    Py_DECREF(t);
    return rc;
}

#if defined(__clang__)
#define PL_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define PL_COMPILER "gcc " __VERSION__
#else
#define PL_COMPILER "unknown"
#endif

static int core_exec(PyObject *module)
{
    if (PyArray_ImportNumPyAPI() < 0)
        return -1;
    pl_simd_select(pl_simd_best());
    core_state *st = get_state(module);
    PyObject *nprandom = PyImport_ImportModule("numpy.random");
    if (nprandom == NULL)
        return -1;
    st->SeedSequence = PyObject_GetAttrString(nprandom, "SeedSequence");
    Py_DECREF(nprandom);
    if (st->SeedSequence == NULL)
        return -1;
    st->uint64 = (PyObject *)PyArray_DescrFromType(NPY_UINT64);
    if (st->uint64 == NULL)
        return -1;
    st->CounterType = PyType_FromModuleAndSpec(module, &Counter_spec, NULL);
    if (st->CounterType == NULL)
        return -1;
    if (PyModule_AddObjectRef(module, "Counter", st->CounterType) < 0)
        return -1;
    if (PyModule_AddStringConstant(module, "COMPILER", PL_COMPILER) < 0 ||
        add_str_tuple(module, "_TRACE_FIELDS", trace_fields) < 0 ||
        add_str_tuple(module, "_TRACE_KERNELS", kernel_names) < 0)
        return -1;
#ifdef PARLAB_NO_TRACE
    if (PyModule_AddIntConstant(module, "_TRACE_BUILT", 0) < 0)
#else
    if (PyModule_AddIntConstant(module, "_TRACE_BUILT", 1) < 0)
#endif
        return -1;
    return 0;
}

static int core_traverse(PyObject *module, visitproc visit, void *arg)
{
    core_state *st = get_state(module);
    Py_VISIT(st->SeedSequence);
    Py_VISIT(st->uint64);
    Py_VISIT(st->CounterType);
    Py_VISIT(st->trace);
    return 0;
}

static int core_clear(PyObject *module)
{
    core_state *st = get_state(module);
    Py_CLEAR(st->SeedSequence);
    Py_CLEAR(st->uint64);
    Py_CLEAR(st->CounterType);
    Py_CLEAR(st->trace);
    return 0;
}

static void core_free(void *module)
{
    core_clear((PyObject *)module);
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
    {0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "parlab._core",
    .m_doc = "parlab's C kernels; each releases or holds the GIL on demand (release_gil).",
    .m_size = sizeof(core_state),
    .m_methods = core_methods,
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PyMODINIT_FUNC PyInit__core(void)
{
    return PyModuleDef_Init(&core_module);
}
