"""Every console page in headless Chromium at 1280 px and at 390 px (a phone): nothing cut off, nothing sideways.

The Silences and Escalation plan tables, whose buttons and deadlines matter most in a crisis, were cut off at
390 px; tables now become one card per row on a phone. The store is the demo feed run with a small word model
(the layout does not depend on the model), plus a silence, a closed incident with a note, and audit rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from monitor.console.server import console_server
from monitor.settings import Settings
from monitor.store import audit, incidents, silences, transaction
from tests.conftest import ROOT
from tests.console_fixtures import PASSWORD, WordModel, chrome, demo_store, wait_for_text, write_users

pytestmark = pytest.mark.slow  # the sample week through the simulated worker, then a browser

selenium = pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WIDTHS = (1280, 390)

# Elements whose box sticks out of the viewport, left or right; closed <details> are opened first.
OUT_OF_VIEW = """
document.querySelectorAll('details').forEach(d => { d.open = true; });
const vw = document.documentElement.clientWidth;
const out = [];
for (const el of document.querySelectorAll('header *, main *')) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;
  if (r.right > vw + 1 || r.left < -1) {
    out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} ${Math.round(r.left)}..${Math.round(r.right)}`);
  }
}
return {vw: vw, scroll: document.documentElement.scrollWidth, out: out.slice(0, 8)};
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any, int]]:
    folder = tmp_path_factory.mktemp("layout")
    browser: Any = chrome()
    engine, clock = demo_store(f"sqlite:///{folder / 'demo.db'}", WordModel())
    now = clock.now()  # type: ignore[attr-defined]
    with transaction(engine) as conn:  # type: ignore[arg-type]
        silences.add(conn, brand="Lumora", rule="negative-burst", author=None, starts_at=now,
                     ends_at=now + timedelta(days=2), reason="billing migration this week, expected complaints",
                     created_by="sofie")
        every = incidents.all_incidents(conn)
        closed = next((i for i in every if i.state.is_closed), every[0])
        audit.add_note(conn, closed.id, by="karim", at=now, text="Hand-over: the customer was called back; "
                       "https://example.org/a-very-long-address-without-any-space-to-break-it-at-all-ever " * 2)
        audit.record(conn, at=now, actor="karim", channel="slack", action="acknowledge", incident_id=closed.id,
                     detail="Slack user U0KARIM: You acknowledged incident")
    settings = Settings(console_port=0, console_users=write_users(folder), rules_dir=ROOT / "rules",
                        escalation_file=ROOT / "escalation.yaml", console_cookie_secure=False)
    server = console_server(settings, engine, clock, model=WordModel(), collect_file=ROOT / "monitor.yaml")
    server.start()
    try:
        base = f"http://localhost:{server.port}"
        browser.get(f"{base}/login")
        browser.find_element(By.ID, "user").send_keys("sofie")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "sign-in").click()
        WebDriverWait(browser, 30).until(lambda b: not b.current_url.endswith("/login"))  # signed in before going on
        yield base, browser, closed.id
    finally:
        browser.quit()
        server.stop()


def _pages(incident_id: int) -> list[str]:
    return ["/", "/incidents", f"/incidents/{incident_id}", "/silences", "/rules", "/try", "/audit",
            "/plan?severity=critical&brand=Lumora&rule=negative-high-reach&at=2026-11-18+21%3A40"]


@pytest.mark.parametrize("width", WIDTHS)
def test_no_element_is_cut_off(site: tuple[str, Any, int], width: int) -> None:
    base, browser, incident_id = site
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
    try:
        for path in _pages(incident_id):
            browser.get(base + path)
            assert not browser.current_url.endswith("/login"), path
            found = browser.execute_script(OUT_OF_VIEW)
            assert width - 20 <= found["vw"] <= width, (path, found)  # less a desktop scroll bar
            assert found["out"] == [] and found["scroll"] <= found["vw"], (path, found)
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_at_390_px_the_silence_button_and_plan_deadlines_are_on_screen(site: tuple[str, Any, int]) -> None:
    base, browser, _ = site
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 900, "deviceScaleFactor": 1, "mobile": True})
    try:
        browser.get(f"{base}/silences")
        button = browser.find_element(By.CSS_SELECTOR, "#silences button.expire")
        assert button.is_displayed() and button.rect["x"] + button.rect["width"] <= 390
        browser.get(f"{base}/plan?severity=critical&at=2026-11-18+21%3A40")
        cells = browser.find_elements(By.CSS_SELECTOR, "#plan td[data-label='Acknowledge by']")
        assert cells and all(c.is_displayed() and c.rect["x"] + c.rect["width"] <= 390 for c in cells)
        # One card per step: the header row is hidden, each cell names its column (CSS ::before).
        assert not browser.find_element(By.CSS_SELECTOR, "#plan thead").is_displayed()
        label = browser.execute_script("return getComputedStyle(arguments[0], '::before').content", cells[0])
        assert "Acknowledge by" in label
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_an_incident_is_worked_in_the_browser(site: tuple[str, Any, int]) -> None:
    base, browser, incident_id = site
    browser.get(f"{base}/incidents?brand=Lumora")
    assert browser.find_elements(By.ID, f"history-{incident_id}")
    browser.find_element(By.CSS_SELECTOR, f"#history-{incident_id} a").click()
    WebDriverWait(browser, 30).until(lambda b: b.current_url.endswith(f"/incidents/{incident_id}"))
    browser.find_element(By.ID, "note-text").send_keys("Taking over from Karim; statement approved at 10:00.")
    browser.find_element(By.ID, "note-add").click()
    notes = wait_for_text(browser, By.ID, "notes", "Taking over from Karim")
    assert "Taking over from Karim" in notes and "sofie" in notes
    who = browser.find_element(By.ID, "incident-audit").text
    assert "Slack" in who and "note" in who  # the channel as people name it
