"""The capacity probe: could the machine run threads in parallel just now?

Slices of ``parlab.cpu_work`` with the GIL released, run one after another
and in as many threads at once. Every comparison with a parallel plan
measures it in its own rounds (``Context.compare``), ``%speedup`` beside its
copies, and lecture 0 as the control of a "no speedup" lesson; a failed
parallel speedup counts only where the probe did reach the speedup
(:func:`parlab.experiments.judging.judge`).
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import parlab
from parlab.experiments.measuring import Plan
from parlab.experiments.runners import run_together
from parlab.workloads.tasks import calibrate

# Released cpu_work, this many seconds of it per round, split over the
# threads of the comparison, each thread's slice at least SLICE_S: on many
# cores a shorter slice would be mostly its thread's start-up.
PROBE_S = 0.02
SLICE_S = 0.005


def slice_s(workers: int) -> float:
    """Seconds of released ``cpu_work`` in each of the probe's ``workers`` slices."""
    return max(PROBE_S / workers, SLICE_S)


def slices(threads: int, seconds: float) -> list[Callable[[], float]]:
    """``threads`` equal calls of released ``cpu_work`` of about ``seconds`` each."""
    return [functools.partial(parlab.cpu_work, calibrate(parlab.cpu_work, seconds))] * threads


def serial_and_threads(calls: list[Callable[[], Any]]) -> tuple[Callable[[], list],
                                                                Callable[[], list]]:
    """The probe's two runs of ``calls``: one after another, and all at once
    in threads started together."""
    return (lambda: [c() for c in calls]), (lambda: run_together(calls))


@functools.lru_cache(maxsize=None)
def runs(workers: int) -> tuple[Callable[[], list], Callable[[], list]]:
    """The probe's serial and threaded runs over ``workers`` threads,
    calibrated once per process and thread count."""
    return serial_and_threads(slices(workers, slice_s(workers)))


def plans(workers: int) -> list[Plan]:
    """The probe as the last two plans of a comparison whose parallel plans use
    ``workers`` threads or processes (at most the cores)."""
    serial, threads = runs(workers)
    return [Plan("probe: cpu_work released, serial", serial, "serial", 1, True),
            Plan(f"probe: cpu_work released, {workers} threads", threads,
                 "threading.Thread", workers, True)]

