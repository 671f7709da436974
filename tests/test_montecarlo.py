"""count_hits and estimate_pi against the NumPy reference generator."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import parlab
import rng_reference as ref
from conftest import run_threaded

pytestmark = [pytest.mark.fast, pytest.mark.sanitize, pytest.mark.portability,
              pytest.mark.parallel, pytest.mark.tsan]

INT63 = 2**63
SEEDS = {
    "0": 0,
    "1": 1,
    "12345": 12345,
    "2**63+5": 2**63 + 5,
    "2**64-1": 2**64 - 1,
    "2**70": 2**70,
    "SeedSequence": np.random.SeedSequence(20240917),
    "SeedSequence-spawn_key": np.random.SeedSequence(7, spawn_key=(3, 1)),
}
SIZES = [0, 1, 7, 10**5, 10**6]
STARTS = [0, 3, 2**40, 2**63 - 10]


def _cases():
    for seed_id, seed in SEEDS.items():
        for n in SIZES:
            yield pytest.param(seed, n, 0, id=f"seed={seed_id}-n={n}-start=0")
    # Every start with a few seeds, at every size that fits below 2**63.
    for seed_id in ("0", "2**64-1", "SeedSequence-spawn_key"):
        for start in STARTS[1:]:
            for n in SIZES:
                if start + n <= INT63:
                    yield pytest.param(SEEDS[seed_id], n, start,
                                       id=f"seed={seed_id}-n={n}-start={start}")


@pytest.mark.parametrize("seed, n, start", list(_cases()))
def test_count_hits_equals_reference(seed, n, start):
    assert parlab.count_hits(n, seed=seed, start=start) == ref.count_hits(n, seed, start)


def test_numpy_integer_seed_is_the_same_seed():
    assert parlab.count_hits(1000, seed=np.uint64(2**64 - 1)) == ref.count_hits(1000, 2**64 - 1)
    assert parlab.count_hits(1000, seed=np.int32(5)) == ref.count_hits(1000, 5)


def test_last_sample_below_2_63_is_allowed():
    assert parlab.count_hits(10, seed=3, start=INT63 - 10) == ref.count_hits(10, 3, INT63 - 10)
    assert parlab.count_hits(0, seed=3, start=INT63 - 1) == 0
    with pytest.raises(OverflowError, match="start"):
        parlab.count_hits(11, seed=3, start=INT63 - 10)


def test_chunks_add_up_random_splits():
    rng = np.random.default_rng(11)
    n = 200_003
    whole = parlab.count_hits(n, seed=99)
    for _ in range(20):
        k = int(rng.integers(0, n + 1))
        assert whole == (parlab.count_hits(k, seed=99)
                         + parlab.count_hits(n - k, seed=99, start=k))


def test_chunks_add_up_many_chunks():
    rng = np.random.default_rng(12)
    n, start = 10**6, 2**40
    cuts = np.sort(rng.integers(0, n + 1, 500))
    bounds = [0, *cuts.tolist(), n]
    total = sum(parlab.count_hits(b - a, seed=5, start=start + a)
                for a, b in zip(bounds, bounds[1:]))
    assert total == parlab.count_hits(n, seed=5, start=start) == ref.count_hits(n, 5, start)


@pytest.mark.parametrize("n_threads", [2, 8])
def test_chunks_add_up_across_threads(release_gil, n_threads):
    n = 10**6
    bounds = np.linspace(0, n, n_threads + 1).astype(int)
    parts = run_threaded(
        lambda t: parlab.count_hits(int(bounds[t + 1] - bounds[t]), seed=42,
                                    start=int(bounds[t]), release_gil=release_gil),
        n_threads)
    assert sum(parts) == parlab.count_hits(n, seed=42)


def test_reproducible():
    assert parlab.count_hits(10**5, seed=8) == parlab.count_hits(10**5, seed=8)
    assert parlab.estimate_pi(10**5, seed=8) == parlab.estimate_pi(10**5, seed=8)


def test_different_seeds_differ():
    counts = {parlab.count_hits(10**5, seed=s) for s in range(5)}
    assert len(counts) > 1


def test_seed_none_varies():
    # Five draws from Binomial(1e5, pi/4) all equal has probability far below 1e-9.
    assert len({parlab.count_hits(10**5) for _ in range(5)}) > 1


def test_estimate_within_5_sigma():
    n = 10**6
    p = math.pi / 4
    sigma = 4 * math.sqrt(p * (1 - p) / n)
    assert abs(parlab.estimate_pi(n, seed=2024) - math.pi) < 5 * sigma


@pytest.mark.parametrize("n, seed, start", [(1, 0, 0), (7, 1, 3), (10**5, 2**70, 2**40),
                                            (999_983, 12345, 0)])
def test_estimate_pi_is_4_hits_over_n(n, seed, start):
    hits = parlab.count_hits(n, seed=seed, start=start)
    assert parlab.estimate_pi(n, seed=seed, start=start) == 4 * hits / n


def test_count_hits_of_nothing_is_zero():
    assert parlab.count_hits(0) == 0
    assert parlab.count_hits(0, seed=1, start=5) == 0


def test_released_and_held_identical():
    for seed in (0, 2**70, SEEDS["SeedSequence"]):
        assert (parlab.count_hits(10**5, seed=seed, start=17, release_gil=True)
                == parlab.count_hits(10**5, seed=seed, start=17, release_gil=False))
        assert (parlab.estimate_pi(10**5, seed=seed, release_gil=True)
                == parlab.estimate_pi(10**5, seed=seed, release_gil=False))


def test_return_types():
    assert type(parlab.count_hits(10, seed=0)) is int
    assert type(parlab.estimate_pi(10, seed=0)) is float


# -- hypothesis ----------------------------------------------------------------

SEED_STRATEGY = st.one_of(
    st.integers(0, 2**64 - 1),  # the C path
    st.integers(2**64, 2**130),  # through SeedSequence
    st.builds(np.random.SeedSequence, st.integers(0, 2**128),
              spawn_key=st.lists(st.integers(0, 2**32 - 1), max_size=3).map(tuple)),
)


@given(seed=SEED_STRATEGY, n=st.integers(0, 3000),
       data=st.data(), release_gil=st.booleans())
def test_count_hits_matches_reference_hypothesis(seed, n, data, release_gil):
    last = min(INT63 - n, INT63 - 1)  # the last sample's index stays below 2**63
    start = data.draw(st.one_of(st.integers(0, 2**40), st.integers(0, last), st.just(last)),
                      label="start")
    hits = parlab.count_hits(n, seed=seed, start=start, release_gil=release_gil)
    assert hits == ref.count_hits(n, seed, start)
    if n:
        assert parlab.estimate_pi(n, seed=seed, start=start, release_gil=release_gil) \
            == 4 * hits / n


@given(seed=SEED_STRATEGY, n=st.integers(0, 5000), start=st.integers(0, 2**62),
       cuts=st.lists(st.integers(0, 5000), max_size=6), release_gil=st.booleans())
def test_chunks_add_up_hypothesis(seed, n, start, cuts, release_gil):
    bounds = [0, *sorted(min(c, n) for c in cuts), n]
    parts = [parlab.count_hits(b - a, seed=seed, start=start + a, release_gil=release_gil)
             for a, b in zip(bounds, bounds[1:])]
    assert sum(parts) == parlab.count_hits(n, seed=seed, start=start)
