"""Lecture 004's last problem: the column means of an array larger than memory (L4.4).

:func:`write_array` writes a ``.npy`` file of integer-valued float64 numbers
in pieces, never holding it whole, and returns its exact column sums (Python
ints). Integer values keep every float64 partial sum exact (they stay far
below 2**53), so a correct chunked mean equals ``sum / rows`` to the last bit.

:func:`means_by_hand` is the lecture's pseudocode made right: read one block
of rows at a time, add its column sums into float64 accumulators, divide by
the total row count at the end. (The lecture divides each chunk's mean by the
number of chunks, which is wrong whenever the chunks differ in size.)
:func:`means_with_dask` builds the same computation as a ``dask.array`` whose
blocks are read from the file on demand. Both read with ordinary file reads
into fresh buffers, so the memory they use is memory Python's tracer sees:
:func:`measured` measures it.
"""
from __future__ import annotations

import tracemalloc
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np

DTYPE = np.dtype("<f8")
MAX_VALUE = 1_000  # values are integers in [0, MAX_VALUE)


def write_array(path: Path, rows: int, columns: int, *, block_rows: int,
                seed: int = 0) -> list[int]:
    """Write a ``rows x columns`` float64 ``.npy`` file, ``block_rows`` rows at a time.

    Returns the exact sum of every column.
    """
    rng = np.random.default_rng(seed)
    sums = np.zeros(columns, dtype=np.int64)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": DTYPE.str, "fortran_order": False, "shape": (rows, columns)})
        for start in range(0, rows, block_rows):
            block = rng.integers(0, MAX_VALUE, size=(min(block_rows, rows - start), columns))
            sums += block.sum(axis=0)
            f.write(block.astype(DTYPE).tobytes())
    return [int(s) for s in sums]


def exact_means(sums: list[int], rows: int) -> np.ndarray:
    """The column means, each correctly rounded from the exact sum."""
    return np.array([float(Fraction(s, rows)) for s in sums])


def _layout(path: Path) -> tuple[int, int, int]:
    """``(rows, columns, offset of the data)`` of a C-ordered float64 ``.npy`` file."""
    with open(path, "rb") as f:
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}[np.lib.format.read_magic(f)]
        shape, fortran, dtype = read_header(f)
        if fortran or dtype != DTYPE or len(shape) != 2:
            raise ValueError(f"{path}: expected a C-ordered 2-D float64 array")
        return shape[0], shape[1], f.tell()


def read_rows(path: Path, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of the file, read into a new array."""
    _, columns, offset = _layout(path)
    return np.fromfile(path, dtype=DTYPE, count=(stop - start) * columns,
                       offset=offset + start * columns * DTYPE.itemsize).reshape(-1, columns)


def means_by_hand(path: Path, block_rows: int) -> np.ndarray:
    """Column means from one block of rows in memory at a time."""
    rows, columns, _ = _layout(path)
    sums = np.zeros(columns, dtype=np.float64)
    for start in range(0, rows, block_rows):
        sums += read_rows(path, start, min(rows, start + block_rows)).sum(axis=0)
    return sums / rows


def means_with_dask(path: Path, block_rows: int, **compute_kwargs: Any) -> np.ndarray:
    """Column means by ``dask.array``, its blocks read from the file when needed."""
    import dask
    import dask.array as da

    rows, columns, _ = _layout(path)
    blocks = [da.from_delayed(dask.delayed(read_rows)(path, start, min(rows, start + block_rows)),
                              shape=(min(rows, start + block_rows) - start, columns), dtype=DTYPE)
              for start in range(0, rows, block_rows)]
    return da.concatenate(blocks).mean(axis=0).compute(**compute_kwargs)


def measured(call: Callable[[], Any]) -> tuple[Any, int]:
    """``(call(), peak bytes allocated during it)``, by Python's allocation
    tracer: every thread's allocations count, NumPy's buffers included."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = call()
        return out, tracemalloc.get_traced_memory()[1] - before
    finally:
        if started:
            tracemalloc.stop()
