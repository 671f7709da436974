#include "counter.h"

/* Unsigned addition wraps instead of overflowing a signed int (undefined). */
static inline int64_t plus_one(int64_t v)
{
    return (int64_t)((uint64_t)v + 1u);
}

int pl_counter_init(pl_counter *c)
{
    atomic_init(&c->value, 0);
    atomic_init(&c->pid, pl_process_id());
    return pl_mutex_init(&c->lock);
}

void pl_counter_after_fork(pl_counter *c)
{
    const int64_t me = pl_process_id();
    int64_t owner = atomic_load(&c->pid);
    if (owner == me)
        return;
    /* One thread of the child re-makes the lock; any other waits for it. */
    if (owner != -1 && atomic_compare_exchange_strong(&c->pid, &owner, -1)) {
        pl_mutex_init(&c->lock);
        atomic_store(&c->pid, me);
        return;
    }
    while (atomic_load(&c->pid) != me)
        pl_yield();
}

void pl_counter_destroy(pl_counter *c)
{
    pl_mutex_destroy(&c->lock);
}

int64_t pl_counter_get(pl_counter *c)
{
    return atomic_load(&c->value);
}

void pl_counter_set(pl_counter *c, int64_t value)
{
    atomic_store(&c->value, value);
}

void pl_counter_add(pl_counter *c, int64_t n, pl_counter_mode mode)
{
    switch (mode) {
    case PL_RACY:
        /* The lecture's `last[0] = last[0] + 1`: another thread's store can
         * land between this load and this store, and one update is lost.
         * Relaxed atomics keep each access real (no fusing into one add). */
        for (int64_t i = 0; i < n; i++) {
            int64_t v = atomic_load_explicit(&c->value, memory_order_relaxed);
            atomic_store_explicit(&c->value, plus_one(v), memory_order_relaxed);
        }
        break;
    case PL_LOCKED:
        for (int64_t i = 0; i < n; i++) {
            pl_mutex_lock(&c->lock);
            int64_t v = atomic_load_explicit(&c->value, memory_order_relaxed);
            atomic_store_explicit(&c->value, plus_one(v), memory_order_relaxed);
            pl_mutex_unlock(&c->lock);
        }
        break;
    case PL_ATOMIC:
#ifdef PARLAB_PLANT_RACE
        /* Test-only (scripts/ci-tsan.sh's negative check): plain, non-atomic
         * increments, a data race that ThreadSanitizer must report. */
        for (int64_t i = 0; i < n; i++)
            (*(int64_t *)&c->value)++;
#else
        for (int64_t i = 0; i < n; i++)
            atomic_fetch_add_explicit(&c->value, 1, memory_order_relaxed);
#endif
        break;
    }
}
