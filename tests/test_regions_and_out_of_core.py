"""The workloads of L3.6 (where the parallel region opens) and L4.4 (column
means of a file larger than a memory budget), against independent references."""
from __future__ import annotations


import numpy as np
import pytest

import parlab
from parlab.experiments import measuring, parallel_regions, run
from parlab.workloads import larger_than_memory as ltm
from parlab.workloads import numba_pi, regions



@pytest.fixture(scope="module")
def kernels():
    built = regions.kernels()
    if built is None:
        pytest.skip(numba_pi.why_missing())
    return built


@pytest.mark.parametrize("name", regions.Kernels._fields)
def test_every_kernel_computes_the_operation(kernels, name):
    x = np.random.default_rng(0).uniform(-3, 3, (5, 7, 11))
    got = x.copy()
    getattr(kernels, name)(got)
    np.testing.assert_allclose(got, regions.math_op_reference(x), rtol=1e-13, atol=1e-15)


def test_regions_opened_per_loop():
    assert [regions.regions_opened((4, 5, 6), loop) for loop in ("outer", "middle", "inner")] \
        == [1, 4, 20]


@pytest.mark.parametrize("one, two, size", [
    ([1, 1, 1, 1], [2, 1.5, 0.5, 0.4], 30),  # two threads win from 30 rows on
    ([1, 1, 1, 1], [0.9, 1.2, 0.5, 0.4], 30),  # a win below a loss does not count
    ([1, 1, 1, 1], [2, 2, 2, 0.9], 40),
    ([1, 1, 1, 1], [2, 2, 2, 1.0], None),  # a tie is no win
    ([1, 1, 1, 1], [0.5, 0.5, 0.5, 0.5], 10),
])
def test_crossover_size(one, two, size):
    assert regions.Crossover([10, 20, 30, 40], one, two).size() == size


def test_loops_for_and_batch():
    calls = []
    loops = regions.loops_for(lambda: calls.append(1), min_seconds=0.001)
    assert loops >= 1 and (loops == 1 or loops % 4 == 0)
    calls.clear()
    assert regions.batch(lambda: calls.append(1) or len(calls), loops)() == loops
    assert len(calls) == loops


def test_threaded_cdist_inputs_give_the_same_matrix():
    X = regions.cdist_inputs(50)
    np.testing.assert_array_equal(parlab.cdist(X, X, n_threads=2), parlab.cdist(X, X, n_threads=1))


# ------------------------------------------------------------------ L4.4

def test_written_file_holds_what_its_sums_say(tmp_path):
    path = tmp_path / "a.npy"
    sums = ltm.write_array(path, 1_001, 6, block_rows=97, seed=3)
    whole = np.load(path)  # small here: the independent reference
    assert whole.shape == (1_001, 6) and whole.dtype == np.float64
    assert sums == [int(s) for s in whole.sum(axis=0)]
    assert np.all((whole >= 0) & (whole < ltm.MAX_VALUE) & (whole == np.round(whole)))
    np.testing.assert_array_equal(ltm.read_rows(path, 10, 35), whole[10:35])
    np.testing.assert_array_equal(ltm.exact_means(sums, 1_001), whole.mean(axis=0))


@pytest.mark.parametrize("block_rows", [1, 64, 1_000, 5_000])
def test_chunked_means_equal_the_exact_means(tmp_path, block_rows):
    path = tmp_path / "a.npy"
    sums = ltm.write_array(path, 1_000, 5, block_rows=333)
    want = ltm.exact_means(sums, 1_000)
    np.testing.assert_array_equal(ltm.means_by_hand(path, block_rows), want)
    np.testing.assert_array_equal(ltm.means_with_dask(path, block_rows, scheduler="threads"), want)


def test_lecture_pseudocode_is_wrong_for_unequal_chunks(tmp_path):
    # The lecture averages chunk means; with chunks of 400, 400 and 200 rows
    # that weighs the last rows double. Our weighted means do not.
    path = tmp_path / "a.npy"
    sums = ltm.write_array(path, 1_000, 3, block_rows=1_000)
    whole = np.load(path)
    lecture = sum(whole[i:i + 400].mean(axis=0) for i in range(0, 1_000, 400)) / 3
    want = ltm.exact_means(sums, 1_000)
    assert not np.allclose(lecture, want)
    np.testing.assert_array_equal(ltm.means_by_hand(path, 400), want)


def test_peak_memory_follows_the_block_not_the_file(tmp_path):
    path = tmp_path / "a.npy"
    rows, columns = 40_000, 50  # a 16 MB file
    ltm.write_array(path, rows, columns, block_rows=1_000)
    block_bytes = 1_000 * columns * 8
    _, small = ltm.measured(lambda: ltm.means_by_hand(path, 1_000))
    _, whole = ltm.measured(lambda: np.load(path).mean(axis=0))
    assert block_bytes <= small < 3 * block_bytes
    assert whole >= rows * columns * 8
    _, dask_peak = ltm.measured(lambda: ltm.means_with_dask(path, 1_000, scheduler="threads",
                                                            num_workers=2))
    assert block_bytes <= dask_peak < 8 * block_bytes


def test_measured_returns_the_result_and_leaves_tracing_as_it_was():
    import tracemalloc

    out, peak = ltm.measured(lambda: np.ones(1_000_000))
    assert out.shape == (1_000_000,) and peak >= 8_000_000
    assert not tracemalloc.is_tracing()


# ------------------------------------------ the experiments, and lessons that can fail

def verdicts(result) -> dict[str, str]:
    return dict(zip(result.lessons.lesson, result.lessons.verdict))


NOT_HOLDING = {"fails", "inconclusive"}  # a failure on a busy machine is inconclusive


class VirtualClock:
    """Stands in for the ``time`` module of the timing code: fake kernels move
    it forward by made-up durations, so lessons see exactly those timings."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> VirtualClock:
    c = VirtualClock()
    monkeypatch.setattr(measuring, "time", c)
    monkeypatch.setattr(regions, "time", c)
    return c


def timed_kernel(clock: VirtualClock, seconds: float):
    """A stand-in kernel: computes the right values and "takes" ``seconds``."""
    def kernel(ar):
        ar[...] = regions.math_op_reference(ar)
        clock.advance(seconds)

    return kernel


def fake_kernels(clock: VirtualClock, **seconds: float) -> regions.Kernels:
    times = dict(serial=0.02, outer=0.005, middle=0.006, inner=0.03, argument_only=0.02)
    times.update(seconds)
    return regions.Kernels(**{k: timed_kernel(clock, s) for k, s in times.items()})


@pytest.mark.parametrize("broken, lesson", [
    (dict(), None),
    (dict(inner=0.005), parallel_regions.INNER_SLOWER),
    (dict(outer=0.02, middle=0.02, inner=0.1), parallel_regions.OUTER_FASTER),
    (dict(argument_only=0.005), parallel_regions.ARGUMENT_ONLY),
])
def test_l36_numba_lessons_fail_when_their_timings_do(monkeypatch, clock, broken, lesson):
    monkeypatch.setattr(regions, "kernels", lambda: fake_kernels(clock, **broken))
    # The n_threads rows run on the virtual clock too: real calls would never move it.
    monkeypatch.setattr(parlab, "cdist", fake_threaded_cdist(clock, 1e-3, {1: 4e-8, 2: 2e-8}))
    result = run("L3.6", scale="tiny")
    got = verdicts(result)
    assert result.table.correct.all()
    for text in (parallel_regions.OUTER_FASTER, parallel_regions.INNER_SLOWER,
                 parallel_regions.ARGUMENT_ONLY):
        if text == lesson:
            assert got[text] in NOT_HOLDING
        elif lesson != parallel_regions.OUTER_FASTER:  # the others lean on the outer speedup
            assert got[text] == "holds", (text, result.lessons.observed.tolist())


def test_l36_without_numba_skips_its_rows(monkeypatch):
    monkeypatch.setattr(regions, "kernels", lambda: None)
    got = verdicts(run("L3.6", scale="tiny"))
    assert got[parallel_regions.INNER_SLOWER] == "skipped"


def fake_threaded_cdist(clock: VirtualClock, fixed_s: float, per_cell_s: dict[int, float]):
    """A ``parlab.cdist`` with ``n_threads``: the real matrix in a made-up time,
    ``fixed_s`` more with two threads, plus ``per_cell_s[k]`` per output cell."""
    real = parlab.cdist

    def cdist(XA, XB, *, metric="euclidean", out=None, release_gil=True, n_threads=1):
        D = real(XA, XB, metric=metric, out=out, release_gil=release_gil)
        clock.advance((fixed_s if n_threads == 2 else 0.0) + per_cell_s[n_threads] * D.size)
        return D

    return cdist


@pytest.mark.parametrize("fixed_s, per_cell, broken", [
    (1e-3, {1: 4e-8, 2: 2e-8}, set()),  # start-up costs, then two threads win
    (0.0, {1: 4e-8, 2: 2e-8}, {parallel_regions.SMALL_SLOWER}),  # no start-up cost
    (1e-3, {1: 4e-8, 2: 4e-8}, {parallel_regions.LARGE_FASTER, parallel_regions.SMALL_SLOWER,
                                parallel_regions.CROSSOVER}),  # never faster
])
def test_l36_thread_lessons_fail_when_their_timings_do(monkeypatch, clock, fixed_s, per_cell,
                                                        broken):
    monkeypatch.setattr(regions, "kernels", lambda: fake_kernels(clock))
    monkeypatch.setattr(parlab, "cdist", fake_threaded_cdist(clock, fixed_s, per_cell))
    result = run("L3.6", scale="tiny")
    got = verdicts(result)
    assert result.table.correct.all()
    for text in (parallel_regions.LARGE_FASTER, parallel_regions.SMALL_SLOWER,
                 parallel_regions.CROSSOVER):
        assert (got[text] in NOT_HOLDING) if text in broken else got[text] == "holds", \
            (text, result.lessons.observed.tolist())
    if not broken:
        # 128 rows: 1e-3 + 3.3e-4 s against 6.6e-4 s; 512 rows: 6.2e-3 against
        # 1.05e-2; 2048 rows: 8.5e-2 against 1.7e-1.
        assert result.extras["crossover_rows"] == 512


def test_l36_runs_its_thread_rows_with_parlab_n_threads():
    result = run("L3.6", scale="tiny")
    assert "skipped" not in {verdicts(result)[t] for t in (
        parallel_regions.LARGE_FASTER, parallel_regions.SMALL_SLOWER, parallel_regions.CROSSOVER)}
    assert result.table.variant.str.contains("n_threads=2").any()
    assert result.table.correct.all()


def test_l44_holds_and_removes_its_file(monkeypatch):
    written = []
    real = ltm.write_array
    monkeypatch.setattr(ltm, "write_array", lambda path, *a, **k: written.append(path)
                        or real(path, *a, **k))
    result = run("L4.4", scale="tiny")
    assert set(verdicts(result).values()) == {"holds"}, result.lessons.observed.tolist()
    assert result.table.correct.all()
    assert result.extras["file_bytes"] >= 8 * result.extras["budget_bytes"]
    assert written and not written[0].exists() and not written[0].parent.exists()


def test_l44_loading_everything_breaks_the_budget(monkeypatch):
    monkeypatch.setattr(ltm, "means_by_hand", lambda path, rows: np.load(path).mean(axis=0))
    result = run("L4.4", scale="tiny")
    broken = [lesson for lesson, v in verdicts(result).items() if v != "holds"]
    assert len(broken) == 1 and "by hand" in broken[0] and "budget" in broken[0]


def test_l44_a_wrong_mean_is_caught(monkeypatch):
    real = ltm.means_with_dask
    monkeypatch.setattr(ltm, "means_with_dask",
                        lambda *a, **k: np.nextafter(real(*a, **k), np.inf))
    result = run("L4.4", scale="tiny")
    assert not result.table.correct.all()
    assert verdicts(result)["By hand and with Dask the means equal the exact means, bit for bit"] \
        == "fails"


def test_l44_removes_its_file_on_error(monkeypatch):
    written = []
    real = ltm.write_array
    monkeypatch.setattr(ltm, "write_array", lambda path, *a, **k: written.append(path)
                        or real(path, *a, **k))

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ltm, "means_with_dask", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        run("L4.4", scale="tiny")
    assert written and not written[0].parent.exists()
