"""The lesson rules on a modelled machine of 1 to 64 cores (tests/machine_model.py).

Every lesson of every experiment, judged by its own rule on the model's times
for N in machine_model.CORES: never ``fails`` where the lectures' machine
behaves as the lectures say. And on a machine
where a lesson is false, its rule says ``fails``: at least one such machine
for every kind of rule. ``python tests/machine_model.py`` prints the table.
"""
from __future__ import annotations

import warnings

import pytest

import machine_model as mm
from parlab._info import gil_enabled
from parlab.experiments import lecture3, lecture4, parallel_regions

# The model is of a CPython with a GIL: the plans it runs for their outputs,
# and the lessons that need the GIL, would be judged by another interpreter's
# rules where there is none (the free-threaded pass checks those for real).
pytestmark = pytest.mark.skipif(not gil_enabled(), reason="the machine model is of a CPython "
                                "with a GIL; this one runs without")

@pytest.fixture(scope="module")
def table() -> mm.Table:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mm.verdicts(jobs=2)
    print("\n" + mm.markdown(result))
    return result


def test_every_lesson_is_judged_at_every_core_count(table):
    assert {id for id, _ in table} == set(mm.experiment_ids())
    for (id, i), by_cores in table.items():
        assert set(by_cores) == set(mm.CORES), (id, i, by_cores)


def test_no_lesson_fails_on_the_lectures_machine(table):
    failed = mm.failures(table)
    assert not failed, "\n".join(f"{id} \"{text}\" on {n} cores: {observed}"
                                 for id, text, n, observed in failed)


def test_lessons_skip_on_one_core_rather_than_fail(table):
    one = [by[1][1] for by in table.values()]
    assert "skipped" in one
    assert one.count("holds") > one.count("inconclusive") / 2


# (rule kind, experiment, cores, the machine's knobs, the lesson that must fail)
FALSE_LESSONS = [
    ("speedup", "L1.2", 4, dict(processes=False),  # a pool's processes take turns
     "A pool of cpu_count() processes speeds up the kernel"),
    ("no_speedup", "L0.6", 4, dict(gil=False),  # held work runs in parallel: no GIL
     "Threads give nothing when the kernel holds the GIL"),
    ("faster", "L2.5", 2, dict(compiled=1.0),  # vectorised code no faster than Python
     "Vectorise first: the column expression is far faster than row-wise apply"),
    ("slower", "L3.3", 4, dict(contends=False),  # a lock that does not contend
     "100 threads on Counter locked are far slower than one thread doing every increment"),
    ("slower", "L0.2", 2, dict(thread_start_s=0.0),  # threads that cost nothing to start
     "One thread per cell (64 threads) is several times slower than the serial loop"),
    ("at_most", "L0.5", 4, dict(gil=False, thread_start_s=0.0),  # free threads, no GIL
     "One thread per row is too many tiny threads: far from the core count"),
    ("overlap", "L1.3", 2, dict(releases=False),  # released waits serialised
     "Threads overlap waits: n waits take about the time of one"),
    ("faster", "L3.4", 2, dict(releases=False),
     "Reading the next chunk while computing this one hides the reading time"),
    ("oversubscribed", "L4.2", 4, dict(hidden_cores=4),  # more cores than it says
     lecture4.OVERSUBSCRIBED),
    ("at_most", "L4.2", 4, dict(hidden_cores=4), lecture4.BEST_AT_CORES),
    ("at_most", "L4.3", 4, dict(hidden_cores=4), lecture4.FASTEST_FITS),
    ("timing", "L3.6", 2, dict(releases=False), parallel_regions.CROSSOVER),
    ("slower", "L3.2", 2, dict(contends=False),  # a cache line that does not bounce
     lecture3.CONTENTION),
]


# A false lesson must fail on a quiet VM (a tenth of the runs hit by bursts, as
# in test_verdicts' false speedups), whatever the noise's seed.
QUIET = 0.1
SEEDS = range(3)


@pytest.mark.parametrize("kind, id, cores, knobs, lesson", FALSE_LESSONS,
                         ids=[f"{k}-{id}-{','.join(knobs)}" for k, id, _, knobs, _ in FALSE_LESSONS])
def test_a_false_lesson_fails(kind, id, cores, knobs, lesson):
    for seed in SEEDS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = mm.verdicts([id], [cores], bursts=QUIET, seed=seed, **knobs)
        found = {by[cores][0]: by[cores][1:] for by in table.values()}
        verdict, observed = found[lesson]
        assert verdict == "fails", \
            f"{id} on {cores} cores with {knobs}, seed {seed}: {verdict}: {observed}"


def test_a_false_speedup_fails_on_64_cores():
    # The capacity probe's slices are long enough for 64 threads' start-up:
    # it must not excuse every failed parallel speedup there.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = mm.verdicts(["L1.2"], [64], bursts=QUIET, processes=False)
    found = {by[64][0]: by[64][1] for by in table.values()}
    assert found["A pool of cpu_count() processes speeds up the kernel"] == "fails"


def test_every_kind_of_rule_can_fail():
    kinds = {kind for kind, *_ in FALSE_LESSONS}
    assert kinds == {"speedup", "no_speedup", "faster", "slower", "at_most", "overlap",
                     "oversubscribed", "timing"}


def test_the_model_does_not_time_the_real_machine():
    # The same machine and seed give the same samples, whatever this machine does.
    with mm.stand_ins():
        a, b = (mm.run("L0.6", mm.Machine(4)).samples.seconds.tolist() for _ in range(2))
    assert a == b
