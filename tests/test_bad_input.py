"""Every kernel rejects bad arguments with the right exception, naming the argument."""
from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import parlab
from test_c_kernels import python_long_comp

pytestmark = [pytest.mark.fast, pytest.mark.sanitize]


def all_of(*words: str) -> str:
    """A regex matching a message that contains every one of ``words``."""
    return "(?s)" + "".join(f"(?=.*{w})" for w in words)


def readonly(shape) -> np.ndarray:
    a = np.zeros(shape)
    a.flags.writeable = False
    return a


def increment(*args, **kwargs):
    return parlab.Counter().increment(*args, **kwargs)


A = np.zeros((2, 3))
B = np.zeros((4, 3))
N_ARG = r"\bn\b"  # Counter.increment's count is called plain "n"

# (callable, args, kwargs, exception, match, id)
CASES = []


def case(func, args, kwargs, exc, match, id):
    CASES.append(pytest.param(func, args, kwargs, exc, match, id=id))


# -- cdist: XA / XB ------------------------------------------------------------
for name, bad in [("1-D", np.zeros(3)), ("3-D", np.zeros((2, 3, 1))),
                  ("scalar", 1.0), ("0-D array", np.float64(1.0))]:
    case(parlab.cdist, (bad, B), {}, ValueError, "XA", f"cdist-XA-{name}")
    case(parlab.cdist, (A, bad), {}, ValueError, "XB", f"cdist-XB-{name}")
case(parlab.cdist, (A, np.zeros((4, 2))), {}, ValueError, all_of("XA", "XB"),
     "cdist-columns-differ")
for name, bad in [("str", np.array([["a", "b", "c"]])),
                  ("bytes", np.array([[b"a", b"b", b"c"]])),
                  ("str-list", [["a", "b", "c"]]),
                  ("object", np.array([[1.0, 2.0, 3.0]], dtype=object)),
                  ("complex", np.zeros((1, 3), complex)),
                  ("datetime", np.zeros((1, 3), "datetime64[s]")),
                  ("timedelta", np.zeros((1, 3), "timedelta64[s]"))]:
    case(parlab.cdist, (bad, B), {}, TypeError, "XA", f"cdist-XA-{name}")
    case(parlab.cdist, (A, bad), {}, TypeError, "XB", f"cdist-XB-{name}")

# -- cdist: metric -------------------------------------------------------------
case(parlab.cdist, (A, B), {"metric": "cityblock"}, ValueError,
     all_of("metric", r"\beuclidean", "sqeuclidean"), "cdist-metric-unknown")
for bad in [None, 1, b"euclidean"]:
    case(parlab.cdist, (A, B), {"metric": bad}, TypeError, "metric",
         f"cdist-metric-{type(bad).__name__}")

# -- cdist: out ----------------------------------------------------------------
for name, bad, exc in [
        ("list", np.zeros((2, 4)).tolist(), TypeError),
        # A wrong dtype is a ValueError, as in SciPy.
        ("float32", np.zeros((2, 4), np.float32), ValueError),
        ("int64", np.zeros((2, 4), np.int64), ValueError),
        ("shape-transposed", np.zeros((4, 2)), ValueError),
        ("shape-too-many-rows", np.zeros((3, 4)), ValueError),
        ("1-D", np.zeros(8), ValueError),
        ("read-only", readonly((2, 4)), ValueError),
        ("strided-columns", np.zeros((2, 8))[:, ::2], ValueError),
        ("fortran", np.zeros((2, 4), order="F"), ValueError)]:
    case(parlab.cdist, (A, B), {"out": bad}, exc, "out", f"cdist-out-{name}")

# -- counts: n_samples, iterations, n ------------------------------------------
COUNTED = [(parlab.count_hits, "n_samples"), (parlab.estimate_pi, "n_samples"),
           (parlab.cpu_work, "iterations"), (increment, N_ARG)]
for func, arg in COUNTED:
    fname = func.__name__
    case(func, (-1,), {}, ValueError, arg, f"{fname}-negative")
    case(func, (2**63,), {}, OverflowError, arg, f"{fname}-2**63")
    for bad in [1.5, "3", 3.0, None, True, False, np.float64(3.0)]:
        case(func, (bad,), {}, TypeError, arg, f"{fname}-{type(bad).__name__}-{bad!r}")
case(parlab.estimate_pi, (0,), {}, ValueError, "n_samples", "estimate_pi-zero")

# -- Monte Carlo: start, seed --------------------------------------------------
for func in (parlab.count_hits, parlab.estimate_pi):
    fname = func.__name__
    case(func, (10,), {"start": -1}, ValueError, "start", f"{fname}-start-negative")
    case(func, (10,), {"start": 2**63 - 9}, OverflowError, "start",
         f"{fname}-start-past-2**63")
    case(func, (1,), {"start": 2**63}, OverflowError, "start", f"{fname}-start-2**63")
    case(func, (10,), {"start": 1.5}, TypeError, "start", f"{fname}-start-float")
    case(func, (10,), {"seed": -1}, ValueError, "seed", f"{fname}-seed-negative")
    for bad in [1.5, "x", True, [1]]:
        case(func, (10,), {"seed": bad}, TypeError, "seed",
             f"{fname}-seed-{type(bad).__name__}")

# -- io_wait -------------------------------------------------------------------
case(parlab.io_wait, (-0.1,), {}, ValueError, "seconds", "io_wait-negative")
case(parlab.io_wait, (math.nan,), {}, ValueError, "seconds", "io_wait-nan")
case(parlab.io_wait, (math.inf,), {}, (ValueError, OverflowError), "seconds", "io_wait-inf")
case(parlab.io_wait, ("1",), {}, TypeError, "seconds", "io_wait-str")
case(parlab.io_wait, (None,), {}, TypeError, "seconds", "io_wait-None")

# -- Counter -------------------------------------------------------------------
case(increment, (1,), {"mode": "fast"}, ValueError,
     all_of("mode", "racy", "locked", "atomic"), "increment-mode-unknown")
for bad in [None, 1]:
    case(increment, (1,), {"mode": bad}, TypeError, "mode",
         f"increment-mode-{type(bad).__name__}")
case(parlab.Counter, (), {"value": "x"}, TypeError, "value", "Counter-value-str")
case(parlab.Counter, (1.5,), {}, TypeError, "value", "Counter-value-float")
case(parlab.Counter, (2**63,), {}, OverflowError, "value", "Counter-value-2**63")
case(parlab.Counter, (-2**63 - 1,), {}, OverflowError, "value", "Counter-value-below-int64")
case(setattr, (parlab.Counter(), "value", 1.5), {}, TypeError, "value", "Counter-set-float")
case(setattr, (parlab.Counter(), "value", 2**63), {}, OverflowError, "value",
     "Counter-set-2**63")
case(delattr, (parlab.Counter(), "value"), {}, (TypeError, AttributeError), "value",
     "Counter-del-value")

# -- every kernel: release_gil, keyword-only arguments -------------------------
KERNEL_CALLS = [(parlab.cdist, (A, B)), (parlab.count_hits, (10,)),
                (parlab.estimate_pi, (10,)), (parlab.cpu_work, (10,)),
                (parlab.io_wait, (0.0,)), (increment, (1,))]
for func, args in KERNEL_CALLS:
    for bad in [1, 0, None, "yes"]:
        case(func, args, {"release_gil": bad}, TypeError, "release_gil",
             f"{func.__name__}-release_gil-{bad!r}")
# The next positional argument would be a keyword-only one.
for func, args in [(parlab.cdist, (A, B, "euclidean", None)), (parlab.count_hits, (10, 0)),
                   (parlab.estimate_pi, (10, 0)), (parlab.cpu_work, (10, True)),
                   (parlab.io_wait, (0.0, True)), (increment, (1, "racy"))]:
    case(func, args, {}, TypeError, "positional", f"{func.__name__}-keyword-only")


@pytest.mark.parametrize("func, args, kwargs, exc, match", CASES)
def test_bad_input_raises(func, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        func(*args, **kwargs)


def test_failed_call_leaves_out_and_counter_untouched():
    out = np.full((2, 4), 7.0)
    with pytest.raises(ValueError):
        parlab.cdist(A, B, metric="cityblock", out=out)
    assert (out == 7.0).all()
    c = parlab.Counter(3)
    with pytest.raises(ValueError):
        c.increment(5, mode="fast")
    with pytest.raises(TypeError):
        c.value = 1.5
    assert c.value == 3


@pytest.mark.parametrize("func, args", [(parlab.count_hits, (5,)), (parlab.estimate_pi, (5,)),
                                        (parlab.cpu_work, (5,)), (increment, (5,))])
def test_numpy_integers_are_counts(func, args):
    for kind in (np.int64, np.int32, np.uint16):
        func(kind(args[0]))


MEMORY_ERROR_SCRIPT = """
import resource
import numpy as np
import parlab
import psutil

# Cap the address space a little above what is mapped now, so that a copy of
# the 16 GiB broadcast input fails as fast as the 2**65-byte result does.
cap = psutil.Process().memory_info().vms + (2 << 30)
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
X = np.broadcast_to(np.zeros((1, 1)), (2**31, 1))
try:
    parlab.cdist(X, X, release_gil={release_gil})
except MemoryError:
    print("MemoryError")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="no resource.setrlimit on Windows")
def test_result_too_large_raises_memory_error(release_gil):
    # In a child process: a crash must not take the test run with it.
    script = textwrap.dedent(MEMORY_ERROR_SCRIPT.format(release_gil=release_gil))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "MemoryError", proc.stderr


# -- argument domains, by hypothesis -------------------------------------------
# Each property classifies any drawn value the way the docstrings describe,
# using Python's own conversions as the reference, and checks the kernel
# agrees: the right exception naming the argument, or the right result.

NOT_NUMBERS = st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.binary(max_size=5),
                        st.lists(st.integers(), max_size=2), st.complex_numbers())


def numbers_as(kinds, values: st.SearchStrategy) -> st.SearchStrategy:
    """``values`` converted to one of the number types ``kinds``."""
    return st.tuples(st.sampled_from(kinds), values).map(lambda kv: kv[0](kv[1]))


# io_wait: every real number, except (0.1 ms, 1e9 s], which would really wait.
SECONDS = st.one_of(
    NOT_NUMBERS,
    numbers_as([int, Fraction, Decimal], st.one_of(
        st.integers(max_value=0), st.integers(min_value=10**9 + 1),
        st.integers(min_value=2**1024), st.integers(max_value=-2**1024))),  # past float
    numbers_as([float, np.float64, Decimal], st.one_of(
        st.floats(max_value=1e-4), st.floats(min_value=1e9, exclude_min=True),
        st.just(math.nan))),
)


@given(SECONDS, st.booleans())
def test_io_wait_argument_domain(seconds, release_gil):
    def call():
        return parlab.io_wait(seconds, release_gil=release_gil)

    if isinstance(seconds, (bool, str, bytes, list, complex)) or seconds is None:
        with pytest.raises(TypeError, match="seconds"):
            call()
        return
    try:
        value = float(seconds)
    except OverflowError:
        with pytest.raises(OverflowError) as info:
            call()
        if type(seconds) is int:  # a Fraction's own __float__ raised: may stay as it is
            assert "seconds" in str(info.value)
            assert isinstance(info.value.__cause__, OverflowError)
        return
    if value == math.inf:
        with pytest.raises((ValueError, OverflowError), match="seconds"):
            call()
    elif not 0 <= value <= 1e9:  # NaN included
        with pytest.raises(ValueError, match="seconds"):
            call()
    else:
        assert call() is None


NUMPY_INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
# cpu_work: every int, except (3000, 2**63), which would run for too long.
ITERATIONS = st.one_of(
    NOT_NUMBERS,
    st.floats(), numbers_as([np.float64, Fraction, Decimal], st.integers(0, 10)),
    st.integers(max_value=3000), st.integers(min_value=2**63),
    st.tuples(st.sampled_from(NUMPY_INTS), st.integers(0, 127)).map(lambda kv: kv[0](kv[1])),
)


@given(ITERATIONS, st.booleans())
def test_cpu_work_argument_domain(iterations, release_gil):
    def call():
        return parlab.cpu_work(iterations, release_gil=release_gil)

    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)):
        with pytest.raises(TypeError, match="iterations"):
            call()
    elif iterations >= 2**63:
        with pytest.raises(OverflowError, match="iterations"):
            call()
    elif iterations < -2**63:
        with pytest.raises((ValueError, OverflowError), match="iterations"):
            call()
    elif iterations < 0:
        with pytest.raises(ValueError, match="iterations"):
            call()
    else:
        assert call() == python_long_comp(int(iterations))
