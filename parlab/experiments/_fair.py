"""Lesson thresholds that are fair on any core count, shared by every lecture's experiments."""
from __future__ import annotations

from parlab.experiments._base import Context

# A serialised run is "no faster" when within this factor of the serial time.
NO_SPEEDUP = 1.3


def needed_speedup(ctx: Context, workers: int) -> float:
    """Speedup a parallel run of ``workers`` must beat: 30% of ideal per extra usable core."""
    return 1 + 0.3 * (min(workers, ctx.cores) - 1)


def speedup_lesson(ctx: Context, text: str, variant: str, over: str, workers: int) -> float:
    """State ``text`` (a parallel speedup) from ``variant`` timed against ``over``."""
    s = ctx.speedup(variant, over)
    if min(workers, ctx.cores) < 2:
        ctx.lesson(text, False, f"{s:.2f}x; only 1 core: nothing can run in parallel here")
    else:
        need = needed_speedup(ctx, workers)
        ctx.lesson(text, s > need,
                   f"{s:.2f}x with {workers} workers on {ctx.cores} cores (needs > {need:.2f}x)")
    return s


def no_speedup_lesson(ctx: Context, text: str, variant: str, over: str) -> float:
    """State ``text`` (no speedup: the work was serialised) from two timings."""
    s = ctx.speedup(variant, over)
    ctx.lesson(text, s < NO_SPEEDUP, f"{s:.2f}x (no speedup means < {NO_SPEEDUP}x)")
    return s
