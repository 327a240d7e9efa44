"""The weekly report in a real headless Chromium (Selenium + Debian's chromium-driver), at desktop and phone width.

The demo week is the sample feed run through the simulated worker (as
``monitor demo`` does; a word-list model stands in for the offline one, which
is not what is tested here); a busier week with two brands and many incidents
comes from the synthetic store of ``bench/digest_speed.py``. At 1,280 px every table must fit its box; at
390 px the page must never scroll sideways (a wide table scrolls inside its own
box); with every day unfolded the same holds; no axis label sticks out of its
chart; and the page logs no console error (it has no script, so any error is
a regression).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.digest.html import render_html
from monitor.digest.job import make_digest
from monitor.digest.model import Digest
from monitor.digest.week import IsoWeek
from monitor.escalation.schema import load_escalation
from tests.conftest import ROOT
from tests.console_fixtures import WordModel, demo_store

pytestmark = pytest.mark.slow  # the sample week through the simulated worker, then a browser

selenium = pytest.importorskip("selenium")

WIDTHS = {"desktop": 1280, "phone": 390}

OVERFLOW = """
const out = {page: document.documentElement.scrollWidth, inner: window.innerWidth, tables: [], labels: []};
for (const w of document.querySelectorAll('.table-wrap')) {
  if (w.offsetParent !== null && w.scrollWidth > w.clientWidth + 1)
    out.tables.push(w.querySelector('th') ? w.querySelector('tr').innerText.slice(0, 60) : '?');
}
for (const svg of document.querySelectorAll('svg.chart')) {
  const box = svg.getBoundingClientRect();
  for (const t of svg.querySelectorAll('text.axis')) {
    const r = t.getBoundingClientRect();
    if (r.width && (r.left < box.left - 0.5 || r.right > box.right + 0.5)) out.labels.push(t.textContent);
  }
}
return out;
"""


def browser() -> Any:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(chromium).exists() and Path(driver).exists()):
        pytest.skip("needs chromium and chromedriver (Debian: apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def demo_digest(folder: Path) -> Digest:
    """The sample feed's week through the simulated worker, as ``monitor demo`` runs it."""
    from monitor.cli import SAMPLE_FEED
    from monitor.demo import feed_bounds

    first, last = feed_bounds(SAMPLE_FEED)
    engine, _ = demo_store(f"sqlite:///{folder / 'demo.db'}", WordModel(), until=last.isoformat())
    config = load_escalation(ROOT / "escalation.yaml")
    digest = make_digest(engine, config, IsoWeek.containing(first, config.timezone))  # type: ignore[arg-type]
    engine.dispose()  # type: ignore[attr-defined]
    assert digest.brands and digest.brands[0].incidents, "the demo week should have incidents to show"
    return digest


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("digest-browser")
    digest = demo_digest(folder)
    page = folder / "report.html"
    page.write_text(render_html(digest), encoding="utf-8")
    return page


@pytest.fixture(scope="module")
def busy_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two brands, many incidents: the synthetic store of ``bench/digest_speed.py``, small."""
    from bench.digest_speed import LAST_WEEK, TZ, build_store
    from monitor.store import create_store_engine

    folder = tmp_path_factory.mktemp("digest-busy")
    build_store(folder / "busy.db", n_mentions=5_000, n_incidents=80)
    engine = create_store_engine(f"sqlite:///{folder / 'busy.db'}")
    digest = make_digest(engine, load_escalation(ROOT / "escalation.yaml"), IsoWeek.parse(LAST_WEEK, TZ))
    engine.dispose()
    page = folder / "busy.html"
    page.write_text(render_html(digest), encoding="utf-8")
    return page


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    d = browser()
    try:
        yield d
    finally:
        d.quit()


def at_width(driver: Any, width: int) -> None:
    """The viewport exactly ``width`` CSS px wide, as a phone reports it (``mobile`` applies the viewport tag)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})


@pytest.mark.parametrize("report", ["demo_report", "busy_report"])
@pytest.mark.parametrize("name", list(WIDTHS))
def test_the_report_fits_the_screen(request: pytest.FixtureRequest, driver: Any, name: str, report: str) -> None:
    page: Path = request.getfixturevalue(report)
    width = WIDTHS[name]
    at_width(driver, width)
    driver.get(page.as_uri())
    assert "Reputation digest" in driver.title
    folded = driver.execute_script(OVERFLOW)
    assert folded["inner"] == width
    assert folded["page"] <= folded["inner"], f"the page scrolls sideways at {width} px"
    assert folded["labels"] == [], "axis labels cut"
    if name == "desktop":
        assert folded["tables"] == [], "tables that do not fit at 1,280 px"
    # Unfold every day: the incident cards must fit too.
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    unfolded = driver.execute_script(OVERFLOW)
    assert unfolded["page"] <= unfolded["inner"], f"an unfolded day scrolls sideways at {width} px"
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []


def test_a_top_incident_link_opens_its_folded_day(demo_report: Path, driver: Any) -> None:
    at_width(driver, 1280)
    driver.get(demo_report.as_uri())
    link = driver.find_element("css selector", "ol.top a")
    target = link.get_attribute("href").split("#", 1)[1]
    assert driver.execute_script(f"return document.getElementById('{target}').closest('details').open") is False
    link.click()
    assert driver.execute_script(f"return document.getElementById('{target}').closest('details').open") is True
