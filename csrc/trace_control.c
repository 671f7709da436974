/* Trace control: the private functions through which parlab.trace() starts
 * and stops a trace (trace.c) and reads it as an array. */
#include "np.h"

#include "args.h"
#include "bindings.h"
#include "trace.h"

#define MAX_TRACE_CAPACITY (INT64_C(1) << 28)

PyDoc_STRVAR(trace_start_doc,
"_trace_start($module, capacity, cpu_time, /)\n"
"--\n"
"\n"
"Start recording kernel calls into a buffer of `capacity` records; with\n"
"cpu_time, also each call's thread CPU time.");

static PyObject *trace_start(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *const names[] = {"capacity", "cpu_time", NULL};
    static const pl_signature sig = {"_trace_start", names, 2, 2};
    PyObject *v[2];
    int64_t capacity;
    int cpu_time;
    /* Errors name parlab.trace(), the public face, except a wrong count of
     * arguments, which only parlab's own code could make. */
    if (pl_parse(&sig, args, nargs, NULL, v) < 0 ||
        pl_parse_int64(v[0], "trace", "capacity", &capacity) < 0 ||
        pl_parse_bool(v[1], "trace", "cpu_time", &cpu_time) < 0)
        return NULL;
    if (capacity < 1 || capacity > MAX_TRACE_CAPACITY) {
        PyErr_Format(PyExc_ValueError, "trace: capacity must be between 1 and 2**28, got %lld",
                     (long long)capacity);
        return NULL;
    }
    switch (pl_trace_start(capacity, cpu_time)) {
    case -1:
        PyErr_SetString(PyExc_RuntimeError, "trace: a trace is already recording");
        return NULL;
    case -2:
        return PyErr_NoMemory();
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

static PyObject *trace_stop(PyObject *module, PyObject *unused)
{
    pl_trace_buffer *tb = pl_trace_detach();
    if (tb == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "trace: no trace is recording");
        return NULL;
    }
    ptrdiff_t dropped;
    const ptrdiff_t claimed = pl_trace_claimed(tb, &dropped);
    npy_intp dims[2] = {claimed, PL_TRACE_NFIELDS};
    PyObject *records = PyArray_SimpleNew(2, dims, NPY_INT64);
    if (records) {
        const ptrdiff_t whole =
            pl_trace_copy(tb, claimed, PyArray_DATA((PyArrayObject *)records));
        if (whole < claimed) /* calls still writing as the trace stopped: not recorded */
            Py_SETREF(records, PySequence_GetSlice(records, 0, whole));
    }
    pl_trace_release(tb);
    if (records == NULL)
        return NULL;
    return Py_BuildValue("(Nn)", records, (Py_ssize_t)dropped);
}

PyDoc_STRVAR(thread_seq_doc,
"_thread_seq($module, /)\n"
"--\n"
"\n"
"The calling thread's number in the trace's thread_seq field: unique for the\n"
"life of the process, unlike a thread ident, which Python may reuse.");

static PyObject *thread_seq(PyObject *module, PyObject *unused)
{
    return PyLong_FromLongLong(pl_trace_thread_seq());
}

PyMethodDef pl_trace_methods[] = {
    {"_trace_start", (PyCFunction)(void (*)(void))trace_start, METH_FASTCALL, trace_start_doc},
    {"_trace_stop", trace_stop, METH_NOARGS, trace_stop_doc},
    {"_thread_seq", thread_seq, METH_NOARGS, thread_seq_doc},
    {NULL, NULL, 0, NULL},
};
