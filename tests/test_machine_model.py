"""The lesson rules on a modelled machine of 1 to 64 cores (tests/machine_model.py).

Every lesson of every experiment, judged by its own rule on the model's times
for N in machine_model.CORES: never ``fails`` where the lectures' machine
behaves as the lectures say (but for the lessons listed in RULES_FOR_FEW_CORES,
whose rules are written for two cores and are being fixed). And on a machine
where a lesson is false, its rule says ``fails``: at least one such machine
for every kind of rule. ``python tests/machine_model.py`` prints the table.
"""
from __future__ import annotations

import warnings

import pytest

import machine_model as mm
from parlab.experiments import lecture3, lecture4, parallel_regions

# (experiment, lesson, cores): lessons the model shows failing because their
# rule is written for a machine of about two cores (issue 22), with what fails.
RULES_FOR_FEW_CORES = {
    # On one core nothing contends across cores: 100 threads cost their start-up only.
    ("L3.3", "100 threads on Counter locked are far slower than one thread doing every "
             "increment", 1),
    # On one core two threads never win, so no crossover size exists.
    ("L3.6", parallel_regions.CROSSOVER, 1),
    # 10 tasks on 8 workers run in two waves, on 16 time-shared in one: the
    # oversubscribed pool is faster, which the rule reads as a gain.
    ("L1.2", "More processes than cores bring no further speedup", 8),
    ("L1.4", "n_jobs far above the core count gains nothing (threads)", 8),
    ("L1.4", "n_jobs far above the core count gains nothing (processes)", 8),
    # The tiny scale's 4 chunks cannot give 16 workers the 5.5x the rule needs.
    ("L1.5", "Processes speed up the pure loop (Pool.starmap)", 16),
    ("L1.5", "Processes speed up the pure loop (joblib processes)", 16),
}
# Rules that noise alone can make fail: L4.2's "best at the core count" compares
# the medians of every thread count once, without more rounds, and a median
# hit by a burst makes an oversubscribed count look fastest.
NOISE = {("L4.2", lecture4.BEST_AT_CORES, n) for n in mm.CORES}
# Lessons the model does not decide: the tiny scale's real run measures them
# on this machine (L4.4: Dask's peak memory with N threads, against 4 MB;
# L6.3: how much two traced calls overlapped).
MEASURED_FOR_REAL = {"L4.4", "L6.3"}


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
    unexpected = [(id, text, n, observed) for id, text, n, observed in mm.failures(table)
                  if (id, text, n) not in RULES_FOR_FEW_CORES | NOISE
                  and id not in MEASURED_FOR_REAL]
    assert not unexpected, "\n".join(f"{id} \"{text}\" on {n} cores: {observed}"
                                     for id, text, n, observed in unexpected)


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
    ("timing", "L4.2", 4, dict(hidden_cores=4), lecture4.BEST_AT_CORES),
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


@pytest.mark.xfail(strict=True, reason="the capacity probe (framework.PROBE_S of released "
                   "cpu_work) is too short to show 64 threads' speedup past their start-up, "
                   "so on 64 cores it excuses every failed parallel speedup")
def test_a_false_speedup_fails_on_64_cores():
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
