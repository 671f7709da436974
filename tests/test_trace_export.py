"""Trace.save: a trace of real calls in the Chrome trace-event format, checked
against the format (tests/trace_events.py), against the trace it came from,
and loaded by VizTracer's own report builder."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from viztracer.report_builder import ReportBuilder

import parlab
import trace_events
from conftest import run_threaded

HELD_KEEPS_THE_GIL = parlab.info()["held_mode"] == "gil"
KERNEL_ARGS = {"kernel", "release_gil", "n_threads", "work_s", "gil_wait_s"}


@pytest.fixture(scope="module")
def tr():
    """Two released cdist threads, then a released call in the main thread whose
    signal checks wait for the GIL while a worker holds it, inside a span."""
    X = np.random.default_rng(0).random((600, 40))

    def hold_later():
        time.sleep(0.05)
        with tr.span("hold"):  # a span also names its thread on the timeline
            parlab.io_wait(0.2, release_gil=False)

    with parlab.trace(cpu_time=True) as tr:
        run_threaded(lambda _: parlab.cdist(X, X, n_threads=2), 2)
        with tr.span("main waits"):
            holder = threading.Thread(target=hold_later, name="holder")
            holder.start()
            parlab.io_wait(0.35)
            holder.join()
    return tr


@pytest.fixture(scope="module")
def saved(tr, tmp_path_factory):
    path = tmp_path_factory.mktemp("trace") / "calls.json"
    tr.save(path, name="export test")
    return trace_events.load(path)


def test_follows_the_trace_event_format(saved):
    trace_events.check(saved)


def test_gzip_holds_the_same_trace(tr, saved, tmp_path):
    tr.save(tmp_path / "calls.json.gz", name="export test")
    with open(tmp_path / "calls.json.gz", "rb") as f:
        assert f.read(2) == b"\x1f\x8b"  # gzip's magic number
    assert trace_events.load(tmp_path / "calls.json.gz") == saved


def test_one_named_track_per_thread(tr, saved):
    names = {e["tid"]: e["args"]["name"] for e in saved["traceEvents"]
             if e["name"] == "thread_name"}
    assert names == {int(s): tr.thread_label(s) for s in tr.events.thread_seq.unique()}
    assert len(names) == 4  # main, two cdist threads, the holder
    assert "holder" in names.values()
    process = [e for e in saved["traceEvents"] if e["name"] == "process_name"]
    assert process[0]["args"]["name"] == "export test"


def test_machine_info_in_metadata(saved):
    info = parlab.info()
    assert {k: saved["otherData"][k] for k in info} == info


def test_kernel_slices_carry_their_call_in_microseconds(tr, saved):
    origin = saved["otherData"]["origin_ns"]
    kernels = sorted((e for e in saved["traceEvents"] if e.get("cat") == "kernel"),
                     key=lambda e: e["args"]["call"])
    calls = tr.events[tr.events.kind == "kernel"].sort_values("call")
    assert len(kernels) == len(calls) == 4
    for e, row in zip(kernels, calls.itertuples()):
        assert KERNEL_ARGS <= e["args"].keys()
        assert e["name"] == e["args"]["kernel"] == row.kernel
        assert e["tid"] == row.thread_seq
        # ts and dur are microseconds: back in nanoseconds they are the trace's times.
        assert trace_events.ns(e["ts"]) + origin == row.start_ns
        assert trace_events.ns(e["dur"]) == row.end_ns - row.start_ns
        assert e["args"]["release_gil"] == (not row.gil_held)
        assert e["args"]["n_threads"] == row.n_threads
        assert e["args"]["work_s"] == pytest.approx(row.work_s, abs=1e-12)
        assert e["args"]["gil_wait_s"] == pytest.approx(row.gil_wait_s, abs=1e-12)
        assert e["args"]["cpu_s"] == pytest.approx(row.cpu_s, abs=1e-12)


def test_gil_waits_and_reacquires_are_slices_inside_their_call(tr, saved):
    origin = saved["otherData"]["origin_ns"]
    by_thread = trace_events.check(saved)

    def inside(child, parent):
        return (child["ts"] >= parent["ts"]
                and child["ts"] + child["dur"] <= parent["ts"] + parent["dur"])

    waits = [e for e in saved["traceEvents"] if e["name"] == "GIL wait"]
    if HELD_KEEPS_THE_GIL:
        # The main thread's signal checks ran while "holder" held the GIL.
        assert len(tr.waits) > 0
    assert sorted((trace_events.ns(e["ts"]) + origin, e["tid"]) for e in waits) == sorted(
        zip(tr.waits.start_ns, tr.waits.thread_seq))
    for row in tr.events[tr.events.kind == "kernel"].itertuples():
        own = by_thread[row.thread_seq]
        call = next(e for e in own if e.get("args", {}).get("call") == row.call)
        work = [e for e in own if e["cat"] == "work" and inside(e, call)]
        assert [w["name"] for w in work] == [
            "work, GIL held" if row.gil_held else "work, GIL released"]
        assert trace_events.ns(work[0]["dur"]) == row.work_end_ns - row.work_start_ns
        reacquire = [e for e in own if e["name"] == "GIL re-acquire" and inside(e, call)]
        if row.gil_held:
            assert reacquire == []
        else:
            assert [trace_events.ns(e["ts"]) + origin for e in reacquire] == [row.work_end_ns]
            assert trace_events.ns(reacquire[0]["dur"]) == row.reacquired_ns - row.work_end_ns
        for w in (e for e in waits if e["tid"] == row.thread_seq and inside(e, call)):
            assert inside(w, work[0])


def test_spans_are_slices(saved):
    spans = [e for e in saved["traceEvents"] if e.get("cat") == "span"]
    assert sorted(s["name"] for s in spans) == ["hold", "main waits"]


def test_viztracer_loads_it(saved, tr, tmp_path):
    # VizTracer's report builder is what `viztracer --combine` and vizviewer's
    # loading go through; it reads every slice and writes its own report.
    path = tmp_path / "calls.json"
    tr.save(path, name="export test")
    builder = ReportBuilder([str(path)], verbose=0)
    builder.save(str(tmp_path / "combined.json"))
    combined = json.loads((tmp_path / "combined.json").read_text())
    assert combined["traceEvents"] == saved["traceEvents"]
    builder = ReportBuilder([str(path)], verbose=0)
    builder.save(str(tmp_path / "report.html"))
    assert '"GIL re-acquire"' in (tmp_path / "report.html").read_text()


def test_an_empty_trace_saves_its_metadata(tmp_path):
    with parlab.trace() as tr:
        pass
    tr.save(tmp_path / "empty.json")
    data = trace_events.load(tmp_path / "empty.json")
    trace_events.check(data)
    assert [e["name"] for e in data["traceEvents"]] == ["process_name", "process_labels"]


def test_bad_paths_and_unfinished_traces_are_refused(tmp_path):
    with parlab.trace() as tr:
        parlab.cpu_work(10)
        with pytest.raises(RuntimeError, match="once the `with` block has ended"):
            tr.save(tmp_path / "early.json")
    for bad in ("trace.txt", "trace.gz", "trace.json.zip"):
        with pytest.raises(ValueError, match=r"\.json or \.json\.gz.*" + bad):
            tr.save(tmp_path / bad)
        assert not (tmp_path / bad).exists()
