"""Headless Chromium for the viewer's browser test and load-time benchmark.

Drives the system's ``chromium`` through its ``chromedriver`` with selenium (a test extra), never a
browser that a tool downloads: ``.ci/browser.sh`` installs both from the system package manager.
Chromium starts with a fresh profile and with every background service that would try the
network switched off (on a machine without network they only add failures and delays).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1")


def find_browser() -> tuple[str, str] | None:
    """``(chromium, chromedriver)`` paths, or None when either is missing."""
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@contextlib.contextmanager
def headless_chromium(width_px: int = 1400, height_px: int = 1000) -> Iterator[Any]:
    """A selenium ``WebDriver`` on headless Chromium, quit (and its profile removed) on exit.

    Raises ``RuntimeError`` when Chromium or chromedriver is not installed.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_browser()
    if found is None:
        raise RuntimeError("chromium and chromedriver are not installed (bash .ci/browser.sh)")
    browser, driver_path = found
    profile = tempfile.mkdtemp(prefix="wideseek-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width_px},{height_px}"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
