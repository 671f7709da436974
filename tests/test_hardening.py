"""Issue 11's defects, each pinned by tests that fail while it is there.

1. A SeedSequence whose generate_state returns a bad state is refused,
   naming ``seed`` (an empty one made the binding read past its buffer).
2. Forked children: a trace active in the parent is not theirs, and a
   Counter lock taken by a parent's thread does not deadlock them; every
   start method, raw ``os.fork`` included. Children run under a deadline: a
   hung child is killed and reported.
3. Counter overflow: OverflowError before any work when value + n does not
   fit in int64, in every mode.
4. A failed conversion raises OverflowError (with the original as cause), or
   the original exception itself when the object's own ``__float__`` or
   ``__index__`` raised.
5. ``out=`` sharing memory with an input gives the right result (computed
   from a copy); views that interleave without sharing an element are fine.
"""
from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import threading
import time
import traceback
import warnings
from typing import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose

import fork_children
import parlab
import rng_reference as ref
from test_cdist import ATOL, RTOL, expected

pytestmark = [pytest.mark.sanitize]

INT64_MAX = 2**63 - 1
MODES = ["racy", "locked", "atomic"]


class Boom(Exception):
    """Raised by the test objects' own conversion methods."""


# -- 1. SeedSequence state -----------------------------------------------------

def seed_sequence_returning(state) -> np.random.SeedSequence:
    """A SeedSequence whose generate_state returns ``state`` (or raises it)."""
    class Fixed(np.random.SeedSequence):
        def generate_state(self, n_words, dtype=np.uint32):
            if isinstance(state, BaseException):
                raise state
            return state

    return Fixed(0)


@pytest.mark.parametrize("state, exc", [
    (np.empty(0, np.uint64), ValueError),
    (np.zeros((1, 1), np.uint64), ValueError),
    (np.array([1.5]), (TypeError, ValueError)),
    (np.array([1.5], np.float32), (TypeError, ValueError)),
], ids=["empty", "2-D", "float64", "float32"])
@pytest.mark.parametrize("func", [parlab.count_hits, parlab.estimate_pi])
def test_bad_seed_state_is_refused_naming_seed(func, state, exc):
    with pytest.raises(exc, match="seed"):
        func(4096, seed=seed_sequence_returning(state))


def test_generate_state_errors_are_not_replaced():
    with pytest.raises(Boom, match="state"):
        parlab.count_hits(10, seed=seed_sequence_returning(Boom("state")))


def test_seed_sequence_subclass_state_is_the_key():
    seq = seed_sequence_returning(np.array([2**64 - 3], np.uint64))
    assert parlab.count_hits(5000, seed=seq, start=7) == ref.count_hits(5000, seq, 7)


# -- 2. fork -------------------------------------------------------------------

START_METHODS = ["fork", "forkserver", "spawn", "os.fork"]
# Fork-based children are cheap, and a lock caught taken is a matter of
# timing: many of them. Spawned ones import parlab afresh: a few.
CHILDREN = {"fork": 40, "os.fork": 40, "forkserver": 4, "spawn": 2}
CHILD_DEADLINE = 30.0  # a healthy child needs milliseconds


class RawFork:
    """A child made with plain ``os.fork``, driven like a multiprocessing.Process."""

    def __init__(self, target: Callable[[], None]):
        self.target = target
        self.pid = 0
        self.exitcode: int | None = None

    def start(self) -> None:
        self.pid = os.fork()
        if self.pid == 0:
            code = 1
            try:
                self.target()
                code = 0
            except BaseException:  # noqa: BLE001 - reported by the exit code
                traceback.print_exc()
            finally:
                os._exit(code)  # never return into the parent's pytest

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.exitcode is None:
            pid, status = os.waitpid(self.pid, 0 if deadline is None else os.WNOHANG)
            if pid:
                self.exitcode = os.waitstatus_to_exitcode(status)
            elif time.monotonic() >= deadline:
                return
            else:
                time.sleep(0.01)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)


def make_child(method: str, target: Callable[[], None]):
    if method == "os.fork":
        return RawFork(target)
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["fork_children"])
    return ctx.Process(target=target, daemon=True)


def run_children(method: str, target: Callable[[], None], n: int) -> list[str]:
    """Start ``n`` children running ``target``, one after another, then wait
    for them all; one still running after CHILD_DEADLINE is killed. Returns
    each child's fate: "ok", "exit N" or "hung"."""
    children = []
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a multi-threaded process may deadlock
        # the child: what these tests check that parlab's own state does not.
        warnings.simplefilter("ignore", DeprecationWarning)
        for _ in range(n):
            children.append(make_child(method, target))
            children[-1].start()
    deadline = time.monotonic() + CHILD_DEADLINE
    fates = []
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.exitcode is None:
            child.kill()
            child.join()
            fates.append("hung")
        else:
            fates.append("ok" if child.exitcode == 0 else f"exit {child.exitcode}")
    return fates


@pytest.mark.parametrize("method", START_METHODS)
def test_child_started_during_a_trace_records_its_own_calls(method):
    with parlab.trace() as tr:
        parlab.cpu_work(5, release_gil=False)
        fates = run_children(method, fork_children.trace_own_calls, 2)
        parlab.count_hits(5, seed=1, release_gil=False)
    assert fates == ["ok", "ok"], fates
    # The children's calls went to their own traces; the parent's trace kept
    # recording its own calls across the forks.
    assert tr.events.kernel.tolist() == ["cpu_work", "count_hits"]


@pytest.mark.parametrize("method", START_METHODS)
def test_child_forked_while_a_thread_loops_on_the_counter_lock(method):
    counter, per_call = fork_children.COUNTER, 10_000
    stop = threading.Event()
    calls = 0

    def hammer() -> None:
        nonlocal calls
        while not stop.is_set():
            counter.increment(per_call, mode="locked")
            calls += 1

    before = counter.value
    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    try:
        fates = run_children(method, fork_children.locked_increments, CHILDREN[method])
    finally:
        stop.set()
        thread.join()
    assert fates.count("ok") == len(fates), collections.Counter(fates)
    assert counter.value == before + calls * per_call


# -- 3. Counter overflow -------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_increment_past_int64_max_raises_before_any_work(mode, release_gil):
    c = parlab.Counter(INT64_MAX - 5)
    with pytest.raises(OverflowError, match="increment"):
        c.increment(6, mode=mode, release_gil=release_gil)
    assert c.value == INT64_MAX - 5  # not 5 increments and then the error
    c.increment(5, mode=mode, release_gil=release_gil)
    assert c.value == INT64_MAX
    with pytest.raises(OverflowError, match="increment"):
        c.increment(1, mode=mode, release_gil=release_gil)
    assert c.value == INT64_MAX
    c.increment(0, mode=mode, release_gil=release_gil)
    assert c.value == INT64_MAX


@given(value=st.integers(INT64_MAX - 3000, INT64_MAX), n=st.integers(0, 3000),
       mode=st.sampled_from(MODES), release_gil=st.booleans())
def test_increment_raises_exactly_when_the_sum_does_not_fit(value, n, mode, release_gil):
    c = parlab.Counter(value)
    if value + n > INT64_MAX:
        with pytest.raises(OverflowError):
            c.increment(n, mode=mode, release_gil=release_gil)
        assert c.value == value
    else:
        c.increment(n, mode=mode, release_gil=release_gil)
        assert c.value == value + n


def test_overflow_rule_is_documented():
    assert "OverflowError" in parlab.Counter.increment.__doc__


# -- 4. conversions that fail --------------------------------------------------

@pytest.mark.parametrize("seconds", [2**1100, -2**1100, 10**400],
                         ids=["2**1100", "-2**1100", "10**400"])
def test_io_wait_int_too_large_for_a_float(seconds):
    with pytest.raises(OverflowError, match="seconds") as info:
        parlab.io_wait(seconds)
    assert isinstance(info.value.__cause__, OverflowError)


class RaisingFloat:
    def __float__(self):
        raise Boom("__float__")


class RaisingIndex:
    def __index__(self):
        raise Boom("__index__")


def test_io_wait_keeps_the_exception_of_a_raising_float():
    with pytest.raises(Boom, match="__float__"):
        parlab.io_wait(RaisingFloat())


@pytest.mark.parametrize("call", [
    lambda x: parlab.cpu_work(x),
    lambda x: parlab.count_hits(x),
    lambda x: parlab.estimate_pi(x),
    lambda x: parlab.count_hits(1, seed=x),
    lambda x: parlab.count_hits(1, start=x),
    lambda x: parlab.Counter(x),
    lambda x: parlab.Counter().increment(x),
    lambda x: setattr(parlab.Counter(), "value", x),
], ids=["cpu_work", "count_hits", "estimate_pi", "seed", "start", "Counter", "increment",
        "Counter.value"])
def test_a_raising_index_keeps_its_exception(call):
    with pytest.raises(Boom, match="__index__"):
        call(RaisingIndex())


# -- 5. out= sharing memory with an input -------------------------------------

def cdist_into(XA, XB, out, buf, metric="euclidean") -> None:
    """parlab.cdist(XA, XB, out=out), where out is a view of ``buf``: the
    result is SciPy's on the inputs as they were, and nothing of ``buf``
    outside ``out`` changes."""
    want = expected(XA, XB, metric)  # before the call may overwrite them
    outside = np.ones(buf.shape, bool)
    np.copyto(outside[tuple(_view_index(buf, out))], False)
    before = buf.copy()
    assert parlab.cdist(XA, XB, metric=metric, out=out) is out
    assert_allclose(out, want, rtol=RTOL, atol=ATOL)
    assert (buf[outside] == before[outside]).all()


def _view_index(buf: np.ndarray, view: np.ndarray) -> tuple[slice, ...]:
    """The slices that make ``view`` (a 2-D view of 2-D C-ordered ``buf``, not
    transposed) out of ``buf``."""
    offset = view.__array_interface__["data"][0] - buf.__array_interface__["data"][0]
    start = divmod(offset // buf.itemsize, buf.shape[1])
    index = []
    for axis in range(2):
        step = view.strides[axis] // buf.strides[axis]
        stop = start[axis] + view.shape[axis] * step
        index.append(slice(start[axis], None if stop < 0 else stop, step))
    return tuple(index)


def filled(shape) -> np.ndarray:
    return np.random.default_rng(sum(shape)).normal(size=shape)


def test_out_is_xa():
    buf = filled((4, 4))
    cdist_into(buf, filled((4, 4)) + 1, buf, buf)


def test_out_is_xb():
    buf = filled((3, 3))
    cdist_into(filled((3, 3)) - 1, buf, buf, buf, metric="sqeuclidean")


def test_out_is_both_inputs():
    buf = filled((5, 5))
    cdist_into(buf, buf, buf, buf)


def test_out_overlaps_part_of_xa():
    buf = filled((4, 8))
    cdist_into(buf[:, 2:5], filled((4, 3)), buf[:, :4], buf)


def test_out_and_xa_in_alternate_rows_share_nothing():
    buf = filled((8, 3))
    assert not np.shares_memory(buf[::2], buf[1::2])
    cdist_into(buf[1::2], filled((3, 3)), buf[::2], buf)


def test_out_and_xa_side_by_side_in_each_row_share_nothing():
    buf = filled((4, 7))
    cdist_into(buf[:, 4:7], filled((4, 3)), buf[:, :4], buf)


def axis_slice(draw, size: int, count: int, steps) -> slice:
    """A slice taking ``count`` items of an axis of ``size`` with a drawn step."""
    step = draw(st.sampled_from(steps))
    span = (count - 1) * abs(step) + 1
    first = draw(st.integers(0, size - span))
    if step < 0:
        first += span - 1
    stop = first + count * step
    return slice(first, None if stop < 0 else stop, step)


@st.composite
def views_of_one_buffer(draw):
    """(XA, XB, out, buf): out a row-contiguous view of ``buf``, XA and
    possibly XB any strided views of it, sharing elements with out or not."""
    mA, mB, n = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    buf = draw(hnp.arrays(np.float64, (12, 12), elements=st.integers(-50, 50).map(float)))

    def input_view(rows: int) -> np.ndarray:
        if draw(st.booleans()):  # transposed: features along buf's rows
            return buf[axis_slice(draw, 12, n, [1, 2, 3, -1]),
                       axis_slice(draw, 12, rows, [1, 2, -2])].T
        return buf[axis_slice(draw, 12, rows, [1, 2, -1]), axis_slice(draw, 12, n, [1, 2, 3])]

    out = buf[axis_slice(draw, 12, mA, [1, 2, -1]), axis_slice(draw, 12, mB, [1])]
    XA = input_view(mA)
    XB = input_view(mB) if draw(st.booleans()) else np.arange(mB * n, dtype=float).reshape(mB, n)
    return XA, XB, out, buf


@given(views_of_one_buffer(), st.sampled_from(["euclidean", "sqeuclidean"]))
def test_out_sharing_memory_with_inputs_is_always_right(views, metric):
    XA, XB, out, buf = views
    cdist_into(XA, XB, out, buf, metric)
