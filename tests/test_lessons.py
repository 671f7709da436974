"""Lectures 002-004: the lessons that must hold on every run, and the helpers behind them.

Timing lessons depend on the machine and are reported, not asserted; the ones
here follow from how threads and processes share memory, so they hold at
tiny scale on any machine (the race needs two cores).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import multiprocessing
import os
import threading
import time

import numpy as np
import pytest

import parlab
from parlab.experiments import lecture2, lecture3, run
from parlab.experiments import runners
from parlab.workloads import frames, numba_pi, tasks


def holds(result, lesson: str) -> bool:
    table = result.lessons.set_index("lesson")
    assert lesson in table.index, f"{result.id} states no lesson {lesson!r}"
    return bool(table.loc[lesson, "holds"])


# --- deterministic lessons ----------------------------------------------------

@pytest.mark.parametrize("start_method", [None, "spawn"])
def test_processes_leave_the_dict_empty(start_method):
    result = run("L2.3", scale="tiny", start_method=start_method)
    assert result.table.correct.all()
    assert holds(result, lecture2.PROCESSES_EMPTY_DICT)


def test_threads_share_the_dict():
    assert holds(run("L2.2", scale="tiny"), lecture2.THREADS_SHARE_DICT)


def test_only_thread_executor_fills_the_dict():
    assert holds(run("L2.4", scale="tiny"), lecture2.EXECUTOR_DICTS)


def test_int_copied_list_shared():
    result = run("L3.1", scale="tiny")
    assert holds(result, lecture3.SCALAR_COPIED)
    assert holds(result, lecture3.LIST_SHARED)


@pytest.mark.skipif((os.cpu_count() or 1) < 2,
                    reason="lost updates need two threads running at the same moment: 1 core")
def test_racy_counter_loses_updates_with_the_gil_released():
    result = run("L3.2", scale="tiny")
    assert holds(result, lecture3.LOST_UPDATES)
    racy = result.table[result.table.variant.str.contains("GIL released")]
    assert racy.correct.all()


# --- tasks and runners ---------------------------------------------------------

@pytest.mark.parametrize("iterations", [0, 1, 2, 3, 10, 1_000, 54_321])
def test_compute_loop_is_bit_identical_to_cpu_work(iterations):
    assert tasks.compute_loop(iterations) == parlab.cpu_work(iterations)


def test_runners_share_memory_only_within_the_process():
    job = tasks.lecture_jobs(3, 0.002)["long_io"]
    for outcome in (runners.run_serial(job.task, 3), runners.run_threads(job.task, 3)):
        assert job.returned_right(outcome) and job.shared_right(outcome)
    with multiprocessing.Pool(2) as pool:
        outcome = runners.run_apply_async(pool, job.task, 3)
    assert job.returned_right(outcome) and outcome.shared == {}


def test_lecture_jobs_expect_the_kernels_answers():
    jobs = tasks.lecture_jobs(2, 0.002)
    for job in jobs.values():
        assert job.returned_right(runners.run_serial(job.task, job.n)), job.name
    assert {j.release_gil for j in jobs.values()} == {None, True, False}


def test_run_together_starts_threads_at_once_and_reraises():
    stamps = runners.run_together([time.perf_counter] * 4)
    assert len(stamps) == 4
    with pytest.raises(ZeroDivisionError):
        runners.run_together([lambda: 1, lambda: 1 / 0])


def test_calibrate_scales_to_the_target(monkeypatch):
    # A clock that only the work moves, a microsecond an iteration: calibrate's
    # arithmetic is checked exactly, where a real sleep on a busy machine
    # overshoots by more than the work it times.
    now = [0.0]
    monkeypatch.setattr(tasks.time, "perf_counter", lambda: now[0])

    def work(iterations: int) -> None:
        now[0] += iterations * 1e-6

    assert tasks.calibrate(work, 0.04) == 40_000


@pytest.mark.parametrize("total,parts", [(10, 3), (0, 4), (7, 7), (5, 8)])
def test_split(total, parts):
    sizes = runners.split(total, parts)
    assert sum(sizes) == total and len(sizes) == parts and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_per_thread_slots_tile_the_samples_and_match_serial(threads):
    seen = []
    lock = threading.Lock()

    def count(size, start):
        with lock:
            seen.append((start, size))
        return parlab.count_hits(size, seed=7, start=start)

    total = runners.per_thread_slots(count, 10_001, threads)
    assert total == parlab.count_hits(10_001, seed=7)
    ends = 0
    for start, size in sorted(seen):
        assert start == ends
        ends += size
    assert ends == 10_001


def test_primes_scalar_vs_slot():
    assert [n for n in range(20) if tasks.is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19]
    last = [0]
    tasks.last_prime_slot(1000, 2000, last)
    assert last == [1999]
    scalar = 0
    tasks.last_prime_scalar(1000, 2000, scalar)
    assert scalar == 0


def test_python_counters_are_exact_in_one_thread():
    slot = [0]
    tasks.add_one_each(slot, 1000)
    tasks.add_one_each_locked(slot, 1000, threading.Lock())
    assert slot == [2000]


def test_double_buffering_overlaps_reading_with_computing():
    """Reading chunk k+1 starts before computing chunk k ends (recorded timestamps)."""
    log = {}

    def read(k):
        t0 = time.perf_counter()
        time.sleep(0.03)
        log["read", k] = (t0, time.perf_counter())
        return k

    def compute(k):
        t0 = time.perf_counter()
        time.sleep(0.03)
        log["compute", k] = (t0, time.perf_counter())
        return k * k

    assert runners.double_buffered(read, compute, 4) == [0, 1, 4, 9]
    for k in range(3):
        assert log["read", k + 1][0] < log["compute", k][1]
    log.clear()
    assert runners.sequential(read, compute, 4) == [0, 1, 4, 9]
    for k in range(3):
        assert log["read", k + 1][0] >= log["compute", k][1]
    assert runners.double_buffered(read, compute, 0) == []


def test_matmul_job_matches_its_cheap_reference():
    for threads in (1, 2):
        got = tasks.matmul_job(3, n=60, threads=threads)
        assert got == pytest.approx(tasks.matmul_sum_reference(3, 60), rel=1e-9, abs=1e-9)


def test_matmul_jobs_in_threads_keep_their_own_output():
    # The output is kept between calls: one per thread, or concurrent jobs
    # would sum each other's products.
    seeds = list(range(8))
    for _ in range(3):
        got = runners.run_together([functools.partial(tasks.matmul_job, s, n=200, threads=1)
                                    for s in seeds])
        want = [tasks.matmul_sum_reference(s, 200) for s in seeds]
        assert got == pytest.approx(want, rel=1e-9, abs=1e-6)


def test_started_pools_run_until_their_stack_closes():
    mp = multiprocessing.get_context()
    with contextlib.ExitStack() as stack:
        pools = runners.started_pools(stack, mp, [2, 1, 2])
        threads = runners.thread_pools(stack, [3])
        assert sorted(pools) == [1, 2] and list(threads) == [3]
        assert pools[2].starmap(pow, [(2, 3), (3, 2)]) == [8, 9]
        assert threads[3].starmap(pow, [(2, 5)]) == [32]
    for pool in (*pools.values(), *threads.values()):
        with pytest.raises(ValueError):
            pool.map(abs, [1])


def test_joblib_pool_keeps_its_workers_between_calls():
    with runners.joblib_pool(2, "threads") as parallel:
        first = runners.joblib_run(parallel, pow, [(2, k) for k in range(5)], "test")
        second = runners.joblib_run(parallel, pow, [(3, k) for k in range(3)], "test")
    assert first == [1, 2, 4, 8, 16] and second == [1, 3, 9]


def test_shared_matrix_starts_touched_and_unwritten():
    with runners.shared_matrix(3) as name:
        assert np.isnan(runners.read_shared_matrix(name, 3)).all()


# --- pandas workloads ----------------------------------------------------------

def test_spread_is_the_same_per_row_and_per_column():
    df = frames.make_frame(50, seed=1)
    column = frames.spread(df["a"], df["b"], df["c"], df["d"])
    rows = df.apply(frames.row_spread, axis=1)
    np.testing.assert_allclose(rows.to_numpy(), column.to_numpy(), rtol=1e-15)


def test_digest_is_repeated_sha256_of_the_joined_values():
    once = hashlib.sha256(b"1.5_-2").digest()
    assert frames.digest(1.5, -2) == once.hex()
    assert frames.digest(1.5, -2, rounds=3) == hashlib.sha256(
        hashlib.sha256(once).digest()).hexdigest()
    df = frames.make_frame(5)
    by_row = df.apply(frames.row_digest, axis=1, rounds=2)
    assert list(by_row) == [frames.digest(a, b, rounds=2) for a, b in zip(df["a"], df["b"])]


# --- numba (optional) ----------------------------------------------------------

def test_numba_counts_equal_parlab_count_hits():
    compiled = numba_pi.compiled()
    if compiled is None:
        pytest.skip(numba_pi.why_missing())
    for seed, n, start in [(0, 100_000, 0), (12345, 1_001, 2**40), (2**64 - 1, 7, 3)]:
        want = parlab.count_hits(n, seed=seed, start=start)
        key = numba_pi.seed_key(seed)
        assert [f(n, key, start) for f in compiled] == [want] * 3


def test_monte_carlo_without_numba_says_so(monkeypatch):
    monkeypatch.setattr(numba_pi, "compiled", lambda: None)
    result = run("L3.5", scale="tiny")
    assert not result.table.variant.str.contains("numba").any()
    assert result.table.correct.all()
    numba_lessons = result.lessons[result.lessons.observed.str.contains(numba_pi.why_missing(), regex=False)]
    assert len(numba_lessons) == 3 and (numba_lessons.verdict == "skipped").all()
