"""The web page in a real browser (`make browser-test`): headless Chromium from Debian's packages,
driven by Selenium, against real service processes on 127.0.0.1 serving the shipped models.
Left out of `make test` by the ``browser`` marker; screenshots go to runs/browser/."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from selenium import webdriver
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
