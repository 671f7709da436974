/* Argument parsing and conversion for the bindings: every error names the
 * function and the argument, with the exception NumPy or SciPy would raise. */
#ifndef PARLAB_ARGS_H
#define PARLAB_ARGS_H

#include "np.h"

#include <stdint.h>

#include "state.h"

/* A signature: the parameter names, in order; the first
 * `n_positional` may be passed by position, the first `n_required` must be
 * passed. The rest are keyword-only. */
typedef struct {
    const char *fn;
    const char *const *names; /* NULL-terminated */
    int n_positional;
    int n_required;
} pl_signature;

/* Fills values[i] (borrowed, NULL when not passed) for every parameter, from
 * a vectorcall's arguments (kwnames NULL: none by keyword). */
int pl_parse(const pl_signature *sig, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames, PyObject **values);
/* The same from a tuple and a dict (NULL: no keywords), as tp_init gets them:
 * the same rules and messages as every other callable of parlab's. */
int pl_parse_tuple(const pl_signature *sig, PyObject *args, PyObject *kwargs, PyObject **values);

/* Exactly True or False: a stand-in such as 1 or "no" is refused, more likely
 * a mistake than a choice. */
int pl_parse_bool(PyObject *obj, const char *fn, const char *name, int *out);
/* release_gil: a bool, True when not passed. */
int pl_parse_release(PyObject *obj, const char *fn, int *release);
/* n_threads: a positive int, or None / -1 for the usable cores; 1 when not passed. */
int pl_parse_n_threads(core_state *st, PyObject *obj, const char *fn, int *n_threads);
/* An int (or an object with __index__, such as numpy.int64) in int64 range;
 * bool is refused: True as a count is almost always a mistake. */
int pl_parse_int64(PyObject *obj, const char *fn, const char *name, int64_t *out);
/* The same, non-negative. */
int pl_parse_count(PyObject *obj, const char *fn, const char *name, int64_t *out);
/* A real number (a float, int or anything with __float__), not a bool. */
int pl_parse_real(PyObject *obj, const char *fn, const char *name, double *out);
/* One of a NULL-terminated list of names, compared ignoring ASCII case. Every
 * choice argument alike (cdist's metric, Counter.increment's mode): SciPy
 * matches metric names so, and one rule for all is one less to remember. */
int pl_parse_choice(PyObject *obj, const char *fn, const char *name,
                    const char *const *choices, int *out);
/* NumPy's seed convention, as the generator key: see count_hits' docstring. */
int pl_parse_seed(core_state *st, PyObject *seed, const char *fn, uint64_t *key);
/* Any array-like of real numbers, as an array of its own dtype, checked to be 2-D. */
PyArrayObject *pl_real_matrix(PyObject *obj, const char *fn, const char *name);

#endif
