"""IPython magics for the classroom: ``%load_ext parlab`` registers

- ``%%timeline``: run a cell under :func:`parlab.trace`, show its timeline and
  one summary line; the trace is left in ``_timeline``;
- ``%speedup`` / ``%%speedup``: time a statement alone and several copies at
  once in threads (or processes), and say whether it releases the GIL, judged
  with the experiments' statistics and load meter;
- ``%gil``: the interpreter's GIL, switch interval, cores and parlab's modes.

Only ``load_ipython_extension`` in :mod:`parlab` imports this module, so
``import parlab`` never imports IPython.
"""
from __future__ import annotations

import argparse
import ast
import re
import shlex
import sys
import time
import traceback
from typing import Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from IPython.core.magic import needs_local_scope
from IPython.core.magic_arguments import argument, magic_arguments

import parlab
from parlab import _trace_export
from parlab._cores import describe_cores, usable_cores
from parlab._info import gil_enabled
from parlab.experiments import judging, probe
from parlab.experiments.measuring import MAX_ROUNDS, REPEATS, Rounds, Sampling, timed_run
from parlab.experiments.runners import run_together

# What %speedup prints for each verdict, in the lessons' words.
THREAD_VERDICTS = {
    "holds": "speeds up in threads: releases the GIL",
    "fails": "takes turns: holds the GIL",
}
# Without a GIL (free-threaded CPython) threads are not what serialises a call.
NO_GIL_VERDICTS = {
    "holds": "speeds up in threads (this interpreter runs without a GIL)",
    "fails": "takes turns in threads: holds a lock (no GIL here; parlab's emulated one, say)",
}
PROCESS_VERDICTS = {
    "holds": "speeds up in processes",
    "fails": "no faster in processes: the copies get in each other's way (cores, memory, a lock)",
}
INCONCLUSIVE = "inconclusive: busy machine"


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1e3:.1f} ms"


def _split_last_expression(tree: ast.Module) -> tuple[ast.Module, ast.Expression | None]:
    """The cell's statements, and its last line apart when that is an expression
    (shown as the cell's value, as %%time does)."""
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
        return tree, last
    return tree, None


# ---------------------------------------------------------------- copies

def _run_copy(code, namespace: dict) -> tuple[float, float]:
    """Run ``code`` in a fresh copy of ``namespace``: its (start, end) on perf_counter."""
    ns = dict(namespace)
    start = time.perf_counter()
    exec(code, ns)
    return start, time.perf_counter()


def _span(times: list[tuple[float, float]]) -> float:
    # Each copy reads the clock itself as it starts: a copy that holds the
    # GIL keeps every other thread, ours included, from reading it for it.
    return max(end for _, end in times) - min(start for start, _ in times)


def _in_threads(code, namespace: dict, n: int) -> float:
    """Seconds from the first of ``n`` copies starting (together, at a barrier)
    to the last one ending."""
    return _span(run_together([lambda: _run_copy(code, namespace)] * n))


class _Processes:
    """``n`` forked processes, each holding the namespace as it was at the fork,
    that run the statement on demand (start-up is not timed)."""

    def __init__(self, code, namespace: dict, n: int):
        import multiprocessing

        try:
            mp = multiprocessing.get_context("fork")
        except ValueError:
            raise UsageError("%speedup -p needs the fork start method (Linux, macOS): a "
                             "spawned process would not have the notebook's variables") from None
        self._barrier = mp.Barrier(n)
        self._pipes, self._procs = [], []
        for _ in range(n):
            ours, theirs = mp.Pipe()
            proc = mp.Process(target=self._serve, args=(code, namespace, theirs), daemon=True)
            proc.start()
            self._pipes.append(ours)
            self._procs.append(proc)

    def _serve(self, code, namespace: dict, conn) -> None:
        try:
            _run_copy(code, namespace)  # warm up, untimed
            while conn.recv() is not None:
                self._barrier.wait()
                conn.send(("ok", _run_copy(code, namespace)))
        except BaseException:  # reported to the parent, which raises it
            conn.send(("error", traceback.format_exc()))

    def run(self) -> float:
        """Seconds from the first copy starting to the last one ending, one per process."""
        for conn in self._pipes:
            conn.send("go")
        replies = [conn.recv() for conn in self._pipes]
        failed = [text for status, text in replies if status == "error"]
        if failed:
            raise RuntimeError(f"%speedup: a copy in a worker process raised:\n{failed[0]}")
        return _span([t for _, t in replies])

    def close(self) -> None:
        for conn in self._pipes:
            try:
                conn.send(None)
            except OSError:
                pass  # that worker is gone already
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()


# ---------------------------------------------------------------- measuring and the verdict

def measure_copies(alone: Callable[[], float], together: Callable[[], float], n: int,
                   cores: int, max_rounds: int) -> tuple[Rounds, judging.Judgement]:
    """Interleaved rounds of one copy ``alone``, ``n`` copies ``together`` and
    the capacity probe over ``n`` threads, as an experiment's comparison
    measures them, and the verdict on "together beats the copies one after
    another" (:func:`~parlab.experiments.judging.judge_speedup`), which adds
    rounds while they do not decide, up to ``max_rounds``."""
    probe_serial, probe_threads = probe.runs(n)
    rounds = Rounds([alone, together, timed_run(probe_serial), timed_run(probe_threads)], cores)
    rounds.run(min(REPEATS["quick"], max_rounds))

    def copies_one_after_another_and_together():
        alone, together = rounds.times[:2]
        return [n * a for a in alone], together

    sampling = Sampling(times=copies_one_after_another_and_together,
                        more=lambda: rounds.add_round(max_rounds), load=lambda: rounds.load,
                        probe=lambda: (*rounds.times[2:], n))
    return rounds, judging.judge_speedup(n, cores, sampling)


def verdict_line(j: judging.Judgement, cores: int, processes: bool = False) -> tuple[str, str]:
    """(verdict line, what was observed) of %speedup's judgement ``j``."""
    if j.verdict == "skipped":
        return (f"skipped: only {cores} core usable, so nothing can run in parallel here",
                j.decision.measured)
    words = PROCESS_VERDICTS if processes else (THREAD_VERDICTS if gil_enabled()
                                                else NO_GIL_VERDICTS)
    if j.verdict in words:
        return words[j.verdict], j.decision.observed
    why = (f", more than {judging.BUSY_SHARE:.0%}" if j.busy
           else f"; {j.excuse or j.decision.why}")
    return f"{INCONCLUSIVE} ({j.load.describe()}{why})", j.decision.observed


# ---------------------------------------------------------------- the magics

def _rule_in_words(magic: Callable) -> Callable:
    """``magic`` with the verdict rule's numbers in its help, filled in from
    the constants that decide the verdicts (before IPython builds the help)."""
    magic.__doc__ = magic.__doc__.format(  # type: ignore[union-attr]
        first=REPEATS["quick"], per_core=judging.SPEEDUP_PER_CORE, cap=judging.SPEEDUP_CAP,
        busy=judging.BUSY_SHARE)
    return magic


@magics_class
class ParlabMagics(Magics):
    """%%timeline, %speedup / %%speedup and %gil."""

    @magic_arguments()
    @argument("-n", "--name", metavar="NAME",
              help="title of the figure and name of the saved trace's process")
    @argument("--cpu-time", action="store_true",
              help="also record each call's thread CPU time (cpu_s, cores busy)")
    @argument("--save", metavar="FILE",
              help="write the trace to FILE (.json or .json.gz, Chrome trace-event "
                   "format: open it in https://ui.perfetto.dev or chrome://tracing)")
    @cell_magic
    def timeline(self, line: str, cell: str):
        """Run the cell under parlab.trace and show what every thread did.

        Every parlab kernel call made while the cell runs, in any thread of
        this process (threads the cell starts, thread pools, Dask's threaded
        scheduler), is drawn on a timeline with one row per thread: work with
        the GIL released, work holding it, waits for the GIL. One line sums it
        up: the cell's wall time, how many calls worked at once on average
        (parallelism), the time spent waiting for the GIL, calls and threads.
        Work done in other processes (process pools, Dask workers) is not
        recorded here. The trace is left in ``_timeline`` (a parlab.Trace:
        ``_timeline.events``, ``_timeline.summary()``); a last line that is an
        expression is the cell's value, as with %%time.

        Example::

            %%timeline --save two_threads.json
            threads = [threading.Thread(target=parlab.cdist, args=(X, X))
                       for _ in range(2)]
            for t in threads: t.start()
            for t in threads: t.join()
        """
        try:
            args = self.timeline.parser.parse_args(shlex.split(line))
        except ValueError as exc:  # an unclosed quote
            raise UsageError(f"%%timeline: {exc}") from None
        if args.save and not args.save.endswith(_trace_export.SUFFIXES):
            raise UsageError(f"%%timeline --save: FILE must end in .json or .json.gz, "
                             f"got {args.save!r}")
        tree = self.shell.transform_ast(
            self.shell.compile.ast_parse(self.shell.transform_cell(cell)))
        body, last = _split_last_expression(tree)
        ns = self.shell.user_ns
        tr = parlab.trace(cpu_time=args.cpu_time)
        try:
            tr.__enter__()
        except RuntimeError as exc:  # another trace is recording
            raise UsageError(f"%%timeline: {exc}") from None
        value = None
        start = time.perf_counter()
        try:
            exec(compile(body, "<timeline cell>", "exec"), ns)
            if last is not None:
                value = eval(compile(last, "<timeline cell>", "eval"), ns)
        finally:
            wall = time.perf_counter() - start
            tr.__exit__(None, None, None)
            ns["_timeline"] = tr
        self._show_timeline(tr, wall, args.name)
        if args.save:
            tr.save(args.save, name=args.name)
            print(f"trace saved to {args.save} (open it in https://ui.perfetto.dev)")
        return value

    @staticmethod
    def _show_timeline(tr, wall: float, name: str | None) -> None:
        from IPython.display import display

        label = f"{name}: " if name else ""
        if len(tr.events) == 0:
            print(f"{label}cell {_fmt_s(wall)}; no parlab kernel call recorded in this "
                  "process (work in other processes, such as process pools or Dask "
                  "workers, is not traced here)")
            return
        import matplotlib.pyplot as plt

        from parlab import plot

        ax = plot.timeline(tr, title=f"{label}{tr.describe()}" if name else None)
        display(ax.figure)
        plt.close(ax.figure)
        s = tr.summary()
        print(f"{label}cell {_fmt_s(wall)}; parallelism {s['parallelism']:.2f}"
              + (f" (CPU {s['cpu_parallelism']:.2f})" if tr.cpu_time else "")
              + f", GIL wait {s['gil_wait_s'] * 1e3:.1f} ms, {s['calls']} calls in "
              f"{len(s['threads'])} threads" + (f", {s['dropped']} dropped" if s["dropped"]
                                                else ""))

    @magic_arguments()
    @argument("-n", "--threads", metavar="THREADS", type=int, default=None,
              help="copies to run at once (default: the usable cores, at least 2)")
    @argument("-p", "--processes", action="store_true",
              help="run the copies in processes (forked, so they have this namespace) "
                   "instead of threads")
    @argument("-r", "--repeats", metavar="REPEATS", type=int, default=MAX_ROUNDS["quick"],
              help=f"at most this many interleaved rounds (default {MAX_ROUNDS['quick']}): "
                   f"{REPEATS['quick']} first, then more only while they do not decide")
    @argument("statement", nargs=argparse.REMAINDER,
              help="the statement (with %%speedup: the cell, and no statement here)")
    @needs_local_scope
    @line_cell_magic
    @_rule_in_words
    def speedup(self, line: str, cell: str | None = None, local_ns: dict | None = None):
        """Does a statement speed up when several copies run at once?

        Times the statement alone, then THREADS copies at once in threads
        (or processes, with -p), each copy in a fresh copy of the namespace,
        in interleaved rounds (alone, together, alone, together, ...) so that
        a change in the machine's load hits both, beside the experiments'
        capacity probe (released cpu_work, serial and in THREADS threads).
        {first} rounds first, more while they do not decide, up to REPEATS.
        Prints the fastest times, the speedup over running the copies one
        after another, and a verdict judged as the experiments judge theirs:

        - "speeds up in threads: releases the GIL": the fastest runs beat what
          the lessons require ({per_core:.0%} of the ideal gain per extra core,
          at most {cap:g}x);
        - "takes turns: holds the GIL": they clearly do not, while the probe
          showed free cores and other programs took under {busy:.0%} of the CPU;
        - "inconclusive: busy machine": anything else; the line says how busy
          the machine was and why the numbers do not decide.

        The statement runs once first, untimed (a warm-up that also shows its
        errors). Examples::

            %speedup -n 2 parlab.cpu_work(3_000_000)
            %speedup -n 2 parlab.cpu_work(3_000_000, release_gil=False)
            %speedup -p sum(i * i for i in range(10**6))

            %%speedup -n 4
            D = scipy.spatial.distance.cdist(X, X)
        """
        args, statement = self._speedup_args(line, cell)
        n = args.threads if args.threads is not None else max(2, usable_cores())
        if n < 1:
            raise UsageError(f"%speedup: THREADS must be at least 1, got {n}")
        if args.repeats < 1:
            raise UsageError(f"%speedup: REPEATS must be at least 1, got {args.repeats}")
        try:
            code = compile(self.shell.transform_cell(statement), "<speedup>", "exec")
        except SyntaxError as exc:
            raise UsageError(f"%speedup: the statement is not valid Python: {exc}") from None
        namespace = dict(self.shell.user_ns)
        if local_ns is not None and local_ns is not self.shell.user_ns:
            namespace.update(local_ns)
        _run_copy(code, namespace)  # warm up; the statement's own errors show here

        cores = usable_cores()
        procs = _Processes(code, namespace, n) if args.processes else None
        try:
            rounds, judgement = measure_copies(
                lambda: _in_threads(code, namespace, 1),
                procs.run if procs else (lambda: _in_threads(code, namespace, n)),
                n, cores, args.repeats)
        finally:
            if procs:
                procs.close()
        verdict, observed = verdict_line(judgement, cores, args.processes)
        where = "processes" if args.processes else "threads"
        alone, together = rounds.times[:2]
        print(f"{n} copies at once in {where}: {_fmt_s(min(together))}; one alone: "
              f"{_fmt_s(min(alone))} (fastest of {len(alone)} interleaved rounds; "
              f"{rounds.load.describe()})")
        print(f"speedup over running the {n} copies one after another: {observed}")
        print(verdict)

    def _speedup_args(self, line: str, cell: str | None) -> tuple[argparse.Namespace, str]:
        """The options, and the statement exactly as typed (its spacing kept)."""
        words = list(re.finditer(r"\S+", line))
        args = self.speedup.parser.parse_args([w.group() for w in words])
        typed = line[words[-len(args.statement)].start():].strip() if args.statement else ""
        if cell is None:
            if not typed:
                raise UsageError("%speedup: give a statement to time, e.g. "
                                 "%speedup -n 2 parlab.cpu_work(3_000_000)")
            return args, typed
        if typed:
            raise UsageError("%%speedup: the cell is the statement; its first line takes "
                             f"options only, got {typed!r}")
        if not cell.strip():
            raise UsageError("%%speedup: the cell is empty")
        return args, cell

    @line_magic
    def gil(self, line: str) -> None:
        """One line about this interpreter's GIL: whether it is enabled
        (``sys._is_gil_enabled()`` where Python has it), the switch interval
        (``sys.getswitchinterval()``: how long a thread may hold the GIL while
        another waits), the cores, what parlab's ``release_gil=False`` holds
        (``held_mode``) and the SIMD path its kernels use."""
        if line.strip():
            raise UsageError(f"%gil takes no arguments, got {line.strip()!r}")
        check = getattr(sys, "_is_gil_enabled", None)
        if check is None:
            state = "GIL enabled (this Python always has one)"
        else:
            state = f"GIL {'enabled' if check() else 'disabled'} (sys._is_gil_enabled() is {check()})"
        info = parlab.info()
        print(f"{state}; switch interval {sys.getswitchinterval() * 1e3:g} ms; "
              f"{describe_cores(info['cores'])}; "
              f"held_mode {info['held_mode']}; simd {info['simd']}")


def load_ipython_extension(ipython) -> None:
    ipython.register_magics(ParlabMagics)
