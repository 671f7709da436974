"""Checks that a file written by ``parlab.Trace.save`` follows the Chrome
trace-event format, as Perfetto and chrome://tracing read it: an object with
``traceEvents``; every event has ``ph``, ``name``, ``pid`` and ``tid``;
complete slices (``ph: "X"``) have ``ts`` and ``dur`` in microseconds;
metadata events (``ph: "M"``) name the process and each thread once; slices
on one thread nest (each one inside the last still open, or after it).
"""
from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

REQUIRED = {"ph", "name", "pid", "tid"}


def load(path: str | Path) -> dict:
    path = str(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        # parse_constant: NaN and Infinity are not JSON; reject them as strict readers do.
        return json.load(f, parse_constant=_no_constant)


def _no_constant(name: str):
    raise AssertionError(f"{name} in the trace file is not JSON")


def ns(us: float) -> int:
    """Microseconds in the file back to whole nanoseconds."""
    return round(us * 1000)


def check(data: dict) -> dict[int, list[dict]]:
    """Assert that ``data`` is a well-formed trace; return the slices by thread."""
    assert isinstance(data, dict) and isinstance(data.get("traceEvents"), list)
    assert data.get("displayTimeUnit") in (None, "ms", "ns")
    events = data["traceEvents"]
    for e in events:
        missing = REQUIRED - e.keys()
        assert not missing, f"event {e} lacks {missing}"
        assert e["ph"] in ("X", "M"), f"unexpected phase in {e}"
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
    meta = [e for e in events if e["ph"] == "M"]
    slices = [e for e in events if e["ph"] == "X"]
    assert [e["name"] for e in meta].count("process_name") == 1
    for e in meta:
        assert isinstance(e.get("args"), dict), e
    names = Counter(e["tid"] for e in meta if e["name"] == "thread_name")
    assert all(count == 1 for count in names.values()), f"threads named twice: {names}"
    by_thread: dict[int, list[dict]] = {}
    for e in slices:
        assert isinstance(e["ts"], (int, float)) and isinstance(e["dur"], (int, float)), e
        assert e["ts"] >= 0 and e["dur"] >= 0, e
        assert isinstance(e.get("cat"), str), e
        by_thread.setdefault(e["tid"], []).append(e)
    assert set(by_thread) <= set(names), "a thread with slices but no thread_name"
    for tid, evs in by_thread.items():
        _check_nesting(tid, evs)
    return by_thread


def _check_nesting(tid: int, slices: list[dict]) -> None:
    open_ends: list[tuple[int, str]] = []
    for e in sorted(slices, key=lambda e: (ns(e["ts"]), -ns(e["dur"]))):
        start, end = ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])
        while open_ends and open_ends[-1][0] <= start:
            open_ends.pop()
        if open_ends:
            assert end <= open_ends[-1][0], (
                f"thread {tid}: {e['name']!r} [{start}, {end}] ns overlaps the end of "
                f"{open_ends[-1][1]!r} at {open_ends[-1][0]} ns without nesting in it")
        open_ends.append((end, e["name"]))
