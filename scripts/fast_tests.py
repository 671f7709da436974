"""The fast subset of the tests (the modules marked ``fast``): the kernels
against their references, bad input and the public surface, in about a
minute, on any platform (no compiler, no fork, no notebooks). cibuildwheel
runs it on every wheel, scripts/matrix.sh on every CPython it finds.

    python scripts/fast_tests.py [PYTEST_ARGS...]

Tests whichever parlab `python` imports: the first line printed says which.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def marked_fast(module: Path) -> bool:
    """Whether the test module's ``pytestmark`` holds ``pytest.mark.fast``.

    Read, not imported: a wheel's tests have the fast subset's dependencies,
    not those that the other modules import (Jupyter's, VizTracer).
    """
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark"
                                                for t in node.targets):
            return any(isinstance(n, ast.Attribute) and n.attr == "fast"
                       for n in ast.walk(node.value))
    return False


def main(argv: list[str]) -> int:
    import pytest

    import parlab

    print(f"parlab {parlab.__version__} from {Path(parlab.__file__).parent}, "
          f"{parlab.info()['compiler']}, SIMD {parlab.info()['simd']}, "
          f"Python {sys.version.split()[0]}", flush=True)
    tests = [str(m) for m in sorted((ROOT / "tests").glob("test_*.py")) if marked_fast(m)]
    return pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
                        "-c", str(ROOT / "pyproject.toml"), "-m", "fast", *tests, *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
