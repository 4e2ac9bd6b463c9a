"""The UploadPredictor in a real browser: JupyterLab on localhost, driven by headless Chromium.

What a learner does, done by Playwright: open `tests/browser/upload_demo.ipynb`, Run > Run All
Cells, click the widget's *photo* button and choose a PNG in the file dialog; the prediction
replaces the placeholder picture and the table of class areas appears, with the numbers the same
notebook cell gives without a browser. No "Error displaying widget" anywhere. A screenshot is
saved to `test-artifacts/browser/upload.png`.

JupyterLab is started as tests/test_browser.py starts it, Chromium as tests/browser_util.py does
(Debian's `chromium` and the `playwright` package; skipped, saying which is missing, without them).
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from browser_util import launch, sync_playwright_or_skip
from PIL import Image
from test_browser import (
    REPO,
    TIMEOUT_MS,
    WIDGET_TIMEOUT_MS,
    _free_port,
    _lab_environment,
    _stop,
    _wait_for_server,
)

NOTEBOOK = "tests/browser/upload_demo.ipynb"
SCREENSHOT = REPO / "test-artifacts" / "browser" / "upload.png"
HEIGHT, WIDTH = 48, 64  # a multiple of 4: the demo's depth-2 U-Net needs no padding

# every row of the class-area table: [class, pixels, area]
TABLE_ROWS = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output table tr'),
    row => Array.from(row.cells, cell => cell.textContent.trim()))"""


def _photo(path):
    """A random RGB photo with a dark top half; returns its PNG bytes."""
    pixels = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    pixels[: HEIGHT // 2] //= 4
    Image.fromarray(pixels).save(path)
    return path.read_bytes()


def _areas_without_a_browser(content: bytes) -> dict[str, int]:
    """The class areas the notebook's cell gives for `content`, run here with no browser."""
    import nbformat
    import torch

    cell = nbformat.read(REPO / NOTEBOOK, as_version=4).cells[1]
    namespace: dict = {}
    with torch.random.fork_rng():  # the cell seeds torch: keep this process's generator
        exec(compile(cell.source, NOTEBOOK, "exec"), namespace)
    viewer = namespace["viewer"]
    viewer.upload.value = (  # what the browser sends (ipywidgets 8's FileUpload value)
        {
            "name": "upload.png",
            "type": "image/png",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc),
        },
    )
    return viewer.class_areas()


def _start_jupyterlab(root, tmp_path, port):
    """JupyterLab serving `root` on localhost, as tests/test_browser.py starts it."""
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
    _wait_for_server(f"http://127.0.0.1:{port}", server, log)
    return server


def _upload_in_the_browser(page, url, photo):
    """Run the notebook, upload `photo`; return (placeholder src, prediction src, table rows)."""
    page.goto(f"{url}/lab/tree/{NOTEBOOK}")
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()

    image = page.locator(".jp-OutputArea-output img.widget-image")
    image.wait_for(state="visible", timeout=WIDGET_TIMEOUT_MS)  # imports torch
    page.get_by_text("Upload a photograph").wait_for()
    placeholder = image.get_attribute("src")

    # The FileUpload's <input type=file> is never put in the page: its button clicks it,
    # which opens the file dialog a learner sees; Playwright answers the dialog.
    with page.expect_file_chooser() as chooser:
        page.locator("button.widget-upload").click()
    chooser.value.set_files(str(photo))

    page.get_by_text(f"{photo.name}: {WIDTH} x {HEIGHT} pixels").wait_for()
    page.wait_for_function(
        "old => { const i = document.querySelector('img.widget-image');"
        " return i.src !== old && i.complete && i.naturalWidth > 0; }",
        arg=placeholder,
    )
    page.locator("button.widget-upload", has_text="photo (1)").wait_for()
    table = page.locator(".jp-OutputArea-output table")
    table.wait_for()
    table.scroll_into_view_if_needed()  # for the screenshot: the picture and the table
    return placeholder, image.get_attribute("src"), page.evaluate(TABLE_ROWS)


@pytest.mark.slow  # starts JupyterLab and a browser
def test_upload_predictor_in_jupyterlab(tmp_path):
    sync_playwright = sync_playwright_or_skip()
    start = time.monotonic()
    root = tmp_path / "root"
    (root / NOTEBOOK).parent.mkdir(parents=True)
    shutil.copy(REPO / NOTEBOOK, root / NOTEBOOK)
    photo = tmp_path / "upload.png"
    content = _photo(photo)
    port = _free_port()
    console: list[str] = []
    server = _start_jupyterlab(root, tmp_path, port)
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            try:
                placeholder, prediction, rows = _upload_in_the_browser(
                    page, f"http://127.0.0.1:{port}", photo
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
    print(
        f"\nupload browser test: {time.monotonic() - start:.1f} s; screenshot: {SCREENSHOT.relative_to(REPO)}"
    )

    assert placeholder and prediction and prediction != placeholder
    assert "Error displaying widget" not in body, console
    assert "Error creating widget" not in body, console
    expected = _areas_without_a_browser(content)
    assert rows[0] == ["class", "pixels", "area"]
    assert [row[0] for row in rows[1:]] == ["background", "disc", "bar"]
    assert {row[0]: int(row[1]) for row in rows[1:]} == expected
    assert sum(expected.values()) == HEIGHT * WIDTH
    assert [row[2] for row in rows[1:]] == [
        f"{100 * count / (HEIGHT * WIDTH):.1f}%" for count in expected.values()
    ]
