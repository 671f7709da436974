"""Pictures of experiment results. Drawing never measures.

Figures come from pyplot, so they get the running backend's canvas (Jupyter
then displays a returned figure), and are closed at once, so pyplot neither
keeps them (the CLI draws one per experiment) nor shows them a second time.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from parlab._timeline import timeline

if TYPE_CHECKING:
    from parlab.experiments import Result

__all__ = ["speedup_figure", "timeline", "new_figure"]

GIL_STYLE = {
    True: ("tab:green", "parlab kernel, GIL released"),
    False: ("tab:red", "parlab kernel, GIL held"),
    None: ("tab:gray", "no parlab kernel"),
}
# Speedups spanning more than this factor are drawn on a log axis, or the
# slow variants would vanish next to a compiled kernel.
LOG_SPAN = 30.0


def speedup_figure(result: Result, ax: Axes | None = None) -> Figure:
    """Horizontal bars of every variant's speedup over its baseline.

    Bars are coloured by whether a parlab kernel ran with the GIL released,
    held, or not at all; a variant whose output failed its check is hatched.
    Dashed line: 1x (the baseline); dotted line: the machine's core count, the
    most a parallel variant can reach. Draws on ``ax`` when given; otherwise
    makes a figure, with one GIL timeline below the bars for every traced
    variant (``ctx.measure(..., trace=True)``).
    """
    if ax is None:
        ax = _figure_with_timelines(result)
    table = result.table
    ax.set_title(f"{result.id}: {result.title} ({result.scale})", loc="left")
    if table.empty:
        ax.text(0.5, 0.5, "nothing measured", ha="center", va="center",
                transform=ax.transAxes)
        return ax.figure
    speedup = table["speedup"].to_numpy(dtype=float)
    y = np.arange(len(table))
    bars = ax.barh(y, speedup, color=[GIL_STYLE[_gil_key(v)][0] for v in table.release_gil])
    for bar, ok in zip(bars, table.correct):
        if not ok:
            bar.set_hatch("xx")
            bar.set_edgecolor("black")
    ax.bar_label(bars, labels=[f"{s:.3g}x" for s in speedup], padding=3, fontsize="small")
    ax.set_yticks(y, table.variant)
    ax.invert_yaxis()
    if speedup.max() / speedup.min() > LOG_SPAN:
        ax.set_xscale("log")
    cores = os.cpu_count() or 1
    ax.axvline(1, color="black", linestyle="--", linewidth=1)
    ax.axvline(cores, color="black", linestyle=":", linewidth=1)
    ax.set_xlabel("speedup over the baseline (x)")
    ax.legend(handles=_legend(table, cores), loc="upper left", bbox_to_anchor=(1.01, 1),
              fontsize="small")
    ax.margins(x=0.15)
    return ax.figure


def _figure_with_timelines(result: Result) -> Axes:
    """A figure: speedup bars on top, then one timeline per traced run. Returns
    the Axes for the bars."""
    traces = result.extras.get("traces", {})
    heights = [1.6 + 0.4 * max(len(result.table), 1)]
    heights += [1.3 + 0.4 * tr.events.thread_seq.nunique() for tr in traces.values()]
    fig = new_figure(figsize=(10, sum(heights)))
    axes = np.atleast_1d(fig.subplots(len(heights), 1, height_ratios=heights))
    for tax, (variant, tr) in zip(axes[1:], traces.items()):
        timeline(tr, ax=tax, title=f"{variant}: {tr.describe()}")
    return axes[0]


def new_figure(**kwargs) -> Figure:
    """A figure for the running backend that pyplot does not keep track of."""
    import matplotlib.pyplot as plt

    fig = plt.figure(layout="constrained", **kwargs)
    plt.close(fig)
    return fig


def _gil_key(value: object) -> bool | None:
    # pandas may hand back NaN or numpy bools for the object column.
    return None if value is None or value != value else bool(value)


def _legend(table: pd.DataFrame, cores: int) -> list:
    keys = dict.fromkeys(_gil_key(v) for v in table.release_gil)
    handles: list = [Patch(color=GIL_STYLE[k][0], label=GIL_STYLE[k][1]) for k in keys]
    handles += [Line2D([], [], color="black", linestyle="--", label="baseline (1x)"),
                Line2D([], [], color="black", linestyle=":", label=f"{cores} cores")]
    if not table.correct.all():
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="xx",
                             label="output failed its check"))
    return handles
