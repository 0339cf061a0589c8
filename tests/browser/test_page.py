"""The web page at / used as a person would: draw, sample, interpolate, walk, click the latent map,
give a token, see an error; in headless Chromium against the service serving the shipped models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from harness import ROOT
from harness.browser import SEVEN, ZERO, draw
from tests.browser.conftest import TOKEN, canvas_png, image_of, severe_logs, wait


def _by_id(driver: webdriver.Chrome, element_id: str):  # type: ignore[no-untyped-def]
    return driver.find_element(By.ID, element_id)


def _shown(driver: webdriver.Chrome, element_id: str) -> bool:
    return bool(_by_id(driver, element_id).get_attribute("src"))


def _encode(driver: webdriver.Chrome, strokes: list[list[tuple[int, int]]]) -> str:
    """Draws on a cleared pad and waits for the new reconstruction; returns the score in words."""
    before = _by_id(driver, "recon").get_attribute("src")
    _by_id(driver, "clear").click()
    draw(driver, strokes)
    wait(driver, lambda d: _by_id(d, "recon").get_attribute("src") not in (None, "", before))
    wait(driver, lambda d: "%" in _by_id(d, "score-words").text)
    return _by_id(driver, "score-words").text


def test_a_drawn_digit_shows_what_the_model_saw_its_reconstruction_code_and_score(
    page: webdriver.Chrome, shots: Path
) -> None:
    severe_logs(page)  # start the console afresh
    words = _encode(page, SEVEN)
    seen, recon = image_of(page, "seen"), image_of(page, "recon")
    assert seen.shape == recon.shape == (28, 28)
    # dark ink on white was drawn; the model saw MNIST's form: light ink on black, centred
    assert seen.mean() < 80 and seen.max() > 200
    ys, xs = np.nonzero(seen > 64)
    assert 10 <= ys.mean() <= 18 and 10 <= xs.mean() <= 18
    assert recon.max() > 128  # the reconstruction has ink where a seven has it
    assert "test digits" in words
    assert "log p(x) =" in _by_id(page, "score-numbers").text
    # mu +- sigma for each dimension of the chosen model, inactive ones marked
    model = Select(_by_id(page, "model")).first_selected_option.text.split(" ")[0]
    name, version = model.split("/")
    manifest = json.loads((ROOT / "models" / name / version / "model.json").read_text())
    rows = page.find_elements(By.CSS_SELECTOR, "#latent-table tbody tr")
    assert len(rows) == manifest["latent_dim"]
    inactive = page.find_elements(By.CSS_SELECTOR, "#latent-table tbody tr.inactive")
    assert len(inactive) == manifest["latent_dim"] - manifest["metrics"]["active_units"]
    page.save_screenshot(str(shots / "draw.png"))
    assert severe_logs(page) == []  # nothing refused by the CSP, no script error


def test_the_same_seed_draws_the_same_grid_and_another_seed_another(
    page: webdriver.Chrome, shots: Path
) -> None:
    def grid(seed: int) -> bytes:
        count = int(page.execute_script("return document.body.dataset.sampled"))
        field = _by_id(page, "sample-seed")
        field.clear()
        field.send_keys(str(seed), Keys.ENTER)  # submits the form, as a person would
        wait(page, lambda d: int(d.execute_script("return document.body.dataset.sampled")) > count)
        return canvas_png(page, "grid")

    first, other, again = grid(11), grid(12), grid(11)
    assert first == again
    assert first != other
    assert not _by_id(page, "sample-download").get_attribute("disabled")
    page.save_screenshot(str(shots / "sample.png"))


def test_interpolating_two_drawn_digits_gives_a_strip_the_user_can_scrub(page: webdriver.Chrome) -> None:
    _encode(page, SEVEN)
    _by_id(page, "as-start").click()
    _encode(page, ZERO)
    _by_id(page, "as-end").click()
    steps = _by_id(page, "interpolate-steps")
    steps.clear()
    steps.send_keys("6")
    Select(_by_id(page, "interpolate-method")).select_by_value("slerp")
    _by_id(page, "interpolate-run").click()
    wait(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#strip img")) == 6)
    strip = [img.get_attribute("src") for img in page.find_elements(By.CSS_SELECTOR, "#strip img")]
    assert strip[0] != strip[-1]
    scrub = _by_id(page, "scrub")
    for _ in range(3):
        scrub.send_keys(Keys.ARROW_RIGHT)  # the keyboard moves the slider as a drag would
    assert _by_id(page, "frame").get_attribute("src") == strip[3]
    _by_id(page, "play").click()
    wait(page, lambda d: _by_id(d, "play").text == "Play", seconds=10)  # one pass, then it stops


def test_walking_along_a_dimension_decodes_the_strip_and_the_slider(page: webdriver.Chrome) -> None:
    _encode(page, SEVEN)
    dims = Select(_by_id(page, "walk-dim"))
    wait(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#walk-strip img")) == 13)
    before = [img.get_attribute("src") for img in page.find_elements(By.CSS_SELECTOR, "#walk-strip img")]
    assert len(set(before)) > 1  # the most active dimension changes the digit
    dims.select_by_index(1)
    wait(
        page,
        lambda d: (
            [i.get_attribute("src") for i in d.find_elements(By.CSS_SELECTOR, "#walk-strip img")] != before
        ),
    )
    slider = _by_id(page, "walk-value")
    slider.send_keys(Keys.END)
    wait(page, lambda d: _by_id(d, "walk-output").text.endswith("= 3.0"))
    assert _shown(page, "walk-image")


def test_clicking_the_latent_map_decodes_that_point(page: webdriver.Chrome, shots: Path) -> None:
    wait(page, lambda d: d.execute_script("return document.body.dataset.mapped") == "mnist2d")
    manifest = json.loads((ROOT / "models" / "mnist2d" / "1" / "model.json").read_text())
    labels = manifest["latents"]["labels"]
    assert len(labels) >= 1000 and set(labels) == set(range(10))
    canvas = _by_id(page, "map")
    page.execute_script("arguments[0].scrollIntoView()", canvas)
    ActionChains(page).move_to_element_with_offset(canvas, 40, -60).click().perform()
    wait(page, lambda d: _shown(d, "map-image") and "z = (" in _by_id(d, "map-point").text)
    first = _by_id(page, "map-image").get_attribute("src")
    x, y = (float(v) for v in _by_id(page, "map-point").text.removeprefix("z = (").rstrip(")").split(","))
    assert x > 0 and y > 0  # right of and above the centre, as clicked (z1 grows upwards)
    # the keyboard does the same: arrows move the marker, Enter decodes
    canvas.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT, Keys.ENTER)
    wait(page, lambda d: _by_id(d, "map-image").get_attribute("src") != first)
    page.save_screenshot(str(shots / "map.png"))


def test_a_file_that_is_not_an_image_gets_the_service_s_message(
    page: webdriver.Chrome, tmp_path: Path
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("a shopping list, not a digit")
    _by_id(page, "file").send_keys(str(note))
    wait(page, lambda d: _by_id(d, "error").is_displayed())
    assert "not a recognised image format" in _by_id(page, "error").text
    _encode(page, SEVEN)  # the next good picture clears the message
    assert not _by_id(page, "error").is_displayed()


def test_a_guarded_service_asks_for_the_token_and_keeps_it_for_the_session_only(
    browser: webdriver.Chrome, guarded_url: str, shots: Path
) -> None:
    browser.get(guarded_url + "/")  # the page itself opens without a token
    wait(browser, lambda d: _by_id(d, "error").is_displayed())
    assert "needs an API token" in _by_id(browser, "error").text
    _by_id(browser, "token").send_keys(TOKEN)
    _by_id(browser, "token-save").click()
    wait(browser, lambda d: d.execute_script("return document.body.dataset.sampled"))
    assert not _by_id(browser, "error").is_displayed()
    assert browser.execute_script("return sessionStorage.getItem('vae-service-token')") == TOKEN
    assert TOKEN not in browser.current_url
    browser.refresh()  # the same tab keeps it: no second prompt
    wait(browser, lambda d: d.execute_script("return document.body.dataset.sampled"))
    _encode(browser, SEVEN)
    browser.save_screenshot(str(shots / "token.png"))
    _by_id(browser, "token-clear").click()
    assert browser.execute_script("return sessionStorage.getItem('vae-service-token')") is None


def test_at_phone_width_nothing_overflows_sideways(page: webdriver.Chrome, shots: Path) -> None:
    size = page.get_window_size()
    try:
        page.set_window_size(390, 1600)
        page.refresh()
        wait(page, lambda d: d.execute_script("return document.body.dataset.sampled"))
        width = page.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], width
        unlabelled = page.execute_script(
            "return [...document.querySelectorAll('input, select')]"
            ".filter(e => !e.labels || e.labels.length === 0).map(e => e.id)"
        )
        assert unlabelled == []
        page.save_screenshot(str(shots / "phone.png"))
    finally:
        page.set_window_size(size["width"], size["height"])
