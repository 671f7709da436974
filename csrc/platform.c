/* The platform layer: see platform.h. */
#if defined(__APPLE__)
/* macOS hides its own clocks (CLOCK_UPTIME_RAW) under a strict POSIX level. */
#define _DARWIN_C_SOURCE
#elif !defined(_WIN32)
/* clock_nanosleep and CLOCK_THREAD_CPUTIME_ID are POSIX 2008. */
#define _POSIX_C_SOURCE 200809L
#endif
#include "platform.h"

#include <errno.h>
#include <stdlib.h>

#ifdef _WIN32
#include <process.h>

/* ------------------------------------------------------------ Win32 */

typedef struct {
    pl_thread_fn fn;
    void *arg;
} start_arg;

static unsigned __stdcall thread_main(void *p)
{
    const start_arg a = *(start_arg *)p;
    free(p);
    a.fn(a.arg);
    return 0;
}

int pl_thread_start(pl_thread *t, pl_thread_fn fn, void *arg)
{
    start_arg *a = malloc(sizeof *a);
    if (a == NULL)
        return ENOMEM;
    *a = (start_arg){fn, arg};
    /* _beginthreadex, not CreateThread: the C runtime sets up its per-thread state. */
    const uintptr_t h = _beginthreadex(NULL, 0, thread_main, a, 0, NULL);
    if (h == 0) {
        free(a);
        return EAGAIN;
    }
    *t = (HANDLE)h;
    return 0;
}

void pl_thread_join(pl_thread t)
{
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
}

int pl_mutex_init(pl_mutex *m)
{
    InitializeSRWLock(m);
    return 0;
}

void pl_mutex_destroy(pl_mutex *m)
{
    (void)m; /* an SRWLOCK holds no resources */
}

void pl_mutex_lock(pl_mutex *m)
{
    AcquireSRWLockExclusive(m);
}

int pl_mutex_trylock(pl_mutex *m)
{
    return TryAcquireSRWLockExclusive(m) != 0;
}

void pl_mutex_unlock(pl_mutex *m)
{
    ReleaseSRWLockExclusive(m);
}

typedef struct {
    void (*fn)(void);
} once_fn;

static BOOL CALLBACK run_once(PINIT_ONCE flag, PVOID param, PVOID *context)
{
    (void)flag;
    (void)context;
    ((once_fn *)param)->fn();
    return TRUE;
}

void pl_once(pl_once_flag *flag, void (*fn)(void))
{
    once_fn f = {fn};
    InitOnceExecuteOnce(flag, run_once, &f, NULL);
}

void pl_yield(void)
{
    SwitchToThread();
}

int64_t pl_process_id(void)
{
    return (int64_t)GetCurrentProcessId();
}

void pl_at_fork_child(void (*fn)(void))
{
    (void)fn;
}

int64_t pl_now_ns(void)
{
    /* QueryPerformanceCounter is what time.perf_counter_ns reads on Windows.
     * Split the conversion so that ticks * 1e9 cannot overflow. */
    static LARGE_INTEGER freq; /* fixed at boot: a racy first write stores the same value */
    LARGE_INTEGER now;
    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    const int64_t f = freq.QuadPart, t = now.QuadPart;
    return t / f * 1000000000 + t % f * 1000000000 / f;
}

int64_t pl_thread_cpu_ns(void)
{
    FILETIME created, exited, kernel, user;
    if (!GetThreadTimes(GetCurrentThread(), &created, &exited, &kernel, &user))
        return 0;
    const uint64_t k = (uint64_t)kernel.dwHighDateTime << 32 | kernel.dwLowDateTime;
    const uint64_t u = (uint64_t)user.dwHighDateTime << 32 | user.dwLowDateTime;
    return (int64_t)(k + u) * 100; /* FILETIME counts 100 ns units */
}

void pl_sleep_until(int64_t deadline_ns)
{
    /* Sleep() counts whole milliseconds and may end up to a timer tick (1 to
     * 16 ms) late; round up so it never ends early, and sleep again if it did. */
    for (int64_t left = deadline_ns - pl_now_ns(); left > 0; left = deadline_ns - pl_now_ns()) {
        const int64_t ms = (left + 999999) / 1000000;
        Sleep(ms < INFINITE ? (DWORD)ms : INFINITE - 1);
    }
}

#else

/* ------------------------------------------------------------ POSIX */

#include <sched.h>
#include <time.h>
#include <unistd.h>

int pl_thread_start(pl_thread *t, pl_thread_fn fn, void *arg)
{
    return pthread_create(t, NULL, fn, arg);
}

void pl_thread_join(pl_thread t)
{
    pthread_join(t, NULL);
}

int pl_mutex_init(pl_mutex *m)
{
    return pthread_mutex_init(m, NULL);
}

void pl_mutex_destroy(pl_mutex *m)
{
    pthread_mutex_destroy(m);
}

void pl_mutex_lock(pl_mutex *m)
{
    pthread_mutex_lock(m);
}

int pl_mutex_trylock(pl_mutex *m)
{
    return pthread_mutex_trylock(m) == 0;
}

void pl_mutex_unlock(pl_mutex *m)
{
    pthread_mutex_unlock(m);
}

void pl_once(pl_once_flag *flag, void (*fn)(void))
{
    pthread_once(flag, fn);
}

void pl_yield(void)
{
    sched_yield();
}

int64_t pl_process_id(void)
{
    return (int64_t)getpid();
}

void pl_at_fork_child(void (*fn)(void))
{
    pthread_atfork(NULL, NULL, fn);
}

/* The clock behind Python's time.perf_counter_ns(). */
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

#endif
