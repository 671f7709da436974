"""Builds the parlab._core extension; metadata lives in pyproject.toml."""
import os

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

BINDING = ["_core.c", "args.c", "bindings.c", "counter_type.c", "gil.c", "trace.c",
           "trace_control.c"]
# The AVX2/AVX-512 files compile their kernels with per-function target
# attributes: the build itself never targets a CPU (no -march), and simd.c
# picks the path at run time.
KERNELS = ["simd.c", "cdist.c", "cdist_avx2.c", "cdist_avx512.c", "cdist_neon.c", "counter.c",
           "montecarlo.c", "montecarlo_avx2.c", "montecarlo_avx512.c", "work.c"]

# The operating system's side (threads, locks, clocks) is in platform.c alone.
PLATFORM = ["platform.c"]


def compile_args(compiler_type: str) -> list[str]:
    """The flags for one compiler family: every choice of flags is made here."""
    if compiler_type == "msvc":
        # /std:c11 for C11 itself; /experimental:c11atomics for <stdatomic.h>
        # (Visual Studio 2022 17.5+; see csrc/platform.h). /fp:precise, never
        # /fp:fast: since Visual Studio 2022 17.0 it contracts no multiply-add
        # on its own (fp_contract is off by default), the same rounding as
        # -ffp-contract=off below. No -lm or -pthread: the C runtime and
        # kernel32 hold the maths and the threads.
        args = ["/std:c11", "/experimental:c11atomics", "/fp:precise", "/W3"]
        werror = ["/WX"]
    else:
        # GCC and Clang (and MinGW-w64): -ffp-contract=off: the compiler fuses
        # no multiply-add on its own, so the Monte Carlo test x*x + y*y <= 1
        # rounds exactly as NumPy's reference does on every CPU; cdist fuses
        # its squares explicitly, on every path alike. No -ffast-math: results
        # must match SciPy and pure Python. No -march: the kernels pick their
        # vector instructions at run time (csrc/kernels/simd.h).
        args = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                "-Wno-missing-field-initializers", "-Wno-cast-function-type",
                "-ffp-contract=off", "-pthread"]
        werror = ["-Werror"]
    # PARLAB_NO_TRACE=1 compiles tracing out: the baseline of benchmarks/bench_trace.py.
    if os.environ.get("PARLAB_NO_TRACE"):
        args.append("-DPARLAB_NO_TRACE")
    # PARLAB_EMULATE_GIL=1: held calls take parlab's own lock instead of keeping
    # the GIL, as on free-threaded CPython; the GIL tests run against it.
    if os.environ.get("PARLAB_EMULATE_GIL"):
        args.append("-DPARLAB_EMULATE_GIL")
    # PARLAB_PLANT_RACE=1, a test-only build: plants data races (the trace
    # buffer's cursor, the atomic counter) that scripts/ci-tsan.sh checks
    # ThreadSanitizer reports.
    if os.environ.get("PARLAB_PLANT_RACE"):
        args.append("-DPARLAB_PLANT_RACE")
    if os.environ.get("PARLAB_WERROR"):
        args += werror
    return args


def link_args(compiler_type: str) -> tuple[list[str], list[str]]:
    """(extra link arguments, libraries) for one compiler family."""
    if compiler_type == "msvc":
        return [], []
    return ["-pthread"], ["m"]


class BuildExt(build_ext):
    """Flags chosen once the compiler is known (setup() cannot know it)."""

    def build_extensions(self):
        kind = self.compiler.compiler_type
        for ext in self.extensions:
            ext.extra_compile_args = compile_args(kind)
            ext.extra_link_args, ext.libraries = link_args(kind)
        super().build_extensions()


setup(
    ext_modules=[
        Extension(
            "parlab._core",
            sources=[f"csrc/{f}" for f in BINDING + PLATFORM]
            + [f"csrc/kernels/{k}" for k in KERNELS],
            include_dirs=[numpy.get_include(), "csrc"],
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
