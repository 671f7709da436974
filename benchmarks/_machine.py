"""The line every benchmark prints first: what the figures were measured on."""
from __future__ import annotations

import os
import platform

import parlab


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> str:
    info = parlab.info()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"machine: {cpu_model()}, {info['cpu_count']} logical CPUs, load {load:.2f}; "
            f"Python {info['python']}, NumPy {info['numpy']}, parlab {info['parlab']} "
            f"(SIMD {info['simd']}, held mode {info['held_mode']}), {info['compiler']}")
