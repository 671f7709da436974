"""The wheels: what cibuildwheel builds is what the README promises.

cibuildwheel (the release the workflow pins, installed by the test extra) runs
offline with ``--print-build-identifiers`` for each runner of
``.github/workflows/wheels.yml``, with that runner's ``CIBW_ARCHS``, on
``pyproject.toml``'s ``[tool.cibuildwheel]``; the identifiers must be exactly
the README's table of wheels ("### Wheels"), so the three cannot drift apart.
The workflow is linted with actionlint (the test extra installs it on Linux
x86-64, where CI runs).
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

if sys.version_info < (3, 11):
    pytest.skip("cibuildwheel 4 runs on Python 3.11 or newer", allow_module_level=True)

import tomllib  # noqa: E402  (3.11+)

import yaml  # noqa: E402  (Dask's dependency)

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "wheels.yml"
README = ROOT / "README.md"
PLATFORM_OF_RUNNER = {"ubuntu": "linux", "macos": "macos", "windows": "windows"}


def readme_wheels() -> dict[tuple[str, str], set[str]]:
    """{(runner, arch): {identifier, ...}} from the README's table of wheels."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n### Wheels\n", 1)[1]
    section = re.split(r"\n#+ ", section, maxsplit=1)[0]
    wheels = {}
    for row in re.findall(r"^\| `([a-z0-9_]+)` \|(.+)\|(.+)\|$", section, re.M):
        platform_tag, runner_cell, pythons = row
        runner, arch = re.fullmatch(r" `([\w.-]+)` \(`(\w+)`\) ", runner_cell).groups()
        wheels[runner, arch] = {f"{py}-{platform_tag}" for py in re.findall(r"`(cp\d+t?)`", pythons)}
    return wheels


def workflow_runners() -> list[tuple[str, str]]:
    """(runner, CIBW_ARCHS) of each job of the wheels workflow's matrix."""
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return [(entry["os"], entry["archs"])
            for entry in workflow["jobs"]["wheels"]["strategy"]["matrix"]["include"]]


def workflow_cibuildwheel_version() -> str:
    match = re.search(r"uses: pypa/cibuildwheel@v([\d.]+)", WORKFLOW.read_text(encoding="utf-8"))
    assert match, "wheels.yml does not use pypa/cibuildwheel@vX.Y.Z"
    return match.group(1)


def test_classifiers_and_requires_python_name_the_cpythons_built():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    built = {f"3.{tag[3:].rstrip('t-*')}" for tag in project["tool"]["cibuildwheel"]["build"]}
    prefix = "Programming Language :: Python :: "
    named = {c[len(prefix):] for c in project["project"]["classifiers"]
             if re.fullmatch(re.escape(prefix) + r"3\.\d+", c)}
    assert named == built
    oldest = min(built, key=lambda v: int(v.split(".")[1]))
    assert project["project"]["requires-python"] == f">={oldest}"


def test_readme_lists_every_runner_of_the_workflow():
    wheels = readme_wheels()
    assert wheels, "README.md: no table of wheels under '### Wheels'"
    assert sorted(wheels) == sorted(workflow_runners())


def test_installed_cibuildwheel_is_the_one_the_workflow_runs():
    installed = metadata.version("cibuildwheel")
    assert installed == workflow_cibuildwheel_version(), (
        f"the test extra installed cibuildwheel {installed}, the workflow pins "
        f"{workflow_cibuildwheel_version()}: pin the same in pyproject.toml")


@pytest.mark.parametrize("runner,archs", workflow_runners())
def test_cibuildwheel_builds_what_the_readme_lists(runner, archs):
    platform = PLATFORM_OF_RUNNER[runner.split("-")[0]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    env["CIBW_ARCHS"] = archs
    out = subprocess.run(
        [sys.executable, "-m", "cibuildwheel", "--print-build-identifiers", "--platform", platform,
         str(ROOT)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert set(out.stdout.split()) == readme_wheels()[runner, archs]


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64",
                    reason="the test extra brings actionlint on Linux x86-64 only")
def test_workflow_lints_clean():
    here = Path(sys.executable).parent / "actionlint"
    actionlint = str(here) if here.exists() else shutil.which("actionlint")
    assert actionlint, "actionlint is missing: install parlab's test extra"
    out = subprocess.run([actionlint, "-no-color", str(WORKFLOW)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
