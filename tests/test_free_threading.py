"""Python without the GIL: lessons that need the GIL, held mode at run time, the
L6 experiments, and one report for two interpreters.

Most tests run on any interpreter; those that need a free-threaded build (or,
for the two-interpreter report, a second build named in PARLAB_PYTHONS) skip
elsewhere, saying so. CI runs this file on both (scripts/ci-free-threaded.sh).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

import parlab
from parlab.experiments import interpreters, judging, lecture6, run
from parlab.experiments.load_meter import Load
from parlab.experiments.framework import REGISTRY, Context, Variant
from parlab.experiments.interpreters import Worker, WorkerError, free_threaded, named_pythons

FREE_THREADED = free_threaded()
needs_free_threading = pytest.mark.skipif(
    not FREE_THREADED, reason="needs a free-threaded CPython (scripts/python-ft.sh builds one)")
L41_PURE = "Pure-Python computing threads get no speedup"

IDLE = Load(wall_s=1.0, others_s=0.0, cores=2)


def variant(seconds: float, workers: int = 1) -> Variant:
    """A steady variant: six runs, enough for the verdict rule to be sure."""
    return Variant(f"v{seconds}", "test", workers, None, [seconds] * 6, None, True,
                   "anything", IDLE)


@pytest.fixture
def ctx() -> Context:
    c = Context(REGISTRY["L4.1"], "tiny")
    c.cores = 2
    return c


# --- lessons that need the GIL ----------------------------------------------------

@pytest.mark.parametrize("gil", [True, False])
def test_a_gil_fact_is_judged_by_the_opposite_without_a_gil(ctx, monkeypatch, gil):
    monkeypatch.setattr(judging, "gil_enabled", lambda: gil)
    kept = judging.fact(ctx, "loses nothing", True, "count 10 of 10", needs_gil=True)
    lost = judging.fact(ctx, "loses nothing", False, "count 7 of 10", needs_gil=True)
    assert kept.needs_gil and lost.needs_gil
    assert (kept.verdict, lost.verdict) == (("holds", "fails") if gil else ("fails", "holds"))
    assert (judging.ONLY_WITH_GIL in lost.observed) is (not gil)
    assert "count 7 of 10" in lost.observed


@pytest.mark.parametrize("gil", [True, False])
def test_a_gil_no_speedup_becomes_a_speedup_without_a_gil(ctx, monkeypatch, gil):
    monkeypatch.setattr(judging, "gil_enabled", lambda: gil)
    serial = variant(1.0)
    paired = judging.speedup(ctx, "processes speed up", variant(0.5, workers=2), serial)
    flat = judging.no_speedup(ctx, "no speedup", variant(1.0, workers=2), serial, paired,
                              needs_gil=True)
    fast = judging.no_speedup(ctx, "no speedup", variant(0.5, workers=2), serial, paired,
                              needs_gil=True)
    assert (flat.verdict, fast.verdict) == (("holds", "fails") if gil else ("fails", "holds"))
    assert flat.needs_gil and fast.needs_gil
    assert (fast.observed.startswith("without a GIL") and judging.ONLY_WITH_GIL in fast.observed
            ) is (not gil)
    # The recorded lessons are the marked ones, in order.
    assert [le.needs_gil for le in ctx.lessons] == [False, True, True]


@pytest.mark.parametrize("gil", [True, False])
def test_without_a_gil_a_lesson_can_name_what_else_holds_its_threads_back(ctx, monkeypatch,
                                                                          gil):
    # A thread per row: without a GIL it is judged against a thread per core,
    # by the rule the experiment gives, and may fail by it.
    monkeypatch.setattr(judging, "gil_enabled", lambda: gil)
    serial, blocks = variant(1.0), variant(0.5, workers=2)
    paired = judging.speedup(ctx, "processes speed up", variant(0.5, workers=2), serial)
    lessons = {}
    for name, rows in (("slow rows", variant(1.0, workers=250)),
                       ("fast rows", variant(0.5, workers=250))):
        lessons[name] = judging.no_speedup(
            ctx, "no speedup", rows, serial, paired, needs_gil=True,
            without_gil=judging.WithoutGil(
                "a thread per row costs more than it saves",
                judging.slower, (rows, blocks, 1.2)))
    slow, fast = lessons["slow rows"], lessons["fast rows"]
    assert slow.needs_gil and fast.needs_gil
    # With a GIL: the lecture's claim, no speedup; without: the given rule,
    # which a thread per row as fast as a thread per core breaks.
    assert (slow.verdict, fast.verdict) == ("holds", "fails")
    for lesson in (slow, fast):
        assert lesson.observed.startswith("without a GIL, a thread per row costs more than "
                                          "it saves: ") is (not gil)
        assert (judging.NOT_THE_GIL in lesson.observed) is (not gil)
        assert judging.ONLY_WITH_GIL not in lesson.observed
    assert ("2.00x the time of" in slow.observed) is (not gil)


def test_the_lessons_table_has_the_needs_gil_column():
    result = run("L4.1", scale="tiny")
    lessons = result.lessons.set_index("lesson")
    pure = lessons.loc[lessons.index.str.startswith(L41_PURE)]
    assert list(pure.needs_gil) == [True]
    assert not lessons.drop(pure.index).needs_gil.any()
    assert (judging.ONLY_WITH_GIL in pure.observed.iloc[0]) is (not parlab.info()["gil_enabled"])


# --- the GIL stays as it was; held mode follows it ------------------------------

def _python(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env={**clean, **env}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@needs_free_threading
def test_importing_parlab_and_its_dependencies_keeps_the_gil_off():
    out = _python("""
        import sys
        import parlab, parlab.dask, parlab.experiments, parlab.report, parlab.plot
        print(sys._is_gil_enabled(), parlab.info()["held_mode"])
    """)
    assert out == "False emulated"


@needs_free_threading
def test_with_pythongil_1_held_calls_keep_the_real_gil():
    out = _python("""
        from parlab.experiments import lecture6
        r = lecture6.python_beside_held(200_000_000)
        print(r["held_mode"], lecture6._inside(r["stamps"], r["call"]))
    """, PYTHON_GIL="1")
    assert out == "gil 0"


@needs_free_threading
def test_held_mode_follows_a_gil_turned_on_by_an_import(tmp_path):
    # A module that does not declare Py_mod_gil turns the GIL on for good when
    # imported; held calls from then on must keep the real GIL.
    (tmp_path / "nogilslot.c").write_text(textwrap.dedent("""
        #include <Python.h>
        static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "nogilslot", NULL, -1, NULL};
        PyMODINIT_FUNC PyInit_nogilslot(void) { return PyModule_Create(&def); }
    """))
    (tmp_path / "setup.py").write_text(
        "from setuptools import Extension, setup\n"
        "setup(name='nogilslot', ext_modules=[Extension('nogilslot', ['nogilslot.c'])])\n")
    build = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    out = _python(f"""
        import sys, warnings
        sys.path.insert(0, {str(tmp_path)!r})
        import parlab
        from parlab.experiments import lecture6
        before = parlab.info()["held_mode"], sys._is_gil_enabled()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "the GIL has been enabled"
            import nogilslot
        r = lecture6.python_beside_held(200_000_000)
        print(*before, sys._is_gil_enabled(), r["held_mode"],
              lecture6._inside(r["stamps"], r["call"]))
    """)
    assert out == "emulated False True gil 0"


@needs_free_threading
def test_without_a_gil_python_threads_run_beside_a_held_call():
    r = lecture6.python_beside_held(200_000_000)
    assert r["held_mode"] == "emulated"
    assert lecture6._inside(r["stamps"], r["call"]) > 0


# --- L6 -----------------------------------------------------------------------

def _verdicts(result) -> dict[str, str]:
    return dict(zip(result.lessons.lesson, result.lessons.verdict))


def test_l62_counts_lost_updates_without_a_gil_and_none_with_a_lock():
    result = run("L6.2", scale="tiny")
    table = result.table.set_index("variant")
    assert table.correct.all()
    total = result.extras["counts"][table.index[0]][1]
    for name, (count, want) in result.extras["counts"].items():
        assert want == total
        if "Lock" in name:
            assert count == total, name
    verdicts = _verdicts(result)
    lost = "Without a GIL, slot[0] += 1 from several threads loses updates"
    assert verdicts[lost] == ("holds" if FREE_THREADED else "skipped")
    locked = [v for lesson, v in verdicts.items() if lesson.startswith("A threading.Lock")]
    assert locked == ["holds"]
    gil_on = [v for lesson, v in verdicts.items() if lesson.endswith("lose nothing")]
    assert gil_on == ["holds"]
    if FREE_THREADED:
        unlocked_off = table.loc[[n for n in table.index if "Lock" not in n and "GIL off" in n]]
        assert len(unlocked_off) == 1


@pytest.mark.parametrize("id", ["L6.1", "L6.3", "L6.4"])
def test_l6_runs_here_and_skips_only_what_needs_another_build(id):
    result = run(id, scale="tiny")
    assert result.table.correct.all()
    skipped = result.lessons[result.lessons.verdict == "skipped"]
    if FREE_THREADED:
        assert not skipped.observed.str.contains("not a free-threaded build").any()
    else:
        assert skipped.observed.str.contains("not a free-threaded build").any() or id == "L6.4"
        assert not result.table.variant.str.contains("GIL off").any()
    assert parlab.info()["gil_enabled"] is not FREE_THREADED


def test_builds_differ_in_words_only_where_more_than_the_gil_differs():
    twin = {"version": "3.13.15", "options": []}
    assert lecture6.differences(twin, {"version": "3.13.2", "options": []}) == ""
    pyenv = {"version": "3.13.0", "options": ["a shared libpython"]}
    assert lecture6.differences(pyenv, twin) == "a shared libpython only in the normal build"
    other = lecture6.differences({"version": "3.11.7", "options": ["PGO"]},
                                 {"version": "3.13.15", "options": ["LTO"]})
    assert other == ("Python 3.11.7 against 3.13.15; LTO only in the free-threaded build; "
                     "PGO only in the normal build")


def test_build_options_read_how_the_interpreter_was_configured(monkeypatch):
    config = {"CONFIG_ARGS": "'--enable-shared' '--enable-optimizations'", "PY_ENABLE_SHARED": 1}
    monkeypatch.setattr(interpreters.sysconfig, "get_config_var", config.get)
    assert interpreters.build_options() == ["a shared libpython", "PGO"]
    config.update(CONFIG_ARGS="'--disable-gil' '--with-lto'", PY_ENABLE_SHARED=0)
    assert interpreters.build_options() == ["LTO"]


def _twin() -> str | None:
    """A named interpreter of the other build, this version, built alike."""
    here = interpreters.describe()
    for python, about in interpreters.other_builds():
        if not lecture6.differences(*((about, here) if FREE_THREADED else (here, about))):
            return python
    return None


def test_l64_weighs_the_builds_when_the_twin_is_named():
    if _twin() is None:
        pytest.skip("no build of this version with the other GIL setting, built alike, in "
                    "PARLAB_PYTHONS (scripts/ci-free-threaded.sh names the one "
                    "scripts/python-ft.sh --twin builds)")
    result = run("L6.4", scale="tiny")
    assert result.table.correct.all()
    assert result.table.variant.str.contains("normal build").sum() == 2
    assert result.table.variant.str.contains("free-threaded build").sum() == 4
    price = result.lessons[result.lessons.lesson.str.startswith("One thread of pure Python")]
    assert len(price) == 1 and price.verdict.iloc[0] != "skipped", price.observed.tolist()


def test_l63_held_calls_never_overlap_in_any_gil_setting():
    result = run("L6.3", scale="tiny")
    held = result.lessons[result.lessons.lesson.str.contains("two held calls never overlap")]
    assert len(held) == (2 if FREE_THREADED else 1)
    assert (held.verdict == "holds").all(), held.observed.tolist()
    stops = result.lessons[result.lessons.lesson.str.contains("stops every Python thread")]
    assert list(stops.verdict) == ["holds"], stops.observed.tolist()


def test_a_worker_reports_a_call_that_raises():
    with Worker(gil=False if FREE_THREADED else None) as w:
        assert w.about["gil_enabled"] is not FREE_THREADED
        assert w.call("math:gcd", 12, 18) == 6
        with pytest.raises(WorkerError, match="ValueError"):
            w.call("math:sqrt", -1)


def test_a_worker_that_cannot_start_says_why(tmp_path):
    with pytest.raises(WorkerError, match="cannot start"):
        Worker(str(tmp_path / "no-such-python"))


# --- one report, two interpreters -------------------------------------------------

def _other_build() -> str | None:
    """An interpreter named in PARLAB_PYTHONS whose GIL differs from this one's."""
    for python in named_pythons():
        try:
            with Worker(python) as w:
                if w.about["gil_enabled"] != parlab.info()["gil_enabled"]:
                    return python
        except WorkerError:
            continue
    return None


def test_reproduce_under_two_interpreters_writes_one_report(tmp_path):
    other = _other_build()
    if other is None:
        pytest.skip("no interpreter with the other GIL setting in PARLAB_PYTHONS "
                    "(scripts/ci-free-threaded.sh names one)")
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "parlab", "reproduce", "--scale", "tiny",
                           "--only", "L4.1", "--out", str(out), "--python", other],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_csv(out / "lessons-by-interpreter.csv")
    verdicts = [c for c in table.columns if c.startswith("verdict: ")]
    assert len(verdicts) == 2
    assert any("GIL off" in c for c in verdicts) and any("GIL off" not in c for c in verdicts)
    row = table[table.lesson.str.startswith(L41_PURE)].iloc[0]
    assert row.needs_gil
    observed = {c.split(": ", 1)[1]: row[f"observed: {c.split(': ', 1)[1]}"] for c in verdicts}
    for label, text in observed.items():
        assert (judging.ONLY_WITH_GIL in text) is ("GIL off" in label), (label, text)
    report = (out / "report.md").read_text()
    assert "## Each lesson on each interpreter" in report
    assert all(c.split(": ", 1)[1] in report for c in verdicts)
    assert (out / "python-1" / "report.md").exists()


def test_reproduce_refuses_a_missing_interpreter(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "parlab", "reproduce", "--scale", "tiny",
                           "--only", "L4.1", "--out", str(tmp_path),
                           "--python", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "--python" in proc.stderr and "no such" in proc.stderr
