"""Builds the parlab._core extension; metadata lives in pyproject.toml."""
import os

import numpy
from setuptools import Extension, setup

BINDING = ["_core.c", "args.c", "bindings.c", "gil.c", "trace.c"]
# The AVX2/AVX-512 files compile their kernels with per-function target
# attributes: the build itself never targets a CPU (no -march), and simd.c
# picks the path at run time.
KERNELS = ["simd.c", "cdist.c", "cdist_avx2.c", "cdist_avx512.c", "cdist_neon.c", "counter.c",
           "montecarlo.c", "montecarlo_avx2.c", "montecarlo_avx512.c", "work.c"]

# -ffp-contract=off: the compiler fuses no multiply-add on its own, so the
# Monte Carlo test x*x + y*y <= 1 rounds exactly as NumPy's reference does on
# every CPU; cdist fuses its squares explicitly, on every path alike.
# No -ffast-math: results must match SciPy and pure Python. No -march: the
# kernels pick their vector instructions at run time (csrc/kernels/simd.h).
extra_compile_args = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                      "-Wno-missing-field-initializers", "-Wno-cast-function-type",
                      "-ffp-contract=off", "-pthread"]
# PARLAB_NO_TRACE=1 compiles tracing out: the baseline of benchmarks/bench_trace.py.
if os.environ.get("PARLAB_NO_TRACE"):
    extra_compile_args.append("-DPARLAB_NO_TRACE")
# PARLAB_EMULATE_GIL=1: held calls take parlab's own lock instead of keeping
# the GIL, as on free-threaded CPython; the GIL tests run against it.
if os.environ.get("PARLAB_EMULATE_GIL"):
    extra_compile_args.append("-DPARLAB_EMULATE_GIL")
if os.environ.get("PARLAB_WERROR"):
    extra_compile_args.append("-Werror")

setup(
    ext_modules=[
        Extension(
            "parlab._core",
            sources=[f"csrc/{f}" for f in BINDING] + [f"csrc/kernels/{k}" for k in KERNELS],
            include_dirs=[numpy.get_include(), "csrc"],
            extra_compile_args=extra_compile_args,
            extra_link_args=["-pthread"],
            libraries=["m"],
        )
    ],
)
