"""The kernels in csrc/kernels/ are plain C: compile them without Python, drive
them from csrc/tests/check_kernels.c (real pthreads for the counter), and
compare with independent references.

The driver is compiled with $CFLAGS and $LDFLAGS added, as setuptools adds
them to the extension's build: scripts/sanitize.sh sets them to build both
with AddressSanitizer and UndefinedBehaviorSanitizer."""
import os
import shlex
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist as scipy_cdist

import rng_reference

CSRC = Path(__file__).resolve().parent.parent / "csrc"


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    exe = tmp_path_factory.mktemp("ckernels") / "check_kernels"
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    sources = [CSRC / "tests" / "check_kernels.c", *sorted((CSRC / "kernels").glob("*.c"))]
    flags = [*shlex.split(os.environ.get("CFLAGS", "")), *shlex.split(os.environ.get("LDFLAGS", ""))]
    subprocess.run([*cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
                    "-pthread", *flags, f"-I{CSRC}", *map(str, sources), "-o", str(exe), "-lm"],
                   check=True, capture_output=True, text=True)
    return exe


def run(driver: Path, *args, stdin: str = "") -> list[str]:
    out = subprocess.run([str(driver), *map(str, args)], input=stdin, check=True,
                         capture_output=True, text=True)
    return out.stdout.split()


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 - 1, 2**32, 2**63 + 5, 2**64 - 1])
def test_seed_key_matches_numpy_seedsequence(driver, seed):
    assert int(run(driver, "seedkey", seed)[0]) == int(rng_reference.seed_key(seed))


@pytest.mark.parametrize("seed, start, n", [(0, 0, 1000), (7, 2**40, 5000), (99, 2**63 - 300, 300)])
def test_hits_match_numpy_reference(driver, seed, start, n):
    key = int(rng_reference.seed_key(seed))
    assert int(run(driver, "hits", key, start, n)[0]) == rng_reference.count_hits(n, seed, start)


def python_long_comp(iterations: int) -> float:
    x = 0
    for y in range(iterations):
        x = (x - y) ** 2 if x % 2 == 0 else (x + y) ** 0.5
    return float(x)


@pytest.mark.parametrize("chunk", [1, 7, 1024, 10**6])
def test_cpu_work_equals_pure_python_whatever_the_chunking(driver, chunk):
    assert float(run(driver, "cpu", 20_000, chunk)[0]) == python_long_comp(20_000)


@pytest.mark.parametrize("mode", ["locked", "atomic"])
def test_exact_counter_modes_under_pthreads(driver, mode):
    assert int(run(driver, "counter", mode, 8, 100_000)[0]) == 800_000


def test_racy_counter_exact_in_one_thread(driver):
    # With threads the racy count can be anything from 2 to the total: only
    # one thread at a time pins it.
    assert int(run(driver, "counter", "racy", 1, 100_000)[0]) == 100_000


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
def test_cdist_rows_match_scipy(driver, metric):
    rng = np.random.default_rng(3)
    XA, XB = rng.normal(size=(7, 5)), rng.normal(size=(9, 5))
    text = "7 9 5\n" + " ".join(f"{v:.17g}" for v in np.concatenate([XA.ravel(), XB.ravel()]))
    got = np.array(run(driver, "cdist", metric, stdin=text), dtype=float).reshape(7, 9)
    np.testing.assert_allclose(got, scipy_cdist(XA, XB, metric), rtol=1e-12)
