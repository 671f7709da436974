"""A finished trace as a Chrome trace-event file (what Perfetto, chrome://tracing
and VizTracer's ``vizviewer`` open): exposed as :meth:`parlab.Trace.save`.

One track per traced thread, named as on ``parlab.plot.timeline``; per kernel
call a slice with its arguments, and inside it the work (GIL released or held),
each wait to re-take the GIL during the work and the final re-acquire as
slices of their own; ``tr.span`` stretches as slices too. The format counts
microseconds (``ts``, ``dur``); the trace keeps nanoseconds, so the file keeps
three decimals and loses nothing.
"""
from __future__ import annotations

import gzip
import json
import os
from typing import TYPE_CHECKING, Any, Protocol

from parlab._cores import describe_cores
from parlab._info import info

if TYPE_CHECKING:
    import pandas as pd


class Trace(Protocol):
    """What a trace file is written from: a finished :class:`parlab.Trace`,
    named by what the export reads of it, so that this module does not import
    :mod:`parlab.tracing`, which imports it."""

    cpu_time: bool

    @property
    def events(self) -> "pd.DataFrame": ...

    @property
    def waits(self) -> "pd.DataFrame": ...

    @property
    def dropped(self) -> int: ...

    def thread_label(self, seq: int) -> str: ...

SUFFIXES = (".json", ".json.gz")


def _us(ns: int) -> float:
    return round(int(ns) / 1000, 3)


def _slice(name: str, cat: str, tid: int, start_ns: int, end_ns: int, t0: int, pid: int,
           args: dict[str, Any] | None = None) -> dict[str, Any]:
    # ts and dur both come from whole nanoseconds, so a child ends at or before
    # its parent in the file too: the viewers nest slices by these numbers.
    event = {"ph": "X", "name": name, "cat": cat, "pid": pid, "tid": tid,
             "ts": _us(start_ns - t0), "dur": _us(end_ns - start_ns)}
    if args:
        event["args"] = args
    return event


def _kernel_slices(row, waits, t0: int, pid: int, cpu_time: bool) -> list[dict[str, Any]]:
    tid = int(row.thread_seq)
    released = not row.gil_held
    args = {"kernel": row.kernel, "release_gil": released, "n_threads": int(row.n_threads),
            "work_s": float(row.work_s), "gil_wait_s": float(row.gil_wait_s),
            "call": int(row.call), "n_waits": int(row.n_waits),
            "completed": bool(row.completed)}
    if cpu_time:
        args["cpu_s"] = float(row.cpu_s)
    out = [_slice(row.kernel, "kernel", tid, row.start_ns, row.end_ns, t0, pid, args),
           _slice("work, GIL released" if released else "work, GIL held", "work", tid,
                  row.work_start_ns, row.work_end_ns, t0, pid)]
    for w in waits:
        out.append(_slice("GIL wait", "gil", tid, w.start_ns, w.end_ns, t0, pid))
    if released:
        out.append(_slice("GIL re-acquire", "gil", tid, row.work_end_ns, int(row.reacquired_ns),
                          t0, pid))
    return out


def chrome_trace(tr: "Trace", name: str | None = None) -> dict[str, Any]:
    """The trace-event JSON object of a finished trace."""
    ev = tr.events
    pid = os.getpid()
    t0 = int(ev.start_ns.min()) if len(ev) else 0
    waits_of: dict[int, list] = {}
    for w in tr.waits.itertuples(index=False):
        waits_of.setdefault(int(w.call), []).append(w)

    slices: list[dict[str, Any]] = []
    for row in ev.itertuples(index=False):
        if row.kind == "span":
            slices.append(_slice(row.kernel, "span", int(row.thread_seq), row.start_ns,
                                 row.end_ns, t0, pid))
        else:
            slices += _kernel_slices(row, waits_of.get(int(row.call), []), t0, pid, tr.cpu_time)
    # Parents first where slices start together, as a nesting reader expects.
    slices.sort(key=lambda e: (e["tid"], e["ts"], -e["dur"]))

    machine = info()
    title = name or "parlab trace"
    meta: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": title}},
        {"ph": "M", "name": "process_labels", "pid": pid, "tid": 0, "args": {"labels": (
            f"Python {machine['python']}, {describe_cores(machine['cores'])}, "
            f"GIL {'on' if machine['gil_enabled'] else 'off'}, simd {machine['simd']}")}},
    ]
    for k, seq in enumerate(dict.fromkeys(int(s) for s in ev.thread_seq)):
        meta.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": seq,
                     "args": {"name": tr.thread_label(seq)}})
        meta.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": seq,
                     "args": {"sort_index": k}})
    return {
        "traceEvents": meta + slices,
        "displayTimeUnit": "ms",
        "otherData": {
            "title": title,
            "clock": "time.perf_counter_ns, ts counted from the first event",
            "origin_ns": t0,
            "dropped": int(tr.dropped),
            "cpu_time": tr.cpu_time,
            **machine,
        },
    }


def save(tr: "Trace", path: str | os.PathLike, name: str | None = None) -> None:
    """Write ``tr`` to ``path`` (``.json``, or ``.json.gz`` compressed)."""
    text = os.fspath(path)
    if not text.endswith(SUFFIXES):
        raise ValueError(f"Trace.save: path must end in .json or .json.gz, got {text!r}")
    data = chrome_trace(tr, name)
    opener = gzip.open if text.endswith(".gz") else open
    with opener(text, "wt", encoding="utf-8") as f:
        # allow_nan=False: NaN is not JSON, and strict readers reject the file.
        json.dump(data, f, allow_nan=False)
