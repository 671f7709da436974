"""Released means released: a GIL-releasing kernel beside a pure-Python thread.

A released call should slow down beside one pure-Python busy thread no more
than SciPy's cdist does (which releases the GIL once and takes it back at the
end). Both are timed side by side in one run, alone and beside the busy
thread, in interleaved rounds. What the busy thread adds is the wait to get
the GIL back at the end (up to one switch interval), the same for any call:
so parlab, being faster, is also timed on a larger input that takes as long
as SciPy's call alone, and the figure is the ratio of the two slowdowns.
Also counts how often a long released call in a worker thread took the GIL
back during its work (it should be zero).

    python benchmarks/bench_busy_thread.py [--rows 1500] [--cols 100] [--rounds 15]
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np
from scipy.spatial.distance import cdist as scipy_cdist

import parlab
from _machine import describe


def busy_python(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(300))


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def beside_busy_thread(fn) -> float:
    stop = threading.Event()
    busy = threading.Thread(target=busy_python, args=(stop,))
    busy.start()
    time.sleep(0.01)  # the busy thread holds the GIL in turns from now on
    try:
        return timed(fn)
    finally:
        stop.set()
        busy.join()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--cols", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    print(describe())

    rng = np.random.default_rng(0)
    X = rng.random((args.rows, args.cols))
    scipy_alone = statistics.median(timed(lambda: scipy_cdist(X, X)) for _ in range(5))
    parlab_alone = statistics.median(timed(lambda: parlab.cdist(X, X)) for _ in range(5))
    matched = int(args.rows * (scipy_alone / parlab_alone) ** 0.5)
    Y = rng.random((matched, args.cols))
    calls = {"scipy": lambda: scipy_cdist(X, X), "parlab": lambda: parlab.cdist(X, X),
             f"parlab {matched}x{matched}": lambda: parlab.cdist(Y, Y)}
    alone = {k: [] for k in calls}
    busy = {k: [] for k in calls}
    for _ in range(args.rounds):  # interleaved, so drifting load hits all alike
        for name, fn in calls.items():
            alone[name].append(timed(fn))
            busy[name].append(beside_busy_thread(fn))
    print(f"\ncdist {args.rows}x{args.rows} ({matched}x{matched}: as long as SciPy's alone), "
          f"{args.cols} features, median of {args.rounds} interleaved rounds")
    print(f"{'':<22}{'alone s':>10}{'beside busy s':>15}{'added ms':>10}{'slowdown':>10}")
    slowdown = {}
    for name in calls:
        a, b = statistics.median(alone[name]), statistics.median(busy[name])
        slowdown[name] = b / a
        print(f"{name:<22}{a:>10.4f}{b:>15.4f}{(b - a) * 1e3:>10.2f}{slowdown[name]:>9.2f}x")
    ratio = slowdown[f"parlab {matched}x{matched}"] / slowdown["scipy"]
    print(f"parlab's slowdown / SciPy's, same duration: {ratio:.2f} (1.00 = exactly as SciPy)")

    stop = threading.Event()
    ticker = threading.Thread(target=busy_python, args=(stop,))
    with parlab.trace() as tr:
        ticker.start()
        worker = threading.Thread(target=parlab.cpu_work, args=(20_000_000,))
        worker.start()
        worker.join()
        stop.set()
        ticker.join()
    (call,) = tr.events.itertuples()
    print(f"\ncpu_work in a worker thread beside a busy thread: {call.work_s:.2f} s of work, "
          f"took the GIL back {call.n_waits} times during it")


if __name__ == "__main__":
    main()
