"""parlab.cdist against scipy.spatial.distance.cdist."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial import distance

import parlab
from conftest import run_threaded

pytestmark = [pytest.mark.fast, pytest.mark.sanitize, pytest.mark.portability,
              pytest.mark.parallel, pytest.mark.tsan]

METRICS = ["euclidean", "sqeuclidean"]
DTYPES = [np.int32, np.int64, np.uint8, np.float32, np.float64, np.bool_]
# Ways to hold the same values in memory; each is a different path through
# the binding's conversion.
LAYOUTS = ["C", "F", "transposed", "negative", "steps", "list"]
RTOL, ATOL = 1e-12, 1e-300


def expected(XA, XB, metric: str) -> np.ndarray:
    """SciPy's answer, on float64 copies (it converts the same way)."""
    return distance.cdist(np.asarray(XA, np.float64), np.asarray(XB, np.float64), metric)


def check(XA, XB, metric: str = "euclidean", **kwargs) -> np.ndarray:
    """Call parlab.cdist and compare with SciPy; returns parlab's result."""
    got = parlab.cdist(XA, XB, metric=metric, **kwargs)
    want = expected(XA, XB, metric)
    assert got.dtype == np.float64
    assert got.shape == want.shape
    assert_allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True)
    return got


def laid_out(a: np.ndarray, layout: str):
    """``a``'s values in the memory layout ``layout``."""
    if layout == "C":
        return np.ascontiguousarray(a)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "transposed":
        return np.ascontiguousarray(a.T).T
    if layout == "negative":
        return np.ascontiguousarray(a[::-1, ::-1])[::-1, ::-1]
    if layout == "steps":
        big = np.zeros((2 * a.shape[0] + 1, 3 * a.shape[1] + 2), a.dtype)
        big[1::2, 2::3] = a
        return big[1::2, 2::3]
    if layout == "list":
        return a.tolist()
    raise AssertionError(layout)


def random_matrix(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Random values spread over a useful part of ``dtype``'s range."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(dtype)


# -- explicit cases ------------------------------------------------------------

def test_docstring_example():
    assert_array_equal(parlab.cdist([[0, 0]], [[3, 4]]), [[5.0]])
    assert_array_equal(parlab.cdist([[0, 0]], [[3, 4]], metric="sqeuclidean"), [[25.0]])


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_dtypes_and_layouts(metric, dtype, layout):
    rng = np.random.default_rng([ord(c) for c in f"{metric}{np.dtype(dtype)}{layout}"])
    XA = random_matrix(rng, (13, 5), dtype)
    XB = random_matrix(rng, (7, 5), dtype)
    check(laid_out(XA, layout), laid_out(XB, layout), metric)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("mA, mB, n", [(0, 3, 2), (3, 0, 2), (0, 0, 2), (3, 2, 0),
                                       (0, 0, 0), (1, 1, 1), (1, 5, 1)])
def test_empty_and_degenerate_shapes(metric, mA, mB, n):
    rng = np.random.default_rng(0)
    got = check(rng.random((mA, n)), rng.random((mB, n)), metric)
    assert got.shape == (mA, mB)
    if n == 0:
        assert_array_equal(got, np.zeros((mA, mB)))


def test_mixed_dtypes():
    rng = np.random.default_rng(1)
    check(random_matrix(rng, (6, 4), np.uint8), random_matrix(rng, (5, 4), np.float32))
    check(random_matrix(rng, (6, 4), np.bool_), [[1, 2, 3, 4]])


def test_close_points_keep_relative_accuracy():
    # The expansion |a|^2 + |b|^2 - 2ab would lose every digit here.
    XA = np.array([[1e8, 1e8]])
    XB = XA + np.array([[1e-6, 0.0]])
    check(XA, XB)
    check(XA, XB, "sqeuclidean")


@pytest.mark.parametrize("metric", METRICS)
def test_nan_and_inf_propagate_like_scipy(metric):
    special = np.array([[np.nan, 0.0], [np.inf, 1.0], [-np.inf, 2.0], [1.0, 2.0],
                        [np.inf, np.nan], [1e200, 0.0]])
    check(special, special, metric)


def test_result_is_new_c_contiguous_float64():
    XA = np.asfortranarray(np.arange(12.0).reshape(4, 3))
    got = parlab.cdist(XA, XA[::-1])
    assert got.dtype == np.float64
    assert got.shape == (4, 4)
    assert got.flags.c_contiguous and got.flags.owndata and got.flags.writeable


@pytest.mark.parametrize("metric", METRICS)
def test_released_and_held_give_identical_results(metric):
    rng = np.random.default_rng(2)
    XA, XB = rng.random((40, 9)), rng.random((31, 9))
    assert_array_equal(parlab.cdist(XA, XB, metric=metric, release_gil=True),
                       parlab.cdist(XA, XB, metric=metric, release_gil=False))


@pytest.mark.parametrize("layout", ["C", "F", "negative", "steps"])
def test_inputs_never_modified(release_gil, layout):
    rng = np.random.default_rng(3)
    XA = laid_out(rng.random((9, 4)), layout)
    XB = laid_out(rng.integers(0, 9, (6, 4)), layout)
    XA_before, XB_before = XA.copy(), XB.copy()
    out = np.empty((9, 6))
    for kwargs in ({}, {"out": out}, {"metric": "sqeuclidean"}):
        parlab.cdist(XA, XB, release_gil=release_gil, **kwargs)
        assert_array_equal(XA, XA_before)
        assert_array_equal(XB, XB_before)


# -- out= ----------------------------------------------------------------------

@pytest.mark.parametrize("metric", METRICS)
def test_out_full(release_gil, metric):
    rng = np.random.default_rng(4)
    XA, XB = rng.random((8, 3)), rng.random((5, 3))
    out = np.full((8, 5), -1.0)
    got = parlab.cdist(XA, XB, metric=metric, out=out, release_gil=release_gil)
    assert got is out
    assert_allclose(out, expected(XA, XB, metric), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("chunk", [1, 3, 7, 50])
def test_out_row_blocks_fill_the_whole_matrix(release_gil, chunk):
    rng = np.random.default_rng(5)
    XA, XB = rng.random((23, 4)), rng.random((11, 4))
    D = np.full((23, 11), np.nan)
    for i in range(0, len(XA), chunk):
        block = D[i:i + chunk]
        assert parlab.cdist(XA[i:i + chunk], XB, out=block, release_gil=release_gil) is block
    assert_array_equal(D, parlab.cdist(XA, XB))
    assert_allclose(D, expected(XA, XB, "euclidean"), rtol=RTOL, atol=ATOL)


def test_out_row_blocks_from_threads():
    rng = np.random.default_rng(6)
    XA, XB = rng.random((400, 16)), rng.random((300, 16))
    D = np.full((400, 300), np.nan)
    bounds = np.linspace(0, len(XA), 5).astype(int)
    run_threaded(lambda t: parlab.cdist(XA[bounds[t]:bounds[t + 1]], XB,
                                        out=D[bounds[t]:bounds[t + 1]]), 4)
    assert_array_equal(D, parlab.cdist(XA, XB))


def test_out_column_block_with_contiguous_rows():
    rng = np.random.default_rng(7)
    XA, XB = rng.random((6, 3)), rng.random((4, 3))
    D = np.full((6, 10), -1.0)
    block = D[:, 2:6]
    assert parlab.cdist(XA, XB, out=block) is block
    assert_allclose(D[:, 2:6], expected(XA, XB, "euclidean"), rtol=RTOL, atol=ATOL)
    # Only the block was written.
    assert (D[:, :2] == -1.0).all() and (D[:, 6:] == -1.0).all()


@pytest.mark.parametrize("mA, mB", [(0, 5), (3, 0), (0, 0)])
def test_out_empty(mA, mB):
    # NumPy gives fresh empty arrays zero strides; nothing is written to them.
    out = np.empty((mA, mB))
    assert parlab.cdist(np.zeros((mA, 3)), np.zeros((mB, 3)), out=out) is out


def test_out_rows_in_reverse_order():
    # Contiguous rows, negative row stride: still a valid destination.
    rng = np.random.default_rng(8)
    XA, XB = rng.random((5, 3)), rng.random((4, 3))
    D = np.zeros((5, 4))
    parlab.cdist(XA, XB, out=D[::-1])
    assert_allclose(D[::-1], expected(XA, XB, "euclidean"), rtol=RTOL, atol=ATOL)


# -- hypothesis ----------------------------------------------------------------

def _elements(dtype: np.dtype):
    if dtype.kind == "f":
        # Bounded so sums of squares stay finite; inf and nan have their own test.
        bound = min(1e100, float(np.finfo(dtype).max))
        return st.floats(-bound, bound, width=dtype.itemsize * 8,
                         allow_nan=False, allow_infinity=False)
    return None  # the whole range of the integer or bool dtype


@st.composite
def matrix_pairs(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    n = draw(st.integers(0, 6))
    mA, mB = draw(st.integers(0, 8)), draw(st.integers(0, 8))
    XA = draw(hnp.arrays(dtype, (mA, n), elements=_elements(dtype)))
    XB = draw(hnp.arrays(dtype, (mB, n), elements=_elements(dtype)))
    layouts = [lay for lay in LAYOUTS if lay != "list" or (mA and mB)]  # [] is 1-D
    return (laid_out(XA, draw(st.sampled_from(layouts))),
            laid_out(XB, draw(st.sampled_from(layouts))))


@given(matrix_pairs(), st.sampled_from(METRICS), st.booleans())
def test_matches_scipy_hypothesis(pair, metric, release_gil):
    XA, XB = pair
    check(XA, XB, metric, release_gil=release_gil)


@given(matrix_pairs(), st.sampled_from(METRICS), st.booleans(), st.integers(0, 3),
       st.integers(0, 3), st.integers(0, 2))
def test_out_block_of_a_bigger_matrix_hypothesis(pair, metric, release_gil, above, below, left):
    XA, XB = pair
    mA, mB = np.shape(XA)[0], np.shape(XB)[0]
    D = np.full((above + mA + below, left + mB), -1.0)
    block = D[above:above + mA, left:]
    assert parlab.cdist(XA, XB, metric=metric, out=block, release_gil=release_gil) is block
    assert_allclose(block, expected(XA, XB, metric), rtol=RTOL, atol=ATOL)
    # Only the block was written.
    D[above:above + mA, left:] = -1.0
    assert (D == -1.0).all()


# -- SciPy's call form, native threads, inputs read in place -------------------

def test_scipy_call_form_metric_positional_any_case():
    rng = np.random.default_rng(11)
    XA, XB = rng.random((6, 4)), rng.random((5, 4))
    assert_array_equal(parlab.cdist(XA, XB, "SQEuclidean"), parlab.cdist(XA, XB, metric="sqeuclidean"))
    check(XA, XB, "euclidean")


@pytest.mark.parametrize("n_threads", [1, 2, 3, 8, None, -1])
def test_n_threads_gives_identical_results(n_threads):
    rng = np.random.default_rng(12)
    XA, XB = rng.normal(size=(301, 37)), rng.normal(size=(257, 37))
    one = parlab.cdist(XA, XB, n_threads=1)
    assert_array_equal(check(XA, XB, n_threads=n_threads), one)


def test_broadcast_rows_are_read_in_place():
    # Zero row strides: the binding must not copy (or mis-stride) them.
    row = np.arange(5.0)[None, :]
    XA = np.broadcast_to(row, (4, 5))
    XB = np.broadcast_to(row + 1.0, (300, 5))
    got = check(XA, XB)
    assert_allclose(got, np.full((4, 300), np.sqrt(5.0)), rtol=RTOL)
