"""Per-call GIL tracing: what every thread's kernel calls did, and when.

The C kernels record, while a trace is on, when each call entered, released
the GIL, finished its work, got the GIL back and returned, plus every wait to
re-take the GIL during the work. ``parlab.plot.timeline`` draws it.

    with parlab.trace() as tr:
        run_my_threads()
    tr.events, tr.waits, tr.summary()
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

if TYPE_CHECKING:  # pandas is imported when a trace is read: `import parlab` stays light
    import pandas as pd

from parlab import _core

_FIELDS = {name: i for i, name in enumerate(_core._TRACE_FIELDS)}
_NS = 1e-9

EVENT_COLUMNS = [
    "kind", "kernel", "thread", "native_thread", "thread_seq", "call", "start_ns",
    "work_start_ns", "released_ns", "work_end_ns", "reacquired_ns", "end_ns", "work_s", "cpu_s",
    "gil_wait_s", "gil_held", "n_waits", "completed", "n_threads",
]
WAIT_COLUMNS = ["call", "kernel", "thread", "thread_seq", "start_ns", "end_ns", "wait_s"]


class Trace:
    """Records every parlab kernel call made in any thread while it is active.

    Use it as a context manager (``with parlab.trace() as tr:``); the results
    are read after the block. ``capacity`` bounds the records kept (one per
    call plus one per wait for the GIL inside a call); what does not fit is
    counted in ``summary()["dropped"]``. ``cpu_time=True`` also records each
    call's thread CPU time (``cpu_s``, ``cpu_parallelism``), at about 1 us
    more per call. Calls still running when the block ends are not
    recorded. One trace records at a time.
    """

    def __init__(self, capacity: int = 100_000, *, cpu_time: bool = False):
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise TypeError(f"trace: capacity must be an int, not {type(capacity).__name__}")
        if not isinstance(cpu_time, bool):
            raise TypeError(f"trace: cpu_time must be a bool, not {type(cpu_time).__name__}")
        self.capacity = capacity
        self.cpu_time = cpu_time
        self._records: np.ndarray | None = None
        self._spans: list[tuple[str, int, int, int, int, int]] = []
        # Names of the threads that made spans (by thread_seq), and of those
        # alive at the end (by ident and native id, which only they still own).
        self._span_names: dict[int, str] = {}
        self._alive_names: dict[tuple[int, int], str] = {}
        self.dropped = 0
        self._events: pd.DataFrame | None = None

    def __enter__(self) -> "Trace":
        if self._records is not None:
            raise RuntimeError("trace: this Trace has already recorded; make a new one")
        _core._trace_start(self.capacity, self.cpu_time)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._records, self.dropped = _core._trace_stop()
        self._alive_names = {(t.ident, t.native_id): t.name for t in threading.enumerate()}

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        """Mark a stretch of Python code (a pure-Python task, say) on the timeline."""
        me = threading.current_thread()
        seq = _core._thread_seq()
        self._span_names[seq] = me.name
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            self._spans.append((name, me.ident, me.native_id, seq, start,
                                time.perf_counter_ns()))

    def _finished(self) -> np.ndarray:
        if self._records is None:
            raise RuntimeError("trace: results are available once the `with` block has ended")
        return self._records

    @property
    def events(self) -> pd.DataFrame:
        """One row per kernel call (kind "kernel") or span (kind "span"), by start time.

        Times are nanoseconds on the clock of ``time.perf_counter_ns()``.
        ``work_s`` is the wall time spent working (GIL waits inside the call
        left out; a wait such as io_wait counts as work), ``cpu_s`` the CPU
        time the thread used meanwhile (NaN unless ``cpu_time=True``),
        ``gil_wait_s`` the time spent waiting to get the GIL back,
        ``gil_held`` whether the work ran holding the GIL.
        """
        if self._events is None:
            self._events = self._build_events()
        return self._events

    def _build_events(self) -> pd.DataFrame:
        import pandas as pd

        rec = self._finished()
        calls = rec[rec[:, _FIELDS["kind"]] == 0]

        def col(name: str) -> np.ndarray:
            return calls[:, _FIELDS[name]]

        released = col("t_released") >= 0

        def when_released(name: str) -> pd.arrays.IntegerArray:
            # NA where the call never let go of the GIL.
            return pd.arrays.IntegerArray(col(name).astype(np.int64), ~released)

        final_wait = np.where(released, col("t_reacquired") - col("t_work_end"), 0)
        checkpoint_waits = col("wait_ns") - final_wait
        kernels = pd.DataFrame({
            "kind": "kernel",
            "kernel": np.array(_core._TRACE_KERNELS, dtype=object)[col("kernel")],
            "thread": col("thread"),
            "native_thread": col("native_thread"),
            "thread_seq": col("thread_seq"),
            "call": col("call"),
            "start_ns": col("t_enter"),
            "work_start_ns": col("t_work_start"),
            "released_ns": when_released("t_released"),
            "work_end_ns": col("t_work_end"),
            "reacquired_ns": when_released("t_reacquired"),
            "end_ns": col("t_return"),
            "work_s": (col("t_work_end") - col("t_work_start") - checkpoint_waits) * _NS,
            "cpu_s": np.where(col("cpu_ns") >= 0, col("cpu_ns") * _NS, np.nan),
            "gil_wait_s": col("wait_ns") * _NS,
            "gil_held": col("gil_held") == 1,
            "n_waits": col("n_waits"),
            "completed": col("completed") == 1,
            "n_threads": col("n_threads"),
        })
        spans = pd.DataFrame(self._spans, columns=["kernel", "thread", "native_thread",
                                                   "thread_seq", "start_ns", "end_ns"])
        spans = spans.assign(
            kind="span", call=-1, work_start_ns=spans.start_ns, work_end_ns=spans.end_ns,
            released_ns=pd.array([pd.NA] * len(spans), dtype="Int64"),
            reacquired_ns=pd.array([pd.NA] * len(spans), dtype="Int64"),
            work_s=(spans.end_ns - spans.start_ns) * _NS, cpu_s=float("nan"), gil_wait_s=0.0,
            gil_held=True,
            n_waits=0, completed=True, n_threads=1)
        frames = [f[EVENT_COLUMNS] for f in (kernels, spans) if len(f)]
        if not frames:
            return kernels[EVENT_COLUMNS]
        events = pd.concat(frames, ignore_index=True)
        return events.sort_values("start_ns", kind="stable").reset_index(drop=True)

    @property
    def waits(self) -> pd.DataFrame:
        """Every wait to get the GIL back inside a call released from it."""
        import pandas as pd

        rec = self._finished()
        w = rec[rec[:, _FIELDS["kind"]] == 1]
        start, end = w[:, _FIELDS["t_enter"]], w[:, _FIELDS["t_return"]]
        return pd.DataFrame({
            "call": w[:, _FIELDS["call"]],
            "kernel": np.array(_core._TRACE_KERNELS, dtype=object)[w[:, _FIELDS["kernel"]]],
            "thread": w[:, _FIELDS["thread"]],
            "thread_seq": w[:, _FIELDS["thread_seq"]],
            "start_ns": start,
            "end_ns": end,
            "wait_s": (end - start) * _NS,
        }, columns=WAIT_COLUMNS)

    def thread_label(self, seq: int) -> str:
        """The name of the thread with this ``thread_seq`` where known (it made
        a span, or it was alive at the end), else "thread k", numbered by first
        appearance in the trace."""
        seq = int(seq)
        if seq in self._span_names:
            return self._span_names[seq]
        k, ids = self._thread_order.get(seq, (None, None))
        if ids in self._alive_names and self._latest_seq.get(ids) == seq:
            return self._alive_names[ids]
        return f"thread {k}" if k is not None else f"thread {seq}"

    @functools.cached_property
    def _thread_order(self) -> dict[int, tuple[int, tuple[int, int]]]:
        """Each traced thread's number, 1, 2, ..., by first appearance, and its
        (ident, native id)."""
        first = self.events.drop_duplicates("thread_seq")
        return {int(s): (k, (int(t), int(n))) for k, (s, t, n) in enumerate(
            zip(first.thread_seq, first.thread, first.native_thread), start=1)}

    @functools.cached_property
    def _latest_seq(self) -> dict[tuple[int, int], int]:
        """The last thread to have had each (ident, native id): only it can be
        the thread alive at the end under that pair."""
        return {ids: seq for seq, (_, ids) in sorted(self._thread_order.items())}

    def save(self, path: str | os.PathLike, *, name: str | None = None) -> None:
        """Write the trace in the Chrome trace-event format, which Perfetto
        (ui.perfetto.dev), ``chrome://tracing`` and VizTracer's ``vizviewer``
        open: ``path`` ends in ``.json``, or ``.json.gz`` for a compressed file.

        One track per thread, named as on the timeline; a slice per kernel call
        (arguments: kernel, release_gil, n_threads, work_s, gil_wait_s, ...)
        holding its work, its waits for the GIL and the final re-acquire;
        spans as slices; ``name`` names the process (default "parlab trace"),
        and the machine (``parlab.info()``) goes into the file's metadata.
        """
        from parlab import _trace_export

        _trace_export.save(self, path, name)

    def describe(self) -> str:
        """The summary in one line, for titles and reports."""
        s = self.summary()
        cpu = f" (CPU {s['cpu_parallelism']:.2f})" if self.cpu_time else ""
        return (f"parallelism {s['parallelism']:.2f}{cpu}, "
                f"GIL wait {s['gil_wait_s'] * 1e3:.1f} ms, "
                f"{s['calls']} calls in {len(s['threads'])} threads over {s['wall_s']:.3f} s")

    def summary(self) -> dict[str, Any]:
        """Overall figures.

        wall_s: first start to last end, over calls and spans.
        parallelism: kernel work time / wall time: about 1 when the calls took
            turns, more when they overlapped. Waiting kernels (io_wait) count,
            so it can pass the core count, as it can when there are more
            threads than cores and the OS time-slices them.
        cpu_parallelism: kernel CPU time / wall time: what the cores really
            did, at most the core count (NaN unless ``cpu_time=True``).
        gil_wait_s: total time kernels waited to get the GIL back.
        dropped: records lost to a full buffer.
        threads: a DataFrame of per-thread calls, work, GIL waits and busy time.
        """
        ev = self.events
        kernels = ev[ev.kind == "kernel"]
        wall_ns = int(ev.end_ns.max() - ev.start_ns.min()) if len(ev) else 0
        wall_s = wall_ns * _NS
        work_s = float(kernels.work_s.sum())
        cpu_s = float(kernels.cpu_s.sum()) if self.cpu_time else float("nan")
        threads = (
            ev.assign(busy_s=(ev.end_ns - ev.start_ns) * _NS,
                      calls=(ev.kind == "kernel").astype(int),
                      spans=(ev.kind == "span").astype(int),
                      work_s=ev.work_s.where(ev.kind == "kernel", 0.0))
            .groupby("thread_seq", sort=False)[["calls", "spans", "work_s", "gil_wait_s",
                                                "busy_s"]]
            .sum()
            .reset_index()
        )
        threads.insert(1, "name", [self.thread_label(t) for t in threads.thread_seq])
        return {
            "wall_s": wall_s,
            "work_s": work_s,
            "parallelism": work_s / wall_s if wall_s > 0 else 0.0,
            "cpu_s": cpu_s,
            "cpu_parallelism": cpu_s / wall_s if wall_s > 0 else cpu_s * 0.0,
            "gil_wait_s": float(kernels.gil_wait_s.sum()),
            "calls": int(len(kernels)),
            "spans": int((ev.kind == "span").sum()),
            "dropped": int(self.dropped),
            "threads": threads,
        }


def trace(capacity: int = 100_000, *, cpu_time: bool = False) -> Trace:
    """Record every parlab kernel call, in every thread, inside a ``with`` block.

    ``tr.events`` (a DataFrame, one row per call), ``tr.waits``,
    ``tr.summary()`` and ``parlab.plot.timeline(tr)`` read it afterwards.
    See :class:`Trace` for ``capacity`` and ``cpu_time``.
    """
    return Trace(capacity, cpu_time=cpu_time)
