/* Argument parsing and conversion: see args.h. */
#include "args.h"

#include <stdarg.h>
#include <string.h>

#include "gil.h"
#include "kernels/montecarlo.h"

/* The positional arguments into values[], every other parameter NULL. */
static int take_positional(const pl_signature *sig, PyObject *const *args, Py_ssize_t nargs,
                           PyObject **values)
{
    for (int i = 0; sig->names[i]; i++)
        values[i] = NULL;
    if (nargs > sig->n_positional) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional argument%s (%zd given)",
                     sig->fn, sig->n_positional, sig->n_positional == 1 ? "" : "s", nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        values[i] = args[i];
    return 0;
}

static int take_keyword(const pl_signature *sig, PyObject *key, PyObject *value,
                        PyObject **values)
{
    int i = 0;
    while (sig->names[i] && PyUnicode_CompareWithASCIIString(key, sig->names[i]) != 0)
        i++;
    if (sig->names[i] == NULL) {
        PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", sig->fn, key);
        return -1;
    }
    if (values[i]) {
        PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", sig->fn,
                     sig->names[i]);
        return -1;
    }
    values[i] = value;
    return 0;
}

static int check_required(const pl_signature *sig, PyObject **values)
{
    for (int i = 0; i < sig->n_required; i++) {
        if (values[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s' (pos %d)", sig->fn,
                         sig->names[i], i + 1);
            return -1;
        }
    }
    return 0;
}

int pl_parse(const pl_signature *sig, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames, PyObject **values)
{
    if (take_positional(sig, args, nargs, values) < 0)
        return -1;
    const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++)
        if (take_keyword(sig, PyTuple_GET_ITEM(kwnames, k), args[nargs + k], values) < 0)
            return -1;
    return check_required(sig, values);
}

int pl_parse_tuple(const pl_signature *sig, PyObject *args, PyObject *kwargs, PyObject **values)
{
    if (take_positional(sig, PySequence_Fast_ITEMS(args), PyTuple_GET_SIZE(args), values) < 0)
        return -1;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (kwargs && PyDict_Next(kwargs, &pos, &key, &value))
        if (take_keyword(sig, key, value, values) < 0)
            return -1;
    return check_required(sig, values);
}

/* The exception being raised, normalized, with its traceback attached; the
 * error indicator is cleared. NULL if none. */
static PyObject *take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (tb)
        PyException_SetTraceback(exc, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return exc;
#endif
}

/* Raises `type` with a formatted message, the exception being handled as its
 * cause (`raise type(msg) from exc`). */
static void raise_from(PyObject *type, const char *fmt, ...)
{
    PyObject *cause = take_exception();
    va_list va;
    va_start(va, fmt);
    PyErr_FormatV(type, fmt, va);
    va_end(va);
    PyObject *exc = take_exception();
    PyException_SetCause(exc, Py_NewRef(cause));
    PyException_SetContext(exc, cause);
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
}

int pl_parse_bool(PyObject *obj, const char *fn, const char *name, int *out)
{
    if (!PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a bool, not %.200s", fn, name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    *out = (obj == Py_True);
    return 0;
}

int pl_parse_release(PyObject *obj, const char *fn, int *release)
{
    if (obj == NULL) {
        *release = 1;
        return 0;
    }
    return pl_parse_bool(obj, fn, "release_gil", release);
}

int pl_parse_int64(PyObject *obj, const char *fn, const char *name, int64_t *out)
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
    if (overflow)
        PyErr_Format(PyExc_OverflowError, "%s: %s must fit in int64 (-2**63 .. 2**63-1), got %S",
                     fn, name, idx);
    Py_DECREF(idx);
    if (overflow || (v == -1 && PyErr_Occurred()))
        return -1;
    *out = (int64_t)v;
    return 0;
}

int pl_parse_count(PyObject *obj, const char *fn, const char *name, int64_t *out)
{
    if (pl_parse_int64(obj, fn, name, out) < 0)
        return -1;
    if (*out < 0) {
        PyErr_Format(PyExc_ValueError, "%s: %s must be non-negative, got %lld", fn, name,
                     (long long)*out);
        return -1;
    }
    return 0;
}

int pl_parse_n_threads(core_state *st, PyObject *obj, const char *fn, int *n_threads)
{
    int64_t n = 1;
    if (obj == NULL) {
        *n_threads = 1;
        return 0;
    }
    if (obj != Py_None) {
        if (PyBool_Check(obj) || !PyIndex_Check(obj)) {
            PyErr_Format(PyExc_TypeError, "%s: n_threads must be an int or None, not %.200s", fn,
                         Py_TYPE(obj)->tp_name);
            return -1;
        }
        if (pl_parse_int64(obj, fn, "n_threads", &n) < 0)
            return -1;
    }
    if (obj == Py_None || n == -1) {
        PyObject *count = PyObject_CallNoArgs(st->usable_cores);
        if (count == NULL)
            return -1;
        n = PyLong_AsLongLong(count);
        Py_DECREF(count);
        if (n == -1 && PyErr_Occurred())
            return -1;
    }
    if (n < 1 || n > PL_MAX_THREADS) {
        PyErr_Format(PyExc_ValueError,
                     "%s: n_threads must be between 1 and %d, or -1 or None for the usable cores; "
                     "got %lld",
                     fn, PL_MAX_THREADS, (long long)n);
        return -1;
    }
    *n_threads = (int)n;
    return 0;
}

int pl_parse_real(PyObject *obj, const char *fn, const char *name, double *out)
{
    PyNumberMethods *nb = Py_TYPE(obj)->tp_as_number;
    if (PyBool_Check(obj) || nb == NULL || (nb->nb_float == NULL && nb->nb_index == NULL)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a real number, not %.200s", fn, name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    *out = PyFloat_AsDouble(obj);
    if (*out == -1.0 && PyErr_Occurred()) {
        /* What __float__ itself raised stays, except that a number too large
         * for a float is named, the original kept as the cause. */
        if (PyErr_ExceptionMatches(PyExc_OverflowError))
            raise_from(PyExc_OverflowError, "%s: %s is too large to convert to a float", fn, name);
        return -1;
    }
    return 0;
}

/* ASCII case-insensitive equality of a str's UTF-8 form with a name. */
static int same_name(const char *s, Py_ssize_t len, const char *name)
{
    if ((size_t)len != strlen(name))
        return 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != name[i])
            return 0;
    }
    return 1;
}

int pl_parse_choice(PyObject *obj, const char *fn, const char *name,
                    const char *const *choices, int *out)
{
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a str, not %.200s", fn, name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(obj, &len);
    if (s == NULL)
        return -1;
    for (int i = 0; choices[i] != NULL; i++) {
        if (same_name(s, len, choices[i])) {
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

/* numpy.random.SeedSequence-like object -> the first uint64 of its state.
 * What a subclass's generate_state returns is checked before it is read. */
static int key_from_seedsequence(core_state *st, PyObject *ss, const char *fn, uint64_t *key)
{
    PyObject *state = PyObject_CallMethod(ss, "generate_state", "iO", 1, st->uint64);
    if (state == NULL)
        return -1;
    int rc = -1;
    if (!PyArray_Check(state) || PyArray_TYPE((PyArrayObject *)state) != NPY_UINT64) {
        PyErr_Format(PyExc_TypeError,
                     "%s: seed's generate_state(1, numpy.uint64) must return a uint64 array, "
                     "got %R",
                     fn, state);
    }
    else if (PyArray_NDIM((PyArrayObject *)state) != 1 || PyArray_SIZE((PyArrayObject *)state) < 1) {
        PyErr_Format(PyExc_ValueError,
                     "%s: seed's generate_state(1, numpy.uint64) must return a 1-D array of at "
                     "least one element, got %R",
                     fn, state);
    }
    else {
        PyArrayObject *arr = (PyArrayObject *)state;
        npy_uint64 v;
        /* Any strides or byte order: copy the one element out as NumPy reads it. */
        PyObject *item = PyArray_GETITEM(arr, PyArray_GETPTR1(arr, 0));
        if (item != NULL) {
            v = PyLong_AsUnsignedLongLong(item);
            Py_DECREF(item);
            if (!(v == (npy_uint64)-1 && PyErr_Occurred())) {
                *key = (uint64_t)v;
                rc = 0;
            }
        }
    }
    Py_DECREF(state);
    return rc;
}

int pl_parse_seed(core_state *st, PyObject *seed, const char *fn, uint64_t *key)
{
    if (seed == NULL || seed == Py_None ||
        PyObject_TypeCheck(seed, (PyTypeObject *)st->SeedSequence)) {
        PyObject *ss = (seed == NULL || seed == Py_None) ? PyObject_CallNoArgs(st->SeedSequence)
                                                         : Py_NewRef(seed);
        if (ss == NULL)
            return -1;
        int rc = key_from_seedsequence(st, ss, fn, key);
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
        /* 2**64 and above: NumPy's own SeedSequence does the hashing. */
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            goto done;
        PyErr_Clear();
        PyObject *ss = PyObject_CallOneArg(st->SeedSequence, idx);
        if (ss == NULL)
            goto done;
        rc = key_from_seedsequence(st, ss, fn, key);
        Py_DECREF(ss);
        goto done;
    }
    *key = pl_seed_key(u);
    rc = 0;
done:
    Py_DECREF(idx);
    return rc;
}

PyArrayObject *pl_real_matrix(PyObject *obj, const char *fn, const char *name)
{
    PyArrayObject *arr = (PyArrayObject *)PyArray_FromAny(obj, NULL, 0, 0, 0, NULL);
    if (arr == NULL) {
        if (PyErr_ExceptionMatches(PyExc_ValueError))
            raise_from(PyExc_ValueError, "%s: %s must be an array-like of real numbers", fn, name);
        else if (PyErr_ExceptionMatches(PyExc_TypeError))
            raise_from(PyExc_TypeError, "%s: %s must be an array-like of real numbers", fn, name);
        return NULL;
    }
    if (PyArray_NDIM(arr) != 2) {
        PyObject *shape = PyObject_GetAttrString((PyObject *)arr, "shape");
        if (shape) {
            PyErr_Format(PyExc_ValueError, "%s: %s must be 2-D, got shape %R", fn, name, shape);
            Py_DECREF(shape);
        }
        Py_DECREF(arr);
        return NULL;
    }
    const char kind = PyArray_DESCR(arr)->kind;
    if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f') {
        PyErr_Format(PyExc_TypeError, "%s: %s must hold real numbers, got dtype %R", fn, name,
                     (PyObject *)PyArray_DESCR(arr));
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}
