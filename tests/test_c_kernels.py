"""The kernels in csrc/kernels/ are plain C: compile them without Python, drive
them from csrc/tests/check_kernels.c (real threads for the counter and for
concurrent cdist blocks), and compare with independent references.

Every SIMD path is driven on its own (the path is part of the test id); a path
this CPU cannot run is skipped with the reason "CPU lacks <path>".

The driver is built by each toolchain that PARLAB_DRIVER_TOOLCHAINS names
(default "native"; see TOOLCHAINS): "aarch64-gcc" and "aarch64-clang"
cross-build it for 64-bit ARM and run it under qemu-aarch64-static, where the
neon path runs, "clang" builds it with clang for this machine, and "mingw"
builds it for Windows with MinGW-w64 (csrc/platform.c's Win32 side) and runs
it under wine64; every test runs once per toolchain. A toolchain whose tools
are missing is skipped, but fails under CI=true (scripts/ci-aarch64.sh and
scripts/ci-portability.sh install them). Under wine each run of the driver
costs ~0.15 s instead of ~1 ms, so with a slow toolchain chosen the widest
sweeps take a sample that still reaches every tail (SAMPLED).

The driver is compiled with $CFLAGS and $LDFLAGS added, as setuptools adds
them to the extension's build: scripts/sanitize.sh sets them to build both
with AddressSanitizer and UndefinedBehaviorSanitizer."""
import os
import platform
import shlex
import shutil
import sys
import subprocess
import sysconfig
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist as scipy_cdist

import rng_reference

pytestmark = [pytest.mark.sanitize, pytest.mark.portability]

CSRC = Path(__file__).resolve().parent.parent / "csrc"


@dataclass(frozen=True)
class Toolchain:
    """A compiler command and its extra flags; the command that runs what it
    builds (empty: this machine runs it); the architecture it targets."""
    cc: tuple[str, ...]
    flags: tuple[str, ...] = ()
    runner: tuple[str, ...] = ()
    arch: str = "x86_64"
    slow: bool = False  # each run starts an emulator that takes ~0.1 s or more


HOST_ARCH = {"arm64": "aarch64", "AMD64": "x86_64"}.get(platform.machine(), platform.machine())
# The compiler Python was built with: the reference the others' bits are checked against.
REFERENCE = Toolchain(tuple(shlex.split(sysconfig.get_config_var("CC") or "cc")), arch=HOST_ARCH)
QEMU = ("qemu-aarch64-static",)
TOOLCHAINS = {
    # $CC if set, as setuptools honours it for the extension.
    "native": Toolchain(tuple(shlex.split(os.environ["CC"])), arch=HOST_ARCH)
              if os.environ.get("CC") else REFERENCE,
    "clang": Toolchain(("clang",), arch=HOST_ARCH),
    # Static: qemu then needs no aarch64 libraries at run time.
    "aarch64-gcc": Toolchain(("aarch64-linux-gnu-gcc",), ("-static",), QEMU, "aarch64"),
    "aarch64-clang": Toolchain(("clang", "--target=aarch64-linux-gnu"), ("-static",), QEMU,
                               "aarch64"),
    # Debian installs wine64 outside PATH; wine reads WINEPREFIX and WINEDEBUG
    # from the environment (scripts/ci-portability.sh sets a private prefix).
    "mingw": Toolchain(("x86_64-w64-mingw32-gcc",),
                       runner=(shutil.which("wine64") or "/usr/lib/wine/wine64",), slow=True),
}
CHOSEN = os.environ.get("PARLAB_DRIVER_TOOLCHAINS", "native").replace(",", " ").split()
assert set(CHOSEN) <= set(TOOLCHAINS), \
    f"PARLAB_DRIVER_TOOLCHAINS: unknown {sorted(set(CHOSEN) - set(TOOLCHAINS))}"

SAMPLED = any(TOOLCHAINS[name].slow for name in CHOSEN)

Driver = tuple[str, ...]  # the command that runs the driver


def build_driver(directory: Path, toolchain: Toolchain, *defines: str) -> Driver:
    exe = directory / "check_kernels"
    sources = [CSRC / "tests" / "check_kernels.c", CSRC / "tests" / "cdist_checksum.c",
               CSRC / "platform.c", *sorted((CSRC / "kernels").glob("*.c"))]
    flags = [*shlex.split(os.environ.get("CFLAGS", "")), *shlex.split(os.environ.get("LDFLAGS", ""))]
    subprocess.run([*toolchain.cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror",
                    "-ffp-contract=off", "-pthread", *toolchain.flags, *defines, *flags,
                    f"-I{CSRC}", *map(str, sources), "-o", str(exe), "-lm"],
                   check=True, capture_output=True, text=True)
    # A compiler for Windows names the program check_kernels.exe.
    return (*toolchain.runner, str(exe if exe.exists() else exe.with_name(exe.name + ".exe")))


@pytest.fixture(scope="module", params=CHOSEN)
def toolchain(request) -> Toolchain:
    chosen = TOOLCHAINS[request.param]
    missing = [tool for tool in (chosen.cc[0], *chosen.runner[:1]) if not shutil.which(tool)]
    if missing:
        message = f"toolchain {request.param}: {' and '.join(missing)} not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI runs it: scripts/ci-aarch64.sh installs the tools)")
        pytest.skip(message)
    return chosen


@pytest.fixture(scope="module")
def driver(tmp_path_factory, toolchain) -> Driver:
    return build_driver(tmp_path_factory.mktemp("ckernels"), toolchain)


@pytest.fixture(scope="module")
def driver_without_fma(tmp_path_factory, toolchain) -> Driver:
    """The kernels as a CPU without FMA runs them (-DPARLAB_ASSUME_NO_FMA)."""
    return build_driver(tmp_path_factory.mktemp("ckernels_no_fma"), toolchain,
                        "-DPARLAB_ASSUME_NO_FMA")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, toolchain, driver) -> Driver:
    if toolchain == REFERENCE:
        return driver
    return build_driver(tmp_path_factory.mktemp("ckernels_reference"), REFERENCE)


@pytest.fixture(scope="module")
def reference_without_fma(tmp_path_factory, toolchain, driver_without_fma) -> Driver:
    if toolchain == REFERENCE:
        return driver_without_fma
    return build_driver(tmp_path_factory.mktemp("ckernels_reference_no_fma"), REFERENCE,
                        "-DPARLAB_ASSUME_NO_FMA")


# Under wine, now and then (a few runs in the thousands of a CI pass; none
# in 60 runs by hand) a run exits with status 1 and prints nothing at all.
# The driver never does: every failure it can have says why on stderr, or
# exits 2 for bad arguments, which repeats. So an emulated run that fails
# that way is tried again, at most this many times; any other failure fails.
EMULATOR_RETRIES = 2


def run(driver: Driver, *args, stdin: str = "") -> list[str]:
    emulated = len(driver) > 1  # a runner (qemu, wine) in front of the driver
    for _ in range(1 + EMULATOR_RETRIES * emulated):
        # The timeout turns a hung run (or emulator) into a failure, not a stuck CI.
        out = subprocess.run([*driver, *map(str, args)], input=stdin, capture_output=True,
                             text=True, timeout=300)
        if not (emulated and out.returncode == 1 and not out.stderr and not out.stdout):
            break
    assert out.returncode == 0, f"{args[:2]}: exit status {out.returncode}: {out.stderr}"
    return out.stdout.split()


PATHS = ["scalar", "avx2", "avx512", "neon"]


def paths_run_by(driver: Driver) -> dict[str, bool]:
    """Each SIMD path, in the driver's order, and whether this CPU runs it."""
    words = run(driver, "paths")
    return {name: flag == "1" for name, flag in zip(words[::2], words[1::2])}


@pytest.fixture(scope="module")
def supported(driver) -> dict[str, bool]:
    return paths_run_by(driver)


@pytest.fixture(params=PATHS)
def path(request, supported) -> str:
    if not supported[request.param]:
        pytest.skip(f"CPU lacks {request.param}")
    return request.param


def test_driver_lists_every_path_and_scalar_always_runs(supported):
    assert list(supported) == PATHS
    assert supported["scalar"]


def x86_cpu_flags() -> set[str]:
    """The CPU's flags from Linux's /proc/cpuinfo; empty elsewhere (other
    systems, or architectures whose cpuinfo has no flags line)."""
    cpuinfo = Path("/proc/cpuinfo")
    if sys.platform.startswith("linux") and cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def test_supported_paths_agree_with_proc_cpuinfo(supported, toolchain):
    if toolchain.arch == "aarch64":
        # Every aarch64 CPU has NEON (with FMA), and none the x86 paths.
        assert supported == {"scalar": True, "avx2": False, "avx512": False, "neon": True}
        return
    flags = x86_cpu_flags()
    if not flags:
        pytest.skip("no x86 flags in /proc/cpuinfo on this system")
    assert supported["avx2"] == ({"avx2", "fma"} <= flags)
    assert supported["avx512"] == ({"avx512f", "avx512dq", "fma"} <= flags)
    assert not supported["neon"]


def test_unsupported_or_unknown_path_is_refused(driver, supported):
    for name in ["sse9", *[p for p in PATHS if not supported[p]]]:
        result = subprocess.run([*driver, "hits", name, "1", "0", "10", "10"],
                                capture_output=True, text=True)
        assert result.returncode == 2 and "not supported" in result.stderr


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 - 1, 2**32, 2**63 + 5, 2**64 - 1])
def test_seed_key_matches_numpy_seedsequence(driver, seed):
    assert int(run(driver, "seedkey", seed)[0]) == int(rng_reference.seed_key(seed))


def hits(driver: Driver, path: str, seed: int, start: int, n: int, chunk: int) -> int:
    key = int(rng_reference.seed_key(seed))
    return int(run(driver, "hits", path, key, start, n, chunk)[0])


@pytest.mark.parametrize("seed, start, n", [
    (0, 0, 1000), (7, 2**40, 5000), (99, 2**63 - 300, 300), (3, 5, 100_003)])
def test_hits_match_numpy_reference(driver, path, seed, start, n):
    assert hits(driver, path, seed, start, n, n) == rng_reference.count_hits(n, seed, start)


def test_hits_of_every_small_count_and_start_match_reference(driver, path):
    """n = 0..40 from starts 0..20: every lane count a vector loop can leave
    (SAMPLED: n = 0..17, two of them for every lane count, from two starts)."""
    key = rng_reference.seed_key(11)
    x, y = rng_reference.points(key, 0, 61)
    inside = (x * x + y * y <= 1.0).astype(int)
    starts, counts = ((0, 7), range(18)) if SAMPLED else (range(0, 21, 3), range(41))
    for start in starts:
        for n in counts:
            got = hits(driver, path, 11, start, n, max(n, 1))
            assert got == int(inside[start:start + n].sum()), (start, n)


@pytest.mark.parametrize("chunk", [1, 5, 16, 17, 1000, 4096])
def test_hits_are_additive_over_any_split(driver, path, chunk):
    n, start = 20_011, 2**33 + 3
    assert hits(driver, path, 5, start, n, chunk) == rng_reference.count_hits(n, 5, start)


def python_long_comp(iterations: int) -> float:
    x = 0
    for y in range(iterations):
        x = (x - y) ** 2 if x % 2 == 0 else (x + y) ** 0.5
    return float(x)


@pytest.mark.parametrize("chunk", [1, 7, 1024, 10**6])
def test_cpu_work_equals_pure_python_whatever_the_chunking(driver, chunk):
    assert float(run(driver, "cpu", 20_000, chunk)[0]) == python_long_comp(20_000)


@pytest.mark.parametrize("mode", ["locked", "atomic"])
def test_exact_counter_modes_under_threads(driver, mode):
    assert int(run(driver, "counter", mode, 8, 100_000)[0]) == 800_000


@pytest.mark.parametrize("ms", [0, 1, 30])
def test_sleep_until_never_ends_early_and_costs_no_cpu(driver, ms):
    """The platform's clocks and sleep: never early, in nanoseconds (a wrong
    unit is off by 1000x), and blocked in the kernel rather than spinning."""
    wall, cpu = map(int, run(driver, "sleep", ms))
    assert ms * 10**6 <= wall < ms * 10**6 + 5 * 10**9
    assert 0 <= cpu <= max(wall // 2, 20 * 10**6)


def test_every_kernel_at_once_in_threads(driver, supported):
    """Four threads run every kernel at once, sharing inputs, one distance
    matrix and a counter per mode: each thread's results equal one thread's
    (scripts/ci-tsan.sh runs this under ThreadSanitizer)."""
    assert run(driver, "together", 4) == [w for p in PATHS if supported[p] for w in (p, "ok")]


def test_planted_race_is_reported_by_tsan(tmp_path, toolchain):
    """Under ThreadSanitizer (scripts/ci-tsan.sh builds the driver with
    -fsanitize=thread) a driver with a planted race (-DPARLAB_PLANT_RACE:
    plain increments in the atomic counter mode) is reported: the pass can fail."""
    if "-fsanitize=thread" not in os.environ.get("CFLAGS", ""):
        pytest.skip("the driver is not built with ThreadSanitizer (scripts/ci-tsan.sh does)")
    planted = build_driver(tmp_path, toolchain, "-DPARLAB_PLANT_RACE")
    # The report on stderr, not into the pass's log files, which would fail it.
    out = subprocess.run([*planted, "counter", "atomic", "2", "100000"], capture_output=True,
                         text=True, timeout=300,
                         env={**os.environ, "TSAN_OPTIONS": "halt_on_error=1"})
    assert out.returncode == 66, out.stderr
    assert "WARNING: ThreadSanitizer: data race" in out.stderr and "counter.c" in out.stderr


def test_racy_counter_exact_in_one_thread(driver):
    # With threads the racy count can be anything from 2 to the total: only
    # one thread at a time pins it.
    assert int(run(driver, "counter", "racy", 1, 100_000)[0]) == 100_000


def cdist_run(driver: Driver, path: str, metric: str, XA, XB, lda: int, ldb: int, ldo: int,
              bi: int = 1 << 30, bj: int = 1 << 30, threads: int = 1) -> np.ndarray:
    """pl_cdist_block through the driver. lda = 0 sends only XA[0] (likewise ldb)."""
    mA, n = XA.shape
    mB = XB.shape[0]
    rows = np.concatenate([(XA[:1] if lda == 0 else XA).ravel(), (XB[:1] if ldb == 0 else XB).ravel()])
    text = f"{mA} {mB} {n}\n" + " ".join(f"{v:.17g}" for v in rows)
    out = run(driver, "cdist", path, metric, lda, ldb, ldo, bi, bj, threads, stdin=text)
    return np.array(out, dtype=float).reshape(mA, mB)


def points(rng, m: int, n: int, near=None) -> np.ndarray:
    """Random rows, or rows within about 1e-9 of `near`'s (close pairs lose
    accuracy under the |x|^2 + |y|^2 - 2 x.y shortcut)."""
    if near is not None:
        return near[:m] * (1 + 1e-9 * rng.normal(size=(m, n)))
    return rng.normal(size=(m, n)) * 10.0 ** rng.integers(-3, 4)


# Tile shapes are 1x4, 4x12 and 4x24: these hit full tiles and every kind of tail.
SHAPES = [(1, 1), (3, 5), (4, 12), (4, 24), (9, 25), (13, 49)]
DIMS = [*range(1, 18), 31, 33, 100, 128, 129, 257]
if SAMPLED:  # one row, an odd tail, a whole vector, past two, past one panel of k
    DIMS = [1, 5, 8, 17, 129]


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
@pytest.mark.parametrize("n", DIMS)
def test_cdist_block_matches_scipy_and_scalar_path(driver, path, metric, n):
    rng = np.random.default_rng(n)
    for mA, mB in SHAPES:
        XA = points(rng, mA, n)
        XB = points(rng, mB, n, near=np.resize(XA, (mB, n)) if mB % 2 else None)
        for lda, ldb, ldo in [(n, n, mB), (n + 3, n + 1, mB + 2), (0, n, mB), (n + 5, 0, mB + 1)]:
            A = np.repeat(XA[:1], mA, axis=0) if lda == 0 else XA
            B = np.repeat(XB[:1], mB, axis=0) if ldb == 0 else XB
            got = cdist_run(driver, path, metric, XA, XB, lda, ldb, ldo)
            np.testing.assert_allclose(got, scipy_cdist(A, B, metric), rtol=1e-12, atol=0,
                                       err_msg=f"{mA}x{mB} lda={lda} ldb={ldb}")
            if path != "scalar":
                # Every path sums over k in the same order: equal bit for bit.
                scalar = cdist_run(driver, "scalar", metric, XA, XB, lda, ldb, ldo)
                np.testing.assert_array_equal(got, scalar)


def sum_of_squares(a: np.ndarray, b: np.ndarray, fused: bool) -> float:
    """sum over k of (a_k - b_k)^2 in increasing k, each step rounded once
    (exact rational arithmetic, then one correctly rounded division) or twice."""
    s = 0.0
    for x, y in zip(a.tolist(), b.tolist()):
        d = x - y
        s = float(Fraction(s) + Fraction(d) ** 2) if fused else s + d * d
    return s


def assert_rounds_each_step(driver: Driver, path: str, fused: bool) -> None:
    rng = np.random.default_rng(3)
    XA, XB = rng.normal(size=(9, 33)), rng.normal(size=(25, 33))
    got = cdist_run(driver, path, "sqeuclidean", XA, XB, 33, 33, 25)
    want = np.array([[sum_of_squares(a, b, fused) for b in XB] for a in XA])
    other = np.array([[sum_of_squares(a, b, not fused) for b in XB] for a in XA])
    assert (want != other).sum() > 10  # the data tells the two roundings apart
    np.testing.assert_array_equal(got, want)


def test_cdist_rounds_each_step_as_documented(driver, path, toolchain):
    """Where the CPU fuses multiply-add, every path rounds each step of the sum
    once; elsewhere twice: an independent reference in exact arithmetic."""
    fused = run(driver, "fma") == ["1"]
    flags = x86_cpu_flags()
    if toolchain.arch == "aarch64":
        assert fused  # FMA is part of every aarch64 CPU
    elif flags:
        assert fused == ("fma" in flags)
    assert_rounds_each_step(driver, path, fused)


def test_without_fma_only_scalar_runs_and_it_rounds_twice(driver_without_fma):
    """The code a CPU without FMA runs: no SIMD path (all need FMA), and the
    scalar path multiplies and adds separately, as SciPy's loop does."""
    assert run(driver_without_fma, "fma") == ["0"]
    assert paths_run_by(driver_without_fma) == {
        "scalar": True, "avx2": False, "avx512": False, "neon": False}
    assert_rounds_each_step(driver_without_fma, "scalar", fused=False)
    for metric in ["euclidean", "sqeuclidean"]:
        for n in [1, 5, 33, 100]:
            rng = np.random.default_rng(n)
            XA = points(rng, 9, n)
            XB = points(rng, 13, n, near=np.resize(XA, (13, n)))
            got = cdist_run(driver_without_fma, "scalar", metric, XA, XB, n, n, 13)
            np.testing.assert_allclose(got, scipy_cdist(XA, XB, metric), rtol=1e-12, atol=0)


def checksums(driver: Driver) -> dict[str, str]:
    """Each path the driver's CPU runs, and the hash of its cdist bits on the
    driver's fixed inputs (csrc/tests/cdist_checksum.c)."""
    words = run(driver, "checksum")
    return dict(zip(words[::2], words[1::2]))


def test_cdist_bits_are_the_same_on_every_path_compiler_and_architecture(
        driver, driver_without_fma, reference, reference_without_fma):
    """neon == avx512 == avx2 == scalar with FMA, bit for bit, on the same
    inputs, whichever compiler built the kernels for whichever architecture
    (compared with the host compiler's build on this machine); and without FMA
    the scalar path's bits, too, are everywhere the same."""
    ours = checksums(driver)
    assert list(ours) == [p for p, runs in paths_run_by(driver).items() if runs]
    assert len(set(ours.values())) == 1, ours
    theirs = checksums(reference)
    if run(driver, "fma") == run(reference, "fma"):
        assert set(ours.values()) == set(theirs.values()), (ours, theirs)
    assert checksums(driver_without_fma) == checksums(reference_without_fma)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
def test_cdist_of_zero_length_rows_is_zero(driver, path, metric):
    got = cdist_run(driver, path, metric, np.empty((3, 0)), np.empty((6, 0)), 0, 0, 6)
    np.testing.assert_array_equal(got, np.zeros((3, 6)))


@pytest.mark.parametrize("bi, bj, threads", [(1, 1, 1), (5, 11, 1), (4, 24, 3), (7, 1000, 4), (1, 9, 8)])
def test_cdist_blocks_from_concurrent_threads_equal_one_call(driver, path, bi, bj, threads):
    rng = np.random.default_rng(42)
    XA, XB = rng.normal(size=(37, 33)), rng.normal(size=(53, 33))
    whole = cdist_run(driver, path, "euclidean", XA, XB, 33, 33, 53)
    split = cdist_run(driver, path, "euclidean", XA, XB, 40, 35, 60, bi, bj, threads)
    np.testing.assert_array_equal(split, whole)
