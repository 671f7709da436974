"""A real Dask cluster for tests: a ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1, started as subprocesses and stopped afterwards.

Test modules import the fixture (``from dask_cluster import dask_cluster``).
Ports are the OS's choice (``--port 0``, ``--worker-port 0``); the
scheduler writes its address to a scheduler file that the workers and the
client read. Every wait is bounded, and a process that does not stop when
asked is killed.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parlab.workloads.cluster import profiler_env

WORKERS = 2
THREADS_PER_WORKER = 2
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15


@dataclasses.dataclass
class Cluster:
    address: str
    client: object  # distributed.Client
    workers: set[str]  # the workers' addresses, as the scheduler knows them


def _dask(*args: str, log: Path) -> subprocess.Popen:
    out = open(log, "wb")
    try:
        return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **profiler_env()})
    finally:
        out.close()  # the child holds its own descriptor


def _wait_for_file(path: Path, procs: list[subprocess.Popen], logs: list[Path]) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if path.exists():
            try:
                return json.loads(path.read_text())["address"]
            except (ValueError, KeyError):
                pass  # written but not yet complete
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.1)
    raise RuntimeError(f"dask scheduler did not start:\n{_tails(logs)}")


def _tails(logs: list[Path]) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}"
                     for log in logs if log.exists())


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(STOP_TIMEOUT_S)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A running two-worker cluster and a ``distributed.Client`` connected to it."""
    from distributed import Client

    tmp = tmp_path_factory.mktemp("dask-cluster")
    scheduler_file = tmp / "scheduler.json"
    common = ["--scheduler-file", str(scheduler_file), "--no-dashboard"]
    logs = [tmp / "scheduler.log"] + [tmp / f"worker{i}.log" for i in range(WORKERS)]
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", "0", *common, log=logs[0])]
    client = None
    try:
        address = _wait_for_file(scheduler_file, procs, logs)
        # --no-nanny: one process per worker, so stopping it stops the worker.
        procs += [_dask("worker", "--host", "127.0.0.1", "--worker-port", "0",
                        "--nthreads", str(THREADS_PER_WORKER), "--no-nanny",
                        "--name", f"parlab-test-{i}", *common, log=logs[1 + i])
                  for i in range(WORKERS)]
        client = Client(address, timeout=START_TIMEOUT_S, set_as_default=False)
        try:
            client.wait_for_workers(WORKERS, timeout=START_TIMEOUT_S)
        except TimeoutError:
            raise RuntimeError(f"dask workers did not join:\n{_tails(logs)}") from None
        workers = set(client.scheduler_info(n_workers=-1)["workers"])
        yield Cluster(address, client, workers)
    finally:
        if client is not None:
            client.close(timeout=STOP_TIMEOUT_S)
        _stop(procs[::-1])  # workers first, then the scheduler
