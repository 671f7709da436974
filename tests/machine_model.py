"""A machine of N cores that turns the experiments' own plans into times.

Each registered experiment runs as it is written, with a :class:`ModelContext`
whose ``cores`` is N and whose comparisons do not time the plans: the model
(:func:`seconds`) computes each plan's time from its attributes (``backend``,
``workers``, ``release_gil``) and its :class:`~parlab.experiments.measuring.Cost`
hint, and every sample gets noise drawn as a VM's bursts look
(``tests/test_verdicts.py``: some runs slowed by 40-300%). The judging rules,
extra rounds (``Context.sampling``) and the capacity probe work unchanged on
these samples, so the verdicts are the rules' own, for N cores.

What the model knows:

- a plan's work: one unit (:data:`UNIT_S` core-seconds) unless its Cost says
  otherwise; compiled code does :data:`COMPILED` times less of it;
- it is cut into ``Cost.tasks`` equal tasks (default: one per worker), run
  in waves over the workers, and the workers share the cores: more running
  than cores take turns (native threads that spin lose more);
- in threads, work that holds the GIL (``release_gil`` False, or None: pure
  Python) takes turns; released work, and every process, runs at once; a
  wait needs no core and overlaps unless it holds the GIL;
- starting a thread, a process or a parallel region inside a run costs
  time in the caller, and so does handing a task to a pool;
- every step writing one cache line, or taking one lock, serialises the
  threads that run at once, and costs more for it.

Nothing real starts: process pools, joblib, executors, Dask clusters and
worker interpreters are stand-ins that run the tasks in this process, on
pickled copies of their arguments where processes would (so a child's
writes stay its own). Each plan's function still runs once, at the ``tiny``
scale, for the output its check and the experiment's facts read; the times
never come from it. ``python tests/machine_model.py`` prints the table of
lessons x cores.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import importlib
import json
import math
import pickle
import random
import sys
import zlib
from typing import Any, Callable, Iterator
from unittest import mock

import numpy as np

from parlab.experiments import framework, measuring, probe
from parlab.experiments.framework import REGISTRY, Context, Result
from parlab.experiments.load_meter import Load
from parlab.experiments.measuring import Comparison, Cost, Plan, Rounds

CORES = (1, 2, 4, 8, 16, 64)

# ---------------------------------------------------------------- the machine's numbers

UNIT_S = 0.5  # one unit of work: a quick-scale run of one variant on one core
# Compiled or vectorised code against the Python loop: L1.5's pure-Python cdist
# loop took 290x the time of parlab.cdist on this project's Xeon.
COMPILED = 300.0
PYTHON_OP_S = 50e-9  # one elementary step (Cost.ops) in Python ...
COMPILED_OP_S = 0.25e-9  # ... and in compiled, vectorised code
TINY_TASK_S = 10e-6  # a tiny task (Cost.tiny): less than starting a thread
THREAD_START_S = 50e-6  # starting and joining a thread (or opening a parallel region)
PROCESS_START_S = 2e-3  # starting and joining a process (fork)
THREAD_TASK_S = 20e-6  # handing a task to a pool's thread and getting its result
PROCESS_TASK_S = 200e-6  # ... to a pool's process: pickling both ways
GIL_SWITCH = 0.05  # threads taking turns on the GIL lose this share to the switching
LINE_BOUNCE = 4.0  # a step on a cache line that other cores write: this many plain steps
LOCK_CONTENDED = 6.0  # a step on a lock that other threads want: this many uncontended steps
SWITCH = 0.02  # more workers than cores: the OS's switching costs this per extra worker
SPIN = 0.3  # ... native threads (BLAS, OpenMP) spin and lose this much instead
BURST_SHARE = 0.3  # the share of runs hit by a burst of other work
BURST = (0.4, 3.0)  # a burst adds this range of the run's time
JITTER = 0.08  # every run is up to this much slower than the model's time

# How each backend runs its workers.
SERIAL, THREADS, PROCESSES, NATIVE = "serial", "threads", "processes", "native"
KIND = {
    "serial": SERIAL, "scipy": SERIAL, "pandas": SERIAL, "numpy": SERIAL,
    "threading.Thread": THREADS, "multiprocessing.pool.ThreadPool": THREADS,
    "joblib[threads]": THREADS, "ThreadPoolExecutor": THREADS, "dask.array": THREADS,
    "dask.distributed": THREADS,  # one worker's threads; Cost(processes=True) for workers
    "multiprocessing.Pool": PROCESSES, "multiprocessing.Process": PROCESSES,
    "shared_memory": PROCESSES, "joblib[processes]": PROCESSES, "ProcessPoolExecutor": PROCESSES,
    "numba": NATIVE, "threadpoolctl.threadpool_limits": NATIVE, "parlab": NATIVE,
}
# Backends that start their workers inside every run (others are pools, started before).
STARTS_WORKERS = {"threading.Thread", "multiprocessing.Process", "shared_memory"}


@dataclasses.dataclass(frozen=True)
class Machine:
    """N cores, and how the machine behaves. The defaults are the lectures'
    machine; each ``False`` (or changed number) makes some lesson false."""

    cores: int
    gil: bool = True  # held work and pure Python take turns in threads
    releases: bool = True  # released work and waits run at once in threads
    processes: bool = True  # processes run at once (False: they take turns, as on one GIL)
    compiled: float = COMPILED  # how much faster compiled code is
    thread_start_s: float = THREAD_START_S
    contends: bool = True  # a lock (cache line) that threads share costs more per step
    hidden_cores: int = 0  # cores the machine has beyond those it tells the experiments
    bursts: float = BURST_SHARE
    seed: int = 0


def seconds(m: Machine, plan: Plan) -> float:
    """The time one run of ``plan`` takes on ``m``, without noise."""
    c = plan.cost or Cost()
    kind = PROCESSES if c.processes else KIND[plan.backend]
    cores = m.cores + m.hidden_cores
    released = c.releases if c.releases is not None else plan.release_gil
    if c.ops is not None:
        work = c.ops * (COMPILED_OP_S if c.compiled else PYTHON_OP_S)
    elif c.tiny:
        work = (c.tasks or plan.workers) * TINY_TASK_S
    else:
        work = UNIT_S * c.work / (m.compiled if c.compiled else 1.0)
    wait, compute = c.wait * work, (1 - c.wait) * work
    k = max(1, plan.workers // c.threads)  # workers; each task uses c.threads threads in one
    tasks = c.tasks or k
    starts = c.starts if c.starts is not None else (k if plan.backend in STARTS_WORKERS else 0)
    overhead = starts * (PROCESS_START_S if kind == PROCESSES else m.thread_start_s)
    if kind == SERIAL or plan.workers == 1:
        return overhead + work
    # Turns: in threads, held work (and pure Python) takes turns on the GIL, a
    # false machine's released work too; a wait holds the GIL only where held.
    turns = kind == THREADS and (m.gil and released is not True or not m.releases and released)
    waits_turn = kind in (THREADS, NATIVE) and (m.gil and released is False or not m.releases)
    if kind == NATIVE and not m.releases or kind == PROCESSES and not m.processes:
        turns = True
    if plan.backend not in STARTS_WORKERS and kind in (THREADS, PROCESSES):
        overhead += tasks * (PROCESS_TASK_S if kind == PROCESSES else THREAD_TASK_S)
    if c.pipeline:  # reading the next chunk while computing this one
        read, run = wait, compute
        if waits_turn or turns and not wait:
            return overhead + work
        return overhead + max(read, run) + min(read, run) / tasks
    at_once = min(k, tasks)
    if c.shared and at_once > 1:
        # A line bounces between cores running at once; a lock is wanted also
        # by threads the GIL switches away from while they hold it.
        at_once_on_cores = min(at_once, cores) > 1 and not turns
        contended = m.contends and (at_once_on_cores or c.shared == "lock" and turns)
        if contended:
            step = LINE_BOUNCE if c.shared == "line" else LOCK_CONTENDED
            return overhead + compute * step + wait
        if c.shared == "lock" or turns:  # one at a time, but no handing over
            return overhead + work
    return overhead + _spread(compute, turns, kind, k, tasks, c.threads, cores) + \
        _spread(wait, waits_turn, kind, k, tasks, 1, math.inf)


def _spread(work: float, turns: bool, kind: str, workers: int, tasks: int, threads: int,
            cores: float) -> float:
    """``work`` cut into ``tasks`` on ``workers`` of ``threads`` threads each,
    on ``cores``: one after the other if they take ``turns``, else in waves."""
    if work == 0:
        return 0.0
    if turns:
        return work * (1 + GIL_SWITCH)
    at_once = min(workers, tasks)
    waves = math.ceil(tasks / at_once)
    crowd = max(1.0, at_once * threads / cores)
    loss = SPIN if kind == NATIVE or threads > 1 else SWITCH
    return waves * work / tasks / threads * crowd * (1 + loss * (crowd - 1))


# ---------------------------------------------------------------- the simulated context

class ModelRounds(Rounds):
    """Rounds whose runs return the model's seconds; no load meter (the model's
    machine has no other programs on it)."""

    def run(self, rounds: int, around=None) -> Load:
        spent = 0.0
        for _ in range(rounds):
            for i, run in enumerate(self.runs):
                t = run()
                self._times[i].append(t)
                spent += t
        load = Load(wall_s=spent, cores=self.cores)
        self._ran(rounds, spent, load)
        return load


class ModelComparison(Comparison):
    """A comparison measured on the model: each plan's function runs once (for
    its output), its samples come from :func:`seconds` and the noise."""

    def __init__(self, ctx: "ModelContext", plans: list[Plan], probes: list[Plan]):
        # As many rounds as at the quick scale.
        super().__init__(plans, ctx.cores, measuring.MAX_ROUNDS["quick"], probes=probes)
        self.ctx = ctx
        self.rounds = ModelRounds([functools.partial(self._sample, p)
                                   for p in self.plans + self.probes], ctx.cores)
        self._ran: set[int] = set()

    def _sample(self, plan: Plan) -> float:
        if id(plan) not in self._ran:
            self._ran.add(id(plan))
            plan.output = plan.fn()
        return self.ctx.noisy(seconds(self.ctx.machine, plan))


def _nothing() -> None:
    return None


class ModelContext(Context):
    """The experiment's context on ``machine``: its cores, the quick scale's
    rounds, the tiny scale's sizes, a stand-in for multiprocessing."""

    def __init__(self, spec: framework.Spec, machine: Machine):
        super().__init__(spec, "tiny")
        self.machine = machine
        self.cores = machine.cores
        self.repeats = measuring.REPEATS["quick"]
        self.rng = random.Random(zlib.crc32(f"{spec.id} {machine}".encode()))

    @property
    def mp(self):
        return FakeMultiprocessing()

    def comparison(self, plans: list[Plan], probes: list[Plan]) -> Comparison:
        return ModelComparison(self, plans, probes)

    def _probe_plans(self, workers: int) -> list[Plan]:
        cost = Cost(work=workers * probe.slice_s(workers) / UNIT_S)
        return [Plan("probe: cpu_work released, serial", _nothing, "serial", 1, True, cost=cost),
                Plan(f"probe: cpu_work released, {workers} threads", _nothing,
                     "threading.Thread", workers, True, cost=cost)]

    def noisy(self, t: float) -> float:
        """``t`` as a run on a VM shows it: a little slower, sometimes much."""
        r = self.rng
        burst = r.uniform(*BURST) if r.random() < self.machine.bursts else 0.0
        return t * (r.uniform(1.0, 1.0 + JITTER) + burst)


# ---------------------------------------------------------------- stand-ins

def _apart(obj: Any) -> Any:
    """``obj`` as another process gets it: a pickled copy."""
    return pickle.loads(pickle.dumps(obj))


class _Done:
    def __init__(self, value: Any):
        self.value = value

    def get(self, timeout: float | None = None) -> Any:
        return self.value


class FakePool:
    """A process pool (``multiprocessing.Pool``, ``ProcessPoolExecutor``) that
    runs each task here, on a copy of its arguments."""

    def __init__(self, processes: int | None = None, initializer=None, initargs=(), **_: Any):
        if initializer is not None:
            initializer(*initargs)

    def map(self, fn, *iterables, chunksize: int | None = None, **_: Any) -> list:
        return [_apart(fn(*_apart(args))) for args in zip(*iterables)]

    def starmap(self, fn, iterable, chunksize: int | None = None) -> list:
        return [_apart(fn(*_apart(tuple(args)))) for args in iterable]

    def apply_async(self, fn, args=(), kwds=None) -> _Done:
        return _Done(_apart(fn(*_apart(args), **_apart(kwds or {}))))

    def submit(self, fn, *args, **kwargs) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_result(_apart(fn(*_apart(args), **_apart(kwargs))))
        return future

    def close(self) -> None: ...
    def join(self) -> None: ...
    def terminate(self) -> None: ...
    def shutdown(self, wait: bool = True, **_: Any) -> None: ...

    def __enter__(self) -> "FakePool":
        return self

    def __exit__(self, *exc: Any) -> None: ...


class FakeProcess:
    """``multiprocessing.Process``: ``start`` runs the target here on a copy of its arguments."""

    def __init__(self, target, args=(), kwargs=None, **_: Any):
        self.target, self.args, self.kwargs, self.exitcode = target, args, kwargs or {}, None

    def start(self) -> None:
        self.target(*_apart(self.args), **_apart(self.kwargs))
        self.exitcode = 0

    def join(self, timeout: float | None = None) -> None: ...


class FakeMultiprocessing:
    """What experiments use of a multiprocessing context."""

    Pool = FakePool
    Process = FakeProcess


@contextlib.contextmanager
def _joblib_pool(workers: int, prefer: str) -> Iterator[Callable]:
    copy = _apart if prefer == "processes" else (lambda x: x)

    def parallel(calls) -> list:
        return [copy(fn(*copy(args), **copy(kwargs))) for fn, args, kwargs in calls]

    yield parallel


class InProcessWorker:
    """``interpreters.Worker`` of this interpreter, answering here (JSON both ways)."""

    def __init__(self, python: str | None = None, *, gil: bool | None = None):
        from parlab.experiments import interpreters

        self.about = interpreters.describe()

    def call(self, name: str, *args: Any) -> Any:
        module, function = name.split(":")
        args = json.loads(json.dumps(args))
        return json.loads(json.dumps(getattr(importlib.import_module(module), function)(*args)))

    def close(self) -> None: ...

    def __enter__(self) -> "InProcessWorker":
        return self

    def __exit__(self, *exc: Any) -> None: ...


_CLIENTS: dict[tuple[int, int], Any] = {}


@contextlib.contextmanager
def _cluster(address: str | None = None, *, workers: int = 2, threads_per_worker: int = 2,
             timeout: float = 60) -> Iterator[Any]:
    """A Dask client of an in-process cluster (threads), one per shape, kept for
    every later experiment (closed at exit)."""
    key = (workers, threads_per_worker)
    if key not in _CLIENTS:
        import atexit

        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                               processes=False, dashboard_address=None)
        client = Client(cluster, set_as_default=False)
        _CLIENTS[key] = client
        atexit.register(lambda: (client.close(), cluster.close()))
    yield _CLIENTS[key]


def _draws(processes: int, samples: int, *, start_method: str | None = None,
           timeout: float = 60.0) -> list[np.ndarray]:
    """``cluster.global_draws`` without processes: a forked worker starts from a
    copy of this process's global random state, a spawned one seeds itself."""
    from parlab.workloads import cluster

    state, draws = np.random.get_state(), []
    for _ in range(processes):
        if cluster.pool_start_method(start_method) == "fork":
            np.random.set_state(state)
            draws.append(np.random.uniform(-1, 1, (samples, 2)))
        else:
            draws.append(np.random.default_rng().uniform(-1, 1, (samples, 2)))
    np.random.set_state(state)
    return draws


@contextlib.contextmanager
def stand_ins() -> Iterator[None]:
    """Everything that would start processes, clusters or long calibrations, replaced."""
    from parlab.experiments import (
        lecture0, lecture1, lecture2, lecture4, lecture6, runners,
    )
    from parlab.workloads import cluster, regions, tasks

    def no_warm_up(pool, workers: int) -> None: ...

    patches = [
        *[(m, "warm_up", no_warm_up) for m in (runners, lecture0, lecture2, lecture4)],
        (runners, "joblib_pool", _joblib_pool), (lecture1, "joblib_pool", _joblib_pool),
        (runners, "loky_workers", contextlib.nullcontext),
        (lecture1, "loky_workers", contextlib.nullcontext),
        (concurrent.futures, "ProcessPoolExecutor", FakePool),
        (tasks, "calibrate", lambda run, seconds: 1000),
        (probe, "calibrate", lambda run, seconds: 1000),
        (regions, "loops_for", lambda call, seconds: 2),
        (cluster, "connect", _cluster), (cluster, "global_draws", _draws),
        (lecture6, "Worker", InProcessWorker), (lecture6, "other_builds", lambda: []),
    ]
    with contextlib.ExitStack() as stack:
        for module, name, value in patches:
            stack.enter_context(mock.patch.object(module, name, value))
        yield


# ---------------------------------------------------------------- running and the table

def run(id: str, machine: Machine) -> Result:
    """Experiment ``id`` on ``machine`` (inside :func:`stand_ins`)."""
    spec = REGISTRY[id]
    return spec.func(ModelContext(spec, machine))


def experiment_ids() -> list[str]:
    return sorted(REGISTRY, key=framework._id_key)


Table = dict[tuple[str, int], dict[int, tuple[str, str, str]]]


def verdicts(ids: list[str] | None = None, cores=CORES, *, jobs: int = 1,
             **machine: Any) -> Table:
    """(experiment, lesson's position) -> cores -> (lesson, verdict, observed),
    on the model's machine (``machine``: :class:`Machine`'s knobs). By position,
    so that a lesson whose text names the thread count stays one row.
    ``jobs`` > 1 shares the experiments out to as many (spawned) processes: the
    real tiny runs, not the model, take the time."""
    ids = ids or experiment_ids()
    if jobs > 1:
        import multiprocessing

        work = functools.partial(verdicts, cores=cores, **machine)
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            parts = pool.map(work, [ids[i::jobs] for i in range(jobs)])
        return {key: part[key] for key in sorted({k for p in parts for k in p},
                                                 key=lambda k: (framework._id_key(k[0]), k[1]))
                for part in parts if key in part}
    table: Table = {}
    with stand_ins():
        for id in ids:
            for n in cores:
                lessons = run(id, Machine(n, **machine)).lessons
                for i, row in enumerate(zip(lessons.lesson, lessons.verdict, lessons.observed)):
                    table.setdefault((id, i), {})[n] = row
    return table


def markdown(table: Table, cores=CORES) -> str:
    """The table of lessons x cores as markdown (a lesson's text as on 2 cores)."""
    lines = ["| experiment | lesson | " + " | ".join(f"{n} core{'s' * (n > 1)}" for n in cores)
             + " |", "|---|---|" + "---|" * len(cores)]
    for (id, _), by_cores in table.items():
        text = by_cores.get(2, next(iter(by_cores.values())))[0]
        cells = [by_cores[n][1] if n in by_cores else "-" for n in cores]
        lines.append(f"| {id} | {text} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def failures(table: Table) -> list[tuple[str, str, int, str]]:
    """(experiment, lesson, cores, observed) of every lesson that fails."""
    return [(id, text, n, observed) for (id, _), by in table.items()
            for n, (text, verdict, observed) in by.items() if verdict == "fails"]


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    ids = sys.argv[1:] or None
    result = verdicts(ids, jobs=2)
    print(markdown(result))
    failing = failures(result)
    if failing:
        print("\nfails:")
        for id, text, n, observed in failing:
            print(f"- {id} \"{text}\" on {n} cores: {observed}")
