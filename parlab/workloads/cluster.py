"""Work for a Dask cluster (L5.1-L5.3): connecting, placing tasks, and lecture
001's random state in pool workers.

:func:`connect` gives a ``distributed.Client``: on a ``LocalCluster`` it
starts, or on an existing cluster by address. :func:`run_placed` runs chains
of jobs pinned to chosen workers, so that one cluster can play both "one
worker with k threads" and "k workers with one thread each": k chains on one
worker use k of its threads at once; k chains on k workers use one thread of
each. Nothing here imports Dask at import time.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import multiprocessing
import threading
from typing import Any, Callable, Iterator, Sequence

import numpy as np

import parlab
from parlab._info import gil_enabled

START_TIMEOUT_S = 60
# distributed's sampling profiler reads every thread's frames from a thread of
# its own (sys._current_frames()); on free-threaded CPython 3.13 that can
# crash the worker. The Nanny hands the config on to its worker processes.
NO_PROFILER = {"distributed.worker.profile.enabled": False}


def profiler_config() -> dict[str, Any]:
    """The Dask config every cluster parlab starts runs under: the sampling
    profiler off where the GIL is off."""
    return {} if gil_enabled() else dict(NO_PROFILER)


def profiler_env() -> dict[str, str]:
    """:func:`profiler_config` as environment variables, for Dask processes
    started from the command line (``dask worker``)."""
    return {"DASK_" + key.upper().replace(".", "__"): str(value)
            for key, value in profiler_config().items()}


@contextlib.contextmanager
def connect(address: str | None = None, *, workers: int = 2, threads_per_worker: int = 2,
            timeout: float = START_TIMEOUT_S) -> Iterator[Any]:
    """A ``distributed.Client``: to the cluster at ``address`` (``tcp://host:port``),
    or to a new ``LocalCluster`` of ``workers`` processes, closed afterwards."""
    import dask
    from distributed import Client, LocalCluster

    if address is not None:
        with Client(address, timeout=timeout, set_as_default=False) as client:
            yield client
        return
    # ":0": its HTTP server (always started) takes a free port, not 8787, which
    # another cluster on this machine may hold.
    with dask.config.set(profiler_config()), \
            LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                         processes=True, dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(workers, timeout=timeout)
        yield client


def worker_threads(client) -> dict[str, int]:
    """Every worker's address and thread count, in address order."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    return {address: info[address]["nthreads"] for address in sorted(info)}


def import_on_workers(client, *modules: str) -> None:
    """Import ``modules`` in every worker now, so that no timed run pays for it."""
    client.run(_import_all, modules)


def _import_all(modules: Sequence[str]) -> None:
    for name in modules:
        importlib.import_module(name)


def run_placed(client, job: Callable[..., Any], args: Sequence[Any],
               placement: Sequence[str], per_chain: int) -> list[list[Any]]:
    """Run ``job(*args)`` ``per_chain`` times in a row on each worker of
    ``placement`` (one chain per entry; a worker named twice runs two chains
    at once on two of its threads). Returns each chain's results.

    ``args`` may hold futures from ``client.scatter(..., broadcast=True,
    hash=False)``: each worker then uses its own copy. (With hashed keys, a
    scatter of data that an earlier scatter is still releasing can be lost.)
    """
    futures = [client.submit(_chain, job, per_chain, *args, workers=[w],
                             allow_other_workers=False, pure=False) for w in placement]
    return client.gather(futures)


def _chain(job: Callable[..., Any], times: int, *args: Any) -> list[Any]:
    return [job(*args) for _ in range(times)]


def cdist_total(XA: np.ndarray, XB: np.ndarray, release_gil: bool) -> float:
    """One ``parlab.cdist`` call, reduced to a number worth sending back."""
    return float(parlab.cdist(XA, XB, release_gil=release_gil).sum())


# ------------------------------------------------- lecture 001's random state

def pool_start_method(requested: str | None = None) -> str:
    """``requested`` if given; else ``fork``, lecture 001's setting, where the
    platform has it, and ``spawn`` where it has not (Windows)."""
    if requested:
        return requested
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def global_draws(processes: int, samples: int, *, start_method: str | None = None,
                 timeout: float = 60.0) -> list[np.ndarray]:
    """Lecture 001's Monte Carlo draw, ``np.random.uniform(-1, 1, (samples, 2))``,
    made once in each of ``processes`` workers of a ``Pool`` started with
    :func:`pool_start_method` (``start_method``).

    The tasks wait for each other at a barrier, so each really runs in its own
    worker. Forked workers start from a copy of their parent's global random
    state, so all draw the same numbers; spawned ones (and forkserver's) seed
    their own afresh from the OS, so none repeats another.

    A process that runs other threads (Dask's, once a cluster was used here; a
    Jupyter kernel's) is never forked: a child may inherit a lock some thread
    held, and deadlock (Python 3.12+ warns of it). The forking parent is then a
    fresh process of its own, with one thread, whose random state the workers
    copy: the lesson is the same.
    """
    method = pool_start_method(start_method)
    if method != "fork" or threading.active_count() == 1:
        return _draws_in_pool(processes, samples, method, timeout)
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as parent:
        return parent.submit(_draws_in_pool, processes, samples, method, timeout).result()


def _draws_in_pool(processes: int, samples: int, method: str, timeout: float
                   ) -> list[np.ndarray]:
    mp = multiprocessing.get_context(method)
    barrier = mp.Barrier(processes, timeout=timeout)
    with mp.Pool(processes, initializer=_keep_barrier, initargs=(barrier,)) as pool:
        return pool.map(_draw_after_barrier, [samples] * processes, chunksize=1)


_barrier = None


def _keep_barrier(barrier) -> None:
    global _barrier
    _barrier = barrier


def _draw_after_barrier(samples: int) -> np.ndarray:
    _barrier.wait()
    return np.random.uniform(-1, 1, (samples, 2))


def duplicated_draws(draws: Sequence[np.ndarray]) -> int:
    """How many of ``draws`` repeat an earlier one exactly."""
    seen: set[bytes] = set()
    repeats = 0
    for d in draws:
        key = np.ascontiguousarray(d).tobytes()
        repeats += key in seen
        seen.add(key)
    return repeats
