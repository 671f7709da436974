/* parlab.Counter: the type, its state and its methods. The counting itself
 * is kernels/counter.c, plain C; increment runs it under the GIL policy
 * (gil.h) like every kernel. */
#include "np.h"

#include <errno.h>

#include "args.h"
#include "bindings.h"
#include "gil.h"
#include "kernels/counter.h"
#include "trace.h"

/* Increments per item: an item must take well under a millisecond in every
 * mode, so that the main thread's signal checks stay fine-grained (gil.h). */
#define COUNTER_CHUNK (INT64_C(1) << 12)

typedef struct {
    PyObject_HEAD
    pl_counter c;
} CounterObject;

#define PL_MODE_NAME(id, name) name,
static const char *const mode_names[] = {PL_COUNTER_MODES(PL_MODE_NAME) NULL};

typedef struct {
    pl_counter *c;
    int64_t n;
    pl_counter_mode mode;
} increment_job;

static void increment_item(void *ctx, int64_t item, int worker)
{
    const increment_job *j = ctx;
    const int64_t done = item * COUNTER_CHUNK;
    pl_counter_add(j->c, j->n - done < COUNTER_CHUNK ? j->n - done : COUNTER_CHUNK, j->mode);
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
"mode is matched ignoring case ('RACY' is 'racy'), as cdist's metric is.\n"
"\n"
"Raises OverflowError, before doing anything, when value + n (value as the\n"
"call starts) would pass 2**63 - 1. An interrupted call (Ctrl-C) keeps the\n"
"increments already made.");

static PL_VECTORCALL(increment)
{
    static const char *const names[] = {"n", "mode", "release_gil", NULL};
    static const pl_signature sig = {"increment", names, 1, 1};
    CounterObject *counter = (CounterObject *)self;
    const int64_t t_enter = pl_trace_enter();
    PyObject *v[3];
    increment_job j = {&counter->c, 0, PL_RACY};
    int mode = PL_RACY, release;
    if (pl_parse(&sig, args, nargs, kwnames, v) < 0 ||
        pl_parse_count(v[0], "increment", "n", &j.n) < 0 ||
        (v[1] && pl_parse_choice(v[1], "increment", "mode", mode_names, &mode) < 0) ||
        pl_parse_release(v[2], "increment", &release) < 0)
        return NULL;
    j.mode = (pl_counter_mode)mode;
    const int64_t value = pl_counter_get(j.c);
    if (value > INT64_MAX - j.n) {
        PyErr_Format(PyExc_OverflowError,
                     "increment: value + n must fit in int64, got %lld + %lld", (long long)value,
                     (long long)j.n);
        return NULL;
    }
    if (j.mode == PL_LOCKED)
        pl_counter_after_fork(j.c);
    /* Keep the Counter (and so its mutex) alive while other threads run. */
    Py_INCREF(self);
    const pl_job job = {PL_K_INCREMENT, release, 1, pl_ceil_div(j.n, COUNTER_CHUNK),
                        increment_item, &j, t_enter};
    const int rc = pl_run_chunked(&job);
    Py_DECREF(self);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Counter_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    CounterObject *self = (CounterObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    int err = pl_counter_init(&self->c);
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
    static const char *const names[] = {"value", NULL};
    static const pl_signature sig = {"Counter", names, 1, 0};
    PyObject *value_obj;
    int64_t value = 0;
    if (pl_parse_tuple(&sig, args, kwargs, &value_obj) < 0 ||
        (value_obj && pl_parse_int64(value_obj, "Counter", "value", &value) < 0))
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
    if (pl_parse_int64(value, "Counter", "value", &v) < 0)
        return -1;
    pl_counter_set(&self->c, v);
    return 0;
}

static PyMethodDef Counter_methods[] = {
    {"increment", PL_FASTCALL_KW(increment), increment_doc},
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

PyType_Spec pl_counter_spec = {
    .name = "parlab.Counter",
    .basicsize = sizeof(CounterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Counter_slots,
};
