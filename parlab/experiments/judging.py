"""Judging lessons: every rule and every threshold the verdicts use.

A lesson's verdict is one of

- ``holds``: the numbers show it;
- ``fails``: they do not, and the machine was free enough that they should have;
- ``inconclusive``: a timing lesson that did not show while other programs took
  more than :data:`BUSY_SHARE` of the machine (a busy machine can slow a
  parallel run, or a serial one more than threads taking turns on the GIL,
  which move to a free core), or a "no speedup" lesson whose
  paired "speedup" lesson did not hold (a parallel run that is slow for any
  reason proves nothing about the GIL);
- ``skipped``: it cannot be tried here (one core, a missing optional package).

Each rule takes the measured :class:`~parlab.experiments.framework.Variant`
objects and returns the recorded :class:`~parlab.experiments.framework.Lesson`.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import numpy as np

from parlab._info import gil_enabled
from parlab.experiments._load import Load
from parlab.experiments.framework import Context, Lesson, Variant

# A parallel run of n workers must beat 1 + SPEEDUP_PER_CORE * (n - 1) over
# serial (n capped at the core count): 30% of the ideal gain per extra core.
SPEEDUP_PER_CORE = 0.3
# A run the GIL serialises is "no faster" when its speedup stays below this.
NO_SPEEDUP = 1.3
# n overlapped waits count as "about the time of one" at a speedup of at least
# this share of n: starting the workers and switching between them cost the rest.
OVERLAP_SHARE = 0.6
# More workers than cores "gain nothing": they take at least this share of the
# time of as many workers as cores.
NO_GAIN = 0.9
# Other programs took more than this share of the machine's CPU while a timing
# lesson measured: if it did not hold, that says nothing about the lesson.
BUSY_SHARE = 0.1
# "Far faster": a compiled kernel against the pure-Python loop, vectorised
# against row-wise code.
FAR_FASTER = 10.0
# n tasks run one after the other take between these multiples of n times one task.
SERIAL_LOW, SERIAL_HIGH = 0.8, 1.25
# A crowd of threads on one lock is "far slower" than one thread beyond this factor.
CROWD_SLOWER = 3.0
# Double buffering hides most of the reading time: more than this speedup (ideal 2x).
PIPELINE_GAIN = 1.3
# "Best at the core count": within this factor of the fastest thread count.
NEAR_BEST = 1.1
# Oversubscribed processes x threads cost time: slower than the best fit by this factor.
OVERSUBSCRIBED_LOSS = 1.05
# Too many tiny threads stay "far from the core count": below this share of it.
FAR_FROM_CORES = 0.5
# A parallel region per innermost row (L3.6) costs time: slower than one region
# around the outer loop by at least this factor.
REGION_COST = 1.5
# Two threads writing one shared counter, against a counter each: the cache
# line bouncing between cores must cost at least this factor in time.
SHARED_LINE_COST = 1.3
# The price of free threading (L6.4): one pure-Python thread takes at least
# this factor longer on a free-threaded build than on the normal one.
FREE_THREADING_PRICE = 1.1
# A correct Monte Carlo count lands this far from the mean about once in 500
# million runs.
SIGMAS = 6


# Lessons whose claim is true only because of the GIL (``needs_gil=True``):
# where the GIL is off they are judged by what that interpreter should do,
# the opposite of the claim (threads speed up, updates get lost), and their
# observation says so.
ONLY_WITH_GIL = "the lecture's claim holds only with a GIL"


def _gil_claim(ctx: Context, lesson: Lesson) -> Lesson:
    """Mark ``lesson``, just recorded, as needing the GIL; if it was judged
    by the opposite claim, its observation says so."""
    observed = lesson.observed
    if not gil_enabled():
        observed = f"without a GIL the opposite is expected: {observed}; {ONLY_WITH_GIL}"
    marked = dataclasses.replace(lesson, observed=observed, needs_gil=True)
    ctx.lessons[ctx.lessons.index(lesson)] = marked
    return marked


def fact(ctx: Context, text: str, ok: bool, observed: str, *, needs_gil: bool = False) -> Lesson:
    """A lesson about outputs, not time: the machine's load cannot change it.
    With ``needs_gil``, ``ok`` says whether the claim came true."""
    if needs_gil:
        return _gil_claim(ctx, fact(ctx, text, ok == gil_enabled(), observed))
    return ctx.lesson(text, "holds" if ok else "fails", observed)


def skipped(ctx: Context, text: str, reason: str) -> Lesson:
    """A lesson that cannot be tried here; ``reason`` says why."""
    return ctx.lesson(text, "skipped", reason)


def timing(ctx: Context, text: str, ok: bool, observed: str, *variants: Variant) -> Lesson:
    """A lesson about time, judged from ``variants``: a failure while the machine
    was busy is inconclusive, and ``observed`` then says how busy."""
    load = busiest(variants)
    if ok:
        return ctx.lesson(text, "holds", observed)
    if load.share > BUSY_SHARE:
        return ctx.lesson(text, "inconclusive",
                          f"{observed}; while measuring, {load.describe()} "
                          f"(more than {BUSY_SHARE:.0%}): inconclusive")
    return ctx.lesson(text, "fails", observed)


def busiest(variants) -> Load:
    """The heaviest load any of ``variants`` was measured under."""
    return max((v.load for v in variants), key=lambda load: load.share, default=Load())


def needed_speedup(ctx: Context, workers: int) -> float:
    """The speedup a parallel run of ``workers`` must beat on this machine."""
    return 1 + SPEEDUP_PER_CORE * (min(workers, ctx.cores) - 1)


def speedup(ctx: Context, text: str, fast: Variant, over: Variant,
            workers: int | None = None) -> Lesson:
    """``fast`` (``workers`` in parallel, default its own count) beats serial ``over``."""
    workers = workers or fast.workers
    s = fast.speedup(over)
    if min(workers, ctx.cores) < 2:
        return skipped(ctx, text, f"{s:.2f}x; only 1 core: nothing can run in parallel here")
    need = needed_speedup(ctx, workers)
    return timing(ctx, text, s > need,
                  f"{s:.2f}x with {workers} workers on {ctx.cores} cores (needs > {need:.2f}x)",
                  fast, over)


def no_speedup(ctx: Context, text: str, variant: Variant, over: Variant,
               paired: Lesson, *, needs_gil: bool = False) -> Lesson:
    """``variant`` is no faster than ``over`` (the GIL serialises it).

    Counts only when ``paired``, the lesson that the same parallel set-up does
    speed up work that can run in parallel, holds in this run. ``needs_gil``:
    only the GIL serialises it (pure Python); without a GIL it must speed up.
    """
    if needs_gil:
        return _gil_claim(ctx, no_speedup(ctx, text, variant, over, paired) if gil_enabled()
                          else speedup(ctx, text, variant, over))
    s = variant.speedup(over)
    observed = f"{s:.2f}x (no speedup means < {NO_SPEEDUP}x)"
    if s >= NO_SPEEDUP:
        # On a busy machine a serial run can lose its core to another program
        # while threads taking turns on the GIL move to a free one.
        return timing(ctx, text, False, observed, variant, over)
    if not paired.holds:
        return ctx.lesson(text, "inconclusive",
                          f"{observed}; but the paired lesson \"{paired.text}\" is "
                          f"{paired.verdict}, so this slow run shows nothing")
    return ctx.lesson(text, "holds", observed)


def faster(ctx: Context, text: str, fast: Variant, slow: Variant,
           factor: float = FAR_FASTER) -> Lesson:
    """``fast`` takes less than 1/``factor`` of the time of ``slow``."""
    s = fast.speedup(slow)
    return timing(ctx, text, s > factor, f"{s:.3g}x faster (needs > {factor:g}x)", fast, slow)


def slower(ctx: Context, text: str, slow: Variant, fast: Variant, factor: float,
           paired: Lesson | None = None) -> Lesson:
    """``slow`` takes more than ``factor`` times the time of ``fast``.

    With ``paired`` (the lesson that the same parallel set-up does speed up
    bigger work) it counts only when that holds: a parallel run that is slow
    for any reason would show it too.
    """
    ratio = slow.seconds / fast.seconds
    observed = f"{ratio:.2f}x the time of \"{fast.name}\" (needs > {factor:g}x)"
    if ratio > factor and paired is not None and not paired.holds:
        return ctx.lesson(text, "inconclusive",
                          f"{observed}; but \"{paired.text}\" is {paired.verdict}")
    return timing(ctx, text, ratio > factor, observed, slow, fast)


def overlap(ctx: Context, text: str, variant: Variant, over: Variant, n: int) -> Lesson:
    """``n`` waits in ``variant`` overlap: about the time of one of ``over``'s ``n``.

    Waiting needs no core, so the threshold ignores the core count.
    """
    s = variant.speedup(over)
    need = OVERLAP_SHARE * n
    return timing(ctx, text, s >= need,
                  f"{s:.2f}x over serial with {n} tasks (needs >= {need:.1f}x; waits need "
                  "no core, so the core count does not matter)", variant, over)


def oversubscribed(ctx: Context, text: str, variant: Variant, at_cores: Variant,
                   paired: Lesson, at_least: float = NO_GAIN) -> Lesson:
    """``variant`` (more workers than cores) takes at least ``at_least`` times the
    time of ``at_cores``; counts only when ``paired`` (``at_cores`` speeds up) holds."""
    ratio = variant.seconds / at_cores.seconds
    observed = (f"{variant.name} takes {ratio:.2f}x the time of {at_cores.name} "
                f"(needs >= {at_least:.2f}x)")
    if not paired.holds:
        return ctx.lesson(text, "inconclusive",
                          f"{observed}; but \"{paired.text}\" is {paired.verdict}")
    return timing(ctx, text, ratio >= at_least, observed, variant, at_cores)


def hits_plausible(n_samples: int) -> Callable[[int], bool]:
    """A check that a hit count out of ``n_samples`` estimates pi within
    :data:`SIGMAS` binomial standard deviations: true of any correct generator,
    false of a broken one."""
    return functools.partial(_within_sigmas, n_samples)


def _within_sigmas(n_samples: int, hits: int) -> bool:
    p = math.pi / 4
    return abs(hits - n_samples * p) < SIGMAS * math.sqrt(n_samples * p * (1 - p))


def close_to(ref: np.ndarray) -> Callable[[Any], bool]:
    """A check that an output (array or list of lists) equals ``ref`` to rounding."""
    return functools.partial(_close, ref)


def _close(ref: np.ndarray, out: Any) -> bool:
    out = np.asarray(out)
    return out.shape == ref.shape and bool(np.allclose(out, ref))
