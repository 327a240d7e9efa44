"""The console in a real headless Chromium (Selenium + Debian's chromium-driver), on a store from the demo feed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.classify import load_model
from monitor.console.server import console_server
from monitor.settings import Settings
from tests.conftest import ROOT
from tests.console_fixtures import PASSWORD, chrome, demo_store, wait_for_text, write_users

pytestmark = pytest.mark.slow  # the sample week through the real offline model, then a browser

selenium = pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    folder = tmp_path_factory.mktemp("console")
    browser: Any = chrome()
    model = load_model("default")
    engine, clock = demo_store(f"sqlite:///{folder / 'demo.db'}", model)
    settings = Settings(console_port=0, console_users=write_users(folder), rules_dir=ROOT / "rules",
                        escalation_file=ROOT / "escalation.yaml")
    server = console_server(settings, engine, clock, model=model)
    server.start()
    try:
        # localhost, not 127.0.0.1: browsers keep Secure cookies for http://localhost (a secure context).
        yield f"http://localhost:{server.port}", browser
    finally:
        browser.quit()
        server.stop()


def sign_in(base: str, browser: Any, user: str = "sofie") -> None:
    browser.get(f"{base}/login")
    browser.find_element(By.ID, "user").send_keys(user)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 30).until(lambda b: not b.current_url.endswith("/login"))  # signed in before going on


def flash_says(browser: Any, word: str) -> None:
    """Wait for the next page's flash to say ``word``."""
    wait_for_text(browser, By.CLASS_NAME, "flash", word)


def signed_in(site: tuple[str, Any]) -> tuple[str, Any]:
    """The site with the browser signed in, whichever test runs first (``-k``, another order)."""
    base, browser = site
    browser.get(f"{base}/")
    if browser.current_url.endswith("/login"):
        sign_in(base, browser)
    return base, browser


def test_sign_in_and_see_an_incident_from_the_demo_feed(site: tuple[str, Any]) -> None:
    base, browser = site
    browser.get(f"{base}/")
    assert browser.current_url.endswith("/login")
    sign_in(base, browser)
    assert browser.current_url == f"{base}/"
    cards = browser.find_elements(By.CSS_SELECTOR, "article.incident")
    assert cards, "no open incident on the Now page"
    text = " ".join(c.text for c in cards)
    assert "Lumora" in text and ("negative-burst" in text or "negative-high-reach" in text)
    assert "sample" in browser.find_element(By.TAG_NAME, "main").text  # the replayed source's health


def test_add_and_expire_a_silence(site: tuple[str, Any]) -> None:
    base, browser = signed_in(site)
    browser.get(f"{base}/silences")
    Select(browser.find_element(By.ID, "silence-rule")).select_by_visible_text("negative-burst")
    browser.find_element(By.ID, "silence-until").send_keys("2030-01-01 08:00")
    browser.find_element(By.ID, "silence-reason").send_keys("billing migration this week")
    browser.find_element(By.ID, "silence-add").click()
    flash_says(browser, "added")
    row = browser.find_element(By.CSS_SELECTOR, "#silences tbody tr")
    assert "active" in row.text and "billing migration this week" in row.text and "sofie" in row.text
    row.find_element(By.CSS_SELECTOR, "button.expire").click()
    flash_says(browser, "expired")
    assert "active" not in browser.find_element(By.CSS_SELECTOR, "#silences tbody").text


def test_try_a_post_and_see_the_rule_that_fires(site: tuple[str, Any]) -> None:
    base, browser = signed_in(site)
    browser.get(f"{base}/try")
    browser.find_element(By.ID, "post-text").send_keys(
        "Lumora is pure oplichting, drie keer te veel aangerekend en niemand neemt op. Schandalig!")
    browser.find_element(By.CSS_SELECTOR, "#post-language option[value='nl']").click()
    reach = browser.find_element(By.ID, "post-reach")
    reach.clear()
    reach.send_keys("48000")
    browser.find_element(By.ID, "try-post-go").click()
    outcome = wait_for_text(browser, By.ID, "outcome-negative-high-reach", "would alert")
    assert "would alert" in outcome and "48,000 followers" in outcome
    assert "would alert" in browser.find_element(By.ID, "outcome-fraud-or-boycott").text
    assert "negative" in browser.find_element(By.ID, "verdict").text


def _upload(base: str, browser: Any, path: Path) -> None:
    browser.get(f"{base}/try")
    browser.find_element(By.ID, "rules-file").send_keys(str(path))
    browser.find_element(By.ID, "try-rules-go").click()
    # The answer page (check, then a backtest over the stored posts) can take seconds on a loaded
    # machine; the click may return before it arrives, so wait for its first card.
    WebDriverWait(browser, 120).until(lambda b: b.find_elements(By.ID, "rule-check"))


def test_upload_a_rule_file_with_a_typo(site: tuple[str, Any], tmp_path: Path) -> None:
    base, browser = signed_in(site)
    path = tmp_path / "reach.yaml"
    path.write_text((ROOT / "rules" / "reach.yaml").read_text(encoding="utf-8")
                    .replace("reach_at_least", "reach_at_leest"), encoding="utf-8")
    _upload(base, browser, path)
    check = browser.find_element(By.ID, "rule-check").text
    assert "rules/reach.yaml:11:7: rules[0].when: unknown key 'reach_at_leest'" in check
    assert not browser.find_elements(By.ID, "comparison")


def test_compare_a_changed_rules_backtest(site: tuple[str, Any], tmp_path: Path) -> None:
    base, browser = signed_in(site)
    path = tmp_path / "reach.yaml"
    path.write_text((ROOT / "rules" / "reach.yaml").read_text(encoding="utf-8")
                    .replace("reach_at_least: 10000", "reach_at_least: 5000000"), encoding="utf-8")
    _upload(base, browser, path)
    assert "is valid" in browser.find_element(By.ID, "rule-check").text
    row = browser.find_element(By.ID, "compare-negative-high-reach")
    # Wednesday evening's angry post, and the neutral high-reach news article that `negative_above: default`
    # (0.23 in Dutch) also pages (README, "Sentiment": the price of 0.85 recall)
    assert "changed" in row.get_attribute("class") and "(was 2)" in row.text
    assert "Alerts a responder would have received" in browser.find_element(By.ID, "comparison").text
