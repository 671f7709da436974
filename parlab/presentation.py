"""Results in words, for people: the names of the lectures, what ``release_gil``
is called, a result's table as a page shows it. Beside :mod:`parlab.report`
(the report folder) and :mod:`parlab.plot` (the pictures); "cores" in words
is :func:`parlab._cores.describe_cores`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# What a variant's output should be, unless its plan says otherwise.
MATCHES_REFERENCE = "matches the reference"

# What the report calls each lecture, by the number its file name starts with.
LECTURE_TITLES = {
    "000": "Lecture 000: a distance matrix, from threads to processes",
    "001": "Lecture 001: multiprocessing, thread pools and joblib",
    "002": "Lecture 002: threads, processes and concurrent.futures",
    "003": "Lecture 003: threads, races, locks and numba",
    "004": "Lecture 004: the GIL, NumPy's own threads, processes x threads",
    "005": "Beyond the lectures: Dask, from one machine to a cluster",
    "006": "Beyond the lectures: Python without the GIL",
}


def lecture_title(lecture: str) -> str:
    """The title of a lecture file (``"000_....txt"``), or the name itself if unknown."""
    return LECTURE_TITLES.get(lecture.split("_", 1)[0], lecture)


def gil_word(release_gil: object, none: str = "-") -> str:
    """``release_gil`` in words: "released", "held", or ``none`` where no parlab
    kernel ran (None, or NaN from a pandas column)."""
    if release_gil is None or release_gil != release_gil:
        return none
    return "released" if release_gil else "held"


def overview(table: "pd.DataFrame") -> "pd.DataFrame":
    """A result table as a reader needs it on a page: one row per variant, its
    median and the range of its runs in milliseconds, the speedup and what
    it is over, whether the output was right, and what it should be where
    that is not simply the reference (``table`` has it all)."""
    t = table
    runs = [f"{lo * 1e3:.3g}-{hi * 1e3:.3g} ({n})"
            for lo, hi, n in zip(t.low_s, t.high_s, t.n_samples)]
    expected = t.expected.where(t.expected != MATCHES_REFERENCE, "")
    return t.assign(GIL=t.release_gil.map(gil_word), ms=t.seconds * 1e3, runs=runs,
                    expected=expected)[
        ["variant", "backend", "workers", "GIL", "ms", "runs", "speedup", "speedup_over",
         "correct", "expected"]].rename(columns={"ms": "median ms", "runs": "runs ms (n)"})


def result_html(heading: str, table: "pd.DataFrame", lessons: "pd.DataFrame",
                load: str) -> str:
    """A result in a notebook: ``heading``, the :func:`overview`, the lessons
    and the load it was measured under, in words."""
    import pandas as pd

    with pd.option_context("display.max_colwidth", None):
        return (f"<h4>{heading}</h4>" + overview(table).to_html(index=False)
                + lessons.to_html(index=False) + f"<p>While measuring: {load}.</p>")
