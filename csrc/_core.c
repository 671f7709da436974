/* parlab._core: the module's state and set-up, and what it reports about
 * itself (SIMD path, compiler, held mode). The kernels' bindings are in
 * bindings.c, the Counter type in counter_type.c, trace control in
 * trace_control.c (tracing itself in trace.c), the GIL policy and run loop in
 * gil.c, argument parsing in args.c; the work itself in kernels/, plain C
 * that never touches a Python object. */
#define PARLAB_IMPORT_NUMPY
#include "np.h"

#include <stdlib.h>

#include "bindings.h"
#include "gil.h"
#include "kernels/simd.h"
#include "state.h"
#include "trace.h"

PyDoc_STRVAR(held_mode_doc,
"_held_mode($module, /)\n"
"--\n"
"\n"
"What a release_gil=False call starting now does: 'gil' keeps the GIL,\n"
"'emulated' takes parlab's own lock because the GIL is off.");

static PyObject *held_mode(PyObject *module, PyObject *unused)
{
    const int emulated = pl_held_emulated();
    return emulated < 0 ? NULL : PyUnicode_FromString(emulated ? "emulated" : "gil");
}

static PyMethodDef core_methods[] = {
    {"_held_mode", held_mode, METH_NOARGS, held_mode_doc},
    {NULL, NULL, 0, NULL},
};

/* A tuple of str from a NULL-terminated list (or the first n of a list). */
static PyObject *str_tuple(const char *const *names, Py_ssize_t n)
{
    if (n < 0)
        for (n = 0; names[n]; n++)
            ;
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

static int add_str_tuple(PyObject *module, const char *name, const char *const *names,
                         Py_ssize_t n)
{
    PyObject *t = str_tuple(names, n);
    if (t == NULL)
        return -1;
    int rc = PyModule_AddObjectRef(module, name, t);
    Py_DECREF(t);
    return rc;
}

/* The SIMD path: the best this CPU has, or the one PARLAB_SIMD forces (for
 * tests and benchmarks); forcing one the CPU lacks is an ImportError. */
static int select_simd(PyObject *module)
{
    pl_simd path = pl_simd_best();
    const char *forced = getenv("PARLAB_SIMD");
    if (forced && *forced) {
        if (pl_simd_from_name(forced, &path) < 0) {
            PyErr_Format(PyExc_ImportError,
                         "parlab: PARLAB_SIMD=%s is not a SIMD path; use scalar, avx2 or avx512",
                         forced);
            return -1;
        }
        if (!pl_simd_supported(path)) {
            PyErr_Format(PyExc_ImportError,
                         "parlab: PARLAB_SIMD=%s is not supported by this CPU", forced);
            return -1;
        }
    }
    pl_simd_select(path);
    const char *supported[PL_SIMD_COUNT];
    Py_ssize_t n = 0;
    for (int p = 0; p < PL_SIMD_COUNT; p++)
        if (pl_simd_supported((pl_simd)p))
            supported[n++] = pl_simd_name((pl_simd)p);
    if (PyModule_AddStringConstant(module, "SIMD", pl_simd_name(path)) < 0 ||
        add_str_tuple(module, "_SIMD_SUPPORTED", supported, n) < 0)
        return -1;
    return 0;
}

#if defined(__clang__)
#define PL_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define PL_COMPILER "gcc " __VERSION__
#elif defined(_MSC_VER)
#define PL_COMPILER "MSVC " Py_STRINGIFY(_MSC_FULL_VER)
#else
#define PL_COMPILER "unknown"
#endif

/* Loads attribute `name` of module `modname` into *out. */
static int import_attr(const char *modname, const char *name, PyObject **out)
{
    PyObject *mod = PyImport_ImportModule(modname);
    if (mod == NULL)
        return -1;
    *out = PyObject_GetAttrString(mod, name);
    Py_DECREF(mod);
    return *out ? 0 : -1;
}

static int core_exec(PyObject *module)
{
    if (PyArray_ImportNumPyAPI() < 0)
        return -1;
    core_state *st = PyModule_GetState(module);
    if (import_attr("numpy.random", "SeedSequence", &st->SeedSequence) < 0 ||
        import_attr("numpy", "shares_memory", &st->shares_memory) < 0 ||
        import_attr("parlab._cores", "usable_cores", &st->usable_cores) < 0)
        return -1;
    st->uint64 = (PyObject *)PyArray_DescrFromType(NPY_UINT64);
    if (st->uint64 == NULL)
        return -1;
    if (PyModule_AddFunctions(module, pl_kernel_methods) < 0 ||
        PyModule_AddFunctions(module, pl_trace_methods) < 0)
        return -1;
    st->CounterType = PyType_FromModuleAndSpec(module, &pl_counter_spec, NULL);
    if (st->CounterType == NULL || PyModule_AddObjectRef(module, "Counter", st->CounterType) < 0)
        return -1;
    if (pl_gil_init() < 0 || select_simd(module) < 0)
        return -1;
    if (PyModule_AddStringConstant(module, "COMPILER", PL_COMPILER) < 0 ||
        add_str_tuple(module, "_TRACE_FIELDS", pl_trace_field_names, -1) < 0 ||
        add_str_tuple(module, "_TRACE_KERNELS", pl_kernel_names, -1) < 0)
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
    core_state *st = PyModule_GetState(module);
    Py_VISIT(st->SeedSequence);
    Py_VISIT(st->uint64);
    Py_VISIT(st->shares_memory);
    Py_VISIT(st->usable_cores);
    Py_VISIT(st->CounterType);
    return 0;
}

static int core_clear(PyObject *module)
{
    core_state *st = PyModule_GetState(module);
    Py_CLEAR(st->SeedSequence);
    Py_CLEAR(st->uint64);
    Py_CLEAR(st->shares_memory);
    Py_CLEAR(st->usable_cores);
    Py_CLEAR(st->CounterType);
    return 0;
}

static void core_free(void *module)
{
    core_clear((PyObject *)module);
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* NumPy itself cannot be loaded into a subinterpreter of its own. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* Shared state is atomics and locks: importing parlab keeps the GIL off. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
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
