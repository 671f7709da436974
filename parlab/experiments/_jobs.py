"""Timing the lecture jobs (:func:`parlab.reference.tasks.lecture_jobs`) as table rows.

Lectures 002 and 004 run the same jobs serially, in threads and in process
pools; here is how such a run becomes a variant named "<job> xN, <how>".
"""
from __future__ import annotations

from typing import Callable

from parlab.experiments._base import Context
from parlab.reference.tasks import Job, Outcome, Task, run_serial


def variant_name(job: Job, how: str) -> str:
    """The variant name of ``job`` run by ``how``."""
    return f"{job.name} x{job.n}, {how}"


def measure_job(ctx: Context, job: Job, how: str, runner: Callable[[Task, int], Outcome], *,
                backend: str, workers: int, shares_memory: bool = True,
                baseline: bool = False, trace: bool = False) -> Outcome:
    """Time ``runner(job.task, job.n)`` as variant "<job> xN, <how>"; return its Outcome.

    ``correct`` is every task returning its value and, where the tasks share
    our memory, our dict holding all of them.
    """
    def check(outcome: Outcome) -> bool:
        return job.returned_right(outcome) and (not shares_memory or job.shared_right(outcome))

    return ctx.measure(variant_name(job, how), lambda: runner(job.task, job.n),
                       backend=backend, workers=workers, release_gil=job.release_gil,
                       check=check, baseline=baseline, trace=trace)


def measure_serial(ctx: Context, job: Job, *, shares_memory: bool = True,
                   baseline: bool = False) -> Outcome:
    """:func:`measure_job` with the tasks one after the other in this thread."""
    return measure_job(ctx, job, "serial", run_serial, backend="serial", workers=1,
                       shares_memory=shares_memory, baseline=baseline)
