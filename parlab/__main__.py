"""Command line: ``python -m parlab {list,reproduce,info}`` (also the ``parlab`` script)."""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "reproduce":
        return _reproduce(parser, args)
    if args.command == "list":
        return _list()
    return _info()


def _parser() -> argparse.ArgumentParser:
    from parlab.experiments import SCALES

    parser = argparse.ArgumentParser(
        prog="parlab", description="Runnable, measurable lessons of parallel Python.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the lectures' experiments")
    sub.add_parser("info", help="versions, compiler, cores and GIL of this installation")
    rep = sub.add_parser(
        "reproduce", help="run experiments and write a report folder",
        description="Run experiments, print their tables and lessons, and write "
                    "results.csv, lessons.csv, one PNG per experiment and report.md. "
                    "Exits non-zero if an experiment breaks or gives a wrong output; "
                    "lessons that fail or are inconclusive are findings, not errors.")
    rep.add_argument("--scale", choices=SCALES, default=None,
                     help="problem sizes: tiny (seconds), quick, full (minutes); "
                          "default: $PARLAB_SCALE, else quick")
    rep.add_argument("--only", metavar="IDS",
                     help="comma-separated experiment ids, e.g. L0.6,L3.2 (default: all)")
    rep.add_argument("--out", metavar="DIR", type=Path, default=Path("parlab-report"),
                     help="folder for the report (default: parlab-report)")
    rep.add_argument("--python", metavar="PATH", action="append", default=[],
                     help="also run the experiments under this interpreter (it needs parlab "
                          "installed; repeat for more): one report, a verdict column per "
                          "interpreter, e.g. a free-threaded build beside this one")
    rep.add_argument("--cores", metavar="N", type=int,
                     help="run on N of the usable cores only (the process and every worker "
                          "it starts), to show the lessons on a smaller machine; Linux "
                          "(os.sched_setaffinity). Default: all usable cores")
    rep.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                     help="run the Dask experiments (L5.x) on this running cluster instead of "
                          "a LocalCluster of their own; its workers must have parlab installed")
    return parser


def _list() -> int:
    from parlab.experiments import catalog

    group = None
    for row in catalog().itertuples():
        if row.lecture_title != group:  # a heading per lecture, and "Beyond the lectures"
            group = row.lecture_title
            print(f"\n{group}" if row.Index else group)
        print(f"{row.id:<6} {row.title}\n       {row.shows}")
    return 0


def _info() -> int:
    import parlab

    for key, value in parlab.info().items():
        print(f"{key}: {value}")
    return 0


def _select(parser: argparse.ArgumentParser, only: str | None) -> list[str]:
    from parlab.experiments import catalog

    valid = list(catalog().id)
    if not only:
        return valid
    wanted = list(dict.fromkeys(i.strip() for i in only.split(",") if i.strip()))
    unknown = [i for i in wanted if i not in valid]
    if unknown or not wanted:
        parser.error(f"unknown experiment id(s): {', '.join(unknown) or repr(only)}; "
                     f"valid ids: {', '.join(valid)}")
    return wanted


def _use_scheduler(parser: argparse.ArgumentParser, address: str) -> None:
    """Check that a Dask scheduler answers at ``address``, then hand it to the
    Dask experiments (they read it from the environment, as notebooks can)."""
    from parlab.experiments.beyond import SCHEDULER_ENV, check_scheduler

    try:
        check_scheduler(address)
    except (OSError, ValueError) as exc:
        parser.error(f"--scheduler {address}: {exc}")
    os.environ[SCHEDULER_ENV] = address


def _reproduce(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from parlab.experiments import default_scale

    try:
        scale = args.scale or default_scale()
    except ValueError as exc:  # a bad PARLAB_SCALE: one message, not one per experiment
        parser.error(str(exc))
    ids = _select(parser, args.only)
    if args.cores is not None:
        from parlab._cores import check_cores

        try:
            check_cores(args.cores, "--cores")
        except (TypeError, ValueError) as exc:
            parser.error(str(exc))
    if args.scheduler:
        _use_scheduler(parser, args.scheduler)
    pythons = [_check_python(parser, p) for p in args.python]
    if pythons:  # the experiments that compare builds (L6.4) find each other
        from parlab.experiments.interpreters import PYTHONS_ENV

        os.environ[PYTHONS_ENV] = os.pathsep.join([sys.executable, *pythons])
    # Pick a file-only backend before anything imports pyplot: no display needed.
    import matplotlib

    matplotlib.use("Agg")
    from parlab._cores import restricted

    args.out.mkdir(parents=True, exist_ok=True)
    with restricted(args.cores, "--cores"):
        return _run_and_report(args, scale, ids, pythons)


def _run_and_report(args: argparse.Namespace, scale: str, ids: list[str],
                    pythons: list[str]) -> int:
    from tqdm import tqdm

    from parlab import report
    from parlab.experiments import run

    results, failures = [], {}
    start = time.perf_counter()
    # disable=None: a bar on a terminal, nothing in logs and pipes.
    bar = tqdm(ids, desc="experiments", unit="exp", file=sys.stderr, disable=None)
    for id in bar:
        bar.set_postfix_str(id)
        try:
            result = run(id, scale=scale)
            report.save_figure(result, args.out)
        except Exception as exc:  # one broken experiment must not stop the others
            failures[id] = f"{type(exc).__name__}: {exc}"
            tqdm.write(f"== {id} FAILED\n{traceback.format_exc()}", file=sys.stderr)
            continue
        results.append(result)
        wrong = result.table.variant[~result.table.correct.astype(bool)]
        if len(wrong):
            failures[id] = "output failed its check: " + ", ".join(wrong)
        tqdm.write(report.format_result(result))
    bar.close()
    columns = {report.interpreter_label(): report.lessons_table(results)} if pythons else {}
    for i, python in enumerate(pythons, 1):
        label, lessons, broke = _reproduce_under(python, args.out / f"python-{i}", scale, ids)
        if broke:
            failures[f"--python {python}"] = broke
        if lessons is not None:
            columns[label] = lessons
    seconds = time.perf_counter() - start
    path = report.write_report(args.out, results, failures, scale=scale, seconds=seconds,
                               interpreters=columns)
    for id, why in failures.items():
        print(f"FAILED {id}: {why}", file=sys.stderr)
    print(report.summary_line(results, failures, path.resolve(), seconds))
    return 1 if failures else 0


def _check_python(parser: argparse.ArgumentParser, python: str) -> str:
    import shutil

    found = shutil.which(python)
    if found is None:
        parser.error(f"--python {python}: no such executable")
    return os.path.abspath(found)


def _reproduce_under(python: str, out: Path, scale: str, ids: list[str]):
    """Run the same experiments under ``python``, writing its own report into
    ``out``. Returns its label, its lessons (None if it wrote none) and why
    it broke ("" if it did not)."""
    import subprocess

    import pandas as pd

    label = subprocess.run(
        [python, "-c", "from parlab.report import interpreter_label; print(interpreter_label())"],
        capture_output=True, text=True)
    if label.returncode != 0:
        return python, None, f"cannot import parlab there: {label.stderr.strip()[-500:]}"
    label = label.stdout.strip()
    print(f"== under {python} ({label})", flush=True)
    lessons = out / "lessons.csv"
    lessons.unlink(missing_ok=True)  # a crashed run must not leave an older run's lessons
    proc = subprocess.run([python, "-m", "parlab", "reproduce", "--scale", scale,
                           "--only", ",".join(ids), "--out", str(out)])
    broke = (f"its reproduce exited with status {proc.returncode} (report in {out})"
             if proc.returncode else "")
    return label, pd.read_csv(lessons) if lessons.exists() else None, broke


if __name__ == "__main__":
    sys.exit(main())
