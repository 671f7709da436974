"""What tracing costs per kernel call: off vs never built, on vs off, and on
with thread CPU times (``parlab.trace(cpu_time=True)``) vs off.

Builds parlab._core twice from this source tree into a temporary folder, the
same way except that one build compiles tracing out (PARLAB_NO_TRACE=1), then
times a tight loop of tiny kernel calls in each, interleaving the builds over
several rounds and keeping each one's best round:

    python benchmarks/bench_trace.py [--calls 200000] [--rounds 7]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs inside each build: ns per call of a tiny call, traced or not.
TIMER = r"""
import json, sys, time
import parlab
calls, mode = int(sys.argv[1]), sys.argv[2]
traced = mode != "off"
kernels = {
    "cpu_work(1)": lambda: parlab.cpu_work(1),
    "cpu_work(1, release_gil=False)": lambda: parlab.cpu_work(1, release_gil=False),
    "count_hits(1, seed=7)": lambda: parlab.count_hits(1, seed=7),
}
out = {}
for name, fn in kernels.items():
    for _ in range(1000):
        fn()
    if traced:
        tr = parlab.trace(capacity=calls, cpu_time=mode == "on+cpu")
        tr.__enter__()
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    elapsed = time.perf_counter_ns() - t0
    if traced:
        tr.__exit__(None, None, None)
        assert tr.summary()["dropped"] == 0
    out[name] = elapsed / calls
print(json.dumps(out))
"""


def build(dest: Path, no_trace: bool) -> Path:
    """Install parlab from a copy of this source tree into ``dest`` (a fresh
    copy each time, so no object file of the other build is reused)."""
    src = dest.with_name(dest.name + "-src")
    for item in ("setup.py", "pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy2(ROOT / item, src / item if src.exists() else _mkdir(src) / item)
    for folder in ("csrc", "parlab"):
        shutil.copytree(ROOT / folder, src / folder,
                        ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PARLAB_NO_TRACE"}
    if no_trace:
        env["PARLAB_NO_TRACE"] = "1"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-cache-dir", "--target", str(dest), str(src)],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return dest


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def measure(build_dir: Path, calls: int, mode: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", TIMER, str(calls), mode],
                         env={**os.environ, "PYTHONPATH": str(build_dir)},
                         cwd=build_dir, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        builds = {"never built": build(Path(tmp) / "notrace", True),
                  "built": build(Path(tmp) / "trace", False)}
        variants = [("never built", "off"), ("built", "off"), ("built", "on"),
                    ("built", "on+cpu")]
        best: dict[tuple[str, str], dict[str, float]] = {}
        for _ in range(args.rounds):
            for b, mode in variants:
                result = measure(builds[b], args.calls, mode)
                prev = best.setdefault((b, mode), result)
                for k, v in result.items():
                    prev[k] = min(prev[k], v)

    import parlab
    from parlab._cores import describe_cores

    info = parlab.info()
    print(f"machine: {describe_cores(info['cores'])}, Python {info['python']}, {info['compiler']}; "
          f"{args.calls} calls per loop, best of {args.rounds} interleaved rounds\n")
    print(f"{'kernel call':<34}{'never built':>12}{'off':>8}{'on':>8}{'on+cpu':>8}"
          f"{'off - never':>13}{'on - off':>10}{'on+cpu - off':>14}   (ns per call)")
    for k in best[("built", "off")]:
        never, off, on, cpu = (best[v][k] for v in variants)
        print(f"{k:<34}{never:>12.1f}{off:>8.1f}{on:>8.1f}{cpu:>8.1f}"
              f"{off - never:>13.1f}{on - off:>10.1f}{cpu - off:>14.1f}")


if __name__ == "__main__":
    main()
