"""Pictures of experiment results, one kind per lesson. Drawing never measures.

- :func:`speedup_figure`: speedup bars, one chart per baseline, with the GIL
  timelines of traced runs below (most experiments);
- :func:`timeline_figure`: only the timelines (when what matters is who ran
  when, not how fast: L2.1, L3.1);
- :func:`counts_figure`: final counts against the expected total, and the
  time per increment (races and locks: L3.2, L3.3);
- :func:`threads_curve_figure`: time against the thread count, cores marked (L4.2);
- :func:`grid_figure`: time over processes x threads (L4.3);
- :func:`regions_figure`: speedup bars of the numba loops, and two threads'
  time over one thread's against the input size, the crossover marked (L3.6);
- :func:`memory_figure`: peak memory of each variant against the budget and
  the file's size, and their times (L4.4).

One colour language everywhere (:data:`parlab._timeline.COLOURS`): green for
work with the GIL released, orange for work holding it, red for waiting to
get it, grey for code that is not a parlab kernel.

Figures come from pyplot, so they get the running backend's canvas (Jupyter
then displays a returned figure), and are closed at once, so pyplot neither
keeps them (the CLI draws one per experiment) nor shows them a second time.
"""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from parlab._timeline import COLOURS, timeline, trace_caption
from parlab.presentation import gil_word

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["speedup_figure", "timeline_figure", "counts_figure", "threads_curve_figure",
           "grid_figure", "regions_figure", "memory_figure", "timeline", "new_figure",
           "gil_colour"]


class Result(Protocol):
    """What a figure is drawn from: an experiment's result
    (:class:`parlab.experiments.Result`), named by what the figures read of
    it, so that drawing does not import the experiments, which draw."""

    id: str
    title: str
    scale: str
    table: "pd.DataFrame"
    samples: "pd.DataFrame | None"
    load: Any  # its Load: the figures read the cores it was measured on
    extras: dict[str, Any]


# Speedups spanning more than this factor are drawn on a log axis, or the
# slow variants would vanish next to a compiled kernel.
LOG_SPAN = 30.0
WIDTH = 11.0  # inches: every figure, so that the report's pictures line up
LABEL_CHARS = 48  # variant names are wrapped to this width on the axes


def gil_colour(release_gil: object) -> str:
    """The colour of a table row's ``release_gil`` (True, False, or None/NaN)."""
    return COLOURS[gil_word(release_gil, none="none")][0]


def _gil_legend(values) -> list[Patch]:
    keys = dict.fromkeys(gil_word(v, none="none") for v in values)
    return [Patch(color=COLOURS[k][0], label=COLOURS[k][1]) for k in keys]


def _wrap(text: str, width: int = LABEL_CHARS) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _labels(texts) -> None:
    """Bar labels stay readable where they cross a reference line."""
    for text in texts:
        text.set_bbox(dict(facecolor="white", edgecolor="none", alpha=0.8, pad=0.5))


def new_figure(**kwargs) -> Figure:
    """A figure for the running backend that pyplot does not keep track of."""
    import matplotlib.pyplot as plt

    fig = plt.figure(layout="constrained", **kwargs)
    plt.close(fig)
    return fig


def _title(fig: Figure, result: Result) -> None:
    fig.suptitle(_wrap(f"{result.id}: {result.title} ({result.scale} scale)", 90),
                 x=0.01, ha="left", fontsize="large")


# ---------------------------------------------------------------- speedup bars

def speedup_figure(result: Result) -> Figure:
    """Horizontal bars of every variant's speedup, one chart per baseline.

    Bars are coloured by whether a parlab kernel ran with the GIL released,
    held, or not at all; a variant whose output is not what it should be is
    hatched. Dashed line: 1x (the baseline); dotted line: the core count, the
    most a parallel variant can reach. One GIL timeline follows for every
    traced variant.
    """
    table = result.table
    groups = [(over, table[table.speedup_over == over])
              for over in dict.fromkeys(table.speedup_over)] or [("", table)]
    traces = result.extras.get("traces", {})
    heights = [1.2 + 0.42 * sum(len(_wrap(v).splitlines()) for v in rows.variant)
               for _, rows in groups]
    heights += [1.6 + 0.45 * tr.events.thread_seq.nunique() for tr in traces.values()]
    fig = new_figure(figsize=(WIDTH, sum(heights) + 0.6))
    _title(fig, result)
    axes = np.atleast_1d(fig.subplots(len(heights), 1, height_ratios=heights))
    for ax, (over, rows) in zip(axes, groups):
        _speedup_bars(ax, rows, over, result.load.cores, _run_speedups(result, rows, over))
    for ax, (variant, tr) in zip(axes[len(groups):], traces.items()):
        timeline(tr, ax=ax, title=_wrap(f"timeline of \"{variant}\": {trace_caption(tr)}", 110))
    return fig


def _runs(result: Result, variant: str) -> np.ndarray:
    """Every timed run of ``variant``, in seconds (none for a result without samples)."""
    samples = result.samples
    if samples is None or samples.empty:
        return np.array([])
    return samples.loc[samples.variant == variant, "seconds"].to_numpy(dtype=float)


def _dots(ax: Axes, values, y, **kwargs) -> None:
    """One dot per run, jittered across its bar so that equal runs stay visible."""
    values = np.asarray(values, dtype=float)
    jitter = np.random.default_rng(0).uniform(-0.25, 0.25, len(values))
    ax.plot(values, y + jitter, "o", color="black", markersize=3, alpha=0.55, zorder=3,
            **kwargs)


RUN_HANDLE = Line2D([], [], color="black", marker="o", linestyle="none", markersize=3,
                    alpha=0.55, label="one run (bars: medians)")


def _run_speedups(result: Result, rows: pd.DataFrame, over: str) -> list[np.ndarray]:
    """Each row's runs as speedups over the median of ``over``: one dot per run."""
    table = result.table
    if over not in set(table.variant):
        return [np.array([])] * len(rows)
    base = float(table.loc[table.variant == over, "seconds"].iloc[0])
    return [base / _runs(result, v) for v in rows.variant]


def _speedup_bars(ax: Axes, rows: pd.DataFrame, over: str, cores: int,
                  runs: list[np.ndarray]) -> None:
    if rows.empty:
        ax.text(0.5, 0.5, "nothing measured", ha="center", va="center", transform=ax.transAxes)
        return
    speedup = rows["speedup"].to_numpy(dtype=float)
    y = np.arange(len(rows))
    bars = ax.barh(y, speedup, color=[gil_colour(v) for v in rows.release_gil])
    for bar, ok in zip(bars, rows.correct):
        if not ok:
            bar.set_hatch("xx")
            bar.set_edgecolor("black")
    _labels(ax.bar_label(bars, labels=[f"{s:.3g}x" for s in speedup], padding=3,
                         fontsize="small"))
    # Every run as a dot on its bar: a noisy comparison looks noisy.
    for yi, r in zip(y, runs):
        _dots(ax, r, yi)
    ax.set_yticks(y, [_wrap(v) for v in rows.variant], fontsize="small")
    ax.invert_yaxis()
    every = np.concatenate([speedup, *runs])
    if every.max() / every.min() > LOG_SPAN:
        ax.set_xscale("log")
    ax.axvline(1, color="black", linestyle="--", linewidth=1)
    if speedup.max() >= 0.5 * cores:
        ax.axvline(cores, color="black", linestyle=":", linewidth=1)
    ax.set_xlabel(f"speedup over \"{over}\" (x)")
    handles = _gil_legend(rows.release_gil) + [RUN_HANDLE,
        Line2D([], [], color="black", linestyle="--", label="baseline (1x)"),
        Line2D([], [], color="black", linestyle=":", label=f"{cores} cores")]
    if not rows.correct.all():
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="xx",
                             label="output not as expected"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    ax.margins(x=0.15)


# ---------------------------------------------------------------- timelines only

def timeline_figure(result: Result) -> Figure:
    """One GIL timeline per traced variant: who ran when, and holding what."""
    traces = result.extras.get("traces", {})
    if not traces:
        return speedup_figure(result)
    heights = [1.8 + 0.45 * tr.events.thread_seq.nunique() for tr in traces.values()]
    fig = new_figure(figsize=(WIDTH, sum(heights) + 0.6))
    _title(fig, result)
    axes = np.atleast_1d(fig.subplots(len(heights), 1, height_ratios=heights))
    for ax, (variant, tr) in zip(axes, traces.items()):
        timeline(tr, ax=ax, title=_wrap(f"\"{variant}\": {trace_caption(tr)}", 110))
    return fig


# ---------------------------------------------------------------- counts

def counts_figure(result: Result) -> Figure:
    """Final counts as a share of the expected total, beside the time per increment.

    ``result.extras["counts"]`` maps a variant to ``(count, expected)``.
    The share shows lost updates; the time per increment compares variants
    that did different numbers of increments.
    """
    counts = result.extras["counts"]
    rows = result.table.set_index("variant").loc[list(counts)]
    share = np.array([100 * c / e for c, e in counts.values()])
    ns = np.array([s * 1e9 / e for s, (_, e) in zip(rows.seconds, counts.values())])
    colours = [gil_colour(v) for v in rows.release_gil]
    labels = [_wrap(v, 40) for v in counts]
    fig = new_figure(figsize=(WIDTH, 1.6 + 0.5 * sum(len(lb.splitlines()) for lb in labels)))
    _title(fig, result)
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=[1, 1])
    y = np.arange(len(counts))
    bars = left.barh(y, share, color=colours)
    _labels(left.bar_label(bars, labels=[f"{c:,} of {e:,}" for c, e in counts.values()],
                           padding=3, fontsize="x-small"))
    left.axvline(100, color="black", linestyle="--", linewidth=1)
    left.set_xlim(0, 140)
    left.set_xlabel("final count (% of the increments made)")
    left.set_yticks(y, labels, fontsize="small")
    left.invert_yaxis()
    bars = right.barh(y, ns, color=colours)
    _labels(right.bar_label(bars, labels=[f"{v:,.0f} ns" if v >= 100 else f"{v:.3g} ns"
                                          for v in ns], padding=3, fontsize="x-small"))
    runs = [_runs(result, v) * 1e9 / e for v, (_, e) in counts.items()]
    for yi, r in zip(y, runs):
        _dots(right, r, yi)
    every = np.concatenate([ns, *runs])
    right.set_xscale("log")
    right.set_xlim(every.min() / 2, every.max() * 8)  # room for the labels on a log axis
    right.set_xlabel("time per increment (ns, log scale; bars: medians, dots: runs)")
    fig.legend(handles=_gil_legend(rows.release_gil), loc="outside lower center",
               ncols=3, fontsize="small")
    return fig


# ---------------------------------------------------------------- threads curve

def threads_curve_figure(result: Result) -> Figure:
    """Time of one call against its thread count; the core count marked."""
    table = result.table.sort_values("workers")
    cores = result.load.cores
    fig = new_figure(figsize=(WIDTH * 0.7, 4.2))
    _title(fig, result)
    ax = fig.subplots()
    ax.plot(table.workers, table.seconds, marker="o", color="black", label="median")
    for w, v in zip(table.workers, table.variant):
        r = _runs(result, v)
        ax.plot([w] * len(r), r, "o", color="grey", markersize=3, alpha=0.6)
    if result.samples is not None and not result.samples.empty:
        ax.plot([], [], "o", color="grey", markersize=3, alpha=0.6, label="one run")
    for w, s in zip(table.workers, table.seconds):
        ax.annotate(f"{s:.3g} s", (w, s), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize="small")
    ax.axvline(cores, color="black", linestyle=":", linewidth=1, label=f"{cores} cores")
    ax.set_xticks(sorted(set(table.workers)))
    ax.set_xlabel("threads (threadpoolctl limit)")
    ax.set_ylabel("seconds per call")
    highest = max([table.seconds.max(), *(_runs(result, v).max(initial=0)
                                            for v in table.variant)])
    ax.set_ylim(0, highest * 1.25)
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(alpha=0.3)
    return fig


# ---------------------------------------------------------------- processes x threads

def grid_figure(result: Result) -> Figure:
    """Seconds for every (processes, threads) pair measured; oversubscribed cells hatched.

    ``result.extras["grid"]`` maps ``(processes, threads)`` to seconds (the
    median), ``result.extras["grid_runs"]`` to every run's, shown as a range.
    """
    cells = result.extras["grid"]
    cores = result.load.cores
    procs = sorted({p for p, _ in cells})
    threads = sorted({t for _, t in cells})
    grid = np.full((len(procs), len(threads)), np.nan)
    for (p, t), s in cells.items():
        grid[procs.index(p), threads.index(t)] = s
    fig = new_figure(figsize=(WIDTH * 0.6, 1.8 + 0.7 * len(procs)))
    _title(fig, result)
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="viridis_r", aspect="auto")
    best = min(cells, key=cells.get)
    for (p, t), s in cells.items():
        i, j = procs.index(p), threads.index(t)
        over = p * t > cores
        runs = result.extras.get("grid_runs", {}).get((p, t), [])
        spread = f"\nruns {min(runs):.2f}-{max(runs):.2f}" if len(runs) > 1 else ""
        text = (f"{s:.2f} s{spread}" + ("\nmore than the cores" if over else "")
                + ("\nfastest" if (p, t) == best else ""))
        ax.text(j, i, text, ha="center", va="center", fontsize="small",
                color="white" if s > np.nanmean(grid) else "black")
        if over:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//",
                                   edgecolor="grey"))
    ax.set_xticks(range(len(threads)), threads)
    ax.set_yticks(range(len(procs)), procs)
    ax.set_xlabel("BLAS threads per process")
    ax.set_ylabel("processes")
    fig.colorbar(image, ax=ax, label="seconds for the batch")
    return fig


# ---------------------------------------------------------------- parallel regions

def regions_figure(result: Result) -> Figure:
    """The numba loops' speedup bars; below, two threads' time over one thread's
    for each input size (below 1: two threads win), the crossover marked."""
    table = result.table
    numba_rows = table[table.backend == "numba"]
    fig = new_figure(figsize=(WIDTH, 3.2 + 0.42 * len(numba_rows) + 3.4))
    _title(fig, result)
    top, bottom = fig.subplots(2, 1, height_ratios=[1.2 + 0.42 * len(numba_rows), 3.4])
    over = str(numba_rows.speedup_over.iloc[0]) if len(numba_rows) else ""
    _speedup_bars(top, numba_rows, over, result.load.cores,
                  _run_speedups(result, numba_rows, over))
    crossover = result.extras.get("crossover")
    bottom.set_xlabel("rows of X in cdist(X, X) (log scale)")
    bottom.set_ylabel("time with 2 threads / with 1")
    bottom.plot(crossover.sizes, crossover.ratios(), marker="o", color="black")
    bottom.set_xscale("log", base=2)
    bottom.axhline(1, color="black", linestyle="--", linewidth=1, label="as fast as 1 thread")
    rows = result.extras.get("crossover_rows")
    if rows is not None:
        bottom.axvline(rows, color=COLOURS["released"][0], linewidth=2,
                       label=f"crossover: two threads win from {rows} rows on")
    bottom.legend(loc="upper right", fontsize="small")
    bottom.grid(alpha=0.3)
    return fig


# ---------------------------------------------------------------- memory

def memory_figure(result: Result) -> Figure:
    """Each variant's peak memory against the budget and the file's size; its time."""
    peaks = result.extras["peak_bytes"]
    mb = 2 ** 20
    names = list(peaks)
    y = np.arange(len(names))
    fig = new_figure(figsize=(WIDTH, 1.8 + 0.5 * len(names)))
    _title(fig, result)
    left, right = fig.subplots(1, 2, width_ratios=[3, 2])
    left.barh(y, [peaks[n] / mb for n in names], color=COLOURS["none"][0])
    left.set_yticks(y, [_wrap(n, 32) for n in names], fontsize="small")
    left.invert_yaxis()
    left.axvline(result.extras["budget_bytes"] / mb, color="black", linestyle="--",
                 label="memory budget")
    left.axvline(result.extras["file_bytes"] / mb, color="black", linestyle=":",
                 label="file size")
    left.set_xlabel("peak memory allocated (MB)")
    left.legend(loc="lower right", fontsize="small")
    seconds = result.table.set_index("variant").seconds
    right.barh(y, [seconds[n] for n in names], color=COLOURS["none"][0])
    for yi, n in zip(y, names):
        _dots(right, _runs(result, n), yi)
    right.set_yticks(y, [])
    right.invert_yaxis()
    right.set_xlabel("seconds (bars: medians, dots: runs)")
    return fig
