"""Other Python interpreters as workers: this one with its GIL switched on or
off (``PYTHON_GIL``, free-threaded builds only), or another build, such as
the normal one beside a free-threaded one.

A :class:`Worker` is a child process that runs functions named
``"module:function"`` with JSON arguments, one call at a time, and answers in
JSON; a call's round trip costs well under a millisecond, so calls can be
timed like any other work. ``PARLAB_PYTHONS`` (paths joined by ``os.pathsep``)
names further interpreters for the experiments that compare builds; each
needs parlab installed.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from typing import Any

PYTHONS_ENV = "PARLAB_PYTHONS"
START_TIMEOUT_S = 120


def free_threaded() -> bool:
    """Whether this interpreter is a free-threaded build (its GIL can be off)."""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def describe() -> dict[str, Any]:
    """What a worker reports when it starts: build, version, GIL, held mode."""
    import parlab

    info = parlab.info()
    return {"python": sys.executable, "version": info["python"],
            "free_threaded": free_threaded(), "gil_enabled": info["gil_enabled"],
            "held_mode": info["held_mode"], "options": build_options()}


def build_options() -> list[str]:
    """The ways this interpreter was built that change how fast Python runs,
    besides the GIL: a shared libpython (position-independent, calls through
    the PLT: pyenv's default), profile-guided and link-time optimisation."""
    args = sysconfig.get_config_var("CONFIG_ARGS") or ""
    options = {"a shared libpython": bool(sysconfig.get_config_var("PY_ENABLE_SHARED")),
               "PGO": "--enable-optimizations" in args, "LTO": "--with-lto" in args}
    return [option for option, on in options.items() if on]


def named_pythons() -> list[str]:
    """The interpreters ``PARLAB_PYTHONS`` names, other than this one."""
    paths = [p for p in os.environ.get(PYTHONS_ENV, "").split(os.pathsep) if p]
    here = os.path.realpath(sys.executable)
    return [p for p in dict.fromkeys(paths) if os.path.realpath(p) != here]


class WorkerError(RuntimeError):
    """A worker could not start, or a call in it raised."""


class Worker:
    """``python`` (default: this interpreter) as a child process, its GIL
    forced on (``gil=True``) or off (``gil=False``) through ``PYTHON_GIL``,
    or left as the build has it (``gil=None``). A context manager.

    ``about`` is the worker's :func:`describe`.
    """

    def __init__(self, python: str | None = None, *, gil: bool | None = None):
        env = dict(os.environ)
        env.pop("PYTHON_GIL", None)
        if gil is not None:
            env["PYTHON_GIL"] = "1" if gil else "0"
        self.python = python or sys.executable
        # A file, not a pipe: a worker that writes much to stderr never blocks.
        self._err = tempfile.TemporaryFile("w+")
        try:
            self._proc = subprocess.Popen(
                [self.python, "-c", "from parlab.experiments.interpreters import serve; serve()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
                env=env, text=True)
        except OSError as exc:
            self._err.close()
            raise WorkerError(f"cannot start {self.python}: {exc}") from None
        try:
            self.about: dict[str, Any] = self._answer(f"starting {self.python}")
        except BaseException:
            self.close()
            raise

    def call(self, name: str, *args: Any) -> Any:
        """``module.function(*args)`` in the worker; its result."""
        self._proc.stdin.write(json.dumps([name, args]) + "\n")
        self._proc.stdin.flush()
        return self._answer(name)

    def _answer(self, what: str) -> Any:
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(START_TIMEOUT_S)
            self._err.seek(0)
            raise WorkerError(f"{what}: {self.python} exited ({self._proc.returncode}): "
                              f"{self._err.read()[-2000:]}")
        reply = json.loads(line)
        if "error" in reply:
            raise WorkerError(f"{what} in {self.python}: {reply['error']}")
        return reply["ok"]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc.stdout.close()
        self._err.close()

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def other_builds() -> list[tuple[str, dict[str, Any]]]:
    """The interpreters ``PARLAB_PYTHONS`` names whose build is not this one's
    (free-threaded or not), each with its :func:`describe`; one without parlab
    is no candidate."""
    found = []
    for python in named_pythons():
        with contextlib.suppress(WorkerError):
            with Worker(python) as probe:
                if probe.about["free_threaded"] != free_threaded():
                    found.append((python, probe.about))
    return found


def serve() -> None:
    """The worker's loop: one JSON request per line on stdin, one answer per
    line on what was stdout (the functions' own prints go to stderr)."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr

    def answer(reply: dict) -> None:
        out.write(json.dumps(reply) + "\n")
        out.flush()

    answer({"ok": describe()})
    for line in sys.stdin:
        name, args = json.loads(line)
        module, _, function = name.partition(":")
        try:
            answer({"ok": getattr(importlib.import_module(module), function)(*args)})
        except Exception as exc:  # reported to the caller, which raises it
            answer({"error": f"{type(exc).__name__}: {exc}"})
