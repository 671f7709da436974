"""Every experiment runs at tiny scale, keeps the table contract and cleans up."""
from __future__ import annotations

import io
import multiprocessing
import threading
import time

import matplotlib

matplotlib.use("Agg")  # before pyplot: tests draw without a display
import matplotlib.pyplot as plt  # noqa: E402
import psutil  # noqa: E402
import pytest  # noqa: E402
from tqdm._monitor import TMonitor  # noqa: E402

import parlab  # noqa: E402
from parlab.experiments import LESSON_COLUMNS, TABLE_COLUMNS, VERDICTS, catalog, run  # noqa: E402

EXPECTED_IDS = ([f"L0.{i}" for i in range(1, 8)] + [f"L1.{i}" for i in range(1, 6)]
                + [f"L2.{i}" for i in range(1, 6)] + [f"L3.{i}" for i in range(1, 7)]
                + [f"L4.{i}" for i in range(1, 5)] + [f"L5.{i}" for i in range(1, 4)]
                + [f"L6.{i}" for i in range(1, 5)])
# Long-lived helpers multiprocessing and loky start once per parent on purpose
# (they outlive every pool by design), like tqdm's one monitor thread;
# anything else left behind is a leak.
INFRASTRUCTURE = ("resource_tracker", "forkserver")


ALL_IDS = list(catalog().id)


def test_catalog_lists_every_lecture_experiment():
    cat = catalog()
    assert list(cat.columns) == ["id", "title", "lecture", "lecture_title", "shows", "timer"]
    missing = sorted(set(EXPECTED_IDS) - set(cat.id))
    assert not missing, f"experiments not registered: {missing}"
    assert cat.id.is_unique
    # Listed in lecture order: L0.x before L1.x, L1.2 before L1.10.
    keys = [tuple(int(p) for p in i[1:].split(".")) for i in cat.id]
    assert keys == sorted(keys)
    assert cat.title.str.len().gt(0).all() and cat.shows.str.len().gt(0).all()
    # Every experiment says what one timed run covers, for the report's "Timed:".
    untimed = cat.id[cat.timer.str.strip().str.len().eq(0)].tolist()
    assert not untimed, f"experiments without a timer text: {untimed}"
    beyond = cat.id.str.startswith(("L5.", "L6."))
    assert cat.lecture[~beyond].str.match(r"00\d_[0-9a-f]+\.txt").all()
    # parlab's own experiments, beyond the lectures, form two more groups.
    assert (cat.lecture[cat.id.str.startswith("L5.")] == "005_beyond_the_lectures").all()
    assert (cat.lecture[cat.id.str.startswith("L6.")] == "006_python_without_the_gil").all()


# On a free-threaded interpreter no experiment may turn the GIL on (by
# importing a module that does not declare Py_mod_gil, say).
GIL_BEFORE = parlab.info()["gil_enabled"]


@pytest.mark.parametrize("id", ALL_IDS)
def test_experiment_runs_at_tiny_scale(id):
    result = run(id, scale="tiny")
    assert parlab.info()["gil_enabled"] == GIL_BEFORE, f"{id} switched the GIL on"
    table = result.table
    assert (result.id, result.scale) == (id, "tiny")
    assert list(table.columns) == TABLE_COLUMNS
    assert len(table) >= 2 and (table.experiment == id).all()
    bad = table.loc[~table.correct.astype(bool), "variant"].tolist()
    assert not bad, f"{id}: outputs failed their checks: {bad}"
    assert table.release_gil.map(lambda v: v is None or isinstance(v, bool)).all()
    assert (table.seconds > 0).all() and (table.workers >= 1).all()
    assert table.variant.is_unique
    # The baseline row is measured against itself.
    assert (table.speedup.round(12) == 1.0).any()
    assert list(result.lessons.columns) == LESSON_COLUMNS
    assert len(result.lessons) >= 1
    assert result.lessons.holds.map(lambda v: isinstance(v, bool)).all()
    assert result.lessons.verdict.isin(VERDICTS).all()
    assert (result.lessons.holds == (result.lessons.verdict == "holds")).all()
    fig = result.figure()
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        assert buf.getvalue().startswith(b"\x89PNG")
        check_figure_kind(result, fig)
    finally:
        plt.close(fig)


# The figure each experiment must draw, told by its axes' labels: (x label, y label).
FIGURE_KINDS = {
    "L2.1": ("time since the first call", ""), "L3.1": ("time since the first call", ""),
    "L3.2": ("final count", ""), "L3.3": ("final count", ""), "L6.2": ("final count", ""),
    "L4.2": ("threads", "seconds"), "L4.3": ("BLAS threads per process", "processes"),
    "L3.6": ("rows of X", "time with 2 threads"), "L4.4": ("peak memory", ""),
}


def check_figure_kind(result, fig):
    labels = [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]
    if result.id in FIGURE_KINDS:
        x, y = FIGURE_KINDS[result.id]
        assert any(lx.startswith(x) and ly.startswith(y) for lx, ly in labels), labels
        return
    # Speedup bars: one chart per baseline, each naming it.
    charts = [lx for lx, _ in labels if lx.startswith("speedup over")]
    baselines = list(dict.fromkeys(result.table.speedup_over))
    assert charts == [f'speedup over "{b}" (x)' for b in baselines]
    # Every timed run is a dot on its variant's bar.
    dots = sum(len(line.get_xdata()) for ax in fig.axes
               if ax.get_xlabel().startswith("speedup over")
               for line in ax.lines if line.get_marker() == "o")
    assert dots == result.table.n_samples.sum() == len(result.samples)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_process_pool_experiment_under_start_method(method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available on this platform")
    result = run("L1.1", scale="tiny", start_method=method)
    assert result.table.correct.all()


def test_shared_memory_workers_under_spawn():
    # Workers attach to the parent's shared matrix by name in a fresh interpreter.
    result = run("L0.4", scale="tiny", start_method="spawn")
    assert result.table.correct.all()
    assert result.lessons.holds.iloc[:2].all()


def _leftover_children() -> list[str]:
    """Command lines of live processes this one started, except the helpers.

    Only a direct child can be a helper; what a helper forked (forkserver
    workers, which carry its command line) counts like any other process.
    """
    left = []
    for child in psutil.Process().children():
        try:
            procs = [child]
            if any(name in " ".join(child.cmdline()) for name in INFRASTRUCTURE):
                procs = child.children(recursive=True)
            left += [" ".join(p.cmdline()) for p in procs
                     if p.status() != psutil.STATUS_ZOMBIE]
        except psutil.NoSuchProcess:  # exited while we looked: not left behind
            continue
    return left


@pytest.mark.parametrize("id,method", [("L0.4", None), ("L0.7", None), ("L1.1", "forkserver"),
                                       ("L1.2", None), ("L1.3", None), ("L1.4", None),
                                       ("L1.5", None)])
def test_no_workers_left_behind(id, method):
    if method and method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available on this platform")
    threads_before = set(threading.enumerate())
    run(id, scale="tiny", start_method=method)

    def new_threads() -> set:
        return {t for t in set(threading.enumerate()) - threads_before
                if not isinstance(t, TMonitor)}

    # Pools join their workers on exit; allow the OS a moment to reap them.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
            multiprocessing.active_children() or _leftover_children() or new_threads()):
        time.sleep(0.05)
    assert multiprocessing.active_children() == []
    assert _leftover_children() == []
    assert new_threads() == set()
