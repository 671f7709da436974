"""parlab's kernels as Dask tasks: a distance matrix as a ``dask.array``, and
Monte Carlo pi split over a cluster with exactly the serial answer.

Nothing here picks a scheduler: the work runs on whatever Dask would use for
``.compute()`` (the threaded scheduler by default, ``dask.config.set(scheduler=
"processes")``, or the active ``distributed.Client``); ``count_hits`` and
``estimate_pi`` also take a ``client`` explicitly. ``import parlab`` does not
import Dask; ``import parlab.dask`` does.

On a cluster every worker must be able to ``import parlab``. The distance
matrix's inputs travel to the workers with the graph (or stay there if they
are Dask arrays already); Monte Carlo chunks need nothing but the seed.
"""
from __future__ import annotations

import operator

import dask
import dask.array as da
import numpy as np
import numpy.typing as npt

from parlab import _core

__all__ = ["cdist", "count_hits", "estimate_pi"]

# About 0.1 to 0.3 s of sampling per task: long enough that scheduling is noise.
DEFAULT_CHUNK = 100_000_000
MAX_SAMPLES = 2 ** 63


def cdist(XA: npt.ArrayLike | da.Array, XB: npt.ArrayLike | da.Array, *,
          metric: str = "euclidean", chunks="auto", release_gil: bool = True) -> da.Array:
    """The distance matrix of ``parlab.cdist`` as a lazy ``dask.array``.

    Block ``(i, j)`` of the result is one ``parlab.cdist`` call on row block
    ``i`` of ``XA`` and row block ``j`` of ``XB`` (all columns), so every
    entry equals the one-call result bit for bit.

    XA, XB: 2-D arrays of real numbers (NumPy, array-likes or Dask arrays)
        with the same number of columns.
    chunks: the result's blocks, in any form ``dask.array`` accepts for a 2-D
        float64 array of shape ``(len(XA), len(XB))`` (``"auto"``: about
        ``array.chunk-size`` bytes each; an int: square blocks).
    metric, release_gil: as for ``parlab.cdist``.

    Bad arguments raise at once, with ``parlab.cdist``'s messages.
    """
    A, B = _as_dask(XA), _as_dask(XB)
    _check_cdist(A, B, metric, release_gil)
    rows, cols = da.core.normalize_chunks(chunks, (A.shape[0], B.shape[0]), dtype=np.float64)
    A = A.rechunk((rows, -1))
    B = B.rechunk((cols, -1))
    token = dask.base.tokenize(A, B, metric, release_gil)
    return da.blockwise(_cdist_block, "ij", A, "ik", B, "jk", dtype=np.float64,
                        concatenate=True, name=f"parlab-cdist-{token}",
                        metric=metric, release_gil=release_gil)


def _as_dask(X) -> da.Array:
    return X if isinstance(X, da.Array) else da.asarray(np.asarray(X))


def _check_cdist(A: da.Array, B: da.Array, metric, release_gil) -> None:
    """Let ``parlab.cdist`` judge the arguments on stand-ins with no rows.

    The stand-ins share the inputs' dtype, rank and column count, so the C
    layer checks everything but the values, and nothing large is allocated.
    """
    def stand_in(X: da.Array) -> np.ndarray:
        shape = (0, X.shape[1]) if X.ndim == 2 else X.shape
        return np.broadcast_to(np.zeros((), dtype=X.dtype), shape)

    _core.cdist(stand_in(A), stand_in(B), metric=metric, release_gil=release_gil)


def _cdist_block(a: np.ndarray, b: np.ndarray, *, metric: str, release_gil: bool) -> np.ndarray:
    return _core.cdist(a, b, metric=metric, release_gil=release_gil)


def count_hits(n_samples: int, *, seed=None, chunk: int = DEFAULT_CHUNK, client=None) -> int:
    """``parlab.count_hits(n_samples, seed=seed)``, computed in Dask tasks of
    ``chunk`` samples each; the total is exactly the serial count.

    Task ``k`` counts samples ``k * chunk`` onward of the one stream fixed by
    ``seed`` (``parlab.count_hits``'s ``start``), so neither the chunking nor
    the number of workers changes the answer. ``seed=None`` draws fresh
    entropy once, here, and every task shares it.

    client: a ``distributed.Client`` to run on; None uses the active scheduler.
    """
    return _hits("count_hits", n_samples, seed, chunk, client)


def estimate_pi(n_samples: int, *, seed=None, chunk: int = DEFAULT_CHUNK, client=None) -> float:
    """``parlab.estimate_pi(n_samples, seed=seed)`` from :func:`count_hits`'s
    tasks: ``4 * hits / n_samples``, exactly the serial estimate."""
    hits = _hits("estimate_pi", n_samples, seed, chunk, client)
    return 4.0 * hits / operator.index(n_samples)


def _hits(fn: str, n_samples, seed, chunk, client) -> int:
    n = _count(fn, "n_samples", n_samples)
    if n > MAX_SAMPLES:
        raise OverflowError(f"{fn}: n_samples must not exceed 2**63, got {n}")
    if n == 0 and fn == "estimate_pi":
        raise ValueError("estimate_pi: n_samples must be positive (no samples, no estimate)")
    if _count(fn, "chunk", chunk) == 0:
        raise ValueError(f"{fn}: chunk must be positive, got 0")
    if seed is None:
        seed = np.random.SeedSequence()
    getattr(_core, fn)(1, seed=seed)  # the C layer's own seed checks and messages
    parts = [dask.delayed(_count_chunk, pure=True)(min(chunk, n - start), seed, start)
             for start in range(0, n, chunk)]
    (hits,) = dask.compute(dask.delayed(sum, pure=True)(parts), scheduler=client)
    return hits


def _count(fn: str, name: str, value) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{fn}: {name} must be an int, not bool")
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{fn}: {name} must be an int, not {type(value).__name__}") from None
    if n < 0:
        raise ValueError(f"{fn}: {name} must be non-negative, got {n}")
    return n


def _count_chunk(n_samples: int, seed, start: int) -> int:
    return _core.count_hits(n_samples, seed=seed, start=start)
