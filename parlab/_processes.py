"""The multiprocessing context that parlab's experiments start processes from."""
from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver


def context(start_method: str | None = None):
    """``multiprocessing.get_context(start_method)``, the platform's default when None.

    Under forkserver, Linux's default from Python 3.14, the server imports
    parlab's experiments (their workers' code) once, before it forks any
    child, as a forked child inherits them: else every process that the
    lectures' code starts per run spends over a second importing NumPy,
    SciPy and pandas before its first row, and that start-up, not the work,
    decides whether processes speed anything up. The server is started here,
    before any clock: a pool or process made later forks from it at once.
    A server that was already running (started by the caller's own code)
    keeps what it preloaded.
    """
    mp = multiprocessing.get_context(start_method)
    if mp.get_start_method() == "forkserver":
        mp.set_forkserver_preload(["__main__", "parlab.experiments"])
        multiprocessing.forkserver.ensure_running()
    return mp
