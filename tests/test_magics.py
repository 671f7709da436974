"""The notebook magics (``%load_ext parlab``), run in a real IPython kernel
through nbclient as the notebooks are; timing claims are judged from the
trace's recorded timestamps (``_timeline``), verdicts from what ``%speedup``
prints, and its verdict rules on made-up samples."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

import parlab
import trace_events
from conftest import usable_cores
from parlab._cores import describe_cores
from parlab._info import gil_enabled
from parlab.experiments import judging
from parlab.experiments.load_meter import Load
from parlab.experiments.measuring import REPEATS, Sampling
from parlab.magics import (INCONCLUSIVE, NO_GIL_VERDICTS, THREAD_VERDICTS, ParlabMagics,
                           measure_copies, verdict_line)

pytestmark = [pytest.mark.tsan]

CELL_TIMEOUT_S = 600
# The words this interpreter's %speedup uses (a free-threaded one has no GIL to name).
WORDS = THREAD_VERDICTS if gil_enabled() else NO_GIL_VERDICTS
RELEASES, HOLDS = WORDS["holds"], WORDS["fails"]
# Two threads of this much cdist work each (about 0.1 s): long enough that a
# started thread is still working when the other starts.
SETUP = """
import json, threading
import numpy as np
import parlab
X = np.random.default_rng(0).random((1500, 60))

def two_threads(release):
    barrier = threading.Barrier(2)
    def work():
        barrier.wait()
        parlab.cdist(X, X, release_gil=release)
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads: t.start()
    for t in threads: t.join()

def work_intervals():
    ev = _timeline.events
    return json.dumps([[int(r.thread_seq), int(r.work_start_ns), int(r.work_end_ns)]
                       for r in ev[ev.kind == "kernel"].itertuples()])
"""


class Kernel:
    """One IPython kernel; ``run(source)`` executes a cell and returns it."""

    def __init__(self, client: NotebookClient, nb):
        self.client, self.nb = client, nb
        self.replies: dict[int, dict] = {}

    def run(self, source: str):
        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        return cell

    def page(self, source: str) -> str:
        """What the cell sent to the pager (``%magic?``)."""
        self.run(source)
        payload = self.replies[len(self.nb.cells) - 1]["content"].get("payload", [])
        return "".join(p["data"]["text/plain"] for p in payload if p.get("source") == "page")


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    nb = nbformat.v4.new_notebook()
    client = NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                            allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path_factory.mktemp("k"))}})
    k = Kernel(client, nb)
    client.on_cell_executed = lambda cell, cell_index, execute_reply: \
        k.replies.__setitem__(cell_index, execute_reply)
    with client.setup_kernel():
        ok(k.run("%load_ext parlab\n" + SETUP))
        yield k


def stdout(cell) -> str:
    return "".join(o.text for o in cell.outputs
                   if o.output_type == "stream" and o.name == "stdout")


def ok(cell):
    """The cell, after checking that it raised nothing."""
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert not errors, "\n".join(errors[0].traceback)
    return cell


def usage_error(cell) -> str:
    """The cell's error message, after checking it is one short line, as IPython
    shows a UsageError: on stderr, with no traceback."""
    assert [o.output_type for o in cell.outputs] == ["stream"], cell.outputs
    text = cell.outputs[0].text
    assert cell.outputs[0].name == "stderr" and text.startswith("UsageError: "), text
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    return text


def intervals(kernel) -> list[list[int]]:
    return json.loads(stdout(ok(kernel.run("print(work_intervals())"))))


# ---------------------------------------------------------------- %%timeline

@pytest.mark.parametrize("release", [True, False], ids=["released", "held"])
def test_timeline_rows_overlap_only_when_the_gil_is_released(kernel, release):
    cell = ok(kernel.run(f"%%timeline\ntwo_threads({release})"))
    assert any("image/png" in o.get("data", {}) for o in cell.outputs), "no figure shown"
    line = stdout(cell)
    assert re.search(r"cell [\d.]+ m?s; parallelism [\d.]+, GIL wait [\d.]+ ms, "
                     r"2 calls in 2 threads", line), line
    (seq_a, start_a, end_a), (seq_b, start_b, end_b) = intervals(kernel)
    assert seq_a != seq_b  # two rows
    overlap = min(end_a, end_b) - max(start_a, start_b)
    if release:
        assert overlap > 0
    else:
        assert overlap <= 0  # held calls take turns, with a GIL or parlab's emulated one


def test_timeline_records_pools_and_dask_threads(kernel):
    ok(kernel.run("%%timeline\nfrom concurrent.futures import ThreadPoolExecutor\n"
                  "with ThreadPoolExecutor(2) as pool:\n"
                  "    list(pool.map(lambda k: parlab.cpu_work(10_000), range(4)))"))
    assert len(intervals(kernel)) == 4
    cell = ok(kernel.run("%%timeline\nimport parlab.dask\n"
                         "parlab.dask.count_hits(4_000, seed=1, chunk=1_000)"))
    assert len(intervals(kernel)) >= 4  # one task per chunk, in Dask's worker threads
    # The cell's last expression is its value, as with %%time.
    value = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert value and value[0].data["text/plain"] == str(parlab.count_hits(4_000, seed=1))


def test_timeline_says_when_nothing_was_traced_here(kernel):
    cell = ok(kernel.run("%%timeline\nx = sum(range(10))"))
    assert "no parlab kernel call recorded in this process" in stdout(cell)
    assert not any("image/png" in o.get("data", {}) for o in cell.outputs)


def test_timeline_keeps_the_trace_when_the_cell_raises(kernel):
    cell = kernel.run("%%timeline\nparlab.cpu_work(1000)\n1 / 0")
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == ["ZeroDivisionError"]
    assert len(intervals(kernel)) == 1


def test_timeline_saves_the_trace(kernel, tmp_path):
    path = tmp_path / "two.json.gz"
    cell = ok(kernel.run(f'%%timeline -n "two threads" --cpu-time --save "{path}"\n'
                         "two_threads(True)"))
    assert f"trace saved to {path}" in stdout(cell)
    assert re.search(r"two threads: cell .* \(CPU [\d.]+\)", stdout(cell))
    data = trace_events.load(path)
    by_thread = trace_events.check(data)
    kernels = [e for evs in by_thread.values() for e in evs if e["cat"] == "kernel"]
    assert sorted(e["args"]["kernel"] for e in kernels) == ["cdist", "cdist"]
    assert all(e["args"]["cpu_s"] > 0 for e in kernels)
    assert [e["args"]["name"] for e in data["traceEvents"]
            if e["name"] == "process_name"] == ["two threads"]


# ---------------------------------------------------------------- %speedup

def verdict(cell) -> str:
    return stdout(ok(cell)).strip().splitlines()[-1]


def test_speedup_of_a_released_call(kernel):
    said = verdict(kernel.run("%speedup -n 2 parlab.cpu_work(3_000_000)"))
    if usable_cores() < 2:
        assert said.startswith("skipped: only 1 core")
    else:
        # A busy machine can hide a speedup, never invent "takes turns".
        assert said == RELEASES or (said.startswith(INCONCLUSIVE)
                                    and "other programs used" in said), said


def test_speedup_of_a_held_call(kernel):
    said = verdict(kernel.run("%speedup -n 2 parlab.cpu_work(3_000_000, release_gil=False)"))
    if usable_cores() < 2:
        assert said.startswith("skipped: only 1 core")
    else:
        assert said == HOLDS or said.startswith(INCONCLUSIVE), said


def test_speedup_in_processes(kernel):
    cell = kernel.run("%speedup -p -n 2 -r 3 parlab.cpu_work(3_000_000, release_gil=False)")
    out = stdout(ok(cell))
    assert "2 copies at once in processes" in out
    if usable_cores() >= 2:
        # Each process has its own GIL.
        assert out.strip().splitlines()[-1] in ("speeds up in processes",) or \
            out.strip().splitlines()[-1].startswith(INCONCLUSIVE), out


def test_speedup_cell_gives_each_copy_a_fresh_namespace(kernel):
    # Shared between copies or samples, the second would find `fresh` set.
    ok(kernel.run("%%speedup -n 2 -r 2\nassert 'fresh' not in dir()\nfresh = 1\n"
                  "parlab.cpu_work(1000)"))
    assert stdout(ok(kernel.run("print('fresh' in globals())"))).strip() == "False"


def test_speedup_shows_the_statements_own_error(kernel):
    cell = kernel.run("%speedup -n 2 undefined_name + 1")
    assert [o.ename for o in cell.outputs if o.output_type == "error"] == ["NameError"]


# ---------------------------------------------------------------- %gil, help, errors

def test_gil_prints_its_fields(kernel):
    out = stdout(ok(kernel.run("%gil")))
    info = parlab.info()
    check = getattr(sys, "_is_gil_enabled", None)
    state = "GIL enabled" if check is None or check() else "GIL disabled"
    assert out.startswith(state)
    assert f"switch interval {sys.getswitchinterval() * 1e3:g} ms" in out
    assert f"; {describe_cores()};" in out
    assert f"held_mode {info['held_mode']}" in out and f"simd {info['simd']}" in out
    assert len(out.strip().splitlines()) == 1


def test_help_in_ipython_style(kernel):
    speedup = kernel.page("%speedup?")
    for text in ("-n THREADS", "-p, --processes", "-r REPEATS", "releases the GIL",
                 "takes turns: holds the GIL", "inconclusive: busy machine"):
        assert text in speedup, text
    timeline = kernel.page("%%timeline?")
    for text in ("--cpu-time", "--save FILE", "-n NAME, --name NAME", "_timeline"):
        assert text in timeline, text


@pytest.mark.parametrize("source, message", [
    ("%speedup -q 2 f()", "unrecognized arguments: -q"),
    ("%speedup -n two f()", "invalid int value: 'two'"),
    ("%speedup -n 0 f()", "THREADS must be at least 1"),
    ("%speedup -r 0 f()", "REPEATS must be at least 1"),
    ("%speedup", "give a statement"),
    ("%speedup -n 2 f(", "not valid Python"),
    ("%%speedup -n 2 f()\nf()", "first line takes options only"),
    ("%%timeline --bogus\nx = 1", "unrecognized arguments: --bogus"),
    ("%%timeline --save trace.txt\nx = 1", "must end in .json or .json.gz"),
    ("%%timeline --save 'unclosed\nx = 1", "No closing quotation"),
    ("%gil now", "takes no arguments"),
])
def test_bad_options_are_short_errors(kernel, source, message):
    assert message in usage_error(kernel.run(source))


# ---------------------------------------------------------------- the verdict rules

IDLE = Load(wall_s=1.0, others_s=0.0, cores=2)
BUSY = Load(wall_s=1.0, others_s=1.0, cores=2)
# Six rounds: steady runs that many are enough for the rule to fail a claim.
FREE_CORES = dict(probe_serial=[0.02] * 6, probe_threads=[0.01] * 6)
RELEASED, HELD = [0.10, 0.11, 0.10] * 2, [0.20, 0.21, 0.20] * 2


@pytest.mark.parametrize("together, probe, load, expected, why", [
    (RELEASED, FREE_CORES, IDLE, RELEASES, None),
    (HELD, FREE_CORES, IDLE, HOLDS, None),
    # A speedup that shows, shows, however busy the machine.
    (RELEASED, FREE_CORES, BUSY, RELEASES, None),
    (HELD, FREE_CORES, BUSY, INCONCLUSIVE,
     "other programs used 50% of the 2 cores, more than 10%"),
    (HELD, dict(probe_serial=[0.02] * 6, probe_threads=[0.02] * 6), IDLE,
     INCONCLUSIVE, "reached only 1.00x meanwhile: the cores were not free"),
    ([0.20, 0.40, 0.60, 0.8, 1.0, 1.2], FREE_CORES, IDLE, INCONCLUSIVE, "noisy"),
    # Three steady rounds could all have landed in one burst: not yet "holds the GIL".
    (HELD[:3], {k: v[:3] for k, v in FREE_CORES.items()}, IDLE, INCONCLUSIVE, "too few"),
])
def test_verdicts_follow_the_experiments(together, probe, load, expected, why):
    said, observed = judged(together, probe, load, cores=2)
    assert said.startswith(expected), said
    if why:
        assert why in said and "other programs used" in said, said
    assert "needs > 1.30x" in observed


def judged(together: list[float], probe: dict, load: Load, cores: int) -> tuple[str, str]:
    """%speedup's two lines for two copies measured ``together`` beside
    steady runs of one alone, by the experiments' verdict entry point."""
    alone = [0.1] * len(together)
    sampling = Sampling(times=lambda: ([2 * a for a in alone], together), load=lambda: load,
                        probe=lambda: (probe["probe_serial"], probe["probe_threads"], 2))
    j = judging.judge_speedup(2, cores, sampling)
    return verdict_line(j, cores)


def test_the_help_states_the_rule_the_verdict_uses():
    # Filled in from the constants that decide the verdicts, so it cannot drift from them.
    text = " ".join(ParlabMagics.speedup.__doc__.split())
    assert f"({judging.SPEEDUP_PER_CORE:.0%} of the ideal gain per extra core, at most " \
           f"{judging.SPEEDUP_CAP:g}x)" in text
    assert f"under {judging.BUSY_SHARE:.0%} of the CPU" in text
    assert f"{REPEATS['quick']} rounds first" in text
    assert "{" not in text.split("Examples")[0]


def test_one_core_cannot_show_a_speedup():
    said, _ = judged([0.2], FREE_CORES, IDLE, cores=1)
    assert said.startswith("skipped: only 1 core")


def test_sampling_stops_once_settled_or_at_the_budget():
    steady, _ = measure_copies(lambda: 0.1, lambda: 0.1, 2, 2, max_rounds=12)
    assert [len(times) for times in steady.times] == [3] * 4
    # No two runs alike, and about as fast one after another as together: the
    # fastest is never confirmed and the speedup never clear.
    noisy = iter([0.06 * 1.5 ** k for k in range(20)])
    unsettled, _ = measure_copies(lambda: next(noisy), lambda: 0.12, 2, 2, max_rounds=5)
    assert len(unsettled.times[0]) == 5


def test_import_parlab_does_not_import_ipython():
    code = "import sys, parlab; print('IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
