"""Machinery shared by the lecture experiments: registry, timing, tables, lessons.

An experiment is a function decorated with :func:`experiment`. It receives a
:class:`Context`, measures variants with :meth:`Context.measure`, states the
lecture's lessons with :meth:`Context.lesson`, and returns
:meth:`Context.result`. Measuring lives here; drawing lives in
:mod:`parlab.plot`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import statistics
import time
from typing import Any, Callable

import pandas as pd

SCALES = ("tiny", "quick", "full")
TABLE_COLUMNS = [
    "experiment", "variant", "backend", "workers", "release_gil",
    "seconds", "speedup", "correct",
]
LESSON_COLUMNS = ["experiment", "lesson", "holds", "observed"]
REPEATS = {"tiny": 1, "quick": 3, "full": 5}

FigureFactory = Callable[["Result"], Any]


@dataclasses.dataclass(frozen=True)
class Spec:
    id: str
    title: str
    lecture: str
    shows: str
    sizes: dict[str, dict[str, Any]]
    func: Callable[["Context"], "Result"]


REGISTRY: dict[str, Spec] = {}


def experiment(id: str, *, title: str, lecture: str, shows: str,
               sizes: dict[str, dict[str, Any]]):
    """Register an experiment; ``sizes`` maps every scale to its parameters."""
    missing = set(SCALES) - set(sizes)
    if missing:
        raise ValueError(f"experiment {id}: sizes lack scales {sorted(missing)}")

    def register(func: Callable[["Context"], "Result"]):
        if id in REGISTRY:
            raise ValueError(f"experiment {id} registered twice")
        REGISTRY[id] = Spec(id, title, lecture, shows, sizes, func)
        return func

    return register


def default_scale() -> str:
    """The scale named by ``PARLAB_SCALE`` (notebooks and CI set it), else quick."""
    return os.environ.get("PARLAB_SCALE", "quick")


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
    return scale


@dataclasses.dataclass
class Result:
    """What one experiment measured and what it concluded."""

    id: str
    title: str
    scale: str
    table: pd.DataFrame
    lessons: pd.DataFrame
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    figure_factory: FigureFactory | None = None

    def figure(self):
        """A matplotlib Figure telling this experiment's story."""
        from parlab import plot

        factory = self.figure_factory or plot.speedup_figure
        return factory(self)

    def _repr_html_(self) -> str:
        return (f"<h4>{self.id}: {self.title}</h4>" + self.table.to_html(index=False)
                + self.lessons.to_html(index=False))


class Context:
    """Handed to an experiment: its sizes, the machine, and the recorders."""

    def __init__(self, spec: Spec, scale: str, start_method: str | None = None):
        self.spec = spec
        self.scale = check_scale(scale)
        self.params: dict[str, Any] = dict(spec.sizes[scale])
        self.cores: int = os.cpu_count() or 1
        self.repeats: int = REPEATS[scale]
        self.start_method = start_method
        self._rows: list[dict[str, Any]] = []
        self._lessons: list[dict[str, Any]] = []
        self._baseline: str | None = None
        self._speedup_over: dict[str, str] = {}
        self.extras: dict[str, Any] = {}

    @property
    def mp(self):
        """The multiprocessing context every process pool must be made from."""
        return multiprocessing.get_context(self.start_method)

    def worker_counts(self, *, oversubscribe: int | None = None) -> list[int]:
        """1, half the cores, all the cores and optionally an oversubscribed count."""
        counts = {1, max(1, self.cores // 2), self.cores}
        if oversubscribe:
            counts.add(oversubscribe)
        return sorted(counts)

    def measure(self, variant: str, fn: Callable[[], Any], *, backend: str,
                workers: int = 1, release_gil: bool | None = None,
                check: Callable[[Any], bool] | None = None,
                baseline: bool = False, repeats: int | None = None,
                trace: bool = False, speedup_over: str | None = None) -> Any:
        """Time ``fn()`` (median of repeats), check its output, record a row.

        Returns the output of the last run so the caller can inspect it.
        ``baseline=True`` marks the variant every speedup is relative to
        (default: the first variant measured); ``speedup_over`` names another
        variant for this row alone (one doing the same work another way, where
        the experiment's baseline does a different amount). ``trace=True`` records the
        last run with :func:`parlab.trace`; the figure and the report then
        show its per-thread GIL timeline.
        """
        times = []
        out = None
        n = repeats or self.repeats
        for i in range(n):
            with self._maybe_trace(variant, trace and i == n - 1):
                t0 = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - t0)
        correct = bool(check(out)) if check is not None else True
        self.record(variant, statistics.median(times), backend=backend,
                    workers=workers, release_gil=release_gil, correct=correct,
                    baseline=baseline, speedup_over=speedup_over)
        return out

    @contextlib.contextmanager
    def _maybe_trace(self, variant: str, on: bool):
        if not on:
            yield
            return
        from parlab.tracing import trace

        with trace(cpu_time=True) as tr:
            yield
        self.extras.setdefault("traces", {})[variant] = tr

    def record(self, variant: str, seconds: float, *, backend: str,
               workers: int = 1, release_gil: bool | None = None,
               correct: bool = True, baseline: bool = False,
               speedup_over: str | None = None) -> None:
        """Record a row timed elsewhere (for example inside worker processes).

        Variant names are unique within an experiment: speedups and lessons
        look rows up by name.
        """
        if any(row["variant"] == variant for row in self._rows):
            raise ValueError(f"{self.spec.id}: variant {variant!r} recorded twice")
        if baseline or self._baseline is None:
            self._baseline = variant
        self._rows.append(dict(
            experiment=self.spec.id, variant=variant, backend=backend,
            workers=int(workers), release_gil=release_gil,
            seconds=float(seconds), correct=bool(correct)))
        if speedup_over is not None:
            self._speedup_over[variant] = speedup_over

    def seconds(self, variant: str) -> float:
        for row in self._rows:
            if row["variant"] == variant:
                return row["seconds"]
        raise KeyError(f"{self.spec.id}: no variant {variant!r} measured")

    def speedup(self, variant: str, over: str | None = None) -> float:
        """seconds(over) / seconds(variant); ``over`` defaults to the baseline."""
        return self.seconds(over or self._baseline) / self.seconds(variant)

    def lesson(self, lesson: str, holds: bool, observed: str) -> None:
        self._lessons.append(dict(experiment=self.spec.id, lesson=lesson,
                                  holds=bool(holds), observed=observed))

    def result(self, figure: FigureFactory | None = None) -> Result:
        table = pd.DataFrame(self._rows, columns=[c for c in TABLE_COLUMNS if c != "speedup"])
        table["speedup"] = pd.Series([self.speedup(v, self._speedup_over.get(v))
                                      for v in table.variant], dtype=float)
        table["release_gil"] = table["release_gil"].astype(object)
        table = table[TABLE_COLUMNS]
        lessons = pd.DataFrame(self._lessons, columns=LESSON_COLUMNS)
        return Result(self.spec.id, self.spec.title, self.scale, table, lessons,
                      self.extras, figure)


def catalog() -> pd.DataFrame:
    """Every registered experiment: id, title, lecture file, what it shows."""
    rows = [dict(id=s.id, title=s.title, lecture=s.lecture, shows=s.shows)
            for s in sorted(REGISTRY.values(), key=lambda s: _id_key(s.id))]
    return pd.DataFrame(rows, columns=["id", "title", "lecture", "shows"])


def _id_key(id: str) -> tuple[int, ...]:
    return tuple(int(p) for p in id.lstrip("L").split("."))


def run(id: str, *, scale: str | None = None, start_method: str | None = None) -> Result:
    """Run one experiment by id (``"L0.6"``) at ``scale`` (tiny, quick or full)."""
    if id not in REGISTRY:
        raise ValueError(f"unknown experiment {id!r}; choose from {', '.join(catalog().id)}")
    spec = REGISTRY[id]
    ctx = Context(spec, scale or default_scale(), start_method)
    return spec.func(ctx)
