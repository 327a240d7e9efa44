"""The weekly report in Dutch and French, in a real headless Chromium at phone width.

What a reader sees (the page's rendered text, quoted posts and the rules' own
words left out) has no English interface word and writes dates the local way;
the response tables become cards on a 390 px screen, so their key figures read
without scrolling sideways.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.digest.html import render_html
from tests.i18n_terms import DATES, english_terms
from tests.test_digest_browser import at_width, browser, demo_digest

pytestmark = pytest.mark.slow
selenium = pytest.importorskip("selenium")

# The interface's text only: quoted posts, the rules' reasons and stored notes are the team's data.
VISIBLE_UI_TEXT = """
const copy = document.body.cloneNode(true);
copy.querySelectorAll('blockquote, .data, code, title, desc').forEach(e => e.remove());
document.body.appendChild(copy); copy.style.display = 'block';
const text = copy.innerText; copy.remove();
return text;
"""
CARDS = """
const out = [];
for (const t of document.querySelectorAll('table.cards')) {
  const wrap = t.closest('.table-wrap');
  if (wrap.scrollWidth > wrap.clientWidth + 1) out.push('wrap ' + wrap.scrollWidth + ' > ' + wrap.clientWidth);
  for (const row of t.querySelectorAll('tbody tr')) {
    if (row.getBoundingClientRect().right > wrap.getBoundingClientRect().right + 1) out.push(row.innerText);
  }
}
return {cards: document.querySelectorAll('table.cards').length, overflow: out,
        page: document.documentElement.scrollWidth, inner: window.innerWidth};
"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("digest-i18n")
    digest = demo_digest(folder)
    out = {}
    for locale in ("nl_BE", "fr_BE", "en"):
        out[locale] = folder / f"report-{locale}.html"
        out[locale].write_text(render_html(digest, locale), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def driver() -> Any:
    d = browser()
    try:
        yield d
    finally:
        d.quit()


@pytest.mark.parametrize("locale", ["nl_BE", "fr_BE"])
def test_the_report_reads_in_the_team_language(reports: dict[str, Path], driver: Any, locale: str) -> None:
    at_width(driver, 1280)
    driver.get(reports[locale].as_uri())
    assert driver.execute_script("return document.documentElement.lang") == locale[:2]
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    text = driver.execute_script(VISIBLE_UI_TEXT)
    assert english_terms(text) == [], text[:2000]
    assert DATES[locale].search(text), "no date written the local way"
    assert {"nl_BE": "Tijd tot bevestiging", "fr_BE": "Délai de prise en charge"}[locale] in text


@pytest.mark.parametrize("locale", ["nl_BE", "fr_BE", "en"])
def test_response_tables_are_cards_on_a_phone(reports: dict[str, Path], driver: Any, locale: str) -> None:
    at_width(driver, 390)
    driver.get(reports[locale].as_uri())
    found = driver.execute_script(CARDS)
    assert found["cards"] >= 2  # time to acknowledge and time to resolve
    assert found["overflow"] == [], "a response table scrolls sideways at 390 px"
    assert found["page"] <= found["inner"]
    label = driver.execute_script(
        "const td = document.querySelector('table.cards tbody td:nth-child(4)');"
        "return getComputedStyle(td, '::before').content")
    assert {"nl_BE": "Boven de norm", "fr_BE": "Hors délai", "en": "Over target"}[locale] in label
