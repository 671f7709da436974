"""Drawing a trace: one row per thread, bars coloured by what the thread did.

Only draws; the measuring is in :mod:`parlab.tracing`. Exposed as
``parlab.plot.timeline``.
"""
from __future__ import annotations

import numpy as np
from matplotlib.patches import Patch

# The one colour language of every parlab figure: (colour, legend label).
COLOURS = {
    "released": ("#2ca02c", "GIL released (parlab kernel)"),
    "held": ("#ff7f0e", "GIL held (parlab kernel)"),
    "wait": ("#d62728", "waiting for the GIL"),
    "none": ("#9e9e9e", "no parlab kernel (Python, NumPy, ...)"),
}
STATES = {
    "released": COLOURS["released"],
    "held": COLOURS["held"],
    "wait": COLOURS["wait"],
    "span": ("#9e9e9e", "Python span"),
}

# Bars closer than this fraction of the whole trace are merged: at notebook
# size that is under a pixel, and thousands of calls stay a few rectangles.
MERGE_FRACTION = 1e-3
# A row with at most this many bars keeps every call apart (a white edge
# between back-to-back calls), so one can count them.
DISTINCT_CALLS = 40


def merge_intervals(starts: np.ndarray, ends: np.ndarray, gap: float) -> list[tuple[float, float]]:
    """(start, width) pairs covering the intervals, joining those closer than gap."""
    if len(starts) == 0:
        return []
    order = np.argsort(starts, kind="stable")
    merged: list[list[float]] = []
    for s, e in zip(starts[order], ends[order]):
        if merged and s <= merged[-1][1] + gap:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e - s) for s, e in merged]


def _segments(tr, t0: int, scale: float) -> dict[tuple[int, str], tuple[list, list]]:
    """(thread, state) -> (starts, ends) in display units."""
    ev = tr.events
    segs: dict[tuple[int, str], tuple[list, list]] = {}

    def add(thread, state, start_ns, end_ns):
        starts, ends = segs.setdefault((int(thread), state), ([], []))
        starts.append((start_ns - t0) / scale)
        ends.append((end_ns - t0) / scale)

    for row in ev.itertuples(index=False):
        if row.kind == "span":
            add(row.thread_seq, "span", row.start_ns, row.end_ns)
        elif row.gil_held:
            add(row.thread_seq, "held", row.work_start_ns, row.work_end_ns)
        else:
            add(row.thread_seq, "released", row.work_start_ns, row.work_end_ns)
            add(row.thread_seq, "wait", row.work_end_ns, int(row.reacquired_ns))
    for row in tr.waits.itertuples(index=False):
        add(row.thread_seq, "wait", row.start_ns, row.end_ns)
    return segs


def trace_caption(tr) -> str:
    """What a trace shows, in words a student can read."""
    s = tr.summary()
    threads = len(s["threads"])
    if s["calls"] == 0:
        return (f"{s['spans']} Python spans in {threads} thread{'s' * (threads != 1)} over "
                f"{s['wall_s'] * 1e3:.1f} ms")
    text = (f"{s['calls']} call{'s' * (s['calls'] != 1)} in {threads} thread{'s' * (threads != 1)} over "
            f"{s['wall_s'] * 1e3:.1f} ms; "
            f"on average {s['parallelism']:.2f} calls working at once")
    if tr.cpu_time:
        text += f", {s['cpu_parallelism']:.2f} cores busy"
    return text + f"; {s['gil_wait_s'] * 1e3:.1f} ms waiting for the GIL"


# A span's name is written on it when the span is at least this share of the axis.
LABEL_FRACTION = 0.12


def _label_spans(ax, spans, row_of, t0: int, scale: float, width: float) -> None:
    """Write each wide enough span's name on it."""
    for row in spans.itertuples(index=False):
        start, end = (row.start_ns - t0) / scale, (row.end_ns - t0) / scale
        if end - start >= LABEL_FRACTION * width:
            ax.text(start + 0.01 * width, row_of[row.thread_seq], row.kernel, va="center",
                    fontsize="x-small", clip_on=True,
                    bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1))


def timeline(tr, ax=None, *, title: str | None = None):
    """Gantt chart of a finished :class:`parlab.Trace`: one row per thread.

    Bars show work with the GIL released, work holding the GIL, waits to get
    the GIL back, and Python spans (``tr.span``), on a time axis starting at
    the first event. Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    ev = tr.events
    threads = list(dict.fromkeys(ev.thread_seq.tolist()))
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * max(len(threads), 1)))
    if len(ev) == 0:
        ax.set_title(title or "no kernel calls recorded")
        ax.set_yticks([])
        return ax

    t0 = int(ev.start_ns.min())
    wall_ns = int(ev.end_ns.max()) - t0
    scale, unit = (1e6, "ms") if wall_ns < 10e9 else (1e9, "s")
    gap = MERGE_FRACTION * wall_ns / scale
    segs = _segments(tr, t0, scale)
    row_of = {t: i for i, t in enumerate(threads)}
    for (thread, state), (starts, ends) in segs.items():
        colour, _ = STATES[state]
        y = row_of[thread]
        few = len(starts) <= DISTINCT_CALLS
        bars = merge_intervals(np.asarray(starts), np.asarray(ends), 0.0 if few else gap)
        if state == "span":
            ax.broken_barh(bars, (y - 0.4, 0.8), facecolors="none", edgecolors=colour,
                           hatch="///", linewidth=0.8, zorder=1)
        else:
            ax.broken_barh(bars, (y - 0.3, 0.6), facecolors=colour, zorder=2 + (state == "wait"),
                           edgecolors="white" if few and state != "wait" else "none",
                           linewidth=1.0)

    _label_spans(ax, ev[ev.kind == "span"], row_of, t0, scale, wall_ns / scale)
    ax.set_yticks(range(len(threads)), [tr.thread_label(t) for t in threads])
    ax.set_ylim(len(threads) - 0.5, -0.5)
    ax.set_xlim(0, wall_ns / scale)
    ax.set_xlabel(f"time since the first call ({unit})")
    # A legend entry only for what shows: released calls all end with a wait
    # for the GIL, usually microseconds long and invisible.
    # Spans are outlined, so even an empty one shows and gets its entry.
    present = {state for (_, state), (starts, ends) in segs.items()
               if state == "span" or np.sum(np.subtract(ends, starts)) >= gap}
    ax.legend(handles=[Patch(facecolor="none" if s == "span" else c, edgecolor=c,
                             hatch="///" if s == "span" else None, label=label)
                       for s, (c, label) in STATES.items() if s in present],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    ax.set_title(title or tr.describe(), fontsize="medium")
    ax.grid(axis="x", alpha=0.3)
    return ax
