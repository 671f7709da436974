/* clock_nanosleep and CLOCK_THREAD_CPUTIME_ID are POSIX 2008; macOS hides its
 * own clocks (CLOCK_UPTIME_RAW) under a strict POSIX level. */
#ifdef __APPLE__
#define _DARWIN_C_SOURCE
#else
#define _POSIX_C_SOURCE 200809L
#endif
#include "work.h"

#include <errno.h>
#include <math.h>
#include <time.h>

void pl_cpu_work(pl_cpu_state *s, int64_t iterations)
{
    double x = s->x;
    int64_t y = s->y;
    const int64_t end = y + iterations;
    /* pow() rather than x*x or sqrt(): Python's float ** calls pow(), so a
     * pure-Python loop gives bit-identical results to compare against. */
    for (; y < end; y++) {
        const double fy = (double)y;
        if (fmod(x, 2.0) == 0.0)
            x = pow(x - fy, 2.0);
        else
            x = pow(x + fy, 0.5);
    }
    s->x = x;
    s->y = y;
}

/* The clock behind Python's time.perf_counter_ns(), so traces line up with it. */
#ifdef __APPLE__
#define PL_CLOCK CLOCK_UPTIME_RAW
#else
#define PL_CLOCK CLOCK_MONOTONIC
#endif

int64_t pl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(PL_CLOCK, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t pl_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void pl_sleep_until(int64_t deadline_ns)
{
#ifdef __linux__
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000,
                          .tv_nsec = deadline_ns % 1000000000};
    /* EINTR: a signal arrived; sleep on to the same absolute deadline. */
    while (clock_nanosleep(PL_CLOCK, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
#else
    /* No absolute sleep (macOS): sleep what is left, again after a signal. */
    for (int64_t left = deadline_ns - pl_now_ns(); left > 0; left = deadline_ns - pl_now_ns()) {
        struct timespec ts = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
        nanosleep(&ts, NULL);
    }
#endif
}
