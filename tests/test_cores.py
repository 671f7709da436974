"""One meaning of "cores" (the affinity mask), and running on fewer of them:
``experiments.run(..., cores=N)`` and ``python -m parlab reproduce --cores N``."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import parlab
from parlab import _cores, experiments
from parlab.__main__ import main
from parlab.experiments import framework, load_meter

needs_affinity = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"),
                                    reason="no os.sched_setaffinity on this platform")


def worker_cores(_=None) -> int:
    return len(os.sched_getaffinity(0))


def test_info_counts_the_usable_cores_beside_the_machines():
    info = parlab.info()
    assert info["cores"] == _cores.usable_cores()
    assert info["cpu_count"] == os.cpu_count()


def test_describe_says_both_counts_only_where_they_differ(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert _cores.describe_cores(8) == "8 cores"
    assert _cores.describe_cores(2) == "2 of 8 cores usable"


@pytest.mark.parametrize("bad, error, words", [
    (0, ValueError, "between 1 and"), (-1, ValueError, "between 1 and"),
    (10**6, ValueError, "between 1 and"), ("2", TypeError, "whole number"),
    (1.0, TypeError, "whole number"), (True, TypeError, "whole number")])
def test_bad_core_counts_say_which_argument_and_why(bad, error, words):
    with pytest.raises(error, match=words) as info:
        _cores.check_cores(bad, "--cores")
    if hasattr(os, "sched_setaffinity"):
        assert str(info.value).startswith("--cores") and "\n" not in str(info.value)


def test_a_platform_without_affinity_says_so(monkeypatch):
    monkeypatch.delattr(os, "sched_setaffinity", raising=False)
    with pytest.raises(ValueError, match="cannot restrict a process"):
        _cores.check_cores(1)


@needs_affinity
def test_restricted_narrows_the_process_and_its_workers_then_restores(tmp_path):
    import multiprocessing

    before = os.sched_getaffinity(0)
    # A pool started before, like the forkserver a notebook's earlier cell left
    # running: its workers are narrowed too while the block runs.
    with multiprocessing.get_context().Pool(1) as early:
        with _cores.restricted(1) as cores:
            assert cores == 1 and len(os.sched_getaffinity(0)) == 1
            assert early.apply(worker_cores) == 1
            with multiprocessing.get_context("spawn").Pool(1) as late:
                assert late.apply(worker_cores) == 1
        assert os.sched_getaffinity(0) == before
        assert early.apply(worker_cores) == len(before)


@needs_affinity
def test_run_on_fewer_cores_sees_them_and_gives_the_mask_back():
    before = os.sched_getaffinity(0)
    result = experiments.run("L2.2", scale="tiny", cores=1)
    assert os.sched_getaffinity(0) == before
    assert result.load.cores == 1
    # One core: nothing runs in parallel, and the lessons that need it say so.
    skipped = result.lessons[result.lessons.verdict == "skipped"]
    assert skipped.observed.str.contains("only 1 core").any()
    assert "fails" not in set(result.lessons.verdict)


@needs_affinity
def test_run_with_bad_cores_runs_nothing(monkeypatch):
    made = []
    monkeypatch.setattr(framework, "Context", lambda *a: made.append(a))
    with pytest.raises(ValueError, match="between 1 and"):
        experiments.run("L2.1", scale="tiny", cores=_cores.usable_cores() + 1)
    assert not made


@pytest.mark.parametrize("value, words", [
    ("0", "--cores must be between 1 and"), ("-2", "--cores must be between 1 and"),
    ("99999", "--cores must be between 1 and"), ("two", "invalid int value: 'two'")])
def test_reproduce_with_bad_cores_gives_one_line_and_runs_nothing(tmp_path, value, words):
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "parlab", "reproduce", "--scale", "tiny",
                           "--only", "L2.1", "--cores", value, "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and words in errors[0], proc.stderr
    assert not out.exists()


@needs_affinity
def test_reproduce_on_one_core_reports_it(tmp_path, capsys):
    before = os.sched_getaffinity(0)
    status = main(["reproduce", "--scale", "tiny", "--only", "L2.2", "--cores", "1",
                   "--out", str(tmp_path)])
    assert status == 0
    assert os.sched_getaffinity(0) == before
    text = (tmp_path / "report.md").read_text()
    assert f"cores: {_cores.describe_cores(1)}" in text


@pytest.mark.skipif(len(_cores.usable_cpu_ids() or []) < 2, reason="needs two usable cores")
def test_the_load_meter_counts_only_the_usable_cores(monkeypatch):
    # A program busy on a core outside the mask takes nothing from us: the
    # meter reads the mask's CPUs only (each has been busy since boot).
    ids = _cores.usable_cpu_ids()
    monkeypatch.setattr(load_meter, "usable_cpu_ids", lambda: ids[:1])
    one, _ = load_meter._machine_cpu_s()
    monkeypatch.setattr(load_meter, "usable_cpu_ids", lambda: ids)
    every, _ = load_meter._machine_cpu_s()
    assert 0 < one < every


@needs_affinity
def test_n_threads_none_means_the_usable_cores():
    with parlab.trace() as tr, _cores.restricted(1):
        parlab.count_hits(10**7, seed=1, n_threads=None)
    parlab.count_hits(10**7, seed=1, n_threads=-1)
    assert tr.events.n_threads.tolist() == [1]
