"""Judging lessons: every rule and every threshold the verdicts use.

A lesson's verdict is one of

- ``holds``: the numbers show it;
- ``fails``: the numbers are confidently against it, and the machine was
  free enough that they should have shown it;
- ``inconclusive``: the samples disagree (bursts of interference), sit too
  close to the threshold to tell, or were measured while other programs
  took more than :data:`BUSY_SHARE` of the machine or while the capacity
  probe could not run threads in parallel; or a "no speedup" lesson whose
  paired "speedup" lesson did not hold (a parallel run that is slow for any
  reason proves nothing about the GIL);
- ``skipped``: it cannot be tried here (one core, a missing optional package).

The statistical rule, one engine for every timing lesson (:func:`decide`):

- A claim about what the machine *can* do ("threads speed this up", "a
  compiled kernel is far faster") is judged from the low end of each
  variant's samples, as timeit does: interference only ever adds time, so
  the fastest runs show the machine's capacity. A claim that something gives
  *no* gain is judged from the whole distribution (the medians), and fails
  only where the low ends agree.
- A low end counts once it is confirmed: at least :data:`CONFIRM_K` samples,
  and :data:`CONFIRM_SHARE` of all, within :data:`CONFIRM_TOL` of the fastest
  (the runs gather there; it is not the tail of a burst). Until every
  variant's is, and while the ratio sits within :data:`MARGIN` of the threshold, the
  comparison measures more interleaved rounds, up to its budget
  (``measuring.MAX_ROUNDS``, ``measuring.EXTRA_TIME``).
- ``fails`` needs confirmed low ends, a ratio beyond the threshold by more
  than :data:`MARGIN`, enough runs that all of them being slowed by
  interference has a chance below :data:`ALPHA` (:func:`chance_all_disturbed`),
  a quiet load meter, and, for a parallel speedup, a
  capacity probe measured in the same rounds (released ``cpu_work``, serial
  against threads) that did reach the speedup: the cores were there.

Every verdict on timings that the probe or the load can excuse comes from
one entry point, :func:`judge` (for a parallel speedup :func:`judge_speedup`),
which the lessons below and the ``%speedup`` magic call with a
:class:`~parlab.experiments.measuring.Sampling` of their samples
(:func:`measured` names a price and excuses nothing: it only settles). Each
rule (:func:`rule`) takes the measured
:class:`~parlab.experiments.measuring.Variant` objects, judges a
:class:`~parlab.experiments.framework.Lesson`, records it once and returns it.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import statistics
from typing import Any, Callable, Sequence

import numpy as np

from parlab._info import gil_enabled
from parlab.experiments.framework import Context, Lesson
from parlab.experiments.load_meter import Load
from parlab.experiments.measuring import Sampling, Variant

# A parallel run of n workers must beat 1 + SPEEDUP_PER_CORE * (n - 1) over
# serial (n capped at the core count): 30% of the ideal gain per extra core,
# and at most SPEEDUP_CAP. A run has costs that more cores do not divide
# (starting and feeding the workers, gathering their results): on a machine
# of 64 cores the experiments' second or so of work gains 12-15x from its
# processes, short of the 19.9x the per-core share would ask. Past the cap a
# speedup shows parallel work as surely as 19.9x would.
SPEEDUP_PER_CORE = 0.3
SPEEDUP_CAP = 8.0
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
# A crowd of pure-Python threads on one lock is "far slower" than one thread
# beyond this factor: each hand-over of the lock waits for the GIL too.
CROWD_SLOWER = 3.0
# A crowd of threads that release the GIL, on parlab's Counter lock, beyond this
# factor. What a contended lock costs depends on the CPU and the lock: from
# 1.97x (fastest runs; 3.27x by the medians) on a 2-core Emerald Rapids Xeon to
# more than 3x on a Sapphire Rapids one, so "far" is half as long again. On
# one core, where the lock cannot contend, the crowd took 1.46x, nearly all of
# it starting the threads: L3.3 skips it there.
LOCK_CROWD_SLOWER = 1.5
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
# L6.4: switching a free-threaded build's GIL back on makes one pure-Python
# thread less than this factor faster. (The price of free threading itself is
# measured and named, not bounded: see measured.)
GIL_BACK_ON_GAIN = 1.1
# Without a GIL, threads that something else holds back (a thread started for
# each small task, objects that every step of every thread touches) take at
# least this factor longer than the set-up that avoids it.
HELD_BACK = 1.2
# A correct Monte Carlo count lands this far from the mean about once in 500
# million runs.
SIGMAS = 6


# The statistical rule (see the module's docstring): a low end is confirmed by
# at least this many samples, and this share of all of them, within this share
# of the fastest one: the low end is where the runs gather, not a tail ...
CONFIRM_K = 2
CONFIRM_SHARE = 1 / 3
CONFIRM_TOL = 0.10
# ... a ratio must miss its threshold by more than this share to fail ...
MARGIN = 0.10
# ... in enough runs that, had every one of them a chance q of running free
# of interference (estimated from both sides' runs), all of them missing it
# has a probability of at most this: the confidence of a "fails" is 99.9%.
ALPHA = 0.001


@dataclasses.dataclass(frozen=True)
class Decision:
    """What the samples say about one claim: ``verdict`` (holds, fails or
    inconclusive), ``measured`` (the numbers, in words), whether more samples
    could still change it (``settled``), and ``why`` the numbers do not
    decide it, where they do not."""

    verdict: str
    measured: str
    settled: bool
    why: str = ""

    @property
    def observed(self) -> str:
        """The numbers, and why they do not decide, as a lesson states them."""
        return f"{self.measured}; {self.why}" if self.why else self.measured


def confirmed(times: Sequence[float]) -> bool:
    """Whether the fastest of ``times`` is where the runs gather, not a one-off:
    :data:`CONFIRM_K` samples (or all, when fewer were taken), and at least
    :data:`CONFIRM_SHARE` of them, lie within :data:`CONFIRM_TOL` of it."""
    low = min(times)
    near = sum(t <= low * (1 + CONFIRM_TOL) for t in times)
    return near >= min(CONFIRM_K, len(times)) and near >= CONFIRM_SHARE * len(times)


def chance_all_disturbed(*sides: Sequence[float]) -> float:
    """How likely it is that every run of the shortest side was slowed by
    interference, if each run escapes it with the chance q that the runs show:
    the share of a side's runs that gather at its fastest, counted as
    near / (n + 1) so that a few runs never look certain; the lower side's."""
    q = min(sum(t <= min(ts) * (1 + CONFIRM_TOL) for t in ts) / (len(ts) + 1) for ts in sides)
    return (1 - q) ** min(len(ts) for ts in sides)


def spread(times: Sequence[float], sep: str = "-") -> str:
    """The range of ``times`` in milliseconds, e.g. "55-240 ms"."""
    lo, hi = min(times) * 1e3, max(times) * 1e3
    return f"{lo:.3g} ms" if len(times) == 1 else f"{lo:.3g}{sep}{hi:.3g} ms"


def decide(num: Sequence[float], den: Sequence[float], need: float, *, above: bool = True,
           basis: str = "low", what: str = "", names: tuple[str, str] = ("", "")) -> Decision:
    """Judge the claim "time(num) / time(den) > need" (``above``) or "< need".

    ``basis="low"`` judges a capability from the fastest samples; ``"median"``
    judges a claim of no gain from the whole distribution, and then fails only
    where the fastest samples agree. ``what`` names the ratio in ``observed``
    ("2.1x over serial"), ``names`` the two sides in the spread.
    """
    low = _ratio(min(num), min(den))
    med = _ratio(statistics.median(num), statistics.median(den))
    r = low if basis == "low" else med
    sign = ">" if above else "<"

    def against(x: float) -> bool:
        return x < need / (1 + MARGIN) if above else x > need * (1 + MARGIN)

    measured = (f"{r:.2f}x{what} ({'fastest runs' if basis == 'low' else 'medians'}; "
                f"{'median' if basis == 'low' else 'fastest runs'} "
                f"{med if basis == 'low' else low:.2f}x; needs {sign} {need:.2f}x; "
                f"{names[0] or 'one side'} {spread(num)}, {names[1] or 'other'} {spread(den)})")
    sure = confirmed(num) and confirmed(den)
    if (r > need) if above else (r < need):
        # Settled once confirmed, or once clear of the threshold by the margin.
        clear = r > need * (1 + MARGIN) if above else r < need / (1 + MARGIN)
        return Decision("holds", measured, sure or clear)
    if sure and against(r) and (basis == "low" or against(low)):
        if chance_all_disturbed(num, den) <= ALPHA:
            return Decision("fails", measured, True)
        return Decision("inconclusive", measured, False,
                        "against the lesson, but in too few runs to rule out interference")
    if not sure:
        why = "; ".join(f"noisy: {n or 'a side'} varied from {spread(t, ' to ')}"
                        for n, t in zip(names, (num, den)) if not confirmed(t))
    elif not against(r):
        why = f"within {MARGIN:.0%} of the threshold: too close to tell"
    else:
        why = "the medians are against the lesson, the fastest runs are not"
    return Decision("inconclusive", measured, False, why)


def _ratio(a: float, b: float) -> float:
    """a / b, where a clock too coarse to see a run (0 s) makes it infinite."""
    return a / b if b > 0 else (math.inf if a > 0 else 1.0)


def decide_speedup(fast: Sequence[float], slow: Sequence[float], need: float) -> Decision:
    """Judge "``fast`` beats ``slow`` by more than ``need`` x" from samples of
    seconds (interleaved runs of each)."""
    return decide(slow, fast, need, what=" faster", names=("slow", "fast"))


def needed_speedup(workers: int, cores: int) -> float:
    """The speedup ``workers`` in parallel must beat on a machine of ``cores``."""
    return min(1 + SPEEDUP_PER_CORE * (min(workers, cores) - 1), SPEEDUP_CAP)


# A parallel speedup cannot be tried with fewer than two workers or cores.
ONE_CORE = "only 1 core: nothing can run in parallel here"


@dataclasses.dataclass(frozen=True)
class Judgement:
    """The verdict on a claim, from samples measured until they settled it.

    ``decision`` is what the samples said; ``verdict`` what stands once a
    failure is weighed against the capacity probe and the machine's load:
    ``excuse`` says why a failure counted as inconclusive (``busy``: because
    of the load). ``load`` is the load the samples met.
    """

    verdict: str
    decision: Decision
    load: Load
    excuse: str = ""
    busy: bool = False

    @property
    def observed(self) -> str:
        """What a lesson records as observed."""
        return f"{self.decision.observed}; {self.excuse}" if self.excuse else self.decision.observed


def settle(decision: Callable[..., Decision], sampling: Sampling) -> Decision:
    """``decision(*samples)`` of the samples ``sampling.times()`` gives, taken
    again after each round ``sampling.more()`` adds until it is settled or no
    round can be added."""
    d = decision(*sampling.times())
    while not d.settled and sampling.more():
        d = decision(*sampling.times())
    return d


def judge(decision: Callable[..., Decision], sampling: Sampling, cores: int) -> Judgement:
    """The one verdict entry point: ``decision`` of the samples, settled
    (:func:`settle`). A failure counts only where the capacity probe measured
    beside it (``sampling.probe()``, for a parallel speedup) reached the
    speedup, and other programs took at most :data:`BUSY_SHARE` of the
    machine."""
    d = settle(decision, sampling)
    load = sampling.load()
    if d.verdict != "fails":
        return Judgement(d.verdict, d, load)
    probe = sampling.probe()
    if probe is not None:
        serial, threads, workers = probe
        excuse = probe_excuse(serial, threads, workers, needed_speedup(workers, cores))
        if excuse:
            return Judgement("inconclusive", d, load, excuse)
    if load.share > BUSY_SHARE:
        return Judgement("inconclusive", d, load, f"while measuring, {load.describe()} "
                                                  f"(more than {BUSY_SHARE:.0%}): inconclusive",
                         busy=True)
    return Judgement("fails", d, load)


def judge_speedup(workers: int, cores: int, sampling: Sampling, *, what: str = " faster",
                  names: tuple[str, str] = ("slow", "fast")) -> Judgement:
    """Judge "the fast side (``workers`` in parallel) beats the slow one by the
    speedup :func:`needed_speedup` asks on ``cores``", where
    ``sampling.times()`` gives (slow, fast) samples: skipped where fewer than
    two workers could run at once, else :func:`judge`. ``what`` and ``names``
    word the ratio and its sides. What every speedup lesson and ``%speedup``
    call."""
    if min(workers, cores) < 2:
        slow, fast = sampling.times()
        ratio = statistics.median(slow) / statistics.median(fast)
        return Judgement("skipped", Decision("skipped", f"{ratio:.2f}x", True, ONE_CORE),
                         sampling.load())
    need = needed_speedup(workers, cores)
    return judge(lambda slow, fast: decide(slow, fast, need, what=what, names=names),
                 sampling, cores)


def probe_excuse(serial: Sequence[float], threads: Sequence[float], workers: int,
                 need: float) -> str | None:
    """Why a failed parallel speedup proves nothing, or None: the capacity probe
    measured beside it (released cpu_work, ``serial`` runs against runs in
    ``workers`` threads) did not reach the speedup either."""
    if decide_speedup(threads, serial, need).verdict == "holds":
        return None
    return (f"the capacity probe, released cpu_work in {workers} threads, reached only "
            f"{min(serial) / min(threads):.2f}x meanwhile: the cores were not free")


# ---------------------------------------------------------------- the rules

def rule(judge_lesson: Callable[..., Lesson]) -> Callable[..., Lesson]:
    """A rule of the lessons: ``judge_lesson(ctx, text, ...)`` returns the
    lesson it judged, the rule records it in ``ctx`` and returns it. Its
    ``judge`` judges without recording: for a claim judged by another rule's
    verdict (one that needs the GIL, where the GIL is off), recorded once."""
    @functools.wraps(judge_lesson)
    def recorded(ctx: Context, text: str, *args: Any, **kwargs: Any) -> Lesson:
        return ctx.record(judge_lesson(ctx, text, *args, **kwargs))

    recorded.judge = judge_lesson  # type: ignore[attr-defined]
    return recorded


# Lessons whose claim is true only because of the GIL (``needs_gil=True``):
# where the GIL is off they are judged by what that interpreter should do,
# the opposite of the claim (threads speed up, updates get lost), and their
# observation says so.
ONLY_WITH_GIL = "the lecture's claim holds only with a GIL"
# ... or, where the GIL is not the only thing that stops those threads, by
# what stops them then (a ``WithoutGil`` the experiment gives).
NOT_THE_GIL = "the lecture's reason, the GIL, is not what holds these threads back here"


@dataclasses.dataclass(frozen=True)
class WithoutGil:
    """What an interpreter without a GIL should do in a lesson that needs the
    GIL, where that is not simply the opposite of the claim: ``expect`` says
    it in words ("a thread per row costs more than it saves"); the lesson is
    judged by ``rule`` (one of this module's) with ``args`` after its text."""

    expect: str
    rule: Callable[..., Lesson]
    args: tuple = ()

    def judge(self, ctx: Context, text: str) -> Lesson:
        return self.rule.judge(ctx, text, *self.args)  # type: ignore[attr-defined]


def _gil_claim(lesson: Lesson, instead: WithoutGil | None = None) -> Lesson:
    """``lesson`` as a claim that needs the GIL; if it was judged by what an
    interpreter without one should do, its observation says so."""
    observed = lesson.observed
    if not gil_enabled():
        observed = (f"without a GIL the opposite is expected: {observed}; {ONLY_WITH_GIL}"
                    if instead is None else
                    f"without a GIL, {instead.expect}: {observed}; {NOT_THE_GIL}")
    return dataclasses.replace(lesson, observed=observed, needs_gil=True)


@rule
def fact(ctx: Context, text: str, ok: bool, observed: str, *, needs_gil: bool = False) -> Lesson:
    """A lesson about outputs, not time: the machine's load cannot change it.
    With ``needs_gil``, ``ok`` says whether the claim came true."""
    if needs_gil:
        return _gil_claim(fact.judge(ctx, text, ok == gil_enabled(), observed))
    return Lesson(text, "holds" if ok else "fails", observed)


@rule
def skipped(ctx: Context, text: str, reason: str) -> Lesson:
    """A lesson that cannot be tried here; ``reason`` says why."""
    return Lesson(text, "skipped", reason)


@rule
def skipped_with(ctx: Context, text: str, paired: Lesson) -> Lesson:
    """A lesson that counts only beside ``paired``, skipped because that was:
    for the same reason (one core, a missing package)."""
    return Lesson(text, "skipped", f"skipped with \"{paired.text}\": {paired.observed}")


@rule
def timing_fact(ctx: Context, text: str, ok: bool, observed: str, *variants: Variant) -> Lesson:
    """A lesson about time whose test the experiment computed itself (``ok``).
    Unlike a :func:`fact`, a failure counts only while the machine was quiet
    and every variant's fastest runs were confirmed; otherwise it is
    inconclusive and ``observed`` says why."""
    noisy = "; ".join(f"noisy: {v.name} varied from {spread(v.times, ' to ')}"
                      for v in map(ctx.current, variants) if not confirmed(v.times))
    d = Decision("holds" if ok else "inconclusive" if noisy else "fails", observed, True,
                 "" if ok else noisy)
    return _lesson(text, judge(lambda *_: d, ctx.sampling(*variants), ctx.cores))


def _lesson(text: str, j: Judgement) -> Lesson:
    return Lesson(text, j.verdict, j.observed)


def _judged(ctx: Context, decision: Callable[..., Decision], *variants: Variant,
            parallel: Variant | None = None) -> Judgement:
    """:func:`judge` of ``decision`` about the samples of ``variants``,
    measuring more rounds of their comparisons; ``parallel``: the variant
    whose capacity probe counts."""
    return judge(decision, ctx.sampling(*variants, parallel=parallel), ctx.cores)


@rule
def speedup(ctx: Context, text: str, fast: Variant, over: Variant,
            workers: int | None = None) -> Lesson:
    """``fast`` (``workers`` in parallel, default its own count) beats serial ``over``."""
    workers = workers or fast.workers
    return _lesson(text, judge_speedup(
        workers, ctx.cores, ctx.sampling(over, fast, parallel=fast),
        what=f" with {workers} workers on {ctx.cores} cores", names=(over.name, fast.name)))


@rule
def no_speedup(ctx: Context, text: str, variant: Variant, over: Variant,
               paired: Lesson, *, needs_gil: bool = False,
               without_gil: WithoutGil | None = None) -> Lesson:
    """``variant`` is no faster than ``over`` (the GIL serialises it).

    Judged from the medians; counts only when ``paired``, the lesson that the
    same parallel set-up does speed up work that can run in parallel, holds in
    this run. ``needs_gil``: only the GIL serialises it (pure Python); without
    a GIL it must speed up, or do what ``without_gil`` says where something
    else holds the threads back too.
    """
    if needs_gil:
        if gil_enabled():
            lesson = no_speedup.judge(ctx, text, variant, over, paired)
        elif without_gil is not None:
            lesson = without_gil.judge(ctx, text)
        else:
            lesson = speedup.judge(ctx, text, variant, over)
        return _gil_claim(lesson, without_gil)
    if paired.verdict == "skipped":
        return skipped_with.judge(ctx, text, paired)
    j = _judged(ctx, lambda over_s, variant_s: decide(
        over_s, variant_s, NO_SPEEDUP, above=False, basis="median",
        names=(over.name, variant.name)), over, variant)
    if j.verdict == "holds" and not paired.holds:
        return Lesson(text, "inconclusive",
                      f"{j.observed}; but the paired lesson \"{paired.text}\" is "
                      f"{paired.verdict}, so this slow run shows nothing")
    return _lesson(text, j)


@rule
def faster(ctx: Context, text: str, fast: Variant, slow: Variant,
           factor: float = FAR_FASTER) -> Lesson:
    """``fast`` takes less than 1/``factor`` of the time of ``slow``."""
    return _lesson(text, _judged(ctx, lambda slow_s, fast_s: decide(
        slow_s, fast_s, factor, what=" faster", names=(slow.name, fast.name)), slow, fast))


@rule
def slower(ctx: Context, text: str, slow: Variant, fast: Variant, factor: float,
           paired: Lesson | None = None) -> Lesson:
    """``slow`` takes more than ``factor`` times the time of ``fast``.

    With ``paired`` (the lesson that the same parallel set-up does speed up
    bigger work) it counts only when that holds: a parallel run that is slow
    for any reason would show it too.
    """
    if paired is not None and paired.verdict == "skipped":
        return skipped_with.judge(ctx, text, paired)
    j = _judged(ctx, lambda slow_s, fast_s: decide(
        slow_s, fast_s, factor, what=f" the time of \"{fast.name}\"",
        names=(slow.name, fast.name)), slow, fast)
    if j.verdict == "holds" and paired is not None and not paired.holds:
        return Lesson(text, "inconclusive",
                      f"{j.observed}; but \"{paired.text}\" is {paired.verdict}")
    return _lesson(text, j)


@rule
def at_most(ctx: Context, text: str, num: Variant, den: Variant, factor: float, *,
            what: str = "") -> Lesson:
    """``num`` takes less than ``factor`` times the time of ``den``: a claim of
    little cost or no gain, judged from the medians. ``what`` names the ratio."""
    return _lesson(text, _judged(ctx, lambda num_s, den_s: decide(
        num_s, den_s, factor, above=False, basis="median",
        what=what or f" the time of \"{den.name}\"", names=(num.name, den.name)), num, den))


@rule
def measured(ctx: Context, text: str, num: Variant, den: Variant, *, what: str) -> Lesson:
    """The ratio of ``num``'s time to ``den``'s, reported rather than bounded:
    a lesson that names a price, whatever its size. It holds once both sides
    gave correct output and their fastest runs are confirmed (a number that can
    be named: ``what`` says what it is); it is inconclusive while a side is
    noisy, and fails where the measurement is broken: a wrong output, no runs,
    or runs too short for the clock to see. The machine's load excuses nothing
    here: a broken measurement is broken on any machine."""
    def decision(num_s: Sequence[float], den_s: Sequence[float]) -> Decision:
        sides = ((num, num_s), (den, den_s))
        broken = [f"{v.name}: {why}" for v, times in sides for why in (
            "wrong output" if not v.correct else None,
            "no runs" if not times else None,
            "runs too short for the clock" if times and min(times) <= 0 else None) if why]
        if broken:
            return Decision("fails", "the price cannot be named: " + "; ".join(broken), True)
        low = _ratio(min(num_s), min(den_s))
        med = _ratio(statistics.median(num_s), statistics.median(den_s))
        measured = (f"{low:.2f}x{what} (fastest runs; median {med:.2f}x; {num.name} "
                    f"{spread(num_s)}, {den.name} {spread(den_s)})")
        noisy = [f"noisy: {v.name} varied from {spread(times, ' to ')}"
                 for v, times in sides if not confirmed(times)]
        if noisy:
            return Decision("inconclusive", measured, False, "; ".join(noisy))
        return Decision("holds", measured, True)
    d = settle(decision, ctx.sampling(num, den))
    return Lesson(text, d.verdict, d.observed)


@rule
def overlap(ctx: Context, text: str, variant: Variant, over: Variant, n: int) -> Lesson:
    """``n`` waits in ``variant`` overlap: about the time of one of ``over``'s ``n``.

    Waiting needs no core, so the threshold ignores the core count.
    """
    need = OVERLAP_SHARE * n
    return _lesson(text, _judged(ctx, lambda over_s, variant_s: decide(
        over_s, variant_s, need,
        what=f" over serial with {n} tasks (waits need no core)",
        names=(over.name, variant.name)), over, variant))


@rule
def oversubscribed(ctx: Context, text: str, variant: Variant, at_cores: Variant,
                   paired: Lesson, at_least: float = NO_GAIN) -> Lesson:
    """``variant`` (more workers than cores) takes at least ``at_least`` times the
    time of ``at_cores``; counts only when ``paired`` (``at_cores`` speeds up) holds.
    A claim of no gain: judged from the medians."""
    if paired.verdict == "skipped":
        return skipped_with.judge(ctx, text, paired)
    if not paired.holds:
        ratio = ctx.current(variant).seconds / ctx.current(at_cores).seconds
        return Lesson(text, "inconclusive",
                      f"{variant.name} takes {ratio:.2f}x the time of {at_cores.name}; "
                      f"but \"{paired.text}\" is {paired.verdict}")
    return _lesson(text, _judged(ctx, lambda variant_s, at_cores_s: decide(
        variant_s, at_cores_s, at_least, basis="median",
        what=f" the time of {at_cores.name}", names=(variant.name, at_cores.name)),
        variant, at_cores))


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
