"""The web page in a real browser (`make browser-test`): headless Chromium from Debian's packages,
driven by Selenium, against real service processes on 127.0.0.1 serving the shipped models.
Left out of `make test` by the ``browser`` marker; screenshots go to runs/browser/."""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from harness import ROOT
from harness.browser import chromium, missing
from harness.ports import free_port
from harness.processes import service

SHOTS = ROOT / "runs" / "browser"
TOKEN = "page-test-token"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def _served(tmp_path_factory: pytest.TempPathFactory, **settings: str) -> Iterator[str]:
    port = free_port()
    with service(ROOT / "models", tmp_path_factory.mktemp("page"), port, **settings):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service with the shipped models, the 2-D one among them, and no token."""
    yield from _served(tmp_path_factory)


@pytest.fixture(scope="module")
def guarded_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _served(tmp_path_factory, api_tokens=TOKEN)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    reason = missing()
    assert reason is None, reason
    with chromium() as driver:
        yield driver


@pytest.fixture
def page(browser: webdriver.Chrome, url: str) -> webdriver.Chrome:
    """The page freshly opened, its first sample grid drawn."""
    browser.get(url + "/")
    wait(browser, lambda d: d.execute_script("return document.body.dataset.sampled"))
    return browser


def wait(driver: webdriver.Chrome, condition, seconds: float = 30):  # type: ignore[no-untyped-def]
    return WebDriverWait(driver, seconds, poll_frequency=0.05).until(condition)


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


def image_of(driver: webdriver.Chrome, element_id: str) -> np.ndarray:
    """The PNG an <img> shows (a data: URL the page built from the API's answer), as an array."""
    src = driver.find_element(By.ID, element_id).get_attribute("src") or ""
    assert src.startswith("data:image/png;base64,"), src[:40]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))


def canvas_png(driver: webdriver.Chrome, element_id: str) -> bytes:
    data = driver.execute_script(f"return document.getElementById('{element_id}').toDataURL('image/png')")
    return base64.b64decode(data.split(",", 1)[1])


def severe_logs(driver: webdriver.Chrome) -> list[str]:
    """The browser console's errors (CSP violations among them) since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
