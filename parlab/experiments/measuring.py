"""The measuring engine: plans timed in interleaved rounds, and their samples.

A :class:`Plan` says how to run one way of doing the work; a
:class:`Comparison` runs several plans round after round (A B A B ...) in
:class:`Rounds`, with the machine's load metered over them, and shows each
plan as a :class:`Variant`: a row of the result table with every sample
taken so far, immutable as pyperf's runs are. Rounds measure on demand only:
a verdict rule that the samples do not decide yet is handed a
:class:`Sampling`, whose ``more()`` adds a round and whose ``times()`` gives
the samples it has then. Who
decides is :mod:`parlab.experiments.judging`; what an experiment calls is
:class:`parlab.experiments.framework.Context`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import statistics
import time
from typing import Any, Callable, Sequence

from parlab.experiments.load_meter import Load, LoadMeter
from parlab.presentation import MATCHES_REFERENCE

# A comparison first runs this many interleaved rounds, by scale; a timing
# lesson that the samples do not decide yet asks for more (judging.py), up to
# MAX_ROUNDS. On a quiet machine three rounds decide; bursts of interference
# buy more.
REPEATS = {"tiny": 1, "quick": 3, "full": 3}
MAX_ROUNDS = {"tiny": 1, "quick": 12, "full": 9}
# A comparison's extra rounds may cost at most this multiple of its first ones.
EXTRA_TIME = 3.0


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
    """A variant not measured yet: made by ``Context.plan``."""

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


# eq=False: a variant is its identity, as before; its output may be an array.
@dataclasses.dataclass(frozen=True, eq=False)
class Variant:
    """One measured way of doing the work, as far as it was measured: a row of
    the result table.

    Immutable, as the samples it holds: a rule that measures more rounds of
    its comparison sees them in a new Variant
    (:meth:`~parlab.experiments.framework.Context.current`). Lessons take
    variants, never their names. ``times`` holds every sample taken,
    ``seconds`` is their median; ``output`` is what the run that was checked
    returned, ``correct`` whether it is what this variant should produce
    (``expected`` says what that is); ``load`` how busy the machine was while
    the samples were taken.
    """

    name: str
    backend: str
    workers: int
    release_gil: bool | None
    times: tuple[float, ...]
    output: Any
    correct: bool
    expected: str
    load: Load
    # The name of the variant its speedup is shown against (None: the baseline).
    over: str | None = None
    # The capacity probe measured interleaved with this variant's comparison:
    # (serial, parallel) Variants of released cpu_work, or None.
    probe: "tuple[Variant, Variant] | None" = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", tuple(self.times))

    @property
    def seconds(self) -> float:
        """The median run: what the table shows."""
        return statistics.median(self.times)

    @property
    def low(self) -> float:
        """The fastest run: what the machine demonstrably can do (timeit's rule)."""
        return min(self.times)

    @property
    def high(self) -> float:
        return max(self.times)

    def speedup(self, over: "Variant") -> float:
        """How many times faster than ``over``."""
        return over.seconds / self.seconds


def timed_run(fn: Callable[[], Any]) -> Callable[[], float]:
    """``fn`` as a run of :class:`Rounds`: calls it, returns the seconds it took."""
    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    return run


class Rounds:
    """Runs measured interleaved, round after round (A B A B ...), with the
    machine's load metered over the rounds. Each run returns the seconds it
    took (:func:`timed_run` makes one of any callable). The first call sets the
    budget of later rounds: :data:`EXTRA_TIME` times its time. What an
    experiment's comparison and ``%speedup`` both measure with."""

    def __init__(self, runs: "list[Callable[[], float]]", cores: int):
        self.runs = runs
        self.cores = cores
        self._times: list[list[float]] = [[] for _ in runs]
        self.load = Load(cores=cores)
        self.rounds = 0
        self.budget_s = math.inf

    @property
    def times(self) -> tuple[tuple[float, ...], ...]:
        """Every sample so far, a tuple per run (a copy: later rounds do not change it)."""
        return tuple(map(tuple, self._times))

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
                        self._times[i].append(run())
        self._ran(rounds, time.perf_counter() - t0, meter.load)
        return meter.load

    def _ran(self, rounds: int, spent: float, load: Load) -> None:
        """Count ``rounds`` that took ``spent`` seconds and met ``load``."""
        self.rounds += rounds
        self.load = self.load + load
        self.budget_s = EXTRA_TIME * spent if self.budget_s == math.inf else self.budget_s - spent

    def add_round(self, max_rounds: int) -> bool:
        """One more round where it fits (fewer than ``max_rounds`` so far, and
        budget left); whether it did."""
        if self.rounds >= max_rounds or self.budget_s <= 0:
            return False
        self.run(1)
        return True


# Wraps one run of a plan: (plan name, whether to trace this run) -> a context manager.
Tracer = Callable[[str, bool], "contextlib.AbstractContextManager"]


class Comparison:
    """Plans, and the capacity probe's plans beside them, measured in
    :class:`Rounds`, at most ``max_rounds`` in all; ``tracer`` wraps each run
    (the context's GIL timeline of plans that ask for one). What it measured
    so far, :meth:`variants`, is a new set of immutable :class:`Variant`
    objects each time."""

    def __init__(self, plans: "list[Plan]", cores: int, max_rounds: int,
                 tracer: Tracer | None = None, probes: "Sequence[Plan]" = ()):
        self.plans = plans
        self.probes = list(probes)
        self.max_rounds = max_rounds
        self.tracer = tracer
        self.rounds = Rounds([timed_run(functools.partial(self._call, p))
                              for p in self.plans + self.probes], cores)
        # Each plan's output and whether it passed its check, from the first rounds.
        self._checked: list[tuple[Any, bool]] = []

    @staticmethod
    def _call(plan: "Plan") -> None:
        plan.output = plan.fn()

    @property
    def load(self) -> Load:
        return self.rounds.load

    def run(self, rounds: int, trace_last: bool = False) -> None:
        """``rounds`` rounds; with ``trace_last``, plans that ask for a trace
        are traced in the last of them."""
        plans, tracer = self.plans + self.probes, self.tracer
        self.rounds.run(rounds, tracer and (lambda i, last: tracer(
            plans[i].name, plans[i].trace and trace_last and last)))
        if not self._checked:
            self._checked = [(p.output, bool(p.check(p.output)) if p.check is not None else True)
                             for p in plans]

    def more(self) -> bool:
        """One more round, within ``max_rounds`` and the time budget; whether it ran."""
        return self.rounds.add_round(self.max_rounds)

    def variants(self) -> "tuple[Variant, ...]":
        """Each plan (not the probe's) as measured so far, with the probe beside it."""
        times, load = self.rounds.times, self.load

        def variant(i: int, p: "Plan", probe: "tuple[Variant, Variant] | None") -> Variant:
            output, correct = self._checked[i]
            return Variant(p.name, p.backend, p.workers, p.release_gil, times[i], output,
                           correct, p.expected, load,
                           p.speedup_over.name if p.speedup_over is not None else None, probe)

        n = len(self.plans)
        beside = tuple(variant(n + k, p, None) for k, p in enumerate(self.probes)) or None
        return tuple(variant(i, p, beside) for i, p in enumerate(self.plans))  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class Sampling:
    """What a verdict rule is handed to take its samples: ``times()`` every
    sample taken so far of each side of the claim (a sequence of seconds per
    side, in the order the rule names them), ``more()`` measures one more
    round of every comparison they came from (False once none can),
    ``load()`` the heaviest load they met so far, ``probe()`` the capacity
    probe measured beside a parallel claim, as (serial times, thread times,
    threads), or None."""

    times: Callable[[], "tuple[Sequence[float], ...]"]
    more: Callable[[], bool] = lambda: False
    load: Callable[[], Load] = Load
    probe: Callable[[], "tuple[Sequence[float], Sequence[float], int] | None"] = lambda: None
