/* A shared 64-bit counter and three ways of incrementing it from many threads. */
#ifndef PARLAB_COUNTER_H
#define PARLAB_COUNTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct {
    /* Atomic so that every access is well-defined C even in the racy mode;
     * the race is the separate load and store, not undefined behaviour. */
    _Atomic int64_t value;
    pthread_mutex_t lock;
} pl_counter;

typedef enum { PL_RACY = 0, PL_LOCKED = 1, PL_ATOMIC = 2 } pl_counter_mode;

/* 0 on success, an errno value otherwise. */
int pl_counter_init(pl_counter *c, int64_t value);
void pl_counter_destroy(pl_counter *c);
int64_t pl_counter_get(pl_counter *c);
void pl_counter_set(pl_counter *c, int64_t value);

/* Adds 1, n times. Wraps around at the int64 limits. */
void pl_counter_add(pl_counter *c, int64_t n, pl_counter_mode mode);

#endif
