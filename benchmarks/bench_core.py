"""Thread speedup of parlab's kernels with the GIL released vs held.

Every figure is a ratio measured side by side in one run, on the machine
described at the top of the output:

    python benchmarks/bench_core.py                  # threads = the usable cores
    python benchmarks/bench_core.py --threads 1 2 4 8 16 --n 6000

- cdist: the rows of an n x n distance job (50 features) split into one
  chunk per thread, each thread writing its row block of a shared D.
- cpu_work: the same total iterations split over the threads.
- Counter 'racy': updates lost by 2 threads x 10**6 increments, GIL released.
"""
from __future__ import annotations

import argparse
import functools
import statistics
import time

import numpy as np

import parlab
from _machine import describe
from parlab.experiments.runners import run_together


def run_threads(tasks) -> float:
    """Run one thread per task, started together; return the seconds from the
    first task starting to the last one ending."""
    spans = run_together([functools.partial(_span, t) for t in tasks])
    return max(end for _, end in spans) - min(start for start, _ in spans)


def _span(task) -> tuple[float, float]:
    # Each thread reads the clock itself: one that holds the GIL keeps the
    # others from reading it for it.
    start = time.perf_counter()
    task()
    return start, time.perf_counter()


def median_time(fn, repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def cdist_tasks(X, D, threads: int, release: bool):
    bounds = np.linspace(0, len(X), threads + 1).astype(int)
    return [lambda a=a, b=b: parlab.cdist(X[a:b], X, out=D[a:b], release_gil=release)
            for a, b in zip(bounds[:-1], bounds[1:])]


def cpu_tasks(iterations: int, threads: int, release: bool):
    share = iterations // threads
    return [lambda: parlab.cpu_work(share, release_gil=release)] * threads


def lost_updates(n: int = 10**6, threads: int = 2) -> int:
    counter = parlab.Counter()
    tasks = [lambda: counter.increment(n, mode="racy", release_gil=True)] * threads
    run_threads(tasks)
    return n * threads - counter.value


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[parlab.info()["cores"]])
    parser.add_argument("--n", type=int, default=6000, help="rows of the cdist job")
    parser.add_argument("--iterations", type=int, default=30_000_000,
                        help="total cpu_work iterations")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    print(describe())
    X = np.random.default_rng(0).random((args.n, 50))
    D = np.empty((args.n, args.n))

    jobs = {
        f"cdist {args.n}x{args.n}": lambda k, r: cdist_tasks(X, D, k, r),
        f"cpu_work {args.iterations:.0e}": lambda k, r: cpu_tasks(args.iterations, k, r),
    }
    print(f"\n{'kernel':<22}{'threads':>8}{'serial s':>10}{'released':>10}{'held':>10}"
          f"{'speedup rel.':>14}{'speedup held':>14}")
    for name, make in jobs.items():
        serial = median_time(lambda: run_threads(make(1, True)), args.repeats)
        for k in args.threads:
            rel = median_time(lambda: run_threads(make(k, True)), args.repeats)
            held = median_time(lambda: run_threads(make(k, False)), args.repeats)
            print(f"{name:<22}{k:>8}{serial:>10.3f}{rel:>10.3f}{held:>10.3f}"
                  f"{serial / rel:>13.2f}x{serial / held:>13.2f}x")

    losses = [lost_updates() for _ in range(5)]
    print(f"\nCounter racy, 2 threads x 10**6, GIL released: lost updates per run "
          f"{losses} (median {statistics.median(losses):.0f} of 2000000)")


if __name__ == "__main__":
    main()
