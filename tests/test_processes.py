"""The multiprocessing context of the experiments (parlab/_processes.py)."""
from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest

from parlab import _processes

TESTS = Path(__file__).resolve().parent


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(),
                    reason="this platform has no forkserver start method")
def test_forkserver_children_start_with_the_experiments_imported():
    # In a fresh interpreter: a forkserver that an earlier test started keeps
    # what it preloaded. The child's target lives in a module that does not
    # import parlab.experiments, so only the server's preload can have.
    code = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import fork_children
from parlab import _processes
mp = _processes.context("forkserver")
p = mp.Process(target=fork_children.exit_with_experiments_imported)
p.start()
p.join()
sys.exit(p.exitcode)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr


def test_other_start_methods_are_left_as_they_are():
    for method in multiprocessing.get_all_start_methods():
        assert _processes.context(method).get_start_method() == method
    assert (_processes.context().get_start_method()
            == multiprocessing.get_context().get_start_method())
