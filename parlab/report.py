"""A reproduction report: tables, lessons, figures and the machine, in one folder.

The CLI (``python -m parlab reproduce``) runs the experiments and hands the
results here; every function also works alone, for example from a notebook.
"""
from __future__ import annotations

import datetime
import fractions
import multiprocessing
import platform
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

import parlab
from parlab._cores import describe_cores
from parlab._info import cpu_model
from parlab.experiments import (
    LESSON_COLUMNS, SAMPLE_COLUMNS, TABLE_COLUMNS, VERDICTS, Result, catalog, judging,
)
from parlab.presentation import gil_word


def machine_description() -> dict[str, str]:
    """What the numbers were measured on: CPU, cores, Python, NumPy, parlab, OS,
    and how process pools start their workers."""
    info = parlab.info()
    return {
        "CPU": cpu_model(),
        "cores": describe_cores(info["cores"]),
        "Python": f"{info['python_implementation']} {info['python']}",
        "GIL": "enabled" if info["gil_enabled"] else "disabled (free-threaded)",
        "NumPy": info["numpy"],
        "parlab": info["parlab"],
        "compiler": str(info["compiler"]),
        "platform": platform.platform(),
        # The experiments' process pools use the platform's default: fork on
        # Linux, spawn on Windows (which cannot fork) and macOS.
        "process start method": multiprocessing.get_context().get_start_method(),
    }


def interpreter_label() -> str:
    """This interpreter in a few words: version, build and GIL."""
    from parlab.experiments.interpreters import free_threaded

    info = parlab.info()
    gil = "GIL on" if info["gil_enabled"] else "GIL off"
    build = f", free-threaded, {gil}" if free_threaded() else ""
    return f"{info['python_implementation']} {info['python']}{build}"


def figure_path(out: Path, id: str) -> Path:
    """Where the figure of experiment ``id`` goes (ids are letters, digits and dots)."""
    return Path(out) / f"{id}.png"


def save_figure(result: Result, out: Path) -> Path:
    """Draw the result's figure into ``out`` as a PNG and release it."""
    import matplotlib.pyplot as plt

    fig = result.figure()
    path = figure_path(out, result.id)
    try:
        fig.savefig(path, dpi=110)
    finally:
        # parlab.plot's figures are closed already; a custom factory's
        # pyplot figure would otherwise stay in pyplot until the process ends.
        plt.close(fig)
    return path


def results_table(results: Iterable[Result]) -> pd.DataFrame:
    """Every result table, one below the other."""
    tables = [r.table for r in results]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=TABLE_COLUMNS)


def lessons_table(results: Iterable[Result]) -> pd.DataFrame:
    """Every lesson with whether it held and what was observed."""
    tables = [r.lessons for r in results]
    return (pd.concat(tables, ignore_index=True) if tables
            else pd.DataFrame(columns=LESSON_COLUMNS))


def samples_table(results: Iterable[Result]) -> pd.DataFrame:
    """Every timed run of every variant (the long table beside results.csv)."""
    tables = [r.samples for r in results if r.samples is not None]
    return (pd.concat(tables, ignore_index=True) if tables
            else pd.DataFrame(columns=SAMPLE_COLUMNS))


def verdict_counts(results: Iterable[Result]) -> dict[str, int]:
    """How many lessons of ``results`` got each verdict."""
    counts = dict.fromkeys(VERDICTS, 0)
    for r in results:
        for verdict, k in r.verdicts().items():
            counts[verdict] += k
    return counts


def summary_line(results: list[Result], failures: Mapping[str, str], path: Path,
                 seconds: float) -> str:
    """The run in one line: experiments, lessons by verdict, where the report is."""
    c = verdict_counts(results)
    broken = f" ({len(failures)} broken)" if failures else ""
    skipped = f", {c['skipped']} skipped" if c["skipped"] else ""
    return (f"{len(results) + len(failures)} experiments run{broken} in {seconds:.0f} s "
            f"on {describe_cores()}; "
            f"lessons: {c['holds']} hold, {c['fails']} fail, {c['inconclusive']} inconclusive"
            f"{skipped}; report: {path}")


def format_result(result: Result) -> str:
    """A result's table and lessons as plain text, for the terminal."""
    lines = [f"== {result.id}: {result.title} ({result.scale})",
             result.table.drop(columns="experiment").to_string(index=False), ""]
    lines += [_lesson_line(row) for row in result.lessons.itertuples()]
    return "\n".join(lines) + "\n"


def _lesson_line(row) -> str:
    return f"  [{row.verdict}] {row.lesson}: {row.observed}"


def write_report(out: Path, results: list[Result], failures: Mapping[str, str], *,
                 scale: str, seconds: float,
                 interpreters: Mapping[str, pd.DataFrame] | None = None) -> Path:
    """Write results.csv, lessons.csv, samples.csv (every timed run) and report.md
    into ``out``; return report.md.

    The figures are expected in ``out`` already (:func:`save_figure`);
    ``failures`` maps an experiment id to why it failed. ``interpreters``
    maps an interpreter's label to its lessons table (this one's first): the
    report then shows every lesson's verdict on each, also in
    ``lessons-by-interpreter.csv``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results_table(results).to_csv(out / "results.csv", index=False)
    lessons_table(results).to_csv(out / "lessons.csv", index=False)
    samples_table(results).to_csv(out / "samples.csv", index=False)
    side_by_side = lessons_side_by_side(interpreters) if interpreters else None
    if side_by_side is not None:
        side_by_side.to_csv(out / "lessons-by-interpreter.csv", index=False)
    path = out / "report.md"
    path.write_text(_markdown(out, results, failures, scale, seconds, side_by_side),
                    encoding="utf-8")
    return path


def lessons_side_by_side(interpreters: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per lesson, a verdict and an observed column per interpreter
    (``verdict: LABEL``, ``observed: LABEL``); "-" where one did not state it."""
    keys = ["experiment", "lesson"]
    merged = pd.concat([lessons[keys + ["needs_gil"]] for lessons in interpreters.values()],
                       ignore_index=True).drop_duplicates(keys)
    for label, lessons in interpreters.items():
        merged = merged.merge(lessons[keys + ["verdict", "observed"]].rename(
            columns={"verdict": f"verdict: {label}", "observed": f"observed: {label}"}),
            on=keys, how="left")
    return merged.fillna("-")


READING = """\
## Reading this report

**Verdicts.** `holds`: the numbers show the lesson. `fails`: they are
confidently against it: the fastest runs, where {confirm} of the runs gather,
miss the threshold by more than {margin}, in enough runs that all of them being
disturbed is under {alpha} likely, on a quiet machine (other programs under
{busy} of the CPU, measured during the runs with their CPU and steal time),
and, for a parallel speedup, while a capacity probe measured in the same
rounds showed the cores were free. `inconclusive`: the runs disagree (bursts of
interference), sit too close to the threshold, or were measured on a busy
machine; or a "no speedup" lesson whose paired "speedup" lesson did not hold,
so a slow parallel run proves nothing; `observed` says which. A claim of what
the machine can do is judged from the fastest runs (timeit's rule), a claim of
no gain from the medians. `skipped`: cannot be tried here (one core, a missing
optional package); the reason is given.

**Tables.** `seconds` is the median of a variant's runs (`samples.csv` has
every run; the figures draw each as a dot). `speedup` is the time of the row
named in `speedup_over` divided by this row's time. `expected` says what this variant's output should be (for
the racy counter: at most the total, since updates get lost), and `correct`
whether it was. `GIL` says whether a parlab kernel ran with the GIL released,
held, or not at all (`-`).

**Timelines.** One row per thread, time running left to right. Green: a
parlab kernel working with the GIL released; orange: working while holding the
GIL; red: waiting to get the GIL back. The caption gives how many calls were
working at once on average (waiting calls such as `io_wait` count, so it can
pass the core count) and how many cores were busy on average (CPU time over
wall time, at most the core count): two threads that take turns on the GIL
show about 1 call working at once; two that really run in parallel about 2.
"""


# Shares the reading guide names in words.
SHARE_WORDS = {fractions.Fraction(1, 2): "half", fractions.Fraction(1, 3): "a third",
               fractions.Fraction(1, 4): "a quarter"}


def _share(x: float) -> str:
    """A share as the guide writes it: "a third", else a percentage ("10%", "0.1%")."""
    return SHARE_WORDS.get(fractions.Fraction(x).limit_denominator(100), f"{x * 100:g}%")


def reading_guide() -> str:
    """How to read the report, its numbers filled in from the verdict rule's
    constants (:mod:`parlab.experiments.judging`)."""
    return READING.format(confirm=_share(judging.CONFIRM_SHARE), margin=_share(judging.MARGIN),
                          alpha=_share(judging.ALPHA), busy=_share(judging.BUSY_SHARE))


def _markdown(out: Path, results: list[Result], failures: Mapping[str, str],
              scale: str, seconds: float, side_by_side: pd.DataFrame | None = None) -> str:
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    c = verdict_counts(results)
    md = ["# parlab: the lectures' experiments, reproduced", "",
          f"- date: {now}", f"- scale: {scale}", f"- wall time: {seconds:.1f} s",
          f"- experiments: {len(results)} ran, {len(failures)} broke",
          "- lessons: " + ", ".join(f"{k} {v}" for k, v in c.items()), "",
          "## Summary", ""]
    md += _summary_table(results, failures)
    md += ["", "## Machine", ""]
    md += [f"- {key}: {value}" for key, value in machine_description().items()]
    if side_by_side is not None:
        md += ["", "## Each lesson on each interpreter", ""]
        md += _side_by_side(side_by_side)
    md += ["", reading_guide()]
    if failures:
        md += ["## Experiments that broke", ""]
        md += [f"- {id}: {why}" for id, why in failures.items()]
        md += [""]
    about = catalog().set_index("id")
    lecture = None
    for r in results:
        if about.at[r.id, "lecture_title"] != lecture:
            lecture = about.at[r.id, "lecture_title"]
            md += [f"# {lecture}", ""]
        md += [f"## {r.id}: {r.title}", "", f"**Shows:** {about.at[r.id, 'shows']}", ""]
        if about.at[r.id, "timer"]:
            md += [f"**Timed:** {about.at[r.id, 'timer']}", ""]
        md += [f"While it measured, {r.load.describe()}.", ""]
        if "cluster" in r.extras:  # the Dask experiments: a LocalCluster or --scheduler's
            md += [f"Ran on a Dask cluster of {r.extras['cluster']}.", ""]
        if figure_path(out, r.id).exists():
            md += [f"![{r.id}]({figure_path(out, r.id).name})", ""]
        md += _table(r.table) + [""]
        md += [f"- **{row.verdict}**: {row.lesson}. *Observed:* {row.observed}"
               for row in r.lessons.itertuples()]
        md += [""]
    return "\n".join(md) + "\n"


def _summary_table(results: list[Result], failures: Mapping[str, str]) -> list[str]:
    about = catalog().set_index("id")
    lines = ["| id | experiment | shows | lessons | others' load | seconds |",
             "|---|---|---|---|---|---|"]
    for r in results:
        verdicts = ", ".join(f"{k} {v}" for k, v in r.verdicts().items() if v)
        lines.append(f"| {r.id} | {r.title} | {_cell(about.at[r.id, 'shows'])} | {verdicts} "
                     f"| {r.load.share:.0%} | {r.wall_s:.1f} |")
    lines += [f"| {id} | {about.at[id, 'title'] if id in about.index else id} | | "
              f"broke: {_cell(why)} | | |" for id, why in failures.items()]
    return lines


def _side_by_side(table: pd.DataFrame) -> list[str]:
    """The lessons with a column per interpreter; tables and figures below are this
    interpreter's, the others' reports are in their python-N folders."""
    labels = [c.split(": ", 1)[1] for c in table.columns if c.startswith("verdict: ")]
    lines = ["Lessons whose claim needs the GIL are marked *(GIL)*: without a GIL they "
             "are judged by what that interpreter should do. Tables and figures below "
             "are this interpreter's; each other's full report is in its `python-N` folder.",
             "", "| id | lesson | " + " | ".join(labels) + " |",
             "|---|---|" + "---|" * len(labels)]
    for row in table.to_dict("records"):
        gil = " *(GIL)*" if row["needs_gil"] else ""
        cells = [f"**{row[f'verdict: {lb}']}**: {row[f'observed: {lb}']}" for lb in labels]
        lines.append(f"| {row['experiment']} | {_cell(row['lesson'])}{gil} | "
                     + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _table(table) -> list[str]:
    """The result table in Markdown, one line per variant."""
    cols = ["variant", "backend", "workers", "GIL", "seconds", "speedup", "speedup_over",
            "expected", "correct"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table.itertuples():
        cells = [row.variant, row.backend, str(row.workers), gil_word(row.release_gil),
                 f"{row.seconds:.4g}", f"{row.speedup:.3g}x", row.speedup_over, row.expected,
                 "yes" if row.correct else "**no**"]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
