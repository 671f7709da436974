"""parlab's modules import one another without a circle.

The graph is read from the source with ``ast``: an edge for every ``import``
of a parlab module anywhere in a file (at module level, inside functions, and
under ``if TYPE_CHECKING:``, which a type checker and a reader follow too).
``from package import name`` imports ``package.name`` where that is a module;
importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``, so those
count too, except a module's own packages, which Python has imported before
the module itself.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "parlab"


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (stubs stand for extensions)."""
    found = {}
    for path in sorted([*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.pyi")]):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.setdefault(".".join(parts), path)
    return found


def imported(tree: ast.AST, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` an import in ``tree`` names."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known
                      else node.module for a in node.names}
    # Importing a.b.c runs a's and a.b's __init__ first.
    return {".".join(n.split(".")[:k]) for n in names for k in range(1, n.count(".") + 2)}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph = {}
    for name, path in known.items():
        own = {name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)} | {name}
        graph[name] = {m for m in imported(ast.parse(path.read_text(encoding="utf-8")), known)
                       if m in known and m not in own}
    return graph


def circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` (its modules in order, the first again at the end), or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for other in sorted(graph[module]):
            if state.get(other) == "open":
                return path[path.index(other):] + [other]
            if other not in state and (found := visit(other)):
                return found
        state[module] = "done"
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert "parlab.experiments.lecture0" in graph["parlab.experiments"]
    assert "parlab.experiments.framework" in graph["parlab.experiments.judging"]
    # A submodule pulls in its package's __init__; a module's own packages do not count.
    assert "parlab.experiments" in graph["parlab.magics"]
    assert "parlab" not in graph["parlab.tracing"]


def test_a_circle_is_found():
    assert circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert circle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_in_parlab():
    found = circle(import_graph())
    assert found is None, "import circle: " + " -> ".join(found)
