"""Every SIMD path this CPU has runs the kernels' whole Python-level suite:
PARLAB_SIMD forces a path at import, so each runs in a child pytest. (The
C kernel tests drive every path directly: tests/test_c_kernels.py.)"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import parlab

pytestmark = [pytest.mark.portability]

TESTS = Path(__file__).resolve().parent
KERNEL_SUITE = ["test_cdist.py", "test_montecarlo.py", "test_native_threads.py"]
ALL_PATHS = ["scalar", "avx2", "avx512", "neon"]


def python_with_simd(path: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env={**os.environ, "PARLAB_SIMD": path},
                          capture_output=True, text=True, timeout=900, cwd=TESTS)


def test_the_best_path_is_the_default_unless_forced():
    forced = os.environ.get("PARLAB_SIMD")
    assert parlab.info()["simd"] == (forced or parlab._core._SIMD_SUPPORTED[-1])
    assert "scalar" in parlab._core._SIMD_SUPPORTED


@pytest.mark.parametrize("path", ALL_PATHS)
def test_forcing_a_path(path):
    proc = python_with_simd(path, "-c", "import parlab; print(parlab.info()['simd'])")
    if path in parlab._core._SIMD_SUPPORTED:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == path
    else:
        assert proc.returncode != 0
        assert f"PARLAB_SIMD={path} is not supported by this CPU" in proc.stderr


def test_forcing_an_unknown_path_fails_at_import():
    proc = python_with_simd("sse9", "-c", "import parlab")
    assert proc.returncode != 0
    assert "PARLAB_SIMD=sse9 is not a SIMD path" in proc.stderr


# The default path already ran the suite in this process.
OTHER_PATHS = [p for p in parlab._core._SIMD_SUPPORTED if p != parlab.info()["simd"]]


@pytest.mark.parametrize("path", OTHER_PATHS)
def test_kernel_suite_on_every_other_path(path):
    proc = python_with_simd(path, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            *KERNEL_SUITE)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
