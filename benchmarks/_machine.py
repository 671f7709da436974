"""The line every benchmark prints first: what the figures were measured on."""
from __future__ import annotations

import os

import parlab
from parlab._cores import describe_cores
from parlab._info import cpu_model


def describe() -> str:
    info = parlab.info()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"machine: {cpu_model()}, {describe_cores(info['cores'])}, load {load:.2f}; "
            f"Python {info['python']}, NumPy {info['numpy']}, parlab {info['parlab']} "
            f"(SIMD {info['simd']}, held mode {info['held_mode']}), {info['compiler']}")
