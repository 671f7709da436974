"""The held mode of a build without a GIL, on this interpreter.

On free-threaded CPython, release_gil=False cannot keep a GIL that does not
exist; parlab emulates it with a process-wide lock of its own. Compiled with
-DPARLAB_EMULATE_GIL, a normal build runs that same code: this test builds
it beside the package and runs the GIL and trace tests against it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def emulated_package(tmp_path_factory) -> Path:
    lib = tmp_path_factory.mktemp("emulated")
    shutil.copytree(ROOT / "parlab", lib / "parlab",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    env = {**os.environ, "PARLAB_EMULATE_GIL": "1"}
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(lib),
                    "--build-temp", str(lib / "build")], cwd=ROOT, env=env, check=True,
                   capture_output=True, text=True)
    return lib


def run_against(lib: Path, *args: str) -> subprocess.CompletedProcess:
    # From `lib`: the checkout's own parlab/ must not be the one found first.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(lib), str(ROOT / "tests")])}
    return subprocess.run([sys.executable, *args], cwd=lib, env=env, capture_output=True,
                          text=True, timeout=600)


def test_the_build_says_it_emulates(emulated_package):
    proc = run_against(emulated_package, "-c",
                       "import parlab; i = parlab.info(); print(i['held_mode'], parlab.__file__)")
    assert proc.returncode == 0, proc.stderr
    mode, where = proc.stdout.split()
    assert mode == "emulated"
    assert where.startswith(str(emulated_package))


def test_gil_and_trace_tests_pass_on_the_emulated_build(emulated_package):
    proc = run_against(emulated_package, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                       "--rootdir", str(ROOT), str(ROOT / "tests" / "test_gil.py"),
                       str(ROOT / "tests" / "test_trace.py"))
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
