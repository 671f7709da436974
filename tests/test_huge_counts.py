"""Counts at and near 2**63: every counting entry point either runs (and so is
still running when an alarm interrupts it) or raises OverflowError naming the
argument; none returns at once with a wrong answer.

Each count runs in a child process of its own, so that a call that would hang
or crash takes only the child with it. The sanitizer pass (scripts/sanitize.sh)
runs this file too: UBSan then sees every chunk-count computation at these
sizes, in the child.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import parlab

pytestmark = [pytest.mark.sanitize]

COUNTS = [2**63 - 1, 2**63 - 1024, 2**63 - 1025]

# Each call gets this long before the alarm: far longer than a wrong early
# return takes (microseconds), far shorter than a real run (centuries).
ALARM_S = 0.2

CHILD = r"""
import json, signal, sys, parlab

def interrupt(signum, frame):
    raise KeyboardInterrupt

signal.signal(signal.SIGALRM, interrupt)
n = int(sys.argv[1])
calls = {}
for release in (True, False):
    calls[f"cpu_work release_gil={release}"] = lambda r=release: parlab.cpu_work(n, release_gil=r)
    for threads in (1, 2):
        for fn in ("count_hits", "estimate_pi"):
            calls[f"{fn} n_threads={threads} release_gil={release}"] = (
                lambda fn=fn, t=threads, r=release: getattr(parlab, fn)(
                    n, seed=1, n_threads=t, release_gil=r))
    for mode in ("racy", "locked", "atomic"):
        calls[f"Counter.increment mode={mode} release_gil={release}"] = (
            lambda m=mode, r=release: parlab.Counter().increment(n, mode=m, release_gil=r))
    calls[f"Counter(1).increment release_gil={release}"] = (
        lambda r=release: parlab.Counter(1).increment(n, release_gil=r))
outcomes = {}
for name, call in calls.items():
    signal.setitimer(signal.ITIMER_REAL, float(sys.argv[2]))
    try:
        outcomes[name] = "returned " + repr(call())
    except KeyboardInterrupt:
        outcomes[name] = "interrupted"
    except OverflowError as exc:
        outcomes[name] = "OverflowError: " + str(exc)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
print(json.dumps(outcomes))
"""


@pytest.fixture(scope="module", params=COUNTS, ids=lambda n: f"2**63-{2**63 - n}")
def outcomes(request) -> tuple[int, dict[str, str]]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(request.param), str(ALARM_S)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return request.param, json.loads(out.stdout)


def test_every_entry_point_runs_or_refuses(outcomes):
    n, got = outcomes
    assert len(got) == 18  # 9 calls, each with the GIL released and held
    for name, outcome in got.items():
        if outcome.startswith("OverflowError"):
            # Refusing is right only where the answer cannot fit: a counter
            # starting at 1 cannot take 2**63 - 1 more.
            assert name.startswith("Counter(1)") and n == 2**63 - 1, (name, outcome)
            assert "value + n" in outcome, outcome
        else:
            assert outcome == "interrupted", (name, outcome)


def test_the_last_samples_before_2_to_the_63_add_up():
    # Chunks with matching starts add up to the whole, up to the last index.
    last = [parlab.count_hits(1, seed=3, start=2**63 - k) for k in (3, 2, 1)]
    assert set(last) <= {0, 1}
    assert parlab.count_hits(3, seed=3, start=2**63 - 3) == sum(last)


@pytest.mark.parametrize("start, n", [(2**63 - 1, 2), (2**62, 2**62 + 1), (2**63 - 1024, 1025)])
def test_start_plus_samples_past_2_to_the_63_raises(start, n):
    with pytest.raises(OverflowError, match="start \\+ n_samples"):
        parlab.count_hits(n, seed=3, start=start)


def test_empty_input_with_a_huge_dimension():
    # Zero rows take no memory whatever the row length: the block shape must
    # not multiply the row length by the rows of a block (2**59 * 64 overflows).
    A = np.empty((0, 2**59))  # the longest rows NumPy allows an empty float64 array
    assert parlab.cdist(A, A).shape == (0, 0)
    assert parlab.cdist(A, A, n_threads=2).shape == (0, 0)
