"""The UploadPredictor in a real browser: JupyterLab on localhost, driven by headless Chromium.

What a learner does, done by Playwright: open `tests/browser/upload_demo.ipynb`, Run > Run All
Cells, click the widget's *photo* button and choose a PNG in the file dialog; the prediction
replaces the placeholder picture and the table of class areas appears, with the numbers the same
notebook cell gives without a browser. No "Error displaying widget" anywhere. A screenshot is
saved to `test-artifacts/browser/upload.png`.

JupyterLab and Chromium are started by tests/browser_util.py, as for tests/test_browser.py
(Debian's `chromium` and the `playwright` package; skipped, saying which is missing, without them).
"""

from __future__ import annotations

import datetime
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from browser_util import jupyter_lab, lab_page, run_widget_notebook, sync_playwright_or_skip
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
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


def _upload_in_the_browser(page, url, photo):
    """Run the notebook, upload `photo`; return (placeholder src, prediction src, table rows)."""
    image = run_widget_notebook(page, url, NOTEBOOK)
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
    with (
        jupyter_lab(root, tmp_path) as url,
        lab_page(sync_playwright, SCREENSHOT) as (page, console),
    ):
        placeholder, prediction, rows = _upload_in_the_browser(page, url, photo)
        body = page.inner_text("body")
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
