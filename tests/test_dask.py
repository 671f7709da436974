"""parlab.dask on a real cluster and on Dask's local schedulers: every answer
equals the one-call result exactly, and the tasks ran on the cluster's workers."""
from __future__ import annotations

import subprocess
import sys

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import get_task_stream
from scipy.spatial.distance import cdist as scipy_cdist

import parlab
import parlab.dask
from dask_cluster import dask_cluster  # noqa: F401 - a fixture
from parlab.experiments import beyond, run
from parlab.experiments.load_meter import Load
from parlab.experiments.framework import REGISTRY, Context, Variant
from parlab.workloads import cluster

pytestmark = [pytest.mark.parallel]

# Under pytest-run-parallel: a test that reads the shared cluster's task stream
# would see the tasks of its copies in the other threads too.
ALONE_ON_THE_CLUSTER = pytest.mark.thread_unsafe(
    reason="reads the shared cluster's task stream, where other threads' tasks show too")

LOCAL_SCHEDULERS = ["synchronous", "threads", "processes"]


def matrices(m_a=230, m_b=170, n=9, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m_a, n)), rng.standard_normal((m_b, n))


def keys_and_workers(stream) -> tuple[list[str], set[str]]:
    return [str(t["key"]) for t in stream.data], {t["worker"] for t in stream.data}


@ALONE_ON_THE_CLUSTER
@pytest.mark.parametrize("chunks", [64, (100, 50), ((30, 200), (170,)), "auto"])
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
def test_cdist_on_cluster_equals_one_call(dask_cluster, chunks, metric):
    XA, XB = matrices()
    want = parlab.cdist(XA, XB, metric=metric)
    D = parlab.dask.cdist(XA, XB, metric=metric, chunks=chunks)
    assert isinstance(D, da.Array) and D.shape == want.shape and D.dtype == np.float64
    with get_task_stream(dask_cluster.client) as stream:
        got = dask_cluster.client.compute(D).result()
    np.testing.assert_array_equal(got, want)
    keys, workers = keys_and_workers(stream)
    assert sum("parlab-cdist" in k for k in keys) == D.npartitions
    assert workers and workers <= dask_cluster.workers


@ALONE_ON_THE_CLUSTER
def test_cdist_spreads_over_both_workers(dask_cluster):
    XA, XB = matrices(2_000, 400)
    D = parlab.dask.cdist(XA, XB, chunks=(100, 400), release_gil=False)
    with get_task_stream(dask_cluster.client) as stream:
        got = dask_cluster.client.compute(D).result()
    np.testing.assert_array_equal(got, parlab.cdist(XA, XB))
    assert keys_and_workers(stream)[1] == dask_cluster.workers


@pytest.mark.parametrize("scheduler", LOCAL_SCHEDULERS)
def test_cdist_on_local_schedulers_matches_scipy(scheduler, release_gil):
    XA, XB = matrices(seed=1)
    XA_dask = da.from_array(XA, chunks=(37, 4))  # column blocks too: they are joined
    with dask.config.set(scheduler=scheduler):
        got = parlab.dask.cdist(XA_dask, XB.tolist(), chunks=50, release_gil=release_gil).compute()
    np.testing.assert_array_equal(got, parlab.cdist(XA, XB))
    np.testing.assert_allclose(got, scipy_cdist(XA, XB), rtol=1e-12, atol=1e-12)


def test_cdist_of_empty_inputs():
    XA, XB = matrices(0, 5)
    assert parlab.dask.cdist(XA, XB).compute(scheduler="synchronous").shape == (0, 5)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(XA=np.zeros(3)), ValueError, r"cdist: XA must be 2-D, got shape \(3,\)"),
    (dict(XB=np.zeros((2, 2, 2))), ValueError, "XB must be 2-D"),
    (dict(XA=np.zeros((4, 3))), ValueError, "same number of columns"),
    (dict(XA=np.zeros((4, 9), dtype=complex)), TypeError, "XA must hold real numbers"),
    (dict(metric="cosine"), ValueError, "metric must be one of"),
    (dict(release_gil=1), TypeError, "release_gil must be a bool"),
])
def test_cdist_bad_input_raises_at_once(kwargs, exc, match):
    XA, XB = matrices()
    args = {"XA": XA, "XB": XB, **kwargs}
    with pytest.raises(exc, match=match):
        parlab.dask.cdist(args.pop("XA"), args.pop("XB"), **args)


@ALONE_ON_THE_CLUSTER
@pytest.mark.parametrize("chunk", [1_000_003, 250_000, 7_777_777])
def test_count_hits_on_cluster_equals_serial(dask_cluster, chunk):
    n, seed = 3_000_001, 12345
    with get_task_stream(dask_cluster.client) as stream:
        got = parlab.dask.count_hits(n, seed=seed, chunk=chunk, client=dask_cluster.client)
    assert got == parlab.count_hits(n, seed=seed)
    keys, workers = keys_and_workers(stream)
    assert sum("_count_chunk" in k for k in keys) == -(-n // chunk)
    assert workers and workers <= dask_cluster.workers


@ALONE_ON_THE_CLUSTER
def test_estimate_pi_with_the_cluster_as_default_scheduler(dask_cluster):
    n, seed = 2_000_000, np.random.SeedSequence(99)
    with dask.config.set(scheduler=dask_cluster.client), \
            get_task_stream(dask_cluster.client) as stream:
        got = parlab.dask.estimate_pi(n, seed=seed, chunk=100_000)
    assert got == parlab.estimate_pi(n, seed=seed)
    assert keys_and_workers(stream)[1] == dask_cluster.workers  # 20 tasks reach both


@pytest.mark.parametrize("scheduler", LOCAL_SCHEDULERS)
def test_count_hits_on_local_schedulers_equals_serial(scheduler):
    n, seed = 1_234_567, 2 ** 40 + 3
    with dask.config.set(scheduler=scheduler):
        got = parlab.dask.count_hits(n, seed=seed, chunk=100_000)
        assert got == parlab.count_hits(n, seed=seed)
        assert parlab.dask.count_hits(0, seed=seed) == 0


def test_fresh_seed_is_shared_by_every_chunk(monkeypatch):
    # seed=None draws one SeedSequence here; had each task drawn its own, the
    # total would differ from the serial count over that one sequence.
    drawn = []
    real = np.random.SeedSequence

    def recording(*args, **kwargs):
        drawn.append(real(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(np.random, "SeedSequence", recording)
    with dask.config.set(scheduler="threads"):
        got = parlab.dask.count_hits(1_000_000, chunk=99_999)
    assert len(drawn) == 1
    assert got == parlab.count_hits(1_000_000, seed=drawn[0])


@pytest.mark.parametrize("func", [parlab.dask.count_hits, parlab.dask.estimate_pi])
@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((1.5,), {}, TypeError, "n_samples must be an int, not float"),
    ((True,), {}, TypeError, "n_samples must be an int, not bool"),
    ((-1,), {}, ValueError, "n_samples must be non-negative"),
    ((2 ** 63 + 1,), {}, OverflowError, "n_samples must not exceed 2[*][*]63"),
    ((10,), dict(chunk=0), ValueError, "chunk must be positive"),
    ((10,), dict(chunk="5"), TypeError, "chunk must be an int, not str"),
    ((10,), dict(seed=-1), ValueError, "seed must be non-negative"),
    ((10,), dict(seed="x"), TypeError, "seed must be None"),
])
def test_monte_carlo_bad_input(func, args, kwargs, exc, match):
    with pytest.raises(exc, match=f"{func.__name__}: {match}"):
        func(*args, **kwargs)


def test_estimate_pi_rejects_zero_samples():
    with pytest.raises(ValueError, match="estimate_pi: n_samples must be positive"):
        parlab.dask.estimate_pi(0)


def test_import_parlab_does_not_import_dask():
    code = "import sys, parlab; print('dask' in sys.modules, 'distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ------------------------------------------- the L5 workloads on the cluster

@ALONE_ON_THE_CLUSTER
@pytest.mark.parametrize("plan", ["one worker, two chains", "two workers, a chain each"])
def test_run_placed_runs_each_chain_on_its_worker(dask_cluster, plan):
    from parlab.workloads import cluster

    threads = cluster.worker_threads(dask_cluster.client)
    assert set(threads) == dask_cluster.workers and set(threads.values()) == {2}
    first, second = threads
    placement = [first, first] if plan.startswith("one") else [first, second]
    X = np.random.default_rng(4).random((300, 5))
    (shared,) = dask_cluster.client.scatter([X], broadcast=True, hash=False)
    with get_task_stream(dask_cluster.client) as stream:
        out = cluster.run_placed(dask_cluster.client, cluster.cdist_total, (shared, shared, False),
                                 placement, per_chain=3)
    assert out == [[float(parlab.cdist(X, X).sum())] * 3] * 2
    chains = [t["worker"] for t in stream.data if "_chain" in str(t["key"])]
    assert sorted(chains) == sorted(placement)


@pytest.mark.thread_unsafe(reason="forks: a child forked while other threads run may inherit "
                                  "their locks held, and deadlock")
def test_lecture_forked_workers_draw_the_same_samples():
    from parlab.workloads import cluster

    if "fork" not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip("this platform cannot fork")
    assert cluster.pool_start_method() == "fork"
    draws = cluster.global_draws(3, 50)
    assert len(draws) == 3 and all(d.shape == (50, 2) for d in draws)
    assert cluster.duplicated_draws(draws) == 2  # all three workers drew the same


def test_spawned_workers_draw_different_samples():
    """What a platform without fork (Windows) runs instead."""
    from parlab.workloads import cluster

    draws = cluster.global_draws(2, 50, start_method="spawn")
    assert len(draws) == 2 and cluster.duplicated_draws(draws) == 0


def test_duplicated_draws_counts_repeats_only():
    from parlab.workloads import cluster

    a, b = np.zeros((3, 2)), np.ones((3, 2))
    assert cluster.duplicated_draws([a, b]) == 0
    assert cluster.duplicated_draws([a, b, a.copy(), b, a]) == 3


# ----------------------------------------- L5.1-L5.3 on the cluster, and lessons that fail

@pytest.fixture
def on_cluster(dask_cluster, monkeypatch):
    """The Dask experiments use the test cluster, as ``reproduce --scheduler`` makes them."""
    monkeypatch.setenv(beyond.SCHEDULER_ENV, dask_cluster.address)
    return dask_cluster


@ALONE_ON_THE_CLUSTER
@pytest.mark.parametrize("id", ["L5.1", "L5.2", "L5.3"])
def test_dask_experiments_run_on_the_given_cluster(on_cluster, id):
    with get_task_stream(on_cluster.client) as stream:
        result = run(id, scale="tiny")
    assert result.table.correct.all(), result.table
    assert on_cluster.address in result.extras["cluster"]
    workers = {t["worker"] for t in stream.data}
    assert workers == on_cluster.workers  # every task on the cluster's workers, both used
    facts = result.lessons[~result.lessons.lesson.str.startswith(("Threads", "Worker"))]
    assert (facts.verdict == "holds").all(), facts.observed.tolist()


def test_l52_notices_a_matrix_that_differs_from_one_call(on_cluster, monkeypatch):
    real = parlab.cdist
    # The one-call reference is computed here; the workers keep the real kernel.
    monkeypatch.setattr(parlab, "cdist", lambda XA, XB, **kw: real(XA, XB, **kw) * (1 + 1e-15))
    result = run("L5.2", scale="tiny")
    assert not result.table.correct.iloc[1:].any()
    verdicts = dict(zip(result.lessons.lesson, result.lessons.verdict))
    assert verdicts["The dask.array equals one parlab.cdist call, bit for bit"] == "fails"


def test_l53_notices_a_total_that_differs_from_serial(on_cluster, monkeypatch):
    real = parlab.count_hits
    monkeypatch.setattr(parlab, "count_hits", lambda *a, **k: real(*a, **k) + 1)
    result = run("L5.3", scale="tiny")
    verdicts = dict(zip(result.lessons.lesson, result.lessons.verdict))
    assert verdicts["Every chunking on any number of workers counts exactly the serial hits"] \
        == "fails"


def test_l53_forked_lesson_fails_when_workers_draw_differently(monkeypatch):
    from parlab.workloads import cluster

    rng = np.random.default_rng(0)
    monkeypatch.setattr(cluster, "global_draws",
                        lambda processes, samples, start_method: [rng.random((samples, 2))
                                                                  for _ in range(processes)])
    ctx = Context(REGISTRY["L5.3"], "tiny", start_method="fork")
    beyond._forked_random(ctx)
    assert [le.verdict for le in ctx.lessons] == ["fails"]


def test_l53_without_fork_judges_spawned_workers(monkeypatch):
    """Where the platform cannot fork, the lesson is about spawned workers,
    named so, and fails if they repeat each other's draws."""
    from parlab.workloads import cluster

    monkeypatch.setattr(cluster.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    same = np.zeros((5, 2))
    monkeypatch.setattr(cluster, "global_draws",
                        lambda processes, samples, start_method: [same] * processes)
    ctx = Context(REGISTRY["L5.3"], "tiny")
    beyond._forked_random(ctx)
    assert [le.verdict for le in ctx.lessons] == ["fails"]
    assert "spawn Pool workers" in ctx.lessons[0].text


def made_up(seconds: float, workers: int = 1) -> Variant:
    return Variant(f"v{seconds}-{workers}", "test", workers, None, [seconds], None,
                   True, "anything", Load(wall_s=1.0, cores=2))


@pytest.mark.parametrize("times, broken", [
    # (serial, 1 worker x 2 threads, 2 workers x 1 thread) per job: released, held, pure
    ([(1, .5, .5), (1, 1, .5), (1, 1, .5)], set()),
    ([(1, 1, .5), (1, 1, .5), (1, 1, .5)], {0, 1, 2}),  # no thread speedup: the rest can't count
    ([(1, .5, .5), (1, .5, .5), (1, 1, .5)], {1}),  # held work sped up by threads
    ([(1, .5, .5), (1, 1, .5), (1, .5, .5)], {2}),  # pure Python sped up by threads
    ([(1, .5, .5), (1, 1, 1), (1, 1, .5)], {4}),  # held work not sped up by processes
    ([(1, .5, .5), (1, 1, .5), (1, 1, 1)], {5}),  # pure Python not sped up by processes
])
def test_l51_lessons_fail_when_their_timings_do(times, broken):
    ctx = Context(REGISTRY["L5.1"], "tiny")
    ctx.cores = 2
    measured = [[made_up(s, w) for s, w in zip(row, (1, 2, 2))] for row in times]
    beyond.judge(ctx, measured)
    if not parlab.info()["gil_enabled"]:
        # Without a GIL lesson 2 (it needs the GIL) claims that pure-Python
        # threads do speed up: it breaks exactly when they do not.
        broken = (broken - {2}) | ({2} if times[2][1] == 1 else set())
    got = [le.verdict for le in ctx.lessons]
    assert len(got) == 6
    assert {i for i, v in enumerate(got) if v != "holds"} == broken, got


# ------------------------------------------------- python -m parlab reproduce --scheduler

def parlab_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parlab", *args], capture_output=True,
                          text=True, timeout=300, env=env)


@ALONE_ON_THE_CLUSTER
def test_reproduce_runs_the_dask_experiments_on_the_named_cluster(dask_cluster, tmp_path):
    out = tmp_path / "rep"
    with get_task_stream(dask_cluster.client) as stream:
        proc = parlab_cli("reproduce", "--scale", "tiny", "--only", "L5.3", "--out", str(out),
                          "--scheduler", dask_cluster.address)
    assert proc.returncode == 0, proc.stderr
    assert "_count_chunk" in " ".join(str(t["key"]) for t in stream.data)
    assert {t["worker"] for t in stream.data} <= dask_cluster.workers
    report = (out / "report.md").read_text()
    assert "# Beyond the lectures" in report
    assert f"Ran on a Dask cluster of 2 workers (2, 2 threads) at {dask_cluster.address}" in report


@pytest.mark.parametrize("address, message", [
    ("localhost:8786", "expected a scheduler address like tcp://HOST:PORT"),
    ("tcp://127.0.0.1:1", "Timed out"),  # nothing listens on port 1
])
def test_reproduce_rejects_a_scheduler_it_cannot_use(address, message, tmp_path):
    proc = parlab_cli("reproduce", "--scale", "tiny", "--only", "L5.3", "--out",
                      str(tmp_path / "rep"), "--scheduler", address)
    assert proc.returncode == 2
    assert f"--scheduler {address}" in proc.stderr and message in proc.stderr
    assert not (tmp_path / "rep").exists()


def test_list_shows_the_beyond_the_lectures_group():
    proc = parlab_cli("list")
    assert proc.returncode == 0, proc.stderr
    beyond_part = proc.stdout.split("Beyond the lectures", 1)[1]
    assert all(f"L5.{i}" in beyond_part for i in (1, 2, 3)) and "L4." not in beyond_part


def test_l51_skips_on_a_cluster_without_two_workers(monkeypatch):
    from distributed import LocalCluster

    with dask.config.set(cluster.profiler_config()), \
            LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                         dashboard_address=":0") as small:
        monkeypatch.setenv(beyond.SCHEDULER_ENV, small.scheduler_address)
        result = run("L5.1", scale="tiny")
    assert list(result.lessons.verdict) == ["skipped"] * 6
    assert all("needs 2 workers" in o for o in result.lessons.observed)
