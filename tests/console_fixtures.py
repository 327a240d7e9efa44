"""Shared by the console tests: a users file, a small stand-in sentiment model, sign-in through the real form."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from monitor.console.users import hash_password
from monitor.models import SentimentScores

PASSWORD = "correct horse battery staple"
NEGATIVE_WORDS = ("scam", "oplichting", "terrible", "schandalig", "arnaque", "boycott")


def write_users(folder: Path) -> Path:
    """sofie: responder and editor; karim: responder on the critical policy, not an editor; guest: neither."""
    digest = hash_password(PASSWORD)
    path = folder / "console-users.yaml"
    path.write_text(
        "users:\n"
        f"  sofie: {{password_hash: '{digest}', editor: true}}\n"
        f"  karim: {{password_hash: '{digest}'}}\n"
        f"  guest: {{password_hash: '{digest}', responder: nobody}}\n", encoding="utf-8")
    return path


class WordModel:
    """Negative when the text holds an angry word: fast and predictable for tests that are not about the model."""

    name = "test-words"
    version = "1"

    def predict(self, texts: Sequence[str]) -> list[SentimentScores]:
        out = []
        for text in texts:
            angry = any(w in text.lower() for w in NEGATIVE_WORDS)
            out.append(SentimentScores(0.9, 0.07, 0.03) if angry else SentimentScores(0.05, 0.35, 0.6))
        return out


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


# Thursday morning of the sample week: Wednesday evening's burst is still open (nobody acknowledged it yet),
# and so is Wednesday's fraud incident; by the feed's end every incident has expired unanswered.
DEMO_MORNING = "2026-11-20T06:00:00+00:00"


def demo_store(url: str, model: object, until: str = DEMO_MORNING) -> tuple[object, object]:
    """The sample feed run through the simulated worker (as ``monitor demo``) up to ``until``; returns
    (engine, clock at ``until``)."""
    import io
    from datetime import timedelta

    from monitor.app import Mode, SourcePlan, build_worker, open_store
    from monitor.cli import SAMPLE_FEED
    from monitor.clock import FakeClock
    from monitor.demo import feed_bounds
    from monitor.notify import ConsoleNotifier
    from monitor.settings import Settings
    from monitor.sources import ReplaySource
    from tests.conftest import ROOT

    first, last = feed_bounds(SAMPLE_FEED)
    clock = FakeClock(first - timedelta(minutes=1))
    engine = open_store(url)
    settings = Settings(db_url=url, rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml")
    worker = build_worker(settings, clock, mode=Mode.SIMULATED, engine=engine, model=model,  # type: ignore[arg-type]
                          notifier=ConsoleNotifier(io.StringIO()),
                          sources=SourcePlan((ReplaySource(SAMPLE_FEED, name="sample", release_until=clock.now),)))
    from datetime import datetime

    # No drain: the feed is released up to the clock only, and the clock stops at ``until``.
    worker.run_simulated(clock, step=timedelta(minutes=15), until=min(datetime.fromisoformat(until), last),
                         drain=False)
    return engine, clock


def chrome(width: int = 1200, height: int = 1000) -> object:
    """Headless Debian Chromium through chromedriver, or skip when either is missing."""
    import shutil

    import pytest

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(chromium).exists() and Path(driver).exists()):
        pytest.skip("needs chromium and chromedriver (Debian: apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", f"--window-size={width},{height}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def wait_for_text(browser: object, by: str, value: str, text: str, timeout: float = 30) -> str:
    """The text of the element (``by``, ``value``) once it contains ``text``; after a click the old page may
    still be shown, and an element found on it goes stale when the new one arrives (a loaded machine)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    seen: list[str] = []

    def has(b: object) -> bool:
        try:
            seen[:] = [e.text for e in b.find_elements(by, value)]  # type: ignore[attr-defined]
        except StaleElementReferenceException:
            return False
        return any(text in t for t in seen)
    WebDriverWait(browser, timeout).until(has, message=f"{value!r} never said {text!r} (last: {seen!r})")
    return next(t for t in seen if text in t)
