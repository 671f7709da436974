"""What "cores" means in parlab: the cores this process may run on.

A container, ``taskset`` or a batch scheduler can leave a process fewer cores
than the machine has; the affinity mask says how many it really has, and every
verdict, worker count, report and magic counts those (:func:`usable_cores`).
:func:`restricted` narrows the mask for a while (``reproduce --cores N``).
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator


def usable_cores() -> int:
    """The cores this process may run on: its affinity mask where the OS has
    one (Linux), else every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return machine_cores()


def machine_cores() -> int:
    """The cores of the whole machine (``os.cpu_count()``), usable or not."""
    return os.cpu_count() or 1


def describe_cores(used: int | None = None) -> str:
    """"2 cores", or "1 of 2 cores usable" where the process may use fewer
    than the machine has."""
    used = usable_cores() if used is None else used
    total = machine_cores()
    return f"{used} cores" if used == total else f"{used} of {total} cores usable"


def usable_cpu_ids() -> list[int] | None:
    """The ids of the CPUs in the affinity mask, or None where there is no mask."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def check_cores(cores: object, source: str = "cores") -> int:
    """``cores`` if this process can be restricted to that many cores, else a
    one-line ValueError (TypeError for a non-integer) naming ``source``."""
    if isinstance(cores, bool) or not isinstance(cores, int):
        raise TypeError(f"{source} must be a whole number of cores, got {cores!r}")
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError(f"{source}: this platform cannot restrict a process to some of "
                         "its cores (Python has no os.sched_setaffinity here); run without it")
    have = usable_cores()
    if not 1 <= cores <= have:
        raise ValueError(f"{source} must be between 1 and the {have} usable cores, got {cores}")
    return cores


@contextlib.contextmanager
def restricted(cores: int | None, source: str = "cores") -> Iterator[int]:
    """Run the block on the first ``cores`` usable cores (None: as they are),
    then give the process back the mask it had; yields the usable core count.

    Processes started inside inherit the narrower mask. Those already running
    (the forkserver every pool forks from on Python 3.14+, joblib's workers)
    would not, so they are narrowed too, and given back their own mask after.
    """
    if cores is None:
        yield usable_cores()
        return
    import psutil

    check_cores(cores, source)
    before = os.sched_getaffinity(0)
    mask = set(sorted(before)[:cores])
    children = {}
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            children[child] = child.cpu_affinity()
            child.cpu_affinity(sorted(mask))
    os.sched_setaffinity(0, mask)
    try:
        yield cores
    finally:
        os.sched_setaffinity(0, before)
        for child, own in children.items():
            with contextlib.suppress(psutil.Error):
                child.cpu_affinity(own)
