"""Verdicts: load-aware timing lessons, paired "no speedup" lessons, skips, and the
load meter itself."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from parlab.experiments import judging, lecture3, run
from parlab.experiments._load import Load, LoadMeter
from parlab.experiments.framework import REGISTRY, Context, Variant

IDLE = Load(wall_s=1.0, others_s=0.0, cores=2)
BUSY = Load(wall_s=1.0, others_s=1.0, cores=2)  # another program took one core of two


def variant(seconds: float, load: Load = IDLE, workers: int = 1) -> Variant:
    return Variant(f"v{seconds}", "test", workers, None, seconds, [seconds], None, True,
                   "anything", load)


@pytest.fixture
def ctx() -> Context:
    c = Context(REGISTRY["L0.6"], "tiny")
    c.cores = 2
    return c


# --- the rules, on made-up timings ------------------------------------------------

def test_speedup_holds_fails_or_is_inconclusive_by_load(ctx):
    serial = variant(1.0)
    assert judging.speedup(ctx, "a", variant(0.5, workers=2), serial).verdict == "holds"
    assert judging.speedup(ctx, "b", variant(0.9, workers=2), serial).verdict == "fails"
    busy = judging.speedup(ctx, "c", variant(0.9, BUSY, workers=2), serial)
    assert busy.verdict == "inconclusive"
    assert "50%" in busy.observed and "inconclusive" in busy.observed
    # A lesson that held under load still holds: the load only excuses failures.
    assert judging.speedup(ctx, "d", variant(0.5, BUSY, workers=2), serial).holds


def test_speedup_needs_two_cores(ctx):
    ctx.cores = 1
    assert judging.speedup(ctx, "a", variant(0.5, workers=2), variant(1.0)).verdict == "skipped"


def test_no_speedup_counts_only_beside_its_paired_speedup(ctx):
    serial = variant(1.0)
    held = variant(1.0, workers=2)
    paired_ok = judging.speedup(ctx, "released", variant(0.5, workers=2), serial)
    paired_bad = judging.speedup(ctx, "released", variant(0.9, BUSY, workers=2), serial)
    assert judging.no_speedup(ctx, "held", held, serial, paired_ok).verdict == "holds"
    slow_anyway = judging.no_speedup(ctx, "held", held, serial, paired_bad)
    assert slow_anyway.verdict == "inconclusive" and "paired" in slow_anyway.observed
    # A held kernel that does speed up on a free machine fails whatever the pairing says.
    sped_up = judging.no_speedup(ctx, "held", variant(0.5, workers=2), serial, paired_bad)
    assert sped_up.verdict == "fails"
    busy = judging.no_speedup(ctx, "held", variant(0.5, BUSY, workers=2), serial, paired_ok)
    assert busy.verdict == "inconclusive"


def test_facts_ignore_the_load(ctx):
    assert judging.fact(ctx, "a", True, "").verdict == "holds"
    assert judging.fact(ctx, "b", False, "").verdict == "fails"


def test_every_threshold_is_a_named_constant():
    names = {"SPEEDUP_PER_CORE", "NO_SPEEDUP", "OVERLAP_SHARE", "NO_GAIN", "BUSY_SHARE",
             "FAR_FASTER", "SERIAL_LOW", "SERIAL_HIGH", "CROWD_SLOWER", "PIPELINE_GAIN",
             "NEAR_BEST", "OVERSUBSCRIBED_LOSS", "FAR_FROM_CORES", "SIGMAS"}
    assert all(isinstance(getattr(judging, n), (int, float)) for n in names)


# --- the load meter --------------------------------------------------------------

def busy_loop_elsewhere(cpu: int) -> int:
    """Start a busy loop pinned to ``cpu`` that is not our descendant (the shell
    that starts it exits at once), so the load meter counts it as another program.
    Returns its pid."""
    # It stops by itself after five minutes should the test die before stopping it.
    code = (f"import os, time; os.sched_setaffinity(0, {{{cpu}}}); end = time.time() + 300\n"
            "while time.time() < end: pass")
    out = subprocess.run(["sh", "-c", f"'{sys.executable}' -c '{code}' >/dev/null 2>&1 & "
                                      "echo $!"], capture_output=True, text=True, check=True)
    return int(out.stdout)


@pytest.fixture
def busy_loop():
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("needs sched_setaffinity to pin the busy loop")
    pid = busy_loop_elsewhere(sorted(os.sched_getaffinity(0))[0])
    time.sleep(0.3)  # let it start spinning
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGTERM)


def test_load_meter_sees_a_busy_loop(busy_loop):
    with LoadMeter(os.cpu_count() or 1) as meter:
        time.sleep(1.0)
    # One core of the machine, minus what the scheduler gives others meanwhile.
    assert meter.load.others_s > 0.6, meter.load
    assert meter.load.share > judging.BUSY_SHARE


def test_load_meter_counts_our_own_work_as_ours():
    cores = os.cpu_count() or 1
    with LoadMeter(cores) as meter:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.5:
            pass
    # Our own half second of spinning must not show up as someone else's.
    assert meter.load.others_s < 0.45 * meter.load.wall_s * cores + 0.3, meter.load


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2,
                    reason="needs two cores and sched_setaffinity")
@pytest.mark.parametrize("id", ["L0.6", "L4.1"])
def test_speed_lessons_never_fail_beside_a_busy_loop(busy_loop, id):
    result = run(id, scale="quick")
    speed = result.lessons[~result.lessons.lesson.str.contains("dict")]
    assert not (speed.verdict == "fails").any(), speed[["lesson", "verdict", "observed"]]
    assert result.load.share > judging.BUSY_SHARE, result.load


# --- a kernel that fails on purpose ------------------------------------------------

class ExactCounter:
    """A fake parlab.Counter whose "racy" increments never race: the lesson that
    racy increments lose updates must then fail."""

    def __init__(self, value: int = 0):
        self.value = value

    def increment(self, n: int, *, mode: str = "racy", release_gil: bool = True) -> None:
        self.value += n


def test_a_lesson_fails_when_its_kernel_is_broken(monkeypatch):
    monkeypatch.setattr(lecture3.parlab, "Counter", ExactCounter)
    result = run("L3.2", scale="tiny")
    lessons = result.lessons.set_index("lesson")
    if (os.cpu_count() or 1) < 2:
        assert lessons.loc[lecture3.LOST_UPDATES, "verdict"] == "skipped"
    else:
        assert lessons.loc[lecture3.LOST_UPDATES, "verdict"] == "fails"
