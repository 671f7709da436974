"""parlab's kernels against what a user would pick instead, side by side in one run.

Prints the machine, then one table of ratios (parlab over each peer, higher is
better for parlab), and writes it as CSV and a PNG bar chart:

    python benchmarks/compare.py [--out compare-results] [--threads 1 2 4 8 16]

Peers: SciPy's cdist; scikit-learn's euclidean_distances (the GEMM trick:
fast, but inexact for near points, so its worst relative error on near pairs
is reported too); numba (njit and parallel=True); NumPy. A peer that is not
installed is reported as absent. Timings are the median of interleaved
rounds, so drifting load hits every contender alike. `--threads` adds the
scaling of parlab's own n_threads on one call.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist as scipy_cdist
from threadpoolctl import threadpool_limits

import parlab
from _machine import describe

Timer = Callable[[], object]


def median_times(contenders: dict[str, Timer], rounds: int) -> dict[str, float]:
    """Median seconds per call of each contender, timed in interleaved rounds."""
    for fn in contenders.values():
        fn()  # warm up: first-call costs (numba compiles, pages fault in)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def numba_kernels():
    """cdist in numba compiled twice, njit and parallel=True (where prange
    splits the outer loop; without it prange is range), and pi with njit."""
    import numba

    def cdist_loops(A, B):
        out = np.empty((A.shape[0], B.shape[0]))
        for i in numba.prange(A.shape[0]):
            for j in range(B.shape[0]):
                s = 0.0
                for k in range(A.shape[1]):
                    d = A[i, k] - B[j, k]
                    s += d * d
                out[i, j] = math.sqrt(s)
        return out

    def pi_loop(n):
        hits = 0
        for _ in range(n):
            x, y = np.random.random(), np.random.random()
            hits += x * x + y * y <= 1.0
        return hits

    return numba.njit(cdist_loops), numba.njit(parallel=True)(cdist_loops), numba.njit(pi_loop)


def numpy_pi(n: int, chunk: int = 1 << 20) -> int:
    rng = np.random.default_rng(0)
    hits = 0
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        x, y = rng.random(m), rng.random(m)
        hits += int(np.count_nonzero(x * x + y * y <= 1.0))
    return hits


def worst_relative_error(got: np.ndarray, exact: np.ndarray) -> float:
    return float(np.max(np.abs(got - exact) / exact))


def rows_for(figure: str, parlab_s: float, peers: dict[str, float | None],
             unit: str = "s") -> list[dict]:
    return [{"figure": figure, "peer": peer, "parlab": parlab_s, "peer_value": value,
             "unit": unit, "ratio": (value / parlab_s) if value else float("nan")}
            for peer, value in peers.items()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("compare-results"))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, nargs="*", default=[])
    args = parser.parse_args(argv)
    print(describe())
    print(f"SIMD paths this CPU has: {', '.join(parlab._core._SIMD_SUPPORTED)}")
    rng = np.random.default_rng(0)
    rows: list[dict] = []
    numba_ok, sklearn_ok = have("numba"), have("sklearn")
    cores = parlab.info()["cores"]
    if numba_ok:
        cdist_njit, cdist_parallel, pi_njit = numba_kernels()
    if sklearn_ok:
        from sklearn.metrics.pairwise import euclidean_distances

    # cdist, 1000 x 1000, d = 100 and d = 3, one thread (BLAS too: sklearn's
    # GEMM would otherwise use every core)
    for d in (100, 3):
        A, B = rng.random((1000, d)), rng.random((1000, d))
        contenders = {"parlab": lambda: parlab.cdist(A, B), "scipy": lambda: scipy_cdist(A, B)}
        if sklearn_ok:
            contenders["sklearn"] = lambda: euclidean_distances(A, B)
        if numba_ok:
            contenders["numba njit"] = lambda: cdist_njit(A, B)
        with threadpool_limits(1):
            t = median_times(contenders, args.rounds)
        peers = {p: t.get(p) for p in ("scipy", "sklearn", "numba njit")}
        rows += rows_for(f"cdist 1000x1000 d={d}, 1 thread", t["parlab"], peers)

    # Accuracy on near pairs: XB is XA moved by 1e-7; SciPy's direct formula is exact here.
    A = rng.random((500, 100))
    B = A + 1e-7 * rng.standard_normal(A.shape)
    exact = scipy_cdist(A, B)
    errors = {"parlab": worst_relative_error(parlab.cdist(A, B), exact)}
    if sklearn_ok:
        errors["sklearn"] = worst_relative_error(euclidean_distances(A, B), exact)
    for name, err in errors.items():
        rows.append({"figure": "worst relative error, near pairs", "peer": name,
                     "parlab": errors["parlab"], "peer_value": err, "unit": "rel. error",
                     "ratio": float("nan")})

    # n_threads inside one call, 2000 x 2000 x 100
    A, B = rng.random((2000, 100)), rng.random((2000, 100))
    k = min(2, cores)
    contenders = {"parlab n_threads=1": lambda: parlab.cdist(A, B, n_threads=1),
                  f"parlab n_threads={k}": lambda: parlab.cdist(A, B, n_threads=k)}
    if numba_ok:
        contenders["numba njit"] = lambda: cdist_njit(A, B)
        contenders["numba parallel"] = lambda: cdist_parallel(A, B)
    t = median_times(contenders, args.rounds)
    rows += rows_for(f"cdist 2000x2000 d=100, n_threads={k} (vs n_threads=1)",
                     t[f"parlab n_threads={k}"], {"parlab n_threads=1": t["parlab n_threads=1"]})
    if numba_ok:
        rows += rows_for("numba parallel=True (vs numba njit)", t["numba parallel"],
                         {"numba njit": t["numba njit"]})

    # Monte Carlo pi, ns per sample per core
    n = 20_000_000
    contenders = {"parlab": lambda: parlab.count_hits(n, seed=1),
                  "NumPy chunked": lambda: numpy_pi(n)}
    if numba_ok:
        contenders["numba njit"] = lambda: pi_njit(n)
    t = median_times(contenders, args.rounds)
    ns = {name: s / n * 1e9 for name, s in t.items()}
    rows += rows_for("Monte Carlo pi, ns per sample per core", ns["parlab"],
                     {p: ns.get(p) for p in ("NumPy chunked", "numba njit")}, unit="ns")

    # Call overhead of a kernel call that does no work: released, held, and a
    # bare builtin call (the floor of any call from Python).
    calls = 200_000

    def per_call(fn) -> Timer:
        def loop():
            for _ in range(calls):
                fn(0)
        return loop

    t = median_times({"io_wait(0)": per_call(parlab.io_wait),
                      "io_wait(0, release_gil=False)":
                          per_call(lambda s: parlab.io_wait(s, release_gil=False)),
                      "abs(0)": per_call(abs)}, args.rounds)
    ns = {name: s / calls * 1e9 for name, s in t.items()}
    rows += rows_for("call overhead of io_wait(0), released, ns per call (loop included)",
                     ns["io_wait(0)"], {p: ns[p] for p in ("io_wait(0, release_gil=False)",
                                                            "abs(0)")}, unit="ns")

    for absent, peers in ((not sklearn_ok, "sklearn"), (not numba_ok, "numba")):
        if absent:
            print(f"{peers}: absent (not installed); its rows are left out")
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.max_colwidth", 60,
                           "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))

    if args.threads:
        A, B = rng.random((2000, 100)), rng.random((2000, 100))
        t = median_times({f"cdist n_threads={k}": (lambda k=k: parlab.cdist(A, B, n_threads=k))
                          for k in args.threads}
                         | {f"count_hits n_threads={k}":
                            (lambda k=k: parlab.count_hits(50_000_000, seed=1, n_threads=k))
                            for k in args.threads}, args.rounds)
        scaling = pd.DataFrame(
            [{"kernel": kernel, "n_threads": k, "seconds": t[f"{kernel} n_threads={k}"],
              "speedup": t[f"{kernel} n_threads={args.threads[0]}"] / t[f"{kernel} n_threads={k}"]}
             for kernel in ("cdist", "count_hits") for k in args.threads])
        print(f"\nn_threads scaling ({cores} logical CPUs; speedup over n_threads="
              f"{args.threads[0]}):")
        print(scaling.to_string(index=False, float_format="{:.3f}".format))
        table = pd.concat([table, scaling.rename(columns={"kernel": "figure"})])

    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "compare.csv", index=False)
    chart(pd.DataFrame(rows), args.out / "compare.png")
    print(f"\nwrote {args.out / 'compare.csv'} and {args.out / 'compare.png'}")


def chart(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    speed = table[table.ratio.notna()]
    labels = [f"{f}\nvs {p}" for f, p in zip(speed.figure, speed.peer)]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(speed) + 1.5))
    ax.barh(range(len(speed)), speed.ratio, color="#2ca02c")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(speed)), labels, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("parlab's advantage (peer time / parlab time; > 1: parlab faster)")
    ax.set_title("parlab against its peers, measured side by side in one run")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
