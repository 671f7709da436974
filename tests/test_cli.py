"""The command line: ``python -m parlab {list,info,reproduce}`` and its report folder."""
from __future__ import annotations

import multiprocessing
import os
import platform
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import parlab
import parlab.experiments
from parlab import report
from parlab._cores import describe_cores
from parlab.__main__ import main
from parlab.experiments import LESSON_COLUMNS, TABLE_COLUMNS, catalog

# Run the CLI against the very package these tests import.
ROOT = Path(parlab.__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parlab", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "rep"
    return out, cli("reproduce", "--scale", "tiny", "--only", "L0.1,L1.2", "--out", str(out))


def test_reproduce_succeeds_and_writes_every_file(reproduced):
    out, proc = reproduced
    assert proc.returncode == 0, proc.stderr
    for name in ("results.csv", "lessons.csv", "report.md", "L0.1.png", "L1.2.png"):
        assert (out / name).is_file(), name
    assert (out / "L0.1.png").read_bytes().startswith(b"\x89PNG")
    # Each table and its lessons are printed as the run goes.
    assert "== L0.1" in proc.stdout and "== L1.2" in proc.stdout
    assert "holds" in proc.stdout


def test_reproduce_csv_columns(reproduced):
    out, _ = reproduced
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == TABLE_COLUMNS
    assert list(results.experiment.unique()) == ["L0.1", "L1.2"]
    assert results.correct.all()
    lessons = pd.read_csv(out / "lessons.csv")
    assert list(lessons.columns) == LESSON_COLUMNS
    assert set(lessons.experiment) == {"L0.1", "L1.2"}


def test_report_describes_the_machine_and_the_run(reproduced):
    out, _ = reproduced
    text = (out / "report.md").read_text()
    assert report.cpu_model() in text
    assert f"cores: {describe_cores()}" in text
    assert platform.python_version() in text
    assert f"parlab: {parlab.__version__}" in text
    assert "scale: tiny" in text and "wall time:" in text
    assert "![L0.1](L0.1.png)" in text and "## L1.2" in text


def test_unknown_id_exits_2_naming_valid_ids():
    proc = cli("reproduce", "--scale", "tiny", "--only", "BOGUS")
    assert proc.returncode == 2
    assert "BOGUS" in proc.stderr
    assert all(id in proc.stderr for id in catalog().id)


def test_list_names_every_experiment():
    proc = cli("list")
    assert proc.returncode == 0, proc.stderr
    assert all(id in proc.stdout for id in catalog().id)


def test_info_prints_the_installation():
    proc = cli("info")
    assert proc.returncode == 0, proc.stderr
    assert f"parlab: {parlab.__version__}" in proc.stdout
    assert f"cpu_count: {os.cpu_count()}" in proc.stdout
    assert "gil_enabled:" in proc.stdout


def test_failing_experiment_is_reported_and_the_rest_still_run(tmp_path, monkeypatch, capsys):
    real_run = parlab.experiments.run

    def run(id, **kwargs):
        if id == "L1.3":
            raise RuntimeError("boom")
        return real_run(id, **kwargs)

    monkeypatch.setattr(parlab.experiments, "run", run)
    status = main(["reproduce", "--scale", "tiny", "--only", "L1.3,L0.1",
                   "--out", str(tmp_path)])
    assert status != 0
    err = capsys.readouterr().err
    assert "FAILED L1.3" in err and "boom" in err
    assert (tmp_path / "L0.1.png").is_file()
    assert list(pd.read_csv(tmp_path / "results.csv").experiment.unique()) == ["L0.1"]
    assert "L1.3: RuntimeError: boom" in (tmp_path / "report.md").read_text()


def test_wrong_output_fails_the_run(tmp_path, monkeypatch, capsys):
    real_run = parlab.experiments.run

    def run(id, **kwargs):
        result = real_run(id, **kwargs)
        result.table.loc[0, "correct"] = False
        return result

    monkeypatch.setattr(parlab.experiments, "run", run)
    status = main(["reproduce", "--scale", "tiny", "--only", "L0.1", "--out", str(tmp_path)])
    assert status != 0
    assert "FAILED L0.1" in capsys.readouterr().err


def test_machine_description_has_the_basics():
    machine = report.machine_description()
    assert machine["cores"] == describe_cores()
    assert machine["parlab"] == parlab.__version__
    assert machine["CPU"]
    assert machine["process start method"] in multiprocessing.get_all_start_methods()


def test_reproduce_ends_with_a_summary_line(reproduced):
    out, proc = reproduced
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("2 experiments run")
    assert " hold, " in last and " fail, " in last and " inconclusive" in last
    assert last.endswith(str((out / "report.md").resolve()))
    lessons = pd.read_csv(out / "lessons.csv")
    assert lessons.verdict.isin(["holds", "fails", "inconclusive", "skipped"]).all()
    assert (lessons.holds == (lessons.verdict == "holds")).all()


def test_bad_parlab_scale_is_one_clear_message():
    proc = subprocess.run([sys.executable, "-m", "parlab", "reproduce", "--only", "L0.1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PARLAB_SCALE": "bogus"})
    assert proc.returncode == 2
    assert "PARLAB_SCALE must be one of tiny, quick, full; got 'bogus'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_failing_lessons_are_findings_not_errors(tmp_path, monkeypatch):
    real_run = parlab.experiments.run

    def run(id, **kwargs):
        result = real_run(id, **kwargs)
        result.lessons["verdict"] = ["fails", "inconclusive"] * (len(result.lessons) // 2) \
            + ["fails"] * (len(result.lessons) % 2)
        return result

    monkeypatch.setattr(parlab.experiments, "run", run)
    assert main(["reproduce", "--scale", "tiny", "--only", "L0.1", "--out", str(tmp_path)]) == 0


def test_report_reads_without_the_lecture(reproduced):
    out, _ = reproduced
    text = (out / "report.md").read_text()
    about = catalog().set_index("id")
    # Lecture titles, not file names, head each lecture's experiments.
    assert f"# {about.at['L0.1', 'lecture_title']}" in text
    assert about.at["L0.1", "lecture"] not in text
    # A summary table at the top: every experiment, what it shows, its verdicts and load.
    summary = text[text.index("## Summary"):text.index("## Machine")]
    for id in ("L0.1", "L1.2"):
        assert f"| {id} | {about.at[id, 'title']} | {about.at[id, 'shows']} |" in summary
    # Tables name each row's baseline and what its output should be; a legend explains.
    assert "| variant | backend | workers | GIL | seconds | speedup | speedup_over | expected " \
           "| correct |" in text
    assert "## Reading this report" in text and "**Timelines.**" in text
    assert text.count("While it measured, other programs used") == 2
