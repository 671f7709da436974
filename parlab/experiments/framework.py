"""The experiment framework: registry, context, measured variants, lessons, results.

An experiment is a function decorated with :func:`experiment`. It receives a
:class:`Context` and

- measures variants: ``v = ctx.measure(name, fn, ...)`` times ``fn()`` and
  returns a :class:`Variant`; ``a, b = ctx.compare(ctx.plan(...), ctx.plan(...))``
  times several variants interleaved (A B A B ...), so that a change in the
  machine's load hits every side of a comparison alike;
- states lessons through :mod:`parlab.experiments.judging`, handing it the
  variants themselves;
- returns ``ctx.result(figure=...)``, a :class:`Result`.

How work is started (threads, pools, ...) is in :mod:`parlab.experiments.runners`;
drawing is in :mod:`parlab.plot`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import multiprocessing
import os
import statistics
import time
from typing import TYPE_CHECKING, Any, Callable, Union

from parlab import _processes
from parlab._cores import restricted, usable_cores
from parlab.experiments._load import Load, LoadMeter

if TYPE_CHECKING:
    import pandas as pd

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
# A comparison first runs this many interleaved rounds; a timing lesson that
# the samples do not decide yet asks for more (judging.py), up to MAX_ROUNDS.
# On a quiet machine three rounds decide; bursts of interference buy more.
REPEATS = {"tiny": 1, "quick": 3, "full": 3}
MAX_ROUNDS = {"tiny": 1, "quick": 12, "full": 9}
# A comparison's extra rounds may cost at most this multiple of its first ones.
EXTRA_TIME = 3.0
# The capacity probe: released cpu_work, this many seconds of it per round,
# run serially and split over the threads of the comparison (judging.py),
# each thread's slice at least PROBE_SLICE_S: on many cores a shorter slice
# would be mostly its thread's start-up.
PROBE_S = 0.02
PROBE_SLICE_S = 0.005
# "More workers than cores": this many per core (the lecture: 40 on 8 cores).
OVERSUBSCRIBE = 4
# Work split over the cores comes in at least this many tasks per core.
TASKS_PER_CORE = 2
MATCHES_REFERENCE = "matches the reference"
# What the report calls each lecture, by the number its file name starts with.
LECTURE_TITLES = {
    "000": "Lecture 000: a distance matrix, from threads to processes",
    "001": "Lecture 001: multiprocessing, thread pools and joblib",
    "002": "Lecture 002: threads, processes and concurrent.futures",
    "003": "Lecture 003: threads, races, locks and numba",
    "004": "Lecture 004: the GIL, NumPy's own threads, processes x threads",
    "005": "Beyond the lectures: Dask, from one machine to a cluster",
    "006": "Beyond the lectures: Python without the GIL",
}

# Iterations of cpu_work that make one probe slice, by thread count: measured
# once per process.
_PROBE_ITERATIONS: dict[int, int] = {}


def probe_slice_s(workers: int) -> float:
    """Seconds of released ``cpu_work`` in each of the probe's ``workers`` slices."""
    return max(PROBE_S / workers, PROBE_SLICE_S)


def probe_runs(workers: int) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """The capacity probe's two runs: ``workers`` slices of released
    ``cpu_work`` (:func:`probe_slice_s` seconds each) one after another, and
    the same slices in as many threads at once."""
    import parlab
    from parlab.experiments.runners import run_together
    from parlab.workloads.tasks import calibrate

    if workers not in _PROBE_ITERATIONS:
        _PROBE_ITERATIONS[workers] = calibrate(parlab.cpu_work, probe_slice_s(workers))
    calls = [functools.partial(parlab.cpu_work, _PROBE_ITERATIONS[workers])] * workers
    return (lambda: [c() for c in calls]), (lambda: run_together(calls))

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


def lecture_title(lecture: str) -> str:
    """The title of a lecture file (``"000_....txt"``), or the name itself if unknown."""
    return LECTURE_TITLES.get(lecture.split("_", 1)[0], lecture)


# ---------------------------------------------------------------- variants and lessons

@dataclasses.dataclass(frozen=True)
class Cost:
    """What a plan's attributes (backend, workers, release_gil) do not say about
    its work, for the machine model of the tests (``tests/machine_model.py``),
    which turns plans into times on a simulated machine of N cores. A real run
    ignores it. Every field is optional; a plan without one does one unit of
    work, cut into as many tasks as it has workers.
    """

    work: float = 1.0  # how much work, in units of a plan without a Cost
    compiled: bool = False  # compiled or vectorised: far less work than the Python loop
    ops: int | None = None  # or the work counted in elementary steps (sizes alike at every scale)
    tasks: int | None = None  # equal pieces of work handed to the workers (default: workers)
    tiny: bool = False  # each task is less work than starting its thread or region
    starts: int | None = None  # threads, processes or parallel regions started inside a run
    threads: int = 1  # threads each task uses inside its worker (BLAS threads per process)
    wait: float = 0.0  # the share of the work that waits (needs no core)
    pipeline: bool = False  # reading the next chunk overlaps computing this one
    releases: bool | None = None  # releases the GIL though release_gil does not say so
    processes: bool | None = None  # True: the workers are processes whatever the backend
    shared: str | None = None  # every step writes one cache "line", or takes one "lock"


@dataclasses.dataclass(eq=False)
class Plan:
    """A variant not measured yet: made by :meth:`Context.plan`."""

    name: str
    fn: Callable[[], Any]
    backend: str
    workers: int = 1
    release_gil: bool | None = None
    check: Callable[[Any], bool] | None = None
    expected: str = MATCHES_REFERENCE
    baseline: bool = False
    trace: bool = False
    speedup_over: "Variant | Plan | None" = None
    cost: Cost | None = None  # for the machine model of the tests; a real run ignores it
    # The last run's output, set once every plan of a comparison has run: a
    # check may compare with another plan's output (say the serial run's).
    output: Any = None


@dataclasses.dataclass(eq=False)
class Variant:
    """One measured way of doing the work: a row of the result table.

    Lessons take variants, never their names. ``output`` is what the last
    run returned; ``correct`` whether it is what this variant should produce
    (``expected`` says what that is); ``load`` how busy the machine was
    while it was measured.
    """

    name: str
    backend: str
    workers: int
    release_gil: bool | None
    seconds: float
    times: list[float]
    output: Any
    correct: bool
    expected: str
    load: Load
    over: "Variant | None" = None
    # The capacity probe measured interleaved with this variant's comparison:
    # (serial, parallel) Variants of released cpu_work, or None.
    probe: "tuple[Variant, Variant] | None" = None
    comparison: "Comparison | None" = dataclasses.field(default=None, repr=False)

    @property
    def low(self) -> float:
        """The fastest run: what the machine demonstrably can do (timeit's rule)."""
        return min(self.times)

    @property
    def high(self) -> float:
        return max(self.times)

    def more(self) -> bool:
        """Measure one more interleaved round of this variant's comparison;
        False when its budget is spent (or it was measured alone)."""
        return self.comparison is not None and self.comparison.more()

    def speedup(self, over: "Variant | None" = None) -> float:
        """How many times faster than ``over`` (default: the variant it is shown against)."""
        over = over or self.over
        if over is None:
            raise ValueError(f"variant {self.name!r}: speedup over what?")
        return over.seconds / self.seconds


def timed(fn: Callable[[], Any]) -> Callable[[], float]:
    """``fn`` as a run of :class:`Rounds`: calls it, returns the seconds it took."""
    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    return run


class Rounds:
    """Runs measured interleaved, round after round (A B A B ...), with the
    machine's load metered over the rounds. Each run returns the seconds it
    took (:func:`timed` makes one of any callable). The first call sets the
    budget of later rounds: :data:`EXTRA_TIME` times its time. What an
    experiment's comparison and ``%speedup`` both measure with."""

    def __init__(self, runs: "list[Callable[[], float]]", cores: int):
        self.runs = runs
        self.cores = cores
        self.times: list[list[float]] = [[] for _ in runs]
        self.load = Load(cores=cores)
        self.rounds = 0
        self.budget_s = math.inf

    def run(self, rounds: int,
            around: "Callable[[int, bool], contextlib.AbstractContextManager] | None" = None
            ) -> Load:
        """``rounds`` more rounds; ``around(i, last)``, if given, wraps run
        ``i`` of each round (``last``: in the last of these rounds). Returns
        the load they met."""
        # One window for the rounds: the kernel counts CPU time in 10 ms
        # ticks, too coarse to read around each short run.
        t0 = time.perf_counter()
        with LoadMeter(self.cores) as meter:
            for r in range(rounds):
                for i, run in enumerate(self.runs):
                    with around(i, r == rounds - 1) if around else contextlib.nullcontext():
                        self.times[i].append(run())
        spent = time.perf_counter() - t0
        self.rounds += rounds
        self.load = self.load + meter.load
        self.budget_s = EXTRA_TIME * spent if self.budget_s == math.inf else self.budget_s - spent
        return meter.load

    def may_add(self, max_rounds: int) -> bool:
        """Whether one more round fits: fewer than ``max_rounds`` so far, budget left."""
        return self.rounds < max_rounds and self.budget_s > 0


class Comparison:
    """Plans measured in :class:`Rounds`, each plan's last output kept in it;
    the variants they became are updated in place as rounds are added."""

    def __init__(self, ctx: "Context", plans: "list[Plan]"):
        self.ctx = ctx
        self.plans = plans
        self.rounds = Rounds([timed(functools.partial(self._call, p)) for p in plans], ctx.cores)
        self.variants: list[Variant] = []

    @staticmethod
    def _call(plan: "Plan") -> None:
        plan.output = plan.fn()

    @property
    def times(self) -> list[list[float]]:
        return self.rounds.times

    @property
    def load(self) -> Load:
        return self.rounds.load

    def run(self, rounds: int, trace_last: bool = False) -> None:
        plans = self.plans
        load = self.rounds.run(rounds, lambda i, last: self.ctx._maybe_trace(
            plans[i].name, plans[i].trace and trace_last and last))
        self.ctx.load = self.ctx.load + load
        for v, times in zip(self.variants, self.times):
            v.seconds, v.load = statistics.median(times), self.load

    def more(self) -> bool:
        if not self.rounds.may_add(MAX_ROUNDS[self.ctx.scale]):
            return False
        self.run(1)
        return True


@dataclasses.dataclass(frozen=True)
class Lesson:
    text: str
    verdict: str
    observed: str
    # The lecture's claim is true because of the GIL: where the GIL is off it
    # is judged by what that interpreter should do instead (judging.py).
    needs_gil: bool = False

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"


# ---------------------------------------------------------------- results

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
        """The table as a reader needs it on a page: one row per variant, its
        median and the range of its runs in milliseconds, the speedup and what
        it is over, whether the output was right, and what it should be where
        that is not simply the reference (``table`` has it all)."""
        t = self.table
        gil = t.release_gil.map(lambda r: "-" if r is None or r != r else
                                ("released" if r else "held"))
        runs = [f"{lo * 1e3:.3g}-{hi * 1e3:.3g} ({n})"
                for lo, hi, n in zip(t.low_s, t.high_s, t.n_samples)]
        expected = t.expected.where(t.expected != MATCHES_REFERENCE, "")
        return t.assign(GIL=gil, ms=t.seconds * 1e3, runs=runs, expected=expected)[
            ["variant", "backend", "workers", "GIL", "ms", "runs", "speedup", "speedup_over",
             "correct", "expected"]].rename(columns={"ms": "median ms", "runs": "runs ms (n)"})

    def _repr_html_(self) -> str:
        import pandas as pd

        with pd.option_context("display.max_colwidth", None):
            return (f"<h4>{self.id}: {self.title}</h4>" + self.overview().to_html(index=False)
                    + self.lessons.to_html(index=False)
                    + f"<p>While measuring: {self.load.describe()}.</p>")


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
        self.variants: list[Variant] = []
        self.lessons: list[Lesson] = []
        self.load = Load(cores=self.cores)
        self.extras: dict[str, Any] = {}
        self._baseline: Variant | None = None
        self._trace = None  # the Trace recording the current run, if any

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
        if any(v.name == name for v in self.variants):
            raise ValueError(f"{self.spec.id}: variant {name!r} measured twice")
        return Plan(name, fn, backend, int(workers), release_gil, check, expected,
                    baseline, trace, speedup_over, cost)

    def compare(self, *plans: Plan, repeats: int | None = None,
                versus_first: bool = False) -> list[Variant]:
        """Measure the plans interleaved, A B C A B C ...; each gets its median time
        and keeps every sample (``Variant.times``).

        Interleaving spreads a change in the machine's load over every variant
        of a comparison instead of letting it land on one. A timing lesson
        that the samples do not decide yet measures more rounds of the whole
        comparison (:meth:`Variant.more`). Where a plan runs in parallel, a
        capacity probe is measured in the same rounds (:attr:`Variant.probe`):
        released ``cpu_work`` serially and in as many threads, which shows
        whether the cores were there while the comparison ran.
        ``versus_first=True`` shows the speedups of this comparison over its
        first plan (unless a plan names its own ``speedup_over``).
        """
        if versus_first:
            for p in plans:
                p.speedup_over = p.speedup_over or plans[0]
        names = [p.name for p in plans]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.spec.id}: variant names repeat in {names}")
        workers = min(max(p.workers for p in plans), self.cores)
        probes = self._probe_plans(workers) if workers > 1 else []
        comparison = self.comparison([*plans, *probes])
        comparison.run(repeats or self.repeats, trace_last=True)
        measured: dict[int, Variant] = {}
        for p, times in zip(comparison.plans, comparison.times):
            v = Variant(p.name, p.backend, p.workers, p.release_gil,
                        statistics.median(times), times, p.output,
                        bool(p.check(p.output)) if p.check is not None else True,
                        p.expected, comparison.load, comparison=comparison)
            comparison.variants.append(v)
            measured[id(p)] = v
        probe = tuple(comparison.variants[len(plans):]) or None
        for p in plans:
            v = measured[id(p)]
            v.probe = probe
            if p.baseline or self._baseline is None:
                self._baseline = v
            self.variants.append(v)
            over = p.speedup_over
            v.over = measured.get(id(over), over) if over is not None else None
        return [measured[id(p)] for p in plans]

    def comparison(self, plans: list[Plan]) -> Comparison:
        """The :class:`Comparison` that measures ``plans`` (the machine model of
        the tests gives one that asks it for their times instead)."""
        return Comparison(self, plans)

    def _probe_plans(self, workers: int) -> list[Plan]:
        serial, threads = probe_runs(workers)
        return [Plan("probe: cpu_work released, serial", serial, "serial", 1, True),
                Plan(f"probe: cpu_work released, {workers} threads", threads,
                     "threading.Thread", workers, True)]

    def measure(self, name: str, fn: Callable[[], Any], **kwargs: Any) -> Variant:
        """Measure one variant (the arguments of :meth:`plan`); return it."""
        return self.compare(self.plan(name, fn, **kwargs))[0]

    @contextlib.contextmanager
    def _maybe_trace(self, variant: str, on: bool):
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
        return self._baseline

    def lesson(self, text: str, verdict: str, observed: str, *,
               needs_gil: bool = False) -> Lesson:
        """Record a lesson; :mod:`parlab.experiments.judging` decides the verdict."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}; got {verdict!r}")
        lesson = Lesson(text, verdict, observed, needs_gil)
        self.lessons.append(lesson)
        return lesson

    def result(self, figure: FigureFactory | None = None) -> Result:
        import pandas as pd

        rows = []
        for v in self.variants:
            over = v.over or self.baseline
            rows.append(dict(experiment=self.spec.id, variant=v.name, backend=v.backend,
                             workers=v.workers, release_gil=v.release_gil,
                             seconds=v.seconds, low_s=v.low, high_s=v.high,
                             n_samples=len(v.times), speedup=v.speedup(over),
                             speedup_over=over.name, expected=v.expected, correct=v.correct))
        table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
        samples = pd.DataFrame(
            [dict(experiment=self.spec.id, variant=v.name, round=r, seconds=t)
             for v in self.variants for r, t in enumerate(v.times)], columns=SAMPLE_COLUMNS)
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
                 lecture_title=lecture_title(s.lecture), shows=s.shows, timer=s.timer)
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
