"""Headless Chromium driven by Selenium, from Debian's packages (`make browser-deps`): the browser
and its driver are found on PATH, never downloaded (nothing outside this machine is reachable)."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

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


def draw(driver: webdriver.Chrome, strokes: list[list[tuple[int, int]]]) -> None:
    """Pointer strokes on the pad, in pad pixels (0-280) from its top-left corner; the page sends
    the picture when the last stroke ends."""
    pad = driver.find_element(By.ID, "pad")
    box = pad.rect
    scale = box["width"] / 280
    for stroke in strokes:
        actions = ActionChains(driver, duration=10)
        x0, y0 = stroke[0]
        # offsets from the element's centre, as Selenium measures them
        actions.move_to_element_with_offset(pad, (x0 - 140) * scale, (y0 - 140) * scale).click_and_hold()
        for (xa, ya), (xb, yb) in itertools.pairwise(stroke):
            actions.move_by_offset((xb - xa) * scale, (yb - ya) * scale)
        actions.release().perform()


SEVEN = [[(80, 60), (200, 60), (170, 120), (140, 180), (120, 240)]]
ZERO = [[(140, 50), (90, 80), (75, 140), (90, 210), (140, 235), (190, 210), (205, 140), (190, 80), (140, 50)]]
