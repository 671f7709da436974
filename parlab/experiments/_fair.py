"""Lesson thresholds that are fair on any core count, shared by every lecture's experiments."""
from __future__ import annotations

from parlab.experiments._base import Context

# A serialised run is "no faster" when within this factor of the serial time.
NO_SPEEDUP = 1.3
# n overlapped waits count as "about the time of one" at a speedup of at least
# this share of n: starting the workers and switching between them cost the rest.
OVERLAP_SHARE = 0.6


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


def oversubscribed_lesson(ctx: Context, text: str, variant: str, at_cores: str) -> None:
    """State that ``variant`` (more workers than cores) is no faster than ``at_cores``."""
    ratio = ctx.seconds(variant) / ctx.seconds(at_cores)
    ctx.lesson(text, ratio > 0.9, f"{variant} takes {ratio:.2f}x the time of {at_cores} "
                                  "(needs > 0.90x)")


def overlap_lesson(ctx: Context, text: str, variant: str, over: str | None, n: int) -> float:
    """State ``text`` (``n`` waits overlap) from ``variant`` timed against ``over``.

    Waiting needs no core, so the threshold ignores the core count.
    """
    s = ctx.speedup(variant, over)
    need = OVERLAP_SHARE * n
    ctx.lesson(text, s >= need, f"{s:.2f}x over serial with {n} tasks (needs >= {need:.1f}x; "
                                "waits need no core, so the core count does not matter)")
    return s
