"""What parlab runs on: versions, compiler, cores, GIL."""
from __future__ import annotations

import os
import platform
import sys

import numpy

from parlab import _core
from parlab._version import __version__


def gil_enabled() -> bool:
    """False only on a free-threaded CPython running with the GIL off."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def info() -> dict:
    """Versions of parlab, Python and NumPy, the C compiler, the CPU count and
    whether the GIL is enabled."""
    return {
        "parlab": __version__,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "numpy": numpy.__version__,
        "compiler": _core.COMPILER,
        "cpu_count": os.cpu_count(),
        "gil_enabled": gil_enabled(),
    }
