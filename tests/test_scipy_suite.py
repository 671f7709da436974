"""SciPy's own cdist tests, for the metrics parlab has, with SciPy's cdist
routed to parlab (tests/scipy_route.py): parlab is called as SciPy's users
call SciPy, and must behave alike (results, out=, errors, reference counts)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

scipy_tests = pytest.importorskip("scipy.spatial.tests.test_distance",
                                  reason="this SciPy ships without its tests")

TESTS = ["test_cdist_calling_conventions", "test_cdist_dtype_equivalence", "test_cdist_out",
         "test_striding", "test_cdist_refcount", "test_cdist_extra_args"]


def test_scipy_cdist_tests_pass_routed_to_parlab(tmp_path):
    path = scipy_tests.__file__
    ids = [f"{path}::TestCdist::{t}[{m}]" for t in TESTS for m in ("euclidean", "sqeuclidean")]
    ids.append(f"{path}::TestCdist::test_cdist_euclidean_random_unicode")
    count = tmp_path / "routed"
    env = {**os.environ, "PARLAB_ROUTED_COUNT": str(count),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                          os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "scipy_route", *ids], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"{len(ids)} passed" in proc.stdout
    assert int(count.read_text()) > 20  # parlab, not SciPy, answered
