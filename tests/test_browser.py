"""The DatasetViewer in a real browser: JupyterLab on localhost, driven by headless Chromium.

What a learner does, done by Playwright: open `tests/browser/viewer_demo.ipynb`, Run > Run All
Cells, wait for the viewer, click "next", and see the picture change; no "Error displaying
widget" anywhere. A screenshot is saved to `test-artifacts/browser/viewer.png`.

Needs Debian's `chromium` (/usr/bin/chromium) and the `playwright` Python package (its own
browser downloads are not used); the test is skipped, saying which is missing, without them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser_util import launch, sync_playwright_or_skip

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "tests/browser/viewer_demo.ipynb"
SCREENSHOT = REPO / "test-artifacts" / "browser" / "viewer.png"
TIMEOUT_MS = 30_000  # any single wait in the browser ...
WIDGET_TIMEOUT_MS = 90_000  # ... but the first output, which waits for torch to import
SERVER_START_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _copy_inputs(root: Path) -> None:
    """The notebook and the data it reads, at the same relative paths as in the repository."""
    (root / NOTEBOOK).parent.mkdir(parents=True)
    shutil.copy(REPO / NOTEBOOK, root / NOTEBOOK)
    scenes = root / "data_samples" / "scenes"
    scenes.mkdir(parents=True)
    shutil.copy(REPO / "data_samples" / "scenes" / "dataset.json", scenes)
    shutil.copytree(REPO / "data_samples" / "scenes" / "val", scenes / "val")


def _lab_environment(tmp: Path) -> dict[str, str]:
    """Fresh Jupyter config, runtime, settings and workspaces: nothing from the user's set-up."""
    env = dict(os.environ)
    for name in (
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_RUNTIME_DIR",
        "JUPYTERLAB_SETTINGS_DIR",
        "JUPYTERLAB_WORKSPACES_DIR",
    ):
        env[name] = str(tmp / name.lower())
        Path(env[name]).mkdir()
    # No "receive Jupyter news?" toast over the page (and no attempt to fetch news).
    notification = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # Start the notebook's kernel without asking ("Select Kernel" dialog).
    tracker = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True})
    )
    # The kernel runs this environment's python (the one with segtutor installed).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MPLBACKEND", None)  # let the kernel use its inline backend, as for a learner
    return env


def _wait_for_server(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


def _stop(server: subprocess.Popen) -> None:
    """Terminate JupyterLab (it shuts its kernel down), wait, then kill what is left."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
    # A kernel that outlived the server: the group was started for this test only.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)


@pytest.mark.slow  # starts JupyterLab and a browser
def test_dataset_viewer_in_jupyterlab(tmp_path):
    sync_playwright = sync_playwright_or_skip()

    start = time.monotonic()
    root = tmp_path / "root"
    _copy_inputs(root)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "jupyterlab.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                f"--port={port}",
                "--ip=127.0.0.1",
                "--IdentityProvider.token=",
                f"--ServerApp.root_dir={root}",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                *(["--allow-root"] if os.geteuid() == 0 else []),
            ],  # CI runs as root
            env=_lab_environment(tmp_path),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kernel goes with it
        )
    console: list[str] = []
    try:
        _wait_for_server(url, server, log)
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            try:
                page.goto(f"{url}/lab/tree/{NOTEBOOK}")

                # The kernel is up (and connected) when the status bar says so.
                page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
                page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
                page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()

                image = page.locator(".jp-OutputArea-output img.widget-image")
                image.wait_for(state="visible", timeout=WIDGET_TIMEOUT_MS)  # imports torch
                page.wait_for_function(
                    "() => { const i = document.querySelector('img.widget-image');"
                    " return i && i.complete && i.naturalWidth > 0; }"
                )
                first_src = image.get_attribute("src")
                page.get_by_text("index 0 (50 samples)").wait_for()

                page.get_by_role("button", name="next").click()
                page.wait_for_function(
                    "old => document.querySelector('img.widget-image').src !== old", arg=first_src
                )
                page.get_by_text("index 1 (50 samples)").wait_for()
                second_src = image.get_attribute("src")
                page.wait_for_function(
                    "() => document.querySelector('img.widget-image').naturalWidth > 0"
                )

                body = page.inner_text("body")
            except Exception as error:  # say what the page showed, not only which wait failed
                outputs = page.locator(".jp-OutputArea").all_inner_texts()
                raise AssertionError(
                    f"{error}\noutputs: {outputs}\nconsole: {console[-20:]}\n"
                    f"screenshot: {SCREENSHOT}"
                ) from error
            finally:
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)
                browser.close()
    finally:
        _stop(server)

    elapsed = time.monotonic() - start
    print(f"\nbrowser test: {elapsed:.1f} s; screenshot: {SCREENSHOT.relative_to(REPO)}")
    assert first_src and second_src and first_src != second_src
    assert "Error displaying widget" not in body, console
    assert "Error creating widget" not in body, console
