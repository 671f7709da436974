/* Stand-ins for CPU-bound and I/O-bound work. */
#ifndef PARLAB_WORK_H
#define PARLAB_WORK_H

#include <stdint.h>

/* State of the lectures' compute loop, carried across chunks so that a job
 * split into pieces computes exactly what one uninterrupted loop would. */
typedef struct {
    double x;
    int64_t y;
} pl_cpu_state;

/* Runs `iterations` more steps of: x = (x - y)^2 if x is even, else
 * (x + y)^0.5; y += 1. Starts from x = 0, y = 0. */
void pl_cpu_work(pl_cpu_state *s, int64_t iterations);

#endif
