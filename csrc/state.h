/* The module's state, shared by the units of the binding. */
#ifndef PARLAB_STATE_H
#define PARLAB_STATE_H

#include "np.h"

typedef struct {
    PyObject *SeedSequence;  /* numpy.random.SeedSequence */
    PyObject *uint64;        /* numpy.dtype('uint64') */
    PyObject *shares_memory; /* numpy.shares_memory */
    PyObject *cpu_count;     /* os.cpu_count */
    PyObject *CounterType;
} core_state;

#endif
