"""What parlab runs on: versions, compiler, cores, GIL, the CPU."""
from __future__ import annotations

import os
import platform
import sys

import numpy

from parlab import _core
from parlab._cores import usable_cores
from parlab._version import __version__


def gil_enabled() -> bool:
    """False only on a free-threaded CPython running with the GIL off."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def info() -> dict:
    """Versions of parlab, Python and NumPy, the C compiler, the cores,
    whether the GIL is enabled, what ``release_gil=False`` means here and the
    SIMD path the kernels use.

    cores: the cores this process may run on (its affinity mask): what every
        verdict and worker count uses. cpu_count: the machine's, usable or
        not (they differ in a container or under ``taskset``).

    held_mode: "gil" when held calls keep the GIL; "emulated" while there is
        none (free-threaded CPython with its GIL off), where held calls take
        a process-wide lock of parlab's instead, so they still take turns.
        Asked at run time: a free-threaded CPython may run with its GIL on.
    simd: "scalar", "avx2", "avx512" (x86-64) or "neon" (aarch64): the best
        this CPU has, unless the PARLAB_SIMD environment variable chose another
        when parlab was imported. MSVC builds have "scalar" only.
    """
    return {
        "parlab": __version__,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "numpy": numpy.__version__,
        "compiler": _core.COMPILER,
        "cores": usable_cores(),
        "cpu_count": os.cpu_count(),
        "gil_enabled": gil_enabled(),
        "held_mode": _core._held_mode(),
        "simd": _core.SIMD,
    }
