/* How every unit of the binding includes NumPy's C API: one import table for
 * the whole extension, filled once by _core.c (the unit that defines
 * PARLAB_IMPORT_NUMPY). */
#ifndef PARLAB_NP_H
#define PARLAB_NP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_2_0_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL parlab_ARRAY_API
#ifndef PARLAB_IMPORT_NUMPY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#endif
