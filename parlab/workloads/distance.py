"""Distance matrices the way lectures 000 and 001 build them, before any kernel.

Rows are Python lists of floats and the matrix is a list of lists, except where
the lecture itself switches to NumPy (:func:`numpy_row`, :func:`cdist_loop`).
Every task is a module-level function so threads and processes can run it.
"""
from __future__ import annotations

import math
import random
from typing import Any, Sequence

import numpy as np

Matrix = list[list[float]]


def random_dataset(m: int, dim: int, seed: int = 0) -> Matrix:
    """``m`` points of ``dim`` uniform coordinates in [0, 1), as a list of lists."""
    rng = random.Random(seed)
    return [[rng.random() for _ in range(dim)] for _ in range(m)]


def euclidean(x: Sequence[float], y: Sequence[float]) -> float:
    """Euclidean distance between two equally long sequences, one pair at a time."""
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(x, y)))


def zeros(n_rows: int, n_cols: int) -> Matrix:
    """A list of ``n_rows`` lists of ``n_cols`` zeros (the empty matrix to fill)."""
    return [[0.0] * n_cols for _ in range(n_rows)]


def distance_matrix(X: Sequence[Sequence[float]], seed: int | None = None) -> Matrix:
    """All pairwise distances of the rows of ``X``, cell by cell.

    With ``seed`` the rows, and the columns within each row, are visited in a
    random order: the cells do not depend on each other, so the matrix is the
    same whatever the order.
    """
    n = len(X)
    D = zeros(n, n)
    rows, cols = list(range(n)), list(range(n))
    rng = random.Random(seed)
    if seed is not None:
        rng.shuffle(rows)
    for i in rows:
        if seed is not None:
            rng.shuffle(cols)
        for j in cols:
            D[i][j] = euclidean(X[i], X[j])
    return D


def fill_cell(D: Matrix, X: Sequence[Sequence[float]], i: int, j: int) -> None:
    """Write the distance between rows ``i`` and ``j`` into ``D[i][j]``."""
    D[i][j] = euclidean(X[i], X[j])


def distance_rows(X: Sequence[Sequence[float]], start: int, stop: int) -> Matrix:
    """Rows ``start`` to ``stop - 1`` of the distance matrix of ``X``."""
    return [[euclidean(X[i], y) for y in X] for i in range(start, stop)]


def fill_rows(D: Any, X: Sequence[Sequence[float]], start: int, stop: int) -> None:
    """Write rows ``start`` to ``stop - 1`` of the distance matrix into ``D``.

    ``D`` is a list of lists or a NumPy array; only those rows change.
    """
    D[start:stop] = distance_rows(X, start, stop)


def numpy_row(D: np.ndarray, X: np.ndarray, i: int) -> None:
    """Row ``i`` of the distance matrix in one vectorised NumPy expression."""
    D[i] = np.sqrt(np.sum((X[i] - X) ** 2, axis=-1))


def cdist_loop(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The lab's baseline: every pair of rows through a small NumPy expression."""
    res = np.empty((len(xs), len(ys)))
    for i in range(len(xs)):
        for j in range(len(ys)):
            res[i, j] = np.sqrt(np.sum((ys[j] - xs[i]) ** 2))
    return res
