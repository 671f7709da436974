"""A reproduction report: tables, lessons, figures and the machine, in one folder.

The CLI (``python -m parlab reproduce``) runs the experiments and hands the
results here; every function also works alone, for example from a notebook.
"""
from __future__ import annotations

import datetime
import platform
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

import parlab
from parlab.experiments import LESSON_COLUMNS, TABLE_COLUMNS, VERDICTS, Result, catalog


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_description() -> dict[str, str]:
    """What the numbers were measured on: CPU, cores, Python, NumPy, parlab, OS."""
    info = parlab.info()
    return {
        "CPU": cpu_model(),
        "cores": str(info["cpu_count"] or 1),
        "Python": f"{info['python_implementation']} {info['python']}",
        "GIL": "enabled" if info["gil_enabled"] else "disabled (free-threaded)",
        "NumPy": info["numpy"],
        "parlab": info["parlab"],
        "compiler": str(info["compiler"]),
        "platform": platform.platform(),
    }


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
    return (f"{len(results) + len(failures)} experiments run{broken} in {seconds:.0f} s; "
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
                 scale: str, seconds: float) -> Path:
    """Write results.csv, lessons.csv and report.md into ``out``; return report.md.

    The figures are expected in ``out`` already (:func:`save_figure`);
    ``failures`` maps an experiment id to why it failed.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results_table(results).to_csv(out / "results.csv", index=False)
    lessons_table(results).to_csv(out / "lessons.csv", index=False)
    path = out / "report.md"
    path.write_text(_markdown(out, results, failures, scale, seconds), encoding="utf-8")
    return path


def _markdown(out: Path, results: list[Result], failures: Mapping[str, str],
              scale: str, seconds: float) -> str:
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lessons = lessons_table(results)
    md = ["# parlab: the lectures' experiments, reproduced", "",
          f"- date: {now}", f"- scale: {scale}", f"- wall time: {seconds:.1f} s",
          f"- experiments: {len(results)} ran, {len(failures)} failed",
          f"- lessons: {int(lessons.holds.sum())} of {len(lessons)} hold", "",
          "## Machine", ""]
    md += [f"- {key}: {value}" for key, value in machine_description().items()]
    if failures:
        md += ["", "## Failures", ""]
        md += [f"- {id}: {why}" for id, why in failures.items()]
    about = catalog().set_index("id")
    for r in results:
        md += ["", f"## {r.id}: {r.title}", "",
               f"Lecture `{about.at[r.id, 'lecture']}`. Shows: {about.at[r.id, 'shows']}", ""]
        if figure_path(out, r.id).exists():
            md += [f"![{r.id}]({figure_path(out, r.id).name})", ""]
        md += ["```text", r.table.drop(columns="experiment").to_string(index=False), "```", ""]
        md += [f"- {_lesson_line(row).strip()}" for row in r.lessons.itertuples()]
        md += [f"- timeline of \"{variant}\": {tr.describe()}"
               for variant, tr in r.extras.get("traces", {}).items()]
    return "\n".join(md) + "\n"
