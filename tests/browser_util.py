"""Headless Chromium for the browser tests (test_browser.py, test_site.py): Debian's
`/usr/bin/chromium` driven by the `playwright` package, with no browser download and no network.
"""

from __future__ import annotations

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
