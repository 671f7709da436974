/* The Python-facing functions: each parses, validates and converts its
 * arguments, hands its work to pl_run_chunked (gil.h) and raises. */
#ifndef PARLAB_BINDINGS_H
#define PARLAB_BINDINGS_H

#include "np.h"

#define PL_VECTORCALL(name) \
    PyObject *name(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
/* A PyMethodDef's function and flags for a PL_VECTORCALL function. */
#define PL_FASTCALL_KW(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS

/* parlab.Counter (counter_type.c). */
extern PyType_Spec pl_counter_spec;

PL_VECTORCALL(pl_py_cdist);
PL_VECTORCALL(pl_py_count_hits);
PL_VECTORCALL(pl_py_estimate_pi);
PL_VECTORCALL(pl_py_cpu_work);
PL_VECTORCALL(pl_py_io_wait);
PyObject *pl_py_trace_start(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *pl_py_trace_stop(PyObject *module, PyObject *unused);
PyObject *pl_py_thread_seq(PyObject *module, PyObject *unused);
PyObject *pl_py_held_mode(PyObject *module, PyObject *unused);

extern const char pl_cdist_doc[], pl_count_hits_doc[], pl_estimate_pi_doc[], pl_cpu_work_doc[],
    pl_io_wait_doc[], pl_trace_start_doc[], pl_trace_stop_doc[],
    pl_thread_seq_doc[], pl_held_mode_doc[];

#endif
