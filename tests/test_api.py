"""The public surface: signatures agree with the type stub, docs exist, info() reports."""
from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import parlab
import parlab._core

pytestmark = [pytest.mark.fast, pytest.mark.sanitize, pytest.mark.portability]

STUB = Path(parlab._core.__file__).with_name("_core.pyi")
KERNELS = ["cdist", "count_hits", "estimate_pi", "cpu_work", "io_wait"]
ANY_DEFAULT = object()  # the stub wrote `= ...`: it has a default, value unstated
P = inspect.Parameter


def stub_functions() -> dict[str, ast.FunctionDef]:
    """The stub's functions by name, methods as ``Class.method``."""
    tree = ast.parse(STUB.read_text(), filename=str(STUB))
    found: dict[str, ast.FunctionDef] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef):
                    found[f"{node.name}.{sub.name}"] = sub
    return found


def _default(node: ast.expr | None):
    if node is None:
        return P.empty
    value = ast.literal_eval(node)
    return ANY_DEFAULT if value is Ellipsis else value


def stub_parameters(func: ast.FunctionDef) -> list[tuple[str, inspect._ParameterKind, object]]:
    """``(name, kind, default)`` for each parameter of a stub function."""
    a = func.args
    positional = [(arg, P.POSITIONAL_ONLY) for arg in a.posonlyargs]
    positional += [(arg, P.POSITIONAL_OR_KEYWORD) for arg in a.args]
    # Positional defaults belong to the last positional parameters.
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    params = [(arg.arg, kind, _default(d)) for (arg, kind), d in zip(positional, defaults)]
    if a.vararg:
        params.append((a.vararg.arg, P.VAR_POSITIONAL, P.empty))
    params += [(arg.arg, P.KEYWORD_ONLY, _default(d))
               for arg, d in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg:
        params.append((a.kwarg.arg, P.VAR_KEYWORD, P.empty))
    return params


def runtime_parameters(obj) -> list[tuple[str, inspect._ParameterKind, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(obj).parameters.values()]


def assert_same(runtime, stub) -> None:
    assert [(n, k) for n, k, _ in runtime] == [(n, k) for n, k, _ in stub]
    for (name, _, got), (_, _, want) in zip(runtime, stub):
        if want is ANY_DEFAULT:
            assert got is not P.empty, f"{name}: the stub gives a default, the runtime none"
        else:
            assert got == want and type(got) is type(want), name


# -- signatures ----------------------------------------------------------------

def test_stub_exists_and_ships_with_py_typed():
    assert STUB.is_file()
    assert STUB.with_name("py.typed").is_file()


def test_stub_covers_exactly_the_callables():
    public = {name for name in dir(parlab._core)
              if not name.startswith("__") and callable(getattr(parlab._core, name))}
    stubbed = {name for name in stub_functions() if "." not in name}
    classes = {node.name for node in ast.parse(STUB.read_text()).body
               if isinstance(node, ast.ClassDef)}
    assert public == stubbed | classes


@pytest.mark.parametrize("name", KERNELS)
def test_kernel_signature_matches_stub(name):
    assert_same(runtime_parameters(getattr(parlab, name)),
                stub_parameters(stub_functions()[name]))


def test_increment_signature_matches_stub():
    # Compared without self, which C methods spell positional-only ($self)
    # and stubs as a plain parameter.
    assert_same(runtime_parameters(parlab.Counter().increment),
                stub_parameters(stub_functions()["Counter.increment"])[1:])


def test_counter_constructor_signature_matches_stub():
    stubs = stub_functions()
    init = stubs.get("Counter.__init__") or stubs["Counter.__new__"]
    # Drop self / cls, which a class's signature leaves out.
    assert_same(runtime_parameters(parlab.Counter), stub_parameters(init)[1:])


@pytest.mark.parametrize("name", KERNELS)
def test_release_gil_is_keyword_only_true(name):
    param = inspect.signature(getattr(parlab, name)).parameters["release_gil"]
    assert param.kind is P.KEYWORD_ONLY and param.default is True


def test_increment_keywords():
    params = inspect.signature(parlab.Counter.increment).parameters
    assert params["mode"].kind is P.KEYWORD_ONLY and params["mode"].default == "racy"
    assert params["release_gil"].kind is P.KEYWORD_ONLY and params["release_gil"].default is True


def test_documented_defaults():
    cdist = inspect.signature(parlab.cdist).parameters
    assert cdist["metric"].default == "euclidean" and cdist["out"].default is None
    for name in ("count_hits", "estimate_pi"):
        params = inspect.signature(getattr(parlab, name)).parameters
        assert params["seed"].default is None and params["start"].default == 0
    assert inspect.signature(parlab.Counter).parameters["value"].default == 0


# -- documentation -------------------------------------------------------------

DOCUMENTED = {
    **{name: getattr(parlab, name) for name in KERNELS},
    "Counter": parlab.Counter,
    "Counter.increment": parlab.Counter.increment,
    "Counter.value": parlab.Counter.value,
    "info": parlab.info,
    "parlab": parlab,
}


@pytest.mark.parametrize("name", DOCUMENTED)
def test_docstring_present(name):
    doc = inspect.getdoc(DOCUMENTED[name])
    assert doc and doc.strip(), name


def test_counter_doc_tells_about_python_increments():
    # The lesson's caveat: since CPython 3.10 a pure-Python `x += 1` in threads
    # no longer loses updates in practice, which is why the counter is in C.
    doc = parlab.Counter.__doc__
    assert "+= 1" in doc and "3.10" in doc


# -- version and info ----------------------------------------------------------

def test_version():
    assert isinstance(parlab.__version__, str)
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?([.+-]?\w+)*", parlab.__version__)


def test_public_names():
    for name in parlab.__all__:
        assert hasattr(parlab, name), name
    assert set(KERNELS) | {"Counter", "info", "__version__"} <= set(parlab.__all__)


def test_info():
    info = parlab.info()
    assert {"parlab", "python", "numpy", "compiler", "cpu_count", "gil_enabled"} <= set(info)
    assert info["parlab"] == parlab.__version__
    assert info["numpy"] == np.__version__
    assert isinstance(info["python"], str) and info["python"].startswith(
        f"{sys.version_info.major}.{sys.version_info.minor}")
    assert isinstance(info["compiler"], str) and info["compiler"]
    assert isinstance(info["cpu_count"], int) and 1 <= info["cpu_count"] <= (os.cpu_count() or 1)
    expected_gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    assert info["gil_enabled"] is expected_gil


def test_import_parlab_stays_light():
    # pandas and matplotlib load on first use (a trace read, a figure), not at import.
    code = "import sys, parlab; print(sorted({'pandas', 'matplotlib'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
