/* What the binding units give the module (_core.c). Each function parses,
 * validates and converts its arguments, hands its work to pl_run_chunked
 * (gil.h) or to trace.c, and raises. */
#ifndef PARLAB_BINDINGS_H
#define PARLAB_BINDINGS_H

#include "np.h"

#define PL_VECTORCALL(name) \
    PyObject *name(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
/* A PyMethodDef's function and flags for a PL_VECTORCALL function. */
#define PL_FASTCALL_KW(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS

extern PyMethodDef pl_kernel_methods[]; /* bindings.c: cdist, count_hits, ... */
extern PyType_Spec pl_counter_spec;     /* counter_type.c: parlab.Counter */
extern PyMethodDef pl_trace_methods[];  /* trace_control.c: _trace_start, ... */

#endif
