/* A shared 64-bit counter and three ways of incrementing it from many threads. */
#ifndef PARLAB_COUNTER_H
#define PARLAB_COUNTER_H

#include <stdint.h>

#include "../platform.h"

typedef struct {
    /* Atomic so that every access is well-defined C even in the racy mode;
     * the race is the separate load and store, not undefined behaviour. */
    _Atomic int64_t value;
    pl_mutex lock;
    _Atomic int64_t pid; /* the process the lock belongs to; -1 while re-made */
} pl_counter;

#define PL_COUNTER_MODES(X) X(PL_RACY, "racy") X(PL_LOCKED, "locked") X(PL_ATOMIC, "atomic")
#define PL_COUNTER_MODE_ITEM(id, name) id,
typedef enum { PL_COUNTER_MODES(PL_COUNTER_MODE_ITEM) } pl_counter_mode;

/* Starts at 0. 0 on success, an errno value otherwise. */
int pl_counter_init(pl_counter *c);
void pl_counter_destroy(pl_counter *c);
int64_t pl_counter_get(pl_counter *c);
void pl_counter_set(pl_counter *c, int64_t value);

/* In a forked child, the lock may have been held by a thread the child does
 * not have: re-make it once, before the child's first increment. */
void pl_counter_after_fork(pl_counter *c);

/* Adds 1, n times. Wraps around at the int64 limits (callers check first). */
void pl_counter_add(pl_counter *c, int64_t n, pl_counter_mode mode);

#endif
