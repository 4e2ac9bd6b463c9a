"""Headless Chromium and JupyterLab for the browser tests (test_browser.py, test_upload_browser.py,
test_site.py).

Chromium is Debian's `/usr/bin/chromium` driven by the `playwright` package, with no browser
download and no network. JupyterLab is this environment's, started on a free localhost port with
a fresh configuration, and stopped with its kernels when the test leaves (failure included):

    sync_playwright = sync_playwright_or_skip()  # skips first, before JupyterLab starts
    with jupyter_lab(root, tmp_path) as url, lab_page(sync_playwright, SCREENSHOT) as (page, _):
        image = run_widget_notebook(page, url, "tests/browser/viewer_demo.ipynb")
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these the browser keeps trying to reach the network, which is closed here.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# 60 s was too short on a loaded 2-core machine; the wait ends as soon as the server answers.
LAB_START_S = 180
TIMEOUT_MS = 30_000  # any single wait in the browser ...
# ... but those that wait for something to start: JupyterLab's page (its plugins took 24 s on a
# loaded machine), the kernel, and the first output (torch's import)
START_TIMEOUT_MS = 90_000


def sync_playwright_or_skip():
    """playwright's `sync_playwright`, or skip the test saying what is missing."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y "
            "chromium) to run the browser test"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(
            "the playwright Python package is not installed: pip install playwright "
            "(no `playwright install` needed: the test uses /usr/bin/chromium)"
        )
    return sync_playwright


def launch(playwright):
    """Debian's Chromium, headless, through a running `sync_playwright()`."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )


@contextlib.contextmanager
def jupyter_lab(root: Path, tmp: Path) -> Iterator[str]:
    """JupyterLab serving `root` on localhost (no token); yields its URL once it answers.

    Its configuration, settings and log (`jupyterlab.log`, shown if it fails to start) go under
    `tmp`. On leaving, failure included, the server and its kernels are stopped.
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "jupyterlab.log"
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
            env=_lab_environment(tmp),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kernel goes with it
        )
    try:
        _wait_for_server(url, server, log)
        yield url
    finally:
        _stop(server)


@contextlib.contextmanager
def lab_page(sync_playwright, screenshot: Path) -> Iterator[tuple[object, list[str]]]:
    """A 1280 x 900 page in headless Chromium; yields it and the browser console's messages.

    An error inside the block comes out as an AssertionError that also says what the notebook's
    outputs and the console showed. On leaving, the page is saved to `screenshot`.
    """
    console: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        try:
            yield page, console
        except Exception as error:  # say what the page showed, not only which wait failed
            outputs = page.locator(".jp-OutputArea").all_inner_texts()
            raise AssertionError(
                f"{error}\noutputs: {outputs}\nconsole: {console[-20:]}\nscreenshot: {screenshot}"
            ) from error
        finally:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            browser.close()


def run_widget_notebook(page, url: str, notebook: str):
    """What a learner does: open `notebook`, Run > Run All Cells, see the widget's picture.

    Returns the locator of that picture (`img.widget-image`) once it is visible.
    """
    page.goto(f"{url}/lab/tree/{notebook}", timeout=START_TIMEOUT_MS)
    # The kernel is up (and connected) when the status bar says so.
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=START_TIMEOUT_MS)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()
    image = page.locator(".jp-OutputArea-output img.widget-image")
    image.wait_for(state="visible", timeout=START_TIMEOUT_MS)  # imports torch
    return image


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    deadline = time.monotonic() + LAB_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"JupyterLab did not answer within {LAB_START_S} s:\n{log.read_text()[-3000:]}")


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
