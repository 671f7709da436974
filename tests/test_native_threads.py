"""n_threads: native threads inside one call. Results never depend on it;
it is safe with fork after use, with many Python threads asking at once, with
Ctrl-C, and the trace says how many threads a call used."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fork_children
import parlab
from conftest import run_threaded
from test_hardening import START_METHODS, run_children

pytestmark = [pytest.mark.portability, pytest.mark.parallel, pytest.mark.tsan]


@pytest.mark.parametrize("n_threads", range(1, 9))
def test_count_hits_identical_for_every_n_threads_and_split(n_threads):
    n, seed = 3_000_017, 42
    whole = parlab.count_hits(n, seed=seed)
    assert parlab.count_hits(n, seed=seed, n_threads=n_threads) == whole
    k = 1_234_567
    assert (parlab.count_hits(k, seed=seed, n_threads=n_threads)
            + parlab.count_hits(n - k, seed=seed, start=k, n_threads=n_threads)) == whole


@pytest.mark.parametrize("release_gil", [True, False])
def test_cdist_identical_for_every_n_threads(release_gil):
    rng = np.random.default_rng(3)
    XA, XB = rng.normal(size=(517, 33)), rng.normal(size=(129, 33))
    one = parlab.cdist(XA, XB)
    for k in (2, 3, 5, 8, 16):
        assert_array_equal(parlab.cdist(XA, XB, n_threads=k, release_gil=release_gil), one)


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-2, ValueError), (1025, ValueError),
                                      (2**70, OverflowError), (1.0, TypeError),
                                      (True, TypeError), ("2", TypeError)])
@pytest.mark.parametrize("func", [lambda k: parlab.cdist(np.ones((2, 2)), np.ones((2, 2)),
                                                         n_threads=k),
                                  lambda k: parlab.count_hits(10, n_threads=k),
                                  lambda k: parlab.estimate_pi(10, n_threads=k)])
def test_bad_n_threads_named(func, bad, exc):
    with pytest.raises(exc, match="n_threads"):
        func(bad)


@pytest.mark.thread_unsafe(reason="parlab.trace is one per process: the copies of a test "
                                   "in other threads would record too")
def test_none_and_minus_one_mean_the_usable_cores():
    with parlab.trace() as tr:
        parlab.count_hits(10**7, seed=1, n_threads=None)
        parlab.count_hits(10**7, seed=1, n_threads=-1)
        parlab.count_hits(10, seed=1, n_threads=4)  # one chunk: one thread is all it uses
    used = tr.events.n_threads.tolist()
    cores = parlab.info()["cores"]
    assert used[:2] == [cores, cores] and used[2] == 1


def test_eight_python_threads_each_asking_for_four():
    X = np.random.default_rng(4).random((300, 20))
    want_d, want_h = parlab.cdist(X, X), parlab.count_hits(2_000_000, seed=9)

    def body(i):
        return (parlab.cdist(X, X, n_threads=4, release_gil=i % 2 == 0),
                parlab.count_hits(2_000_000, seed=9, n_threads=4))

    for d, h in run_threaded(body, 8):
        assert_array_equal(d, want_d)
        assert h == want_h


@pytest.mark.thread_unsafe(reason="forks: a fork while other threads run copies them mid-call")
@pytest.mark.parametrize("method", START_METHODS)
def test_children_after_native_threads_use_them_again(method):
    fork_children.native_threads_again()  # the parent has used native threads
    assert run_children(method, fork_children.native_threads_again, 2) == ["ok", "ok"]


@pytest.mark.thread_unsafe(reason="signals: only the main thread may set handlers and gets them")
def test_ctrl_c_stops_a_call_on_two_native_threads():
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with parlab.trace() as tr, pytest.raises(KeyboardInterrupt):
            parlab.count_hits(2**62, seed=1, n_threads=2)  # years, uninterrupted
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # Stopped (uninterrupted, it would run for years), both threads joined.
    (call,) = tr.events.itertuples()
    assert not call.completed and call.n_threads == 2
