"""How busy the rest of the machine was while an experiment measured.

A speedup needs free cores. :class:`LoadMeter` reads, around each measured
stretch, the CPU time the usable cores spent (``/proc/stat`` through psutil)
and the CPU time of this process and its descendants; the difference is what
other programs took. Steal time (a hypervisor giving our virtual CPUs to
someone else) counts as taken too.
"""
from __future__ import annotations

import dataclasses
import time

import psutil

from parlab._cores import usable_cpu_ids

# Fields of psutil.cpu_times() that are not work done on the machine's behalf
# (guest time is already inside user time on Linux).
_NOT_BUSY = {"idle", "iowait", "steal", "guest", "guest_nice"}


@dataclasses.dataclass(frozen=True)
class Load:
    """CPU taken from us during ``wall_s`` seconds on a machine of ``cores`` cores."""

    wall_s: float = 0.0
    others_s: float = 0.0  # CPU seconds used by processes outside our tree
    steal_s: float = 0.0  # CPU seconds the hypervisor gave to other guests
    cores: int = 1

    @property
    def share(self) -> float:
        """The fraction of the machine's CPU capacity others took (0 = idle, 1 = all)."""
        capacity = self.wall_s * self.cores
        # Over short stretches the 10 ms ticks can add up to more than all of it.
        return min(1.0, (self.others_s + self.steal_s) / capacity) if capacity > 0 else 0.0

    def __add__(self, other: "Load") -> "Load":
        return Load(self.wall_s + other.wall_s, self.others_s + other.others_s,
                    self.steal_s + other.steal_s, max(self.cores, other.cores))

    def describe(self) -> str:
        text = f"other programs used {self.share:.0%} of the {self.cores} cores"
        if self.steal_s > 0.01 * self.wall_s:
            text += f" (steal {self.steal_s / max(self.wall_s, 1e-9):.2f} core-s/s)"
        return text


def _own_cpu_s() -> float:
    """CPU seconds of this process, its reaped children and its live descendants."""
    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            # Gone between listing and reading: its parent's reaped-children
            # counters pick it up at the next reading.
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _machine_cpu_s() -> tuple[float, float]:
    """(busy, steal) CPU seconds since boot of the CPUs this process may run
    on: a program busy on a core outside the affinity mask takes nothing from us."""
    ids = usable_cpu_ids()
    per_cpu = psutil.cpu_times(percpu=True)
    if ids is not None and max(ids) < len(per_cpu):
        per_cpu = [per_cpu[i] for i in ids]
    busy = sum(v for t in per_cpu for k, v in t._asdict().items() if k not in _NOT_BUSY)
    return busy, sum(getattr(t, "steal", 0.0) for t in per_cpu)


class LoadMeter:
    """``with meter:`` around measured runs adds their :class:`Load` to ``meter.load``."""

    def __init__(self, cores: int):
        self.cores = cores
        self.load = Load(cores=cores)
        self._start: tuple[float, float, float, float] | None = None

    def __enter__(self) -> "LoadMeter":
        self._start = (time.perf_counter(), *_machine_cpu_s(), _own_cpu_s())
        return self

    def __exit__(self, *exc) -> None:
        wall0, busy0, steal0, own0 = self._start
        wall, (busy, steal), own = time.perf_counter() - wall0, _machine_cpu_s(), _own_cpu_s()
        # Clock ticks are 10 ms: over short stretches the difference can dip below 0.
        others = max(0.0, (busy - busy0) - (own - own0))
        self.load = self.load + Load(wall, others, max(0.0, steal - steal0), self.cores)
