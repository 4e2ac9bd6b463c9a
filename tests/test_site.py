"""The course website (`python docs/build_site.py`): its copy of the notebooks hides the test
scaffolding and gains launch links; the built site needs no network, and in headless Chromium a
notebook page shows its figures and its "next" link leads to the next notebook."""

from __future__ import annotations

import importlib.util
import json
import re
import time
from pathlib import Path

import pytest
from browser_util import launch, sync_playwright_or_skip

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("build_site", ROOT / "docs" / "build_site.py")
build_site = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(build_site)
SCREENSHOT = ROOT / "test-artifacts" / "browser" / "site.png"


def test_scaffolding_is_removed_and_the_rest_kept():
    source = (
        "# NBVAL_CHECK_OUTPUT\n"
        "miou = 0.9\n"
        "print(f'{miou:.2f}')\n"
        "assert miou > (0.2 if QUICK else 0.85), (\n"
        "    miou,\n"
        ")\n"
        "if miou:\n"
        "    assert miou < 1\n"
        "    x = 1"
    )
    assert build_site.without_scaffolding(source) == (
        "miou = 0.9\nprint(f'{miou:.2f}')\nif miou:\n    x = 1"
    )
    assert build_site.without_scaffolding("%matplotlib inline\nassert True") == (
        "%matplotlib inline"
    )
    assert build_site.without_scaffolding("def broken(:\n  assert x") == "def broken(:\n  assert x"


def _cell(kind, source, outputs=None):
    cell = {"cell_type": kind, "metadata": {}, "source": source}
    if kind == "code":
        cell["outputs"] = outputs or []
    return cell


def test_the_site_copy_of_a_notebook():
    widget = {"application/vnd.jupyter.widget-view+json": {"model_id": "m"},
              "text/html": "<img src='data:...'>", "text/plain": "Viewer"}  # fmt: skip
    notebook = {
        "metadata": {"widgets": {"state": {}}},
        "cells": [
            _cell("markdown", "# 01 · Data\n\nPrevious: [the map](../README.md#course-map)"),
            _cell("code", "assert QUICK in (True, False)"),
            _cell("code", "assert 1 == 1", [{"output_type": "stream", "text": "shown"}]),
            _cell("code", "DatasetViewer(ds)", [{"output_type": "display_data", "data": widget}]),
        ],
    }
    original = json.dumps(notebook)
    site = build_site.site_notebook(notebook, "01_data.ipynb")
    assert json.dumps(notebook) == original, "the notebook itself is left alone"
    title, links, only_asserts, assert_with_output, viewer = site["cells"]
    assert title["source"].endswith("Previous: [the map](index.md)")
    assert links["source"] == (
        "[Open in Colab](https://colab.research.google.com/github/segtutor/segtutor/blob/main/"
        "notebooks/01_data.ipynb) · [Launch Binder](https://mybinder.org/v2/gh/segtutor/"
        "segtutor/main?labpath=notebooks/01_data.ipynb)"
    )
    assert only_asserts["metadata"]["tags"] == ["remove-cell"]
    assert assert_with_output["metadata"]["tags"] == ["remove-input"]
    assert set(viewer["outputs"][0]["data"]) == {"text/html", "text/plain"}
    assert "widgets" not in site["metadata"]


def test_the_front_page_is_the_readme_course_map():
    names = ["01_data", "02_unet", "10_new"]
    page = build_site.index_page((ROOT / "README.md").read_text("utf-8"), names)
    assert page.startswith("# segtutor\n")
    assert "## Course map" in page and "](01_data.ipynb)" in page and "notebooks/" not in page
    toctree = page[page.index("```{toctree}") :]
    assert re.findall(r"^\d\d_\w+$", toctree, re.M) == names  # a page the map lacks too


def _assert_statements_in(notebook: Path) -> int:
    cells = json.loads(notebook.read_text("utf-8"))["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return sum(len(re.findall(r"^\s*assert ", c, re.M)) for c in code)


@pytest.mark.slow  # Sphinx renders seven notebooks (about 20 s on an idle 2-core CPU)
def test_the_site_builds_offline_and_reads_in_a_browser(tmp_path):
    sync_playwright = sync_playwright_or_skip()
    out = tmp_path / "site"
    seconds = build_site.build(out, source=tmp_path / "source")
    print(f"\nsite built in {seconds:.1f} s")
    pages = sorted(out.glob("[0-9][0-9]_*.html"))
    assert [p.stem for p in pages][:2] == ["01_data", "02_unet"]

    for page in [out / "index.html", *pages]:
        html = page.read_text("utf-8")
        remote = re.findall(r"<(?:script|link)\b[^>]*(?:src|href)=\"(https?://[^\"]+)\"", html)
        assert not remote, f"{page.name} loads {remote} from the network"
    # the notebooks check their claims with asserts; the site shows none of them
    assert _assert_statements_in(ROOT / "notebooks" / "01_data.ipynb") > 0
    assert all('<span class="k">assert</span>' not in p.read_text("utf-8") for p in pages)

    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        try:
            page.goto((out / "01_data.html").as_uri())
            assert page.locator("h1").first.inner_text().startswith("01")
            colab = page.get_by_role("link", name="Open in Colab")
            assert colab.get_attribute("href").endswith("/blob/main/notebooks/01_data.ipynb")
            figure = page.locator(".cell_output img").first
            figure.scroll_into_view_if_needed()
            page.wait_for_function(
                "() => { const i = document.querySelector('.cell_output img');"
                " return i && i.complete && i.naturalWidth > 0; }"
            )
            width = figure.evaluate("img => img.naturalWidth")
            start = time.monotonic()
            page.locator("a.next-page").click()
            page.wait_for_url(re.compile(r"02_unet\.html$"))
            assert page.locator("h1").first.inner_text().startswith("02")
            print(f"next page in {time.monotonic() - start:.1f} s")
        finally:
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
            browser.close()
    assert width > 100
