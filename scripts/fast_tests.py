"""The fast subset of the tests: the kernels against their references, bad
input and the public surface, in about a minute, on any platform (no compiler,
no fork, no notebooks). The one list of it: cibuildwheel runs it on every
wheel, scripts/matrix.sh on every CPython it finds, and CI on the repaired
Linux wheel.

    python scripts/fast_tests.py [PYTEST_ARGS...]

Tests whichever parlab `python` imports: the first line printed says which.
"""
from __future__ import annotations

import sys
from pathlib import Path

FAST = ["api", "bad_input", "cdist", "counter", "montecarlo"]

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    import pytest

    import parlab

    print(f"parlab {parlab.__version__} from {Path(parlab.__file__).parent}, "
          f"{parlab.info()['compiler']}, SIMD {parlab.info()['simd']}, "
          f"Python {sys.version.split()[0]}", flush=True)
    tests = [str(ROOT / "tests" / f"test_{name}.py") for name in FAST]
    return pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
                        "-c", str(ROOT / "pyproject.toml"), *tests, *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
