/* The one place that knows the operating system and the compiler: threads,
 * mutexes, once, clocks, sleep, yield, fork handlers and attribute macros,
 * for POSIX (Linux, macOS) and Win32 (MSVC, MinGW-w64), as CPython's
 * pythread.h does it. Kernels, bindings and the C test drivers use these and
 * never <pthread.h>, <windows.h> or <time.h> clocks directly.
 *
 * Atomics are C11 <stdatomic.h> on every compiler: GCC and Clang have it, and
 * MSVC since Visual Studio 2022 17.5 with /experimental:c11atomics (setup.py
 * passes it). One spelling everywhere keeps each access's memory order, which
 * the lessons depend on (the racy counter's separate relaxed load and store),
 * where Win32's Interlocked functions would need a second implementation of
 * every operation. Plain C, no Python: the C driver links it without Python. */
#ifndef PARLAB_PLATFORM_H
#define PARLAB_PLATFORM_H

#include <stdatomic.h>
#include <stdint.h>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <pthread.h>
#endif

/* ------------------------------------------------------------ compiler */

#if defined(_MSC_VER) && !defined(__clang__)
#define PL_ALWAYS_INLINE static __forceinline
#define PL_THREAD_LOCAL __declspec(thread)
#else
#define PL_ALWAYS_INLINE static inline __attribute__((always_inline))
#define PL_THREAD_LOCAL _Thread_local
#endif

/* ------------------------------------------------------------ threads */

typedef void *(*pl_thread_fn)(void *arg);

#ifdef _WIN32
typedef HANDLE pl_thread;
/* SRWLOCK: statically initialisable, never allocates, has a try-lock. */
typedef SRWLOCK pl_mutex;
#define PL_MUTEX_INIT SRWLOCK_INIT
typedef INIT_ONCE pl_once_flag;
#define PL_ONCE_INIT INIT_ONCE_STATIC_INIT
#else
typedef pthread_t pl_thread;
typedef pthread_mutex_t pl_mutex;
#define PL_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
typedef pthread_once_t pl_once_flag;
#define PL_ONCE_INIT PTHREAD_ONCE_INIT
#endif

/* Starts fn(arg) on a new thread: 0, or non-zero when none could be made. */
int pl_thread_start(pl_thread *t, pl_thread_fn fn, void *arg);
/* Waits for a started thread to end (each thread is joined exactly once). */
void pl_thread_join(pl_thread t);

/* 0, or an errno value. */
int pl_mutex_init(pl_mutex *m);
void pl_mutex_destroy(pl_mutex *m);
void pl_mutex_lock(pl_mutex *m);
/* 1 if it took the lock, 0 if another thread holds it. */
int pl_mutex_trylock(pl_mutex *m);
void pl_mutex_unlock(pl_mutex *m);

/* Runs fn exactly once per flag, however many threads call this at once. */
void pl_once(pl_once_flag *flag, void (*fn)(void));

/* Gives the rest of this thread's time slice to another ready thread. */
void pl_yield(void);

/* ------------------------------------------------------------ processes */

/* This process's id: a forked child has a new one. */
int64_t pl_process_id(void);

/* Registers fn to run in the child after a fork(), in the forking thread.
 * Windows has no fork: nothing to register. */
void pl_at_fork_child(void (*fn)(void));

/* ------------------------------------------------------------ time */

/* Monotonic clock in nanoseconds: the clock of time.perf_counter_ns, so
 * traces line up with it. */
int64_t pl_now_ns(void);

/* CPU time consumed by the calling thread, in nanoseconds. */
int64_t pl_thread_cpu_ns(void);

/* Blocks in the kernel (no spinning) until pl_now_ns() reaches deadline_ns. */
void pl_sleep_until(int64_t deadline_ns);

#endif
