"""Absence is an alert: a source that usually brings posts and has brought none for too long (issue 26).

The worker's own pipeline polls a source that answers without error; the
silence is measured in business hours (escalation.yaml: Mon-Fri 08:00-20:00
Brussels), so a quiet night never pages, a quiet working day does.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from monitor.app import build_pipeline
from monitor.clock import FakeClock
from monitor.commands.sources import describe_sources
from monitor.notify import ConsoleNotifier
from monitor.pipeline import Pipeline
from monitor.settings import Settings
from monitor.sources.base import PollResult
from monitor.sources.health import Absence, absence_of
from monitor.sources.polling import poll_source
from monitor.sources.schema import load_collect
from monitor.store import incidents as repo
from monitor.store import transaction
from tests.conftest import ROOT, make_mention

SETTINGS = Settings(rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml")


class Page:
    """A platform that answers fine; ``posts`` says how many new posts the next poll brings."""

    brand = "Lumora"

    def __init__(self, name: str, clock: FakeClock) -> None:
        self.name = name
        self.clock = clock
        self.posts = 1
        self.made = 0

    def poll(self, cursor: str | None) -> PollResult:
        batch = []
        for _ in range(self.posts):
            self.made += 1
            batch.append(make_mention(self.made, text="Lumora, neutral question", source=self.name.split(":")[0],
                                      at=self.clock.now()))
        return PollResult(batch, next_cursor=str(self.made))


def absent_incidents(engine: Engine) -> list[repo.Incident]:
    with transaction(engine) as conn:
        return [i for i in repo.all_incidents(conn) if i.rule == "source-health" and ": no new " in i.reason]


def hourly(pipeline: Pipeline, source: Page, clock: FakeClock, hours: int) -> None:
    for _ in range(hours):
        pipeline.poll(source)
        pipeline.run_pass()
        clock.advance(timedelta(hours=1))


def test_a_silent_source_raises_one_incident_after_its_usual_gap_in_business_hours(
        tmp_path: Path, engine: Engine, clock: FakeClock) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text("brands:\n  Lumora:\n    keywords: [Lumora]\n    facebook: {page_id: '1010'}\n",
                    encoding="utf-8")
    source = Page("facebook:Lumora", clock)
    pipeline = build_pipeline(SETTINGS, notifier=ConsoleNotifier(io.StringIO()), clock=clock, engine=engine,
                              watched_sources=[source])
    pipeline.absence = absence_of(load_collect(path))  # as the worker sets it from monitor.yaml
    hourly(pipeline, source, clock, 9)  # Wednesday 10:00-18:00 UTC: a post every hour
    source.posts = 0
    # Silent from 18:00 UTC: 1 h of business time Wednesday, the night does not count, Thursday opens at
    # 07:00 UTC (08:00 Brussels). 4 x 1 h is less than the 6 h floor: 6 h of business time is Thursday 12:00.
    hourly(pipeline, source, clock, 18)  # passes up to Thursday 12:00 UTC: silent 6 h, not more
    assert absent_incidents(engine) == []
    hourly(pipeline, source, clock, 1)  # the pass at Thursday 13:00 UTC
    (incident,) = absent_incidents(engine)
    # The registry's display name, the brand and the block's target; what the platform brings
    assert incident.reason.startswith(
        "Facebook Lumora (page 1010): no new comments for 7 h of business hours, usually 8 a day"), incident.reason
    assert "usually" in incident.reason and "a day" in incident.reason
    hourly(pipeline, source, clock, 3)
    assert len(absent_incidents(engine)) == 1  # one incident per silence, not one per pass

    source.posts = 1  # back: no new incident, whatever the earlier one's state
    hourly(pipeline, source, clock, 3)
    assert len(absent_incidents(engine)) == 1


def test_a_source_that_rarely_brings_posts_is_not_expected_to(engine: Engine, clock: FakeClock) -> None:
    source = Page("youtube:Lumora", clock)
    pipeline = build_pipeline(SETTINGS, notifier=ConsoleNotifier(io.StringIO()), clock=clock, engine=engine,
                              watched_sources=[source])
    hourly(pipeline, source, clock, 3)  # three arrivals: too few to know its rhythm
    source.posts = 0
    hourly(pipeline, source, clock, 72)
    assert absent_incidents(engine) == []


def test_the_threshold_follows_the_usual_gap_and_is_configurable(engine: Engine, clock: FakeClock) -> None:
    source = Page("instagram:Lumora", clock)
    pipeline = build_pipeline(SETTINGS, notifier=ConsoleNotifier(io.StringIO()), clock=clock, engine=engine,
                              watched_sources=[source])
    pipeline.absence = Absence(factor=2.0, at_least=timedelta(hours=1))
    hourly(pipeline, source, clock, 6)  # 10:00-15:00 UTC, every hour
    source.posts = 0
    hourly(pipeline, source, clock, 2)  # 16:00, 17:00: silent 2 h = 2 usual gaps, not more
    assert absent_incidents(engine) == []
    hourly(pipeline, source, clock, 1)
    (incident,) = absent_incidents(engine)
    assert incident.reason.startswith("Instagram Lumora: no new comments for 3 h")  # not from monitor.yaml


def test_monitor_sources_counts_per_configured_source(tmp_path: Path, engine: Engine, clock: FakeClock) -> None:
    """Two Mastodon instances and two Google News editions: each its own count, not the platform's."""
    path = tmp_path / "monitor.yaml"
    path.write_text("""
brands:
  Lumora:
    keywords: [Lumora]
    mastodon: {instances: ["https://one.test", "https://two.test"], hashtags: [lumora]}
    google_news: {editions: [nl-BE, fr-BE]}
""", encoding="utf-8")
    config = load_collect(path)
    one = Page("mastodon:Lumora:one.test", clock)
    one.posts = 2
    nl = Page("news:Lumora:google-nl-BE", clock)
    poll_source(engine, one, clock.now)
    poll_source(engine, nl, clock.now)
    lines = describe_sources(engine, config, SETTINGS, clock.now() + timedelta(minutes=5))
    counts = {name: next(line for line in lines[i:] if line.startswith("  last 24 h:"))
              for i, name in enumerate(lines) if name.endswith("]")}
    assert counts["mastodon:Lumora:one.test  [ok]"] == (
        "  last 24 h:    2 new item(s) stored, 2 delivered by this source")
    assert counts["mastodon:Lumora:two.test  [never polled]"] == (
        "  last 24 h:    0 new item(s) stored, 0 delivered by this source")
    assert counts["news:Lumora:google-nl-BE  [ok]"] == (
        "  last 24 h:    1 new item(s) stored, 1 delivered by this source")
    assert counts["news:Lumora:google-fr-BE  [never polled]"].startswith("  last 24 h:    0 new")
