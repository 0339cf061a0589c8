"""Headless Chromium driven by Selenium, from Debian's packages (`make browser-deps`): the browser
and its driver are found on PATH, never downloaded (nothing outside this machine is reachable)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def missing() -> str | None:
    """What is not installed, in words; None when the browser and its driver are both there."""
    if not any(shutil.which(b) for b in BROWSERS):
        return "no Chromium: `make browser-deps` installs Debian's chromium and chromium-driver"
    if shutil.which("chromedriver") is None:
        return "no chromedriver: `make browser-deps` installs Debian's chromium-driver"
    return None


@contextmanager
def chromium(width: int = 1280, height: int = 1600) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = next(p for b in BROWSERS if (p := shutil.which(b)))
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",  # a container's /dev/shm is small
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",  # nothing but 127.0.0.1 is contacted
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
