/* The kernels' bindings: parse, validate, convert, run under the GIL policy
 * (gil.h), raise. The work itself is in kernels/, plain C. */
#include "bindings.h"

#include <string.h>

#include "args.h"
#include "gil.h"
#include "kernels/cdist.h"
#include "kernels/montecarlo.h"
#include "kernels/work.h"
#include "platform.h"
#include "state.h"
#include "trace.h"

/* Work per item, in innermost steps. An item must take well under a
 * millisecond on any path, so that the main thread's signal checks and the
 * sharing between native threads stay fine-grained. */
#define CDIST_GRAIN (INT64_C(1) << 20) /* (i, j, k) triples */
#define CDIST_BLOCK_ROWS 64
#define HITS_CHUNK (INT64_C(1) << 16)
#define CPU_CHUNK (INT64_C(1) << 10)
#define WAIT_SLICE_NS (INT64_C(20000000))

static core_state *module_state(PyObject *module)
{
    return (core_state *)PyModule_GetState(module);
}

/* ------------------------------------------------------------------ */
/* cdist                                                               */

#define PL_METRIC_NAME(id, name) name,
static const char *const metric_names[] = {PL_METRICS(PL_METRIC_NAME) NULL};

/* An input the kernel can read in place: float64, native, aligned, contiguous
 * rows at a non-negative row stride (0 for a broadcast row); else a copy. */
static PyArrayObject *kernel_input(PyArrayObject *arr, int copy)
{
    const int usable = PyArray_TYPE(arr) == NPY_DOUBLE && PyArray_ISNOTSWAPPED(arr) &&
                       PyArray_ISALIGNED(arr) &&
                       (PyArray_DIM(arr, 1) <= 1 || PyArray_STRIDE(arr, 1) == (npy_intp)sizeof(double)) &&
                       PyArray_STRIDE(arr, 0) >= 0 &&
                       PyArray_STRIDE(arr, 0) % (npy_intp)sizeof(double) == 0;
    if (usable && !copy)
        return (PyArrayObject *)Py_NewRef(arr);
    return (PyArrayObject *)PyArray_FROM_OTF((PyObject *)arr, NPY_DOUBLE,
                                             NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST |
                                                 (copy ? NPY_ARRAY_ENSURECOPY : 0));
}

static ptrdiff_t row_stride(PyArrayObject *arr)
{
    return PyArray_DIM(arr, 0) > 1 ? PyArray_STRIDE(arr, 0) / (npy_intp)sizeof(double) : 0;
}

/* Whether out shares an element with an input, exactly (numpy.shares_memory);
 * the byte extents are compared first, as disjoint ones settle it for free. */
static int shares_memory(core_state *st, PyArrayObject *out, PyArrayObject *in)
{
    if (!PyArray_SIZE(out) || !PyArray_SIZE(in))
        return 0;
    npy_intp olo = 0, ohi = 0, ilo = 0, ihi = 0;
    for (int d = 0; d < 2; d++) {
        const npy_intp oo = (PyArray_DIM(out, d) - 1) * PyArray_STRIDE(out, d);
        const npy_intp io = (PyArray_DIM(in, d) - 1) * PyArray_STRIDE(in, d);
        *(oo < 0 ? &olo : &ohi) += oo;
        *(io < 0 ? &ilo : &ihi) += io;
    }
    const char *o = PyArray_BYTES(out), *i = PyArray_BYTES(in);
    if (o + ohi + PyArray_ITEMSIZE(out) <= i + ilo || i + ihi + PyArray_ITEMSIZE(in) <= o + olo)
        return 0;
    PyObject *r = PyObject_CallFunctionObjArgs(st->shares_memory, (PyObject *)out, (PyObject *)in,
                                               NULL);
    if (r == NULL)
        return -1;
    const int shared = PyObject_IsTrue(r);
    Py_DECREF(r);
    return shared;
}

static int check_out(PyObject *obj, npy_intp mA, npy_intp mB)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "cdist: out must be a numpy.ndarray, not %.200s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyArrayObject *out = (PyArrayObject *)obj;
    /* SciPy raises ValueError for a wrong out dtype; so does parlab. */
    if (PyArray_TYPE(out) != NPY_DOUBLE || !PyArray_ISNOTSWAPPED(out)) {
        PyErr_Format(PyExc_ValueError,
                     "cdist: out must have dtype float64 (native byte order), got %R",
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
    return 0;
}

/* The distance matrix in blocks of rows x columns: one item per block, the
 * row blocks of one column block consecutive so its XB panel stays cached. */
typedef struct {
    const double *a, *b;
    double *o;
    ptrdiff_t lda, ldb, ldo, mA, mB, n, rows, cols, row_blocks;
    pl_metric metric;
} cdist_job;

static void cdist_item(void *ctx, int64_t item, int worker)
{
    const cdist_job *j = ctx;
    const ptrdiff_t i = (item % j->row_blocks) * j->rows, c = (item / j->row_blocks) * j->cols;
    const ptrdiff_t rows = j->mA - i < j->rows ? j->mA - i : j->rows;
    const ptrdiff_t cols = j->mB - c < j->cols ? j->mB - c : j->cols;
    pl_cdist_block(j->a + i * j->lda, j->lda, j->b + c * j->ldb, j->ldb, rows, cols, j->n,
                   j->metric, j->o + i * j->ldo + c, j->ldo);
}

/* Block shape: up to BLOCK_ROWS rows of XA (the kernel packs a panel of XB
 * once per block and reuses it for every row), then as many XB rows as keep
 * the block near the grain, both in whole register tiles where possible. One
 * distance (n steps) is the smallest block. */
static void cdist_blocks(cdist_job *j)
{
    ptrdiff_t tile_rows, tile_cols;
    pl_cdist_tile(&tile_rows, &tile_cols);
    const int64_t n = j->n > 0 ? j->n : 1;
    int64_t rows = CDIST_BLOCK_ROWS / tile_rows * tile_rows;
    int64_t cols = CDIST_GRAIN / n / rows; /* n * rows may overflow for an empty XA */
    if (cols >= tile_cols)
        cols = cols / tile_cols * tile_cols;
    else if (cols < 1) {
        cols = 1;
        rows = CDIST_GRAIN / n > 1 ? CDIST_GRAIN / n : 1;
    }
    j->rows = j->mA < rows ? (j->mA > 0 ? j->mA : 1) : rows;
    j->cols = j->mB < cols ? (j->mB > 0 ? j->mB : 1) : cols;
    j->row_blocks = pl_ceil_div(j->mA, j->rows);
}

/* The last lines of every release_gil description. */
#define HELD_DELAYS_CTRL_C                                                         \
    "    Held in a thread other than the main one, a call delays Ctrl-C until it\n" \
    "    returns: only the main thread runs signal handlers, and it needs the GIL."

PyDoc_STRVAR(cdist_doc,
"cdist($module, XA, XB, metric='euclidean', *, out=None, n_threads=1, release_gil=True)\n"
"--\n"
"\n"
"Distances between every row of XA (mA, n) and every row of XB (mB, n).\n"
"\n"
"Returns a float64 array of shape (mA, mB), equal to\n"
"scipy.spatial.distance.cdist(XA, XB, metric) within 1e-12 relative. The\n"
"direct formula sqrt(sum((a - b)**2)) is used (never |a|^2 + |b|^2 - 2a.b),\n"
"keeping full accuracy for close points. Where the CPU has fused\n"
"multiply-add each square joins the sum with one rounding, on every SIMD\n"
"path alike, so the bits do not depend on the path (parlab.info()['simd']).\n"
"\n"
"XA, XB: array-likes of real numbers (ints, bools, floats; any order or\n"
"    strides); read in place when they are float64 with contiguous rows,\n"
"    converted otherwise.\n"
"metric: 'euclidean' or 'sqeuclidean' (any case), positional as in SciPy.\n"
"out: optional writeable float64 array of shape (mA, mB) with contiguous\n"
"    rows, such as a row block D[i:j] of a larger matrix; the result is\n"
"    written there and out is returned. If out shares memory with an input,\n"
"    that input is copied first. If the call is interrupted, out holds the\n"
"    blocks finished so far.\n"
"n_threads: native threads this one call computes on (results are identical\n"
"    for every value); None or -1 means the usable cores (parlab.info()['cores']).\n"
"release_gil: True computes with the GIL released, as SciPy does: other\n"
"    Python threads run meanwhile, and a call from a thread other than the\n"
"    main one never takes the GIL back before its work ends. False holds the\n"
"    GIL for the whole call, like an extension that never lets go (without a\n"
"    GIL, see parlab.info()['held_mode']: held calls take turns on a lock).\n"
HELD_DELAYS_CTRL_C);

enum { CD_XA, CD_XB, CD_METRIC, CD_OUT, CD_N_THREADS, CD_RELEASE, CD_N };
static const char *const cdist_names[] = {"XA", "XB", "metric", "out", "n_threads",
                                          "release_gil", NULL};
static const pl_signature cdist_sig = {"cdist", cdist_names, 3, 2};

static PL_VECTORCALL(cdist)
{
    core_state *st = module_state(self);
    const int64_t t_enter = pl_trace_enter();
    PyObject *v[CD_N];
    int metric = PL_EUCLIDEAN, release, n_threads;
    if (pl_parse(&cdist_sig, args, nargs, kwnames, v) < 0 ||
        (v[CD_METRIC] &&
         pl_parse_choice(v[CD_METRIC], "cdist", "metric", metric_names, &metric) < 0) ||
        pl_parse_n_threads(st, v[CD_N_THREADS], "cdist", &n_threads) < 0 ||
        pl_parse_release(v[CD_RELEASE], "cdist", &release) < 0)
        return NULL;
    PyObject *out_obj = v[CD_OUT] ? v[CD_OUT] : Py_None;

    PyArrayObject *rawA = NULL, *rawB = NULL, *XA = NULL, *XB = NULL, *out = NULL;
    PyObject *result = NULL;
    if (!(rawA = pl_real_matrix(v[CD_XA], "cdist", "XA")) ||
        !(rawB = pl_real_matrix(v[CD_XB], "cdist", "XB")))
        goto done;
    const npy_intp mA = PyArray_DIM(rawA, 0), mB = PyArray_DIM(rawB, 0);
    const npy_intp n = PyArray_DIM(rawA, 1);
    if (PyArray_DIM(rawB, 1) != n) {
        PyErr_Format(PyExc_ValueError,
                     "cdist: XA and XB must have the same number of columns, got %zd and %zd",
                     (Py_ssize_t)n, (Py_ssize_t)PyArray_DIM(rawB, 1));
        goto done;
    }
    int copyA = 0, copyB = 0;
    if (out_obj == Py_None) {
        if (mB > 0 && mA > PY_SSIZE_T_MAX / (npy_intp)sizeof(double) / mB) {
            PyErr_Format(PyExc_MemoryError,
                         "cdist: a result of shape (%zd, %zd) is too large to allocate",
                         (Py_ssize_t)mA, (Py_ssize_t)mB);
            goto done;
        }
    }
    else if (check_out(out_obj, mA, mB) < 0 ||
             (copyA = shares_memory(st, (PyArrayObject *)out_obj, rawA)) < 0 ||
             (copyB = shares_memory(st, (PyArrayObject *)out_obj, rawB)) < 0) {
        goto done;
    }
    if (!(XA = kernel_input(rawA, copyA)) || !(XB = kernel_input(rawB, copyB)))
        goto done;
    if (out_obj == Py_None) {
        npy_intp dims[2] = {mA, mB};
        if (!(out = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_DOUBLE)))
            goto done;
    }
    else {
        out = (PyArrayObject *)Py_NewRef(out_obj);
    }

    /* XA, XB and out are owned references: they outlive the released work. */
    cdist_job j = {
        .a = PyArray_DATA(XA), .b = PyArray_DATA(XB), .o = PyArray_DATA(out),
        .lda = row_stride(XA), .ldb = row_stride(XB),
        .ldo = mA > 1 ? PyArray_STRIDE(out, 0) / (npy_intp)sizeof(double) : 0,
        .mA = mA, .mB = mB, .n = n, .metric = (pl_metric)metric,
    };
    cdist_blocks(&j);
    const int64_t blocks = mA > 0 && mB > 0 ? j.row_blocks * pl_ceil_div(mB, j.cols) : 0;
    const pl_job job = {PL_K_CDIST, release, n_threads, blocks, cdist_item, &j, t_enter};
    if (pl_run_chunked(&job) >= 0)
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

typedef struct {
    uint64_t key;
    int64_t start, n;
    int64_t hits[PL_MAX_THREADS]; /* one total per worker */
} hits_job;

static void hits_item(void *ctx, int64_t item, int worker)
{
    hits_job *j = ctx;
    const int64_t first = item * HITS_CHUNK;
    const int64_t len = j->n - first < HITS_CHUNK ? j->n - first : HITS_CHUNK;
    j->hits[worker] += pl_count_hits(j->key, (uint64_t)(j->start + first), len);
}

enum { MC_N, MC_SEED, MC_START, MC_N_THREADS, MC_RELEASE, MC_COUNT };
static const char *const mc_names[] = {"n_samples", "seed", "start", "n_threads", "release_gil",
                                       NULL};

/* Shared by count_hits and estimate_pi: parse, then count. -1 with an
 * exception set on failure. */
static int count_hits_impl(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames, pl_kernel kernel, int64_t *hits, int64_t *n)
{
    core_state *st = module_state(module);
    const int64_t t_enter = pl_trace_enter();
    const char *fn = pl_kernel_names[kernel];
    const pl_signature sig = {fn, mc_names, 1, 1};
    PyObject *v[MC_COUNT];
    int release, n_threads;
    hits_job j; /* hits[] is zeroed below for the workers that can run: 8 KB is not free */
    j.start = 0;
    if (pl_parse(&sig, args, nargs, kwnames, v) < 0 ||
        pl_parse_count(v[MC_N], fn, "n_samples", n) < 0)
        return -1;
    if (kernel == PL_K_ESTIMATE_PI && *n == 0) {
        PyErr_SetString(PyExc_ValueError,
                        "estimate_pi: n_samples must be positive (no samples, no estimate)");
        return -1;
    }
    if (v[MC_START] && pl_parse_count(v[MC_START], fn, "start", &j.start) < 0)
        return -1;
    if ((uint64_t)j.start + (uint64_t)*n > (UINT64_C(1) << 63)) {
        PyErr_Format(PyExc_OverflowError,
                     "%s: start + n_samples must not exceed 2**63, got %lld + %lld", fn,
                     (long long)j.start, (long long)*n);
        return -1;
    }
    if (pl_parse_n_threads(st, v[MC_N_THREADS], fn, &n_threads) < 0 ||
        pl_parse_release(v[MC_RELEASE], fn, &release) < 0 ||
        pl_parse_seed(st, v[MC_SEED], fn, &j.key) < 0)
        return -1;
    j.n = *n;
    const pl_job job = {kernel, release, n_threads, pl_ceil_div(*n, HITS_CHUNK),
                        hits_item, &j, t_enter};
    memset(j.hits, 0, (size_t)pl_workers_for(n_threads, job.n_items) * sizeof j.hits[0]);
    const int workers = pl_run_chunked(&job);
    if (workers < 0)
        return -1;
    *hits = 0;
    for (int w = 0; w < workers; w++)
        *hits += j.hits[w];
    return 0;
}

PyDoc_STRVAR(count_hits_doc,
"count_hits($module, n_samples, *, seed=None, start=0, n_threads=1, release_gil=True)\n"
"--\n"
"\n"
"Count how many of n_samples uniform points of the unit square fall inside\n"
"the quarter circle x**2 + y**2 <= 1.\n"
"\n"
"The points are samples start .. start + n_samples - 1 of one stream fixed by\n"
"seed (a counter-based SplitMix64 stream: every sample is a pure function of\n"
"the seed and its index). Chunks therefore add up exactly:\n"
"count_hits(n, seed=s) == count_hits(k, seed=s) + count_hits(n - k, seed=s, start=k),\n"
"and the count is the same for every n_threads and every SIMD path.\n"
"\n"
"seed: None (fresh entropy from the OS), a non-negative int, or a\n"
"    numpy.random.SeedSequence; the key is\n"
"    SeedSequence(seed).generate_state(1, numpy.uint64)[0], NumPy's convention.\n"
"start: index of the first sample; start + n_samples <= 2**63.\n"
"n_threads: native threads this one call samples on; None or -1 means\n"
"    the usable cores (parlab.info()['cores']).\n"
"release_gil: True samples with the GIL released (a call from a thread other\n"
"    than the main one never takes it back before its work ends); False holds it.\n"
HELD_DELAYS_CTRL_C);

static PL_VECTORCALL(count_hits)
{
    int64_t hits, n;
    if (count_hits_impl(self, args, nargs, kwnames, PL_K_COUNT_HITS, &hits, &n) < 0)
        return NULL;
    return PyLong_FromLongLong(hits);
}

PyDoc_STRVAR(estimate_pi_doc,
"estimate_pi($module, n_samples, *, seed=None, start=0, n_threads=1, release_gil=True)\n"
"--\n"
"\n"
"Monte Carlo estimate of pi: 4 * count_hits(n_samples, ...) / n_samples.\n"
"\n"
"Takes the same arguments as count_hits; n_samples must be positive.");

static PL_VECTORCALL(estimate_pi)
{
    int64_t hits, n;
    if (count_hits_impl(self, args, nargs, kwnames, PL_K_ESTIMATE_PI, &hits, &n) < 0)
        return NULL;
    return PyFloat_FromDouble(4.0 * (double)hits / (double)n);
}

/* ------------------------------------------------------------------ */
/* cpu_work and io_wait                                                */

/* One state carried from item to item: the loop is sequential by nature. */
typedef struct {
    pl_cpu_state s;
    int64_t iterations;
} cpu_job;

static void cpu_item(void *ctx, int64_t item, int worker)
{
    cpu_job *j = ctx;
    const int64_t left = j->iterations - j->s.y;
    pl_cpu_work(&j->s, left < CPU_CHUNK ? left : CPU_CHUNK);
}

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
"    parallel); False holds it, like the pure-Python loop.\n"
HELD_DELAYS_CTRL_C);

static PL_VECTORCALL(cpu_work)
{
    const int64_t t_enter = pl_trace_enter();
    static const char *const names[] = {"iterations", "release_gil", NULL};
    static const pl_signature sig = {"cpu_work", names, 1, 1};
    PyObject *v[2];
    cpu_job j = {{0.0, 0}, 0};
    int release;
    if (pl_parse(&sig, args, nargs, kwnames, v) < 0 ||
        pl_parse_count(v[0], "cpu_work", "iterations", &j.iterations) < 0 ||
        pl_parse_release(v[1], "cpu_work", &release) < 0)
        return NULL;
    const pl_job job = {PL_K_CPU_WORK, release, 1, pl_ceil_div(j.iterations, CPU_CHUNK),
                        cpu_item, &j, t_enter};
    if (pl_run_chunked(&job) < 0)
        return NULL;
    return PyFloat_FromDouble(j.s.x);
}

#define MAX_WAIT_SECONDS 1e9

/* Slices of a sleep, so the main thread can run signal handlers between
 * them. The clock starts with the work (held calls may first wait their turn). */
typedef struct {
    int64_t ns, t0;
} wait_job;

static void wait_item(void *ctx, int64_t item, int worker)
{
    wait_job *j = ctx;
    if (item == 0)
        j->t0 = pl_now_ns();
    const int64_t until = j->t0 + (item + 1) * WAIT_SLICE_NS, deadline = j->t0 + j->ns;
    pl_sleep_until(until < deadline ? until : deadline);
}

PyDoc_STRVAR(io_wait_doc,
"io_wait($module, seconds, *, release_gil=True)\n"
"--\n"
"\n"
"I/O-bound stand-in: block for `seconds` in a real sleep (no spinning).\n"
"\n"
"release_gil: True waits with the GIL released, as real I/O does, so other\n"
"threads run meanwhile; False waits holding the GIL, which blocks every\n"
"other Python thread for the whole wait.\n"
HELD_DELAYS_CTRL_C);

static PL_VECTORCALL(io_wait)
{
    const int64_t t_enter = pl_trace_enter();
    static const char *const names[] = {"seconds", "release_gil", NULL};
    static const pl_signature sig = {"io_wait", names, 1, 1};
    PyObject *v[2];
    double seconds;
    int release;
    if (pl_parse(&sig, args, nargs, kwnames, v) < 0 ||
        pl_parse_real(v[0], "io_wait", "seconds", &seconds) < 0)
        return NULL;
    if (!(seconds >= 0.0 && seconds <= MAX_WAIT_SECONDS)) {
        PyErr_Format(PyExc_ValueError,
                     "io_wait: seconds must be finite, non-negative and at most 1e9, got %R", v[0]);
        return NULL;
    }
    if (pl_parse_release(v[1], "io_wait", &release) < 0)
        return NULL;
    wait_job j = {(int64_t)(seconds * 1e9), 0};
    const pl_job job = {PL_K_IO_WAIT, release, 1, pl_ceil_div(j.ns, WAIT_SLICE_NS),
                        wait_item, &j, t_enter};
    if (pl_run_chunked(&job) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyMethodDef pl_kernel_methods[] = {
    {"cdist", PL_FASTCALL_KW(cdist), cdist_doc},
    {"count_hits", PL_FASTCALL_KW(count_hits), count_hits_doc},
    {"estimate_pi", PL_FASTCALL_KW(estimate_pi), estimate_pi_doc},
    {"cpu_work", PL_FASTCALL_KW(cpu_work), cpu_work_doc},
    {"io_wait", PL_FASTCALL_KW(io_wait), io_wait_doc},
    {NULL, NULL, 0, NULL},
};
