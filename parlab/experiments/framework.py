"""What an experiment works with: the registry, the scales, the context, results.

An experiment is a function decorated with :func:`experiment`. It receives a
:class:`Context` and

- measures variants: ``v = ctx.measure(name, fn, ...)`` times ``fn()`` and
  returns a :class:`~parlab.experiments.measuring.Variant`;
  ``a, b = ctx.compare(ctx.plan(...), ctx.plan(...))`` times several variants
  interleaved (A B A B ...), so that a change in the machine's load hits
  every side of a comparison alike;
- states lessons through :mod:`parlab.experiments.judging`, handing it the
  variants themselves (variants are immutable: ``ctx.current(v)`` is ``v``
  with the rounds those rules measured since);
- returns ``ctx.result(figure=...)``, a :class:`Result`.

How work is started (threads, pools, ...) is in :mod:`parlab.experiments.runners`;
how plans are timed in :mod:`parlab.experiments.measuring`; drawing in
:mod:`parlab.plot`, words and tables for people in :mod:`parlab.presentation`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import operator
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Union

from parlab import _processes, presentation
from parlab._cores import restricted, usable_cores
from parlab.experiments import probe
from parlab.experiments.load_meter import Load
from parlab.experiments.measuring import (
    MAX_ROUNDS, REPEATS, Comparison, Cost, Plan, Sampling, Variant,
)
from parlab.presentation import MATCHES_REFERENCE

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Context", "Cost", "Lesson", "Result", "Variant", "catalog", "experiment", "run"]

SCALES = ("tiny", "quick", "full")
VERDICTS = ("holds", "fails", "inconclusive", "skipped")
TABLE_COLUMNS = [
    "experiment", "variant", "backend", "workers", "release_gil",
    "seconds", "low_s", "high_s", "n_samples", "speedup", "speedup_over",
    "expected", "correct",
]
# The long table beside it: every timed run of every variant.
SAMPLE_COLUMNS = ["experiment", "variant", "round", "seconds"]
LESSON_COLUMNS = ["experiment", "lesson", "verdict", "holds", "observed", "needs_gil"]
# "More workers than cores": this many per core (the lecture: 40 on 8 cores).
OVERSUBSCRIBE = 4
# Work split over the cores comes in at least this many tasks per core.
TASKS_PER_CORE = 2

# A function drawing a Result, or the name of one in parlab.plot.
FigureFactory = Union[Callable[["Result"], Any], str]


# ---------------------------------------------------------------- registry

@dataclasses.dataclass(frozen=True)
class Spec:
    id: str
    title: str
    lecture: str
    shows: str
    sizes: dict[str, dict[str, Any]]
    func: Callable[["Context"], "Result"]
    timer: str = ""  # what one timed run covers, and what is done before the clock starts


REGISTRY: dict[str, Spec] = {}


def experiment(id: str, *, title: str, lecture: str, shows: str,
               sizes: dict[str, dict[str, Any]], timer: str = ""):
    """Register an experiment; ``sizes`` maps every scale to its parameters and
    ``timer`` says what one timed run of a variant covers (and what is set up
    before the clock starts: outputs allocated, pools started)."""
    missing = set(SCALES) - set(sizes)
    if missing:
        raise ValueError(f"experiment {id}: sizes lack scales {sorted(missing)}")

    def register(func: Callable[["Context"], "Result"]):
        if id in REGISTRY:
            raise ValueError(f"experiment {id} registered twice")
        REGISTRY[id] = Spec(id, title, lecture, shows, sizes, func, timer)
        return func

    return register


def check_scale(scale: object, source: str = "scale") -> str:
    """``scale`` if it names a scale, else a ValueError naming ``source``."""
    if scale not in SCALES:
        raise ValueError(f"{source} must be one of {', '.join(SCALES)}; got {scale!r}")
    return scale  # type: ignore[return-value]


def default_scale() -> str:
    """The scale named by ``PARLAB_SCALE`` (notebooks and CI set it), else quick."""
    return check_scale(os.environ.get("PARLAB_SCALE", "quick"), "PARLAB_SCALE")


# ---------------------------------------------------------------- lessons and results

@dataclasses.dataclass(frozen=True)
class Lesson:
    text: str
    verdict: str
    observed: str
    # The lecture's claim is true because of the GIL: where the GIL is off it
    # is judged by what that interpreter should do instead (judging.py).
    needs_gil: bool = False

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}; "
                             f"got {self.verdict!r}")

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"


@dataclasses.dataclass
class Result:
    """What one experiment measured and what it concluded."""

    id: str
    title: str
    scale: str
    table: "pd.DataFrame"
    lessons: "pd.DataFrame"
    samples: "pd.DataFrame | None" = None  # every timed run (SAMPLE_COLUMNS)
    load: Load = dataclasses.field(default_factory=Load)
    wall_s: float = 0.0  # how long the whole experiment took, set-up included
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    figure_factory: FigureFactory | None = None

    def figure(self):
        """A matplotlib Figure telling this experiment's story."""
        from parlab import plot

        factory = self.figure_factory or plot.speedup_figure
        if isinstance(factory, str):
            factory = getattr(plot, factory)
        return factory(self)

    def verdicts(self) -> dict[str, int]:
        """How many lessons got each verdict."""
        counts = self.lessons.verdict.value_counts()
        return {v: int(counts.get(v, 0)) for v in VERDICTS}

    def overview(self) -> "pd.DataFrame":
        """The table as a reader needs it on a page (:func:`parlab.presentation.overview`)."""
        return presentation.overview(self.table)

    def _repr_html_(self) -> str:
        return presentation.result_html(f"{self.id}: {self.title}", self.table, self.lessons,
                                        self.load.describe())


# ---------------------------------------------------------------- context

class Context:
    """Handed to an experiment: its sizes, the machine, and the recorders."""

    def __init__(self, spec: Spec, scale: str, start_method: str | None = None):
        self.spec = spec
        self.scale = check_scale(scale)
        self.params: dict[str, Any] = dict(spec.sizes[scale])
        self.cores: int = usable_cores()
        self.repeats: int = REPEATS[scale]
        self.start_method = start_method
        self.lessons: list[Lesson] = []
        self.extras: dict[str, Any] = {}
        self._baseline: str | None = None  # the name of the variant speedups are shown against
        self._trace = None  # the Trace recording the current run, if any
        self._comparisons: list[Comparison] = []
        # Every variant measured, in the order measured: its comparison and its place there.
        self._measured: dict[str, tuple[Comparison, int]] = {}

    @property
    def load(self) -> Load:
        """The load every comparison of this experiment met, in all."""
        return functools.reduce(operator.add, (c.load for c in self._comparisons),
                                Load(cores=self.cores))

    @property
    def mp(self):
        """The multiprocessing context every process pool must be made from."""
        return _processes.context(self.start_method)

    def worker_counts(self, *, oversubscribe: int | None = None) -> list[int]:
        """1, half the cores, all the cores and optionally an oversubscribed count."""
        counts = {1, max(1, self.cores // 2), self.cores}
        if oversubscribe:
            counts.add(oversubscribe)
        return sorted(counts)

    @property
    def oversubscribed(self) -> int:
        """A worker count well above the cores, whatever their number."""
        return OVERSUBSCRIBE * self.cores

    def task_count(self, at_least: int) -> int:
        """How many tasks to split work into: at least ``at_least``, and a
        multiple of the cores, at least :data:`TASKS_PER_CORE` per core, so
        that no core idles at the end while another finishes a task (and more
        workers than cores cannot finish sooner by sharing out the last wave)."""
        return self.cores * max(TASKS_PER_CORE, -(-at_least // self.cores))

    def plan(self, name: str, fn: Callable[[], Any], *, backend: str, workers: int = 1,
             release_gil: bool | None = None, check: Callable[[Any], bool] | None = None,
             expected: str = MATCHES_REFERENCE, baseline: bool = False, trace: bool = False,
             speedup_over: "Variant | Plan | None" = None, cost: Cost | None = None) -> Plan:
        """A variant to measure with :meth:`compare`.

        ``check(output)`` says whether the output is what this variant should
        produce, described by ``expected``. ``baseline=True`` marks the
        variant speedups are shown against (default: the first one measured);
        ``speedup_over`` names another one for this row alone (where the
        baseline does a different amount of work). ``trace=True`` records the
        last run with :func:`parlab.trace` for the figure's GIL timeline.
        ``cost`` describes the work for the machine model of the tests
        (:class:`Cost`); a real run ignores it.
        """
        if name in self._measured:
            raise ValueError(f"{self.spec.id}: variant {name!r} measured twice")
        return Plan(name, fn, backend, int(workers), release_gil, check, expected,
                    baseline, trace, speedup_over, cost)

    def compare(self, *plans: Plan, repeats: int | None = None,
                versus_first: bool = False) -> list[Variant]:
        """Measure the plans interleaved, A B C A B C ...; each becomes a
        :class:`~parlab.experiments.measuring.Variant` with every sample
        (``Variant.times``) and their median (``Variant.seconds``).

        Interleaving spreads a change in the machine's load over every variant
        of a comparison instead of letting it land on one. A timing lesson
        that the samples do not decide yet measures more rounds of the whole
        comparison (:meth:`sampling`). Where a plan runs in parallel, a
        capacity probe is measured in the same rounds (:attr:`Variant.probe`):
        released ``cpu_work`` serially and in as many threads, which shows
        whether the cores were there while the comparison ran.
        ``versus_first=True`` shows the speedups of this comparison over its
        first plan (unless a plan names its own ``speedup_over``). Rules that
        measure more rounds leave the returned variants as they are:
        :meth:`current` gives them with every sample taken since.
        """
        if versus_first:
            for p in plans:
                p.speedup_over = p.speedup_over or plans[0]
        names = [p.name for p in plans]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.spec.id}: variant names repeat in {names}")
        workers = min(max(p.workers for p in plans), self.cores)
        probes = self._probe_plans(workers) if workers > 1 else []
        comparison = self.comparison(list(plans), probes)
        self._comparisons.append(comparison)
        comparison.run(repeats or self.repeats, trace_last=True)
        for i, p in enumerate(plans):
            self._measured[p.name] = (comparison, i)
            if p.baseline or self._baseline is None:
                self._baseline = p.name
        return list(comparison.variants())

    def comparison(self, plans: list[Plan], probes: list[Plan]) -> Comparison:
        """The :class:`~parlab.experiments.measuring.Comparison` that measures
        ``plans`` with the capacity probe's ``probes`` beside them (the machine
        model of the tests gives one that asks it for their times instead)."""
        return Comparison(plans, self.cores, MAX_ROUNDS[self.scale], self.tracing, probes)

    def current(self, variant: Variant) -> Variant:
        """``variant`` with every sample its comparison has taken so far (a
        verdict rule may have measured more rounds since it was returned);
        a variant not measured here as it is."""
        return self._named(variant.name) if variant.name in self._measured else variant

    def _probe_plans(self, workers: int) -> list[Plan]:
        return probe.plans(workers)

    def sampling(self, *variants: Variant, parallel: Variant | None = None) -> Sampling:
        """The handle a verdict rule takes the samples of ``variants`` with (in
        that order, every sample so far) and measures them further: more
        rounds of the comparisons that measured them, the heaviest load they
        met, and ``parallel``'s capacity probe."""
        comparisons = list({id(c): c for c, _ in (self._measured[v.name] for v in variants
                                                   if v.name in self._measured)}.values())

        def probe():
            beside = self.current(parallel).probe if parallel is not None else None
            return beside and (beside[0].times, beside[1].times, beside[1].workers)

        return Sampling(
            times=lambda: tuple(self.current(v).times for v in variants),
            more=lambda: any([c.more() for c in comparisons]),  # every comparison gets its round
            load=lambda: max((self.current(v).load for v in variants),
                             key=lambda load: load.share, default=Load()),
            probe=probe)

    def measure(self, name: str, fn: Callable[[], Any], **kwargs: Any) -> Variant:
        """Measure one variant (the arguments of :meth:`plan`); return it."""
        return self.compare(self.plan(name, fn, **kwargs))[0]

    @contextlib.contextmanager
    def tracing(self, variant: str, on: bool):
        """Record the run inside with :func:`parlab.trace` for ``variant``'s GIL
        timeline (``extras["traces"]``), where ``on``."""
        if not on:
            yield
            return
        from parlab.tracing import trace

        with trace(cpu_time=True) as tr:
            self._trace = tr
            try:
                yield
            finally:
                self._trace = None
        self.extras.setdefault("traces", {})[variant] = tr

    def span(self, name: str):
        """Mark a stretch of Python code on the timeline of the run being traced
        (a no-op in runs that are not traced)."""
        return self._trace.span(name) if self._trace is not None else contextlib.nullcontext()

    @property
    def baseline(self) -> Variant:
        """The variant speedups are shown against unless a row names another."""
        if self._baseline is None:
            raise ValueError(f"{self.spec.id}: nothing measured yet")
        return self._named(self._baseline)

    def _named(self, name: str) -> Variant:
        comparison, i = self._measured[name]
        return comparison.variants()[i]

    def record(self, lesson: Lesson) -> Lesson:
        """Record a lesson, once: the rules of :mod:`parlab.experiments.judging`
        judge it and record it here."""
        self.lessons.append(lesson)
        return lesson

    def result(self, figure: FigureFactory | None = None) -> Result:
        import pandas as pd

        rows = []
        variants = [self._named(name) for name in self._measured]
        for v in variants:
            over = self._named(v.over) if v.over else self.baseline
            rows.append(dict(experiment=self.spec.id, variant=v.name, backend=v.backend,
                             workers=v.workers, release_gil=v.release_gil,
                             seconds=v.seconds, low_s=v.low, high_s=v.high,
                             n_samples=len(v.times), speedup=v.speedup(over),
                             speedup_over=over.name, expected=v.expected, correct=v.correct))
        table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
        samples = pd.DataFrame(
            [dict(experiment=self.spec.id, variant=v.name, round=r, seconds=t)
             for v in variants for r, t in enumerate(v.times)], columns=SAMPLE_COLUMNS)
        table["release_gil"] = table["release_gil"].astype(object)
        table["speedup"] = table["speedup"].astype(float)
        lessons = pd.DataFrame(
            [dict(experiment=self.spec.id, lesson=le.text, verdict=le.verdict,
                  holds=le.holds, observed=le.observed, needs_gil=le.needs_gil)
             for le in self.lessons],
            columns=LESSON_COLUMNS)
        return Result(self.spec.id, self.spec.title, self.scale, table, lessons,
                      samples=samples, load=self.load, extras=self.extras,
                      figure_factory=figure)


# ---------------------------------------------------------------- running

def catalog() -> "pd.DataFrame":
    """Every registered experiment: id, title, lecture file, lecture title, what it
    shows, what its timer covers."""
    import pandas as pd

    rows = [dict(id=s.id, title=s.title, lecture=s.lecture,
                 lecture_title=presentation.lecture_title(s.lecture), shows=s.shows, timer=s.timer)
            for s in sorted(REGISTRY.values(), key=lambda s: _id_key(s.id))]
    return pd.DataFrame(rows, columns=["id", "title", "lecture", "lecture_title", "shows",
                                       "timer"])


def _id_key(id: str) -> tuple[int, ...]:
    return tuple(int(p) for p in id.lstrip("L").split("."))


def run(id: str, *, scale: str | None = None, start_method: str | None = None,
        cores: int | None = None) -> Result:
    """Run one experiment by id (``"L0.6"``) at ``scale`` (tiny, quick or full);
    with ``cores``, on that many of the usable cores only (the process and the
    workers it starts), the affinity it had given back when it returns."""
    if id not in REGISTRY:
        ids = sorted(REGISTRY, key=_id_key)
        raise ValueError(f"unknown experiment {id!r}; choose from {', '.join(ids)}")
    spec = REGISTRY[id]
    scale = check_scale(scale) if scale is not None else default_scale()
    with restricted(cores):
        ctx = Context(spec, scale, start_method)
        t0 = time.perf_counter()
        result = spec.func(ctx)
        result.wall_s = time.perf_counter() - t0
    return result
