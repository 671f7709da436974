"""The notebooks as students see them: executed at tiny scale and rendered to
HTML by scripts/render_notebooks.sh, then opened in headless Chromium (Debian's
``chromium``, driven from the command line: nothing to download, and every
host name it would look up fails, so nothing reaches the network).

On each page every figure must be a loaded picture of non-zero size (and
every picture the notebook made must be on the page), no output may hold a
traceback, and no table may be cut off at a laptop's window width. A
full-page screenshot of each is kept beside the page.

Marked ``browser``: deselected from the main run (pyproject's addopts);
scripts/ci-browser.sh installs Chromium and runs it with ``-m browser``.
PARLAB_RENDER_DIR keeps the pages and screenshots there (default: a
temporary folder).
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
RENDER = ROOT / "scripts" / "render_notebooks.sh"
CHECK_JS = (Path(__file__).parent / "page_check.js").read_text()
WINDOW_WIDTH = 1280  # a laptop's browser window
# Chromium draws at most this tall a screenshot in one piece.
MAX_SHOT_HEIGHT = 16_000
CHROMIUM_TIMEOUT_S = 120
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")

pytestmark = pytest.mark.browser


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("no chromium on PATH: scripts/ci-browser.sh installs Debian's")
    return path


def run_chromium(*args: str, window_height: int = 900) -> str:
    """Chromium's stdout for a headless run with no network and a fresh profile."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", "--disable-extensions", "--disable-background-networking",
             f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
             f"--window-size={WINDOW_WIDTH},{window_height}", "--virtual-time-budget=10000",
             *args],
            capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def measure(page: Path) -> dict:
    """What page_check.js measured on ``page`` once loaded."""
    with tempfile.TemporaryDirectory() as tmp:
        checked = Path(tmp) / page.name
        head, tail = page.read_text(encoding="utf-8").rsplit("</body>", 1)
        checked.write_text(f"{head}<script>{CHECK_JS}</script></body>{tail}", encoding="utf-8")
        dom = run_chromium("--dump-dom", checked.as_uri())
    found = re.findall(r'<pre id="parlab-check">(.*?)</pre>', dom, re.S)
    assert found, "the page check did not run: " + dom[-500:]
    return json.loads(html.unescape(found[-1]))


def screenshot(page: Path, height: int) -> Path:
    shot = page.with_suffix(".png")
    run_chromium(f"--screenshot={shot}", page.as_uri(),
                 window_height=max(600, min(height, MAX_SHOT_HEIGHT)))
    return shot


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def problems(page: Path, nb) -> tuple[dict[str, list], dict]:
    """Everything wrong with a rendered page of the executed notebook ``nb``, by kind."""
    seen = measure(page)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    pictures = sum(1 for o in outputs if any(t in o.get("data", {}) for t in IMAGE_TYPES))
    found = {
        "images": [i for i in seen["images"]
                   if not i["loaded"] or min(i["shown"]) <= 0 or min(i["natural"]) <= 0],
        "figures as text": seen["textFigures"],
        "tracebacks": seen["tracebacks"] + [o.ename for o in outputs
                                            if o.output_type == "error"],
        "cut off": seen["cutOff"],
        "page wider than the window": ([seen["width"]] if seen["width"] > seen["viewport"]
                                       else []),
        "pictures missing from the page": ([f"{pictures} made, {len(seen['images'])} shown"]
                                           if len(seen["images"]) != pictures else []),
    }
    return {kind: items for kind, items in found.items() if items}, seen


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = Path(os.environ.get("PARLAB_RENDER_DIR") or tmp_path_factory.mktemp("rendered")).resolve()
    subprocess.run(["bash", str(RENDER), str(out)], check=True,
                   env={**os.environ, "PYTHON": sys.executable, "PARLAB_SCALE": "tiny"})
    return out


def test_every_notebook_is_rendered(rendered):
    assert NOTEBOOKS
    assert sorted(p.stem for p in rendered.glob("*.html")) == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_page_shows_figures_and_whole_tables_and_no_traceback(rendered, notebook):
    page = rendered / f"{notebook.stem}.html"
    nb = nbformat.read(rendered / f"{notebook.stem}.ipynb", as_version=4)
    found, seen = problems(page, nb)
    shot = screenshot(page, seen["height"])
    assert png_size(shot) == (WINDOW_WIDTH, max(600, min(seen["height"], MAX_SHOT_HEIGHT)))
    assert seen["images"], "a lecture notebook with no figure"
    assert not found, json.dumps(found, indent=1)[:4000]


def test_the_page_check_finds_each_problem(tmp_path):
    # A notebook with one of each problem: the checks above can fail.
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in [
        "import pandas as pd\n"
        "pd.DataFrame([range(60)], columns=[f'a long column name {i}' for i in range(60)])",
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "print(repr(plt.figure()))",
        "from IPython.display import HTML\n"
        "HTML('<img src=\"data:image/png;base64,iVBORw0KGgo=\">')",
        "1 / 0",
    ]])
    NotebookClient(nb, kernel_name="python3", timeout=300, allow_errors=True).execute()
    page = tmp_path / "bad.html"
    page.write_text(HTMLExporter().from_notebook_node(nb)[0], encoding="utf-8")
    found, _ = problems(page, nb)
    assert set(found) == {"cut off", "figures as text", "images", "tracebacks",
                          "pictures missing from the page"}, found
    assert found["tracebacks"][-1] == "ZeroDivisionError"
