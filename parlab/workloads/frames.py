"""The pandas workloads of lecture 002: a formula that vectorises, a hash that doesn't.

Both are plain functions of a row's values so they can run element-wise in
``DataFrame.apply``, in a process pool's ``map``, or (the formula only) on
whole columns at once.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def make_frame(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """Four columns ``a, b, c, d`` of standard-normal floats."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.standard_normal((n_rows, 4)), columns=list("abcd"))


def spread(a, b, c, d):
    """``(a - b) / (1 + (c + d)**2)``: the same code works on numbers and on whole columns."""
    return (a - b) / (1.0 + (c + d) ** 2)


def row_spread(row: pd.Series) -> float:
    """:func:`spread` of one row, for ``DataFrame.apply(..., axis=1)``."""
    return spread(row["a"], row["b"], row["c"], row["d"])


def digest(*values, rounds: int = 1) -> str:
    """Hex SHA-256 of the values joined as text, re-hashed ``rounds`` times.

    Strings and hashes have no column-wise form: this has to run row by row.
    ``rounds`` sets how much work one row costs (like a key derivation).
    """
    data = "_".join(str(v) for v in values).encode()
    for _ in range(rounds):
        data = hashlib.sha256(data).digest()
    return data.hex()


def row_digest(row: pd.Series, rounds: int) -> str:
    """:func:`digest` of a row's ``a`` and ``b``, for ``DataFrame.apply(..., axis=1)``."""
    return digest(row["a"], row["b"], rounds=rounds)
