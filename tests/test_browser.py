"""The DatasetViewer in a real browser: JupyterLab on localhost, driven by headless Chromium.

What a learner does, done by Playwright: open `tests/browser/viewer_demo.ipynb`, Run > Run All
Cells, wait for the viewer, click "next", and see the picture change; no "Error displaying
widget" anywhere. A screenshot is saved to `test-artifacts/browser/viewer.png`.

JupyterLab and Chromium are started by tests/browser_util.py. Needs Debian's `chromium`
(/usr/bin/chromium) and the `playwright` Python package (its own browser downloads are not used);
the test is skipped, saying which is missing, without them.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from browser_util import jupyter_lab, lab_page, run_widget_notebook, sync_playwright_or_skip

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "tests/browser/viewer_demo.ipynb"
SCREENSHOT = REPO / "test-artifacts" / "browser" / "viewer.png"


def _copy_inputs(root: Path) -> None:
    """The notebook and the data it reads, at the same relative paths as in the repository."""
    (root / NOTEBOOK).parent.mkdir(parents=True)
    shutil.copy(REPO / NOTEBOOK, root / NOTEBOOK)
    scenes = root / "data_samples" / "scenes"
    scenes.mkdir(parents=True)
    shutil.copy(REPO / "data_samples" / "scenes" / "dataset.json", scenes)
    shutil.copytree(REPO / "data_samples" / "scenes" / "val", scenes / "val")


@pytest.mark.slow  # starts JupyterLab and a browser
def test_dataset_viewer_in_jupyterlab(tmp_path):
    sync_playwright = sync_playwright_or_skip()

    start = time.monotonic()
    root = tmp_path / "root"
    _copy_inputs(root)
    with (
        jupyter_lab(root, tmp_path) as url,
        lab_page(sync_playwright, SCREENSHOT) as (page, console),
    ):
        image = run_widget_notebook(page, url, NOTEBOOK)
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
        page.wait_for_function("() => document.querySelector('img.widget-image').naturalWidth > 0")

        body = page.inner_text("body")

    elapsed = time.monotonic() - start
    print(f"\nbrowser test: {elapsed:.1f} s; screenshot: {SCREENSHOT.relative_to(REPO)}")
    assert first_src and second_src and first_src != second_src
    assert "Error displaying widget" not in body, console
    assert "Error creating widget" not in body, console
