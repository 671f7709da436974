/* The module's state, shared by the units of the binding. */
#ifndef PARLAB_STATE_H
#define PARLAB_STATE_H

#include "np.h"

typedef struct {
    PyObject *SeedSequence;  /* numpy.random.SeedSequence */
    PyObject *uint64;        /* numpy.dtype('uint64') */
    PyObject *shares_memory; /* numpy.shares_memory */
    PyObject *usable_cores;  /* parlab._cores.usable_cores: the affinity mask */
    PyObject *CounterType;
} core_state;

#endif
