"""Headless Chromium for the tests of what people see: Debian's `chromium` and `chromium-driver`,
driven by Selenium. Where they are not installed, a test that needs them skips, saying why (CI
installs them). A failed test leaves a screenshot and the page's HTML in `.browser-screenshots/`.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

SCREENSHOTS = Path(
    os.environ.get(
        "ORDERBOOK_SCREENSHOTS_DIR", Path(__file__).resolve().parents[1] / ".browser-screenshots"
    )
)
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # the tests may run as root (containers, CI)
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--window-size=1400,1000",
    "--no-first-run",
    "--disable-extensions",
    # Chromium otherwise calls home at start (updates, sync, field trials): nothing a test needs,
    # and refused many times over on a machine without internet.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
PAGE_LOAD_TIMEOUT_S = 60
SCRIPT_TIMEOUT_S = 30


def chromium_installed() -> bool:
    return _chromium() is not None and shutil.which("chromedriver") is not None


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_paths() -> tuple[str, str]:
    """Chromium and its driver, or skip the test saying how to install them."""
    browser = _chromium()
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(
            "needs Chromium and its driver: `sudo apt-get install chromium chromium-driver` "
            "(Debian/Ubuntu); CI installs them"
        )
    return browser, driver


def open_chromium() -> webdriver.Chrome:
    binary, driver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
    chrome.set_script_timeout(SCRIPT_TIMEOUT_S)
    return chrome


def keep_evidence(chrome: webdriver.Chrome, test_name: str) -> Path:
    """A screenshot and the HTML of the page ``chrome`` shows, named after the test."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", test_name)
    chrome.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    (SCREENSHOTS / f"{name}.html").write_text(chrome.page_source)
    return SCREENSHOTS / f"{name}.png"
