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

/* Monotonic clock in nanoseconds: the clock of time.perf_counter_ns. */
int64_t pl_now_ns(void);

/* CPU time consumed by the calling thread, in nanoseconds. */
int64_t pl_thread_cpu_ns(void);

/* Blocks in the kernel until the monotonic clock reaches deadline_ns. */
void pl_sleep_until(int64_t deadline_ns);

#endif
