"""The weekly digest on a week with known answers: volumes, shares, times to acknowledge, precision, privacy.

Mentions go in through the store's own functions and incidents through the
real escalation engine with chosen times, so the digest is tested against
what the worker really writes, not against rows shaped by hand.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from monitor.digest.figures import Digest, build_digest
from monitor.digest.html import render_html
from monitor.digest.job import run_weekly_digest, schedule_weekly_digest, weekly_trigger
from monitor.digest.slack import SlackDigest, SlackPoster, SlackPostError, build_message
from monitor.digest.timeline import safe_text, safe_url
from monitor.digest.week import IsoWeek
from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.escalation.hours import Hours
from monitor.models import IncidentState, Mention, SentimentScores, Severity, Signal
from monitor.privacy.scrub import url_without_handle
from monitor.store import mentions as mention_repo
from monitor.store import transaction
from monitor.store.tables import mentions
from monitor.text import shorten
from monitor.yamlconfig import parse
from tests.conftest import ROOT

ZONE = ZoneInfo("Europe/Brussels")
TZ = "Europe/Brussels"
W47 = IsoWeek(2026, 47, TZ)
CHROMIUM = Path("/usr/bin/chromium")

CONFIG = """
timezone: Europe/Brussels
business_hours: {days: [mon, tue, wed, thu, fri], start: "08:00", end: "20:00"}
grouping: {window: 6h}
responders:
  sofie: {name: Sofie Peeters, slack: U0SOFIE01}
  karim: {name: Karim El Amrani, email: karim@example.com}
policies:
  - name: critical
    match: {severity: [critical]}
    after_hours: page
    levels:
      - {notify: [sofie], ack_within: 15m}
      - {notify: [karim], ack_within: 30m}
  - name: normal
    after_hours: wait
    levels:
      - {notify: [sofie], ack_within: 1h}
      - {notify: [karim], ack_within: 1h}
"""


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=ZONE).astimezone(UTC)


@pytest.fixture
def config(tmp_path: Path) -> EscalationConfig:
    path = tmp_path / "escalation.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return parse(EscalationConfig, path)


@dataclass
class World:
    engine: Engine
    config: EscalationConfig
    esc: EscalationEngine
    ids: dict[str, int]
    incidents: dict[str, int]


def add(engine: Engine, key: str, at: datetime, scores: tuple[float, float, float] | None, *, source: str = "x",
        brand: str = "Lumora", author: str | None = None, reach: int = 100, text: str | None = None,
        url: str | None = None) -> int:
    """Store one mention (and its score) the way the pipeline does; returns its row id."""
    m = Mention(source=source, source_id=key, brand=brand, text=text or f"{brand} post {key}", created_at=at,
                url=url or f"https://example.org/{source}/{key}", author_handle=author if author is not None
                else (None if source == "news" else f"person_{key}"), author_reach=reach)
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, source, [m], None, at)
        mid = int(conn.execute(select(mentions.c.id).where(mentions.c.source == source,
                                                           mentions.c.source_id == key)).scalar_one())
        if scores is not None:
            mention_repo.save_scores(conn, [(mid, SentimentScores(*scores))], "test-model", "1", at)
    return mid


def open_incident(w: World, name: str, at: datetime, severity: Severity, rule: str, mention_ids: tuple[int, ...],
                  reason: str = "test reason") -> int:
    sig = Signal(rule=rule, severity=severity, brand="Lumora", group_key=f"Lumora:{name}", reason=reason,
                 fired_at=at, mention_ids=mention_ids, kind="mention")
    with transaction(w.engine) as conn:
        [iid] = w.esc.ingest(conn, [sig], at)
    w.incidents[name] = iid
    return iid


def tick(w: World, at: datetime) -> None:
    with transaction(w.engine) as conn:
        w.esc.tick(conn, at)


def ack(w: World, iid: int, who: str, at: datetime) -> None:
    with transaction(w.engine) as conn:
        w.esc.acknowledge(conn, iid, who, at)


def resolve(w: World, iid: int, who: str, at: datetime, note: str, fp: bool = False) -> None:
    with transaction(w.engine) as conn:
        w.esc.resolve(conn, iid, who, at, false_positive=fp, note=note)


@pytest.fixture
def world(engine: Engine, config: EscalationConfig) -> World:
    w = World(engine, config, EscalationEngine(config), {}, {})
    ids = w.ids
    # --- Week 47 (Mon 16 – Sun 22 Nov 2026, CET = UTC+1), brand Lumora -----------------------------------
    # Sunday 15 Nov 23:30 local belongs to week 46; Monday 00:30 local (Sunday 23:30 UTC) to Monday.
    ids["w46_sun_late"] = add(engine, "w46-sun", local(2026, 11, 15, 23, 30), (0.1, 0.2, 0.7))
    ids["mon_early"] = add(engine, "mon-early", local(2026, 11, 16, 0, 30), (0.45, 0.2, 0.35))  # neutral
    ids["bigvoice"] = add(engine, "big-1", local(2026, 11, 16, 9, 55), (0.5, 0.3, 0.2), author="bigvoice",
                          reach=50_000, text="@Lumora_be your app lost my invoices, again. Cc @someone_private",
                          url="https://x.com/bigvoice/status/1001")  # negative at exactly 0.5
    ids["mon_x3"] = add(engine, "mon-3", local(2026, 11, 16, 10, 20), (0.3, 0.3, 0.4))  # positive
    ids["mon_reddit"] = add(engine, "mon-r", local(2026, 11, 16, 12, 0), (0.2, 0.5, 0.3), source="reddit")  # neu
    ids["tue_neg"] = add(engine, "tue-1", local(2026, 11, 17, 13, 50), (0.9, 0.05, 0.05))
    ids["tue_unscored"] = add(engine, "tue-2", local(2026, 11, 17, 15, 0), None)
    ids["wed_news"] = add(engine, "wed-n", local(2026, 11, 18, 7, 0), (0.1, 0.3, 0.6), source="news", reach=0)
    ids["smallfry"] = add(engine, "555", local(2026, 11, 18, 10, 55), (0.6, 0.2, 0.2), author="smallfry",
                          reach=120, text="RT @smallfry: @lumora_be you are scammers, ask @otherperson",
                          url="https://x.com/smallfry/status/555")
    ids["edgecase"] = add(engine, "sat-1", local(2026, 11, 21, 11, 50), (0.2, 0.4, 0.4), source="reddit",
                          author="edgecase", reach=10_000)  # positive on a tie; named at exactly the threshold
    ids["sat_r2"] = add(engine, "sat-2", local(2026, 11, 21, 16, 0), (0.49, 0.01, 0.5), source="reddit")  # pos
    ids["sun_big"] = add(engine, "big-2", local(2026, 11, 22, 23, 30), (0.7, 0.2, 0.1), author="bigvoice",
                         reach=51_000)
    # Monday 23 Nov 00:30 local is week 48.
    ids["w48"] = add(engine, "w48", local(2026, 11, 23, 0, 30), (0.9, 0.05, 0.05))
    # Another brand in the same week.
    add(engine, "verdo-1", local(2026, 11, 17, 9, 0), (0.8, 0.1, 0.1), brand="Verdo")
    add(engine, "verdo-2", local(2026, 11, 17, 9, 30), (0.1, 0.8, 0.1), brand="Verdo")

    # --- Previous weeks --------------------------------------------------------------------------------
    # W43 (19–25 Oct, ends on the night Brussels leaves summer time): 6 mentions, 3 negative.
    for n in range(3):
        add(engine, f"w43-neg-{n}", local(2026, 10, 20 + n, 12), (0.8, 0.1, 0.1))
    for n in range(2):
        add(engine, f"w43-neu-{n}", local(2026, 10, 23, 12 + n), (0.1, 0.8, 0.1))
    add(engine, "w43-sun-late", local(2026, 10, 25, 23, 30), (0.1, 0.8, 0.1))  # 22:30 UTC, still Sunday
    # W44: Monday 26 Oct 00:30 local (25 Oct 23:30 UTC) is the only mention.
    add(engine, "w44-mon-early", local(2026, 10, 26, 0, 30), (0.1, 0.8, 0.1))
    # W45: two mentions, one not scored.
    add(engine, "w45-1", local(2026, 11, 3, 12), (0.1, 0.8, 0.1))
    add(engine, "w45-2", local(2026, 11, 4, 12), None)
    # W46: three mentions (one is the late Sunday one above), one negative.
    add(engine, "w46-1", local(2026, 11, 10, 12), (0.9, 0.05, 0.05))
    add(engine, "w46-2", local(2026, 11, 11, 12), (0.1, 0.3, 0.6))

    # Incidents in earlier weeks: W43 warning acked after 20 min, W46 critical acked after 10 min.
    old1 = open_incident(w, "w43", local(2026, 10, 20, 10), Severity.WARNING, "keyword-scam",
                         (ids["w46_sun_late"],))
    ack(w, old1, "sofie", local(2026, 10, 20, 10, 20))
    resolve(w, old1, "sofie", local(2026, 10, 20, 11), "done")
    old2 = open_incident(w, "w46", local(2026, 11, 12, 10), Severity.CRITICAL, "negative-high-reach",
                         (ids["w46_sun_late"],))
    ack(w, old2, "sofie", local(2026, 11, 12, 10, 10))
    resolve(w, old2, "sofie", local(2026, 11, 12, 11), "done")

    # --- Incidents of week 47 ------------------------------------------------------------------------------
    # 1: critical, acknowledged after 5 min, resolved after 2 h; a second signal joins it.
    i1 = open_incident(w, "i1", local(2026, 11, 16, 10), Severity.CRITICAL, "negative-high-reach",
                       (ids["bigvoice"],), reason="Post by @bigvoice on X: 50,000 followers")
    ack(w, i1, "sofie", local(2026, 11, 16, 10, 5))
    with transaction(engine) as conn:
        w.esc.ingest(conn, [Signal(rule="negative-high-reach", severity=Severity.CRITICAL, brand="Lumora",
                                   group_key="Lumora:i1", reason="again", fired_at=local(2026, 11, 16, 10, 30),
                                   mention_ids=(ids["mon_x3"],))], local(2026, 11, 16, 10, 30))
    resolve(w, i1, "sofie", local(2026, 11, 16, 12), "answered publicly")
    # 2: critical, nobody at level 1: escalated to Karim at 14:15, he acks at 14:25: a false positive.
    i2 = open_incident(w, "i2", local(2026, 11, 17, 14), Severity.CRITICAL, "negative-high-reach", (ids["tue_neg"],))
    tick(w, local(2026, 11, 17, 14, 15))
    ack(w, i2, "karim", local(2026, 11, 17, 14, 25))
    resolve(w, i2, "karim", local(2026, 11, 17, 15), "irony, not a complaint", fp=True)
    # 3: warning in business hours, acked after 40 min, false positive. First post by a small account.
    i3 = open_incident(w, "i3", local(2026, 11, 18, 11), Severity.WARNING, "keyword-scam", (ids["smallfry"],),
                       reason="Post by @smallfry on X: keyword 'scam'")
    ack(w, i3, "U0SOFIE01", local(2026, 11, 18, 11, 40))  # a Slack button click records the Slack user id
    resolve(w, i3, "sofie", local(2026, 11, 18, 12), "quote of a news article", fp=True)
    # 4: warning at 19:30 Thursday, acked 08:20 Friday: 30 + 20 min of business time (12 h 50 min of real time).
    i4 = open_incident(w, "i4", local(2026, 11, 19, 19, 30), Severity.WARNING, "keyword-scam", (ids["wed_news"],))
    ack(w, i4, "sofie", local(2026, 11, 20, 8, 20))
    resolve(w, i4, "sofie", local(2026, 11, 20, 9), "answered by DM")
    # 5: critical on Saturday, never acknowledged: level 2 at 12:15, every level called at 12:45, expired Sunday.
    open_incident(w, "i5", local(2026, 11, 21, 12), Severity.CRITICAL, "negative-high-reach",
                       (ids["edgecase"],))
    tick(w, local(2026, 11, 21, 12, 15))
    tick(w, local(2026, 11, 21, 12, 45))
    tick(w, local(2026, 11, 22, 13))  # a day without new posts: the engine marks it expired
    return w


def digest_of(w: World, week: IsoWeek = W47, **kwargs: object) -> Digest:
    with transaction(w.engine) as conn:
        return build_digest(conn, week, w.config, **kwargs)  # type: ignore[arg-type]


# --- weeks ------------------------------------------------------------------------------------------------


def test_week_boundaries_are_local_midnights_including_dst() -> None:
    assert W47.start == datetime(2026, 11, 15, 23, tzinfo=UTC)
    assert W47.end == datetime(2026, 11, 22, 23, tzinfo=UTC)
    w43 = IsoWeek.parse("2026-W43", TZ)
    assert w43.start == datetime(2026, 10, 18, 22, tzinfo=UTC)  # CEST
    assert w43.end == datetime(2026, 10, 25, 23, tzinfo=UTC)  # CET: a 169-hour week
    assert w43.end - w43.start == timedelta(hours=169)
    spring = IsoWeek.parse("2026W13", TZ)
    assert spring.end - spring.start == timedelta(hours=167)
    from monitor.digest.format import week_span
    from monitor.i18n import translator

    en, nl = translator("en", TZ), translator("nl_BE", TZ)
    assert week_span(W47, en) == "Mon 16 Nov – Sun 22 Nov 2026"
    assert week_span(IsoWeek.parse("2026-W53", TZ), en) == "Mon 28 Dec 2026 – Sun 3 Jan 2027"
    assert week_span(W47, nl) == "ma 16 nov – zo 22 nov 2026"


def test_last_complete_week_is_judged_in_local_time() -> None:
    assert IsoWeek.last_complete(local(2026, 11, 23, 9), TZ) == W47
    # Sunday 23:30 local is still week 47 in Brussels (Monday in UTC+2 zones would say otherwise).
    assert IsoWeek.last_complete(local(2026, 11, 22, 23, 30), TZ).label == "2026-W46"
    assert IsoWeek.last_complete(local(2027, 1, 4, 9), TZ).label == "2026-W53"


@pytest.mark.parametrize("text", ["2027-W53", "2026-W00", "W47", "2026-47", ""])
def test_bad_weeks_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        IsoWeek.parse(text, TZ)


# --- figures ----------------------------------------------------------------------------------------------


def test_volumes_per_day_and_source(world: World) -> None:
    d = digest_of(world)
    assert [b.brand for b in d.brands] == ["Lumora", "Verdo"]
    lumora = d.brands[0]
    assert lumora.sources == ("news", "reddit", "x")
    assert [day.day for day in lumora.days] == [date(2026, 11, 16 + i) for i in range(7)]
    assert [day.by_source for day in lumora.days] == [
        {"x": 3, "reddit": 1}, {"x": 2}, {"news": 1, "x": 1}, {}, {}, {"reddit": 2}, {"x": 1}]
    assert lumora.volume == 11
    assert lumora.by_source == {"news": 1, "reddit": 3, "x": 7}
    verdo = d.brands[1]
    assert verdo.volume == 2 and verdo.incidents == () and verdo.days[1].by_source == {"x": 2}


def test_sentiment_shares_use_the_documented_threshold(world: World) -> None:
    lumora = digest_of(world).brands[0]
    mon, tue, wed, _, _, sat, sun = (d.sentiment for d in lumora.days)
    # Monday: 0.5 is negative; 0.45 with neutral below positive is neutral; positive max; neutral max.
    assert (mon.negative, mon.neutral, mon.positive, mon.unscored) == (1, 2, 1, 0)
    assert (mon.share("negative"), mon.share("neutral"), mon.share("positive")) == (0.25, 0.5, 0.25)
    assert (tue.negative, tue.scored, tue.unscored, tue.share("negative")) == (1, 1, 1, 1.0)
    assert (wed.negative, wed.positive) == (1, 1)
    assert (sat.positive, sat.negative) == (2, 0)  # a tie goes to positive; 0.49 negative is not negative
    assert sun.negative == 1
    assert lumora.days[3].sentiment.share("negative") is None  # nothing scored on Thursday
    week = lumora.sentiment
    assert (week.negative, week.neutral, week.positive, week.unscored) == (4, 2, 4, 1)


def test_incidents_with_who_acknowledged_and_how_fast(world: World) -> None:
    lumora = digest_of(world).brands[0]
    by_id = {i.id: i for i in lumora.incidents}
    assert list(by_id) == [world.incidents[k] for k in ("i1", "i2", "i3", "i4", "i5")]
    i1, i2, i3, i4, i5 = by_id.values()
    assert (i1.severity, i1.acknowledged_by, i1.time_to_ack, i1.met_target) == (
        Severity.CRITICAL, "Sofie Peeters", timedelta(minutes=5), True)
    assert (i1.time_to_resolve, i1.resolution_note, i1.mention_count) == (timedelta(hours=2), "answered publicly", 2)
    assert i1.first_post is not None and i1.first_post.author == "bigvoice" and i1.first_post.reach == 50_000
    assert i1.first_post.url == "https://x.com/bigvoice/status/1001"
    assert (i2.acknowledged_by, i2.time_to_ack, i2.met_target, i2.max_level) == (
        "Karim El Amrani", timedelta(minutes=25), False, 2)
    assert (i2.state.value, i2.resolution_note, i2.closed_by) == ("false_positive", "irony, not a complaint",
                                                                  "Karim El Amrani")
    assert i3.time_to_ack == timedelta(minutes=40) and i3.business_clock and i3.acknowledged_by == "Sofie Peeters"
    # Business time: 19:30–20:00 Thursday + 08:00–08:20 Friday.
    assert i4.time_to_ack == timedelta(minutes=50) and i4.met_target
    assert i4.time_to_resolve == timedelta(hours=13, minutes=30)
    assert (i5.acknowledged_by, i5.time_to_ack, i5.max_level) == (None, None, 2)
    assert (i5.closed_state, i5.closed_by, i5.time_to_resolve) == (IncidentState.EXPIRED, "automatically",
                                                                   timedelta(hours=25))
    assert i2.escalation_notes == i5.escalation_notes == ("level 2 notified: Karim El Amrani",)


def test_time_to_acknowledge_against_the_policy_target(world: World) -> None:
    lumora = digest_of(world).brands[0]
    critical, normal = lumora.ack
    assert (critical.policy, critical.target, critical.incidents, critical.acknowledged) == (
        "critical", timedelta(minutes=15), 3, 2)
    # One acknowledged late and one never acknowledged: both missed the 15 min target.
    assert (critical.median, critical.worst, critical.over_target, critical.unacknowledged) == (
        timedelta(minutes=15), timedelta(minutes=25), 2, 1)
    assert (normal.policy, normal.target, normal.median, normal.worst, normal.over_target) == (
        "normal", timedelta(hours=1), timedelta(minutes=45), timedelta(minutes=50), 0)


def test_escalations_and_rule_precision(world: World) -> None:
    d = digest_of(world)
    lumora = d.brands[0]
    assert [i.id for i in lumora.escalations] == [world.incidents["i2"], world.incidents["i5"]]
    rules = {r.rule: r for r in lumora.rules}
    high = rules["negative-high-reach"]
    # i5 expired with nobody looking: not evidence either way, so not in the denominator.
    assert (high.signals, high.incidents, high.reviewed, high.unreviewed, high.false_positives) == (4, 3, 2, 1, 1)
    assert high.precision is None and high.too_few_reviewed  # 2 reviewed: too few for a percentage
    scam = rules["keyword-scam"]
    assert (scam.signals, scam.incidents, scam.reviewed, scam.false_positives, scam.precision) == (2, 2, 2, 1, None)
    html = render_html(d)
    assert "1 of 3 not reviewed" in html and "too few reviewed" in html
    rows = re.findall(r"<tr><td>(?:keyword-scam|negative-high-reach)</td>.*?</tr>", html)
    assert rows and not any("%" in row for row in rows)  # no percentage from two reviewed incidents


def test_precision_counts_reviewed_incidents_only() -> None:
    from monitor.digest.format import not_reviewed as words_not_reviewed
    from monitor.digest.format import precision as words_precision
    from monitor.digest.model import RuleFigures, sort_rules
    from monitor.i18n import translator

    en = translator("en")

    def not_reviewed(rule: RuleFigures) -> str:
        return words_not_reviewed(rule, en)

    def precision(rule: RuleFigures) -> str:
        return words_precision(rule, en)

    unreviewed_week = RuleFigures("silent", signals=12, incidents=12, false_positives=0, reviewed=0)
    assert unreviewed_week.precision is None  # nobody looked: not 100 %
    assert not_reviewed(unreviewed_week) == "12 of 12 not reviewed"
    assert precision(unreviewed_week).startswith("too few reviewed")
    mixed = RuleFigures("mixed", signals=20, incidents=12, false_positives=1, reviewed=5)
    assert mixed.precision == pytest.approx(4 / 5)
    assert (not_reviewed(mixed), precision(mixed)) == ("7 of 12 not reviewed", "80%")
    bad = RuleFigures("bad", signals=5, incidents=4, false_positives=3, reviewed=4)
    assert [r.rule for r in sort_rules([unreviewed_week, mixed, bad])] == ["bad", "mixed", "silent"]
    assert precision(RuleFigures("idle", 3, 0, 0)) == "–"


def test_week_against_the_previous_four(world: World) -> None:
    lumora = digest_of(world).brands[0]
    rows = [(t.label, t.volume, t.negative, t.scored, t.incidents, t.median_tta) for t in lumora.trend]
    assert rows == [
        ("2026-W43", 6, 3, 6, 1, timedelta(minutes=20)),
        ("2026-W44", 1, 0, 1, 0, None),
        ("2026-W45", 2, 0, 1, 0, None),
        ("2026-W46", 3, 1, 3, 1, timedelta(minutes=10)),
        ("2026-W47", 11, 4, 10, 5, timedelta(minutes=32, seconds=30)),
    ]
    base = lumora.baseline
    assert (base.weeks, base.volume, base.incidents, base.median_tta) == (4, 3.0, 0.5, timedelta(minutes=15))
    assert base.negative_share == pytest.approx(4 / 11)
    assert lumora.trend[-1].negative_share == 0.4


def test_only_authors_above_the_reach_threshold_are_named(world: World) -> None:
    lumora = digest_of(world).brands[0]
    named = [(a.handle, a.reach, a.posts) for a in lumora.voices.named]
    assert named == [("bigvoice", 51_000, 2), ("edgecase", 10_000, 1)]  # no negativity count per person
    classes = [(c.low, c.high, c.authors, c.posts, c.negative) for c in lumora.voices.classes]
    # under 100: the news post (reach 0, no handle); 100–999: seven people; 10,000 or more: the named two.
    assert classes == [(0, 100, 0, 1, 0), (100, 1_000, 7, 7, 2), (10_000, None, 2, 3, 2)]
    assert lumora.voices.classes[1].negative_share == pytest.approx(2 / 7)
    assert lumora.voices.classes[2].negative_share is None  # two authors: it would describe them
    # 11 posts: 3 named; 8 by others, of which one (news) has no handle.
    assert (lumora.voices.other_posts, lumora.voices.other_authors) == (8, 7)
    with transaction(world.engine) as conn:
        stricter = build_digest(conn, W47, world.config, reach_threshold=60_000).brands[0]
    assert stricter.voices.named == () and stricter.voices.other_posts == 11
    i1 = stricter.incidents[0]
    assert i1.first_post is not None and i1.first_post.author is None
    assert "bigvoice" not in i1.reason and "bigvoice" not in (i1.first_post.url or "")


def test_html_names_high_reach_authors_only(world: World) -> None:
    html = render_html(digest_of(world))
    assert "bigvoice" in html and "edgecase" in html
    assert "smallfry" not in html.casefold()
    assert "someone_private" not in html and "otherperson" not in html
    assert "@Lumora_be" in html and "@lumora_be" in html  # brand accounts stay readable
    assert "https://x.com/i/web/status/555" in html  # the link still works without the handle
    assert "person_" not in html  # no handle of a low-reach author, anywhere
    assert "expired automatically after 25 h" in html


def test_report_is_self_contained_and_reproducible(world: World) -> None:
    html = render_html(digest_of(world))
    assert html == render_html(digest_of(world))
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for needle in ("<h1>Reputation digest · week 2026-W47</h1>", '<h2 id="h-lumora">Lumora</h2>', "<svg",
                   "@media print", "@media (max-width:600px)", 'name="viewport"', "Precision", "P(negative) ≥ 0.5"):
        assert needle in html
    assert "Generated" not in html
    stamped = render_html(digest_of(world, generated_at=local(2026, 11, 23, 9)))
    assert "Generated" in stamped and "Mon 23 Nov 09:00" in stamped


def test_an_empty_week_renders(engine: Engine, config: EscalationConfig) -> None:
    with transaction(engine) as conn:
        d = build_digest(conn, W47, config)
    assert d.brands == ()
    assert "No brand had mentions" in render_html(d)
    assert build_message(d).blocks[0]["type"] == "header"


def test_business_time_skips_nights_and_weekends(config: EscalationConfig) -> None:
    hours = Hours(config.business_hours, config.zone)  # the engine's clock: the digest has no copy of its own
    assert hours.between(local(2026, 11, 20, 19), local(2026, 11, 23, 9)) == timedelta(hours=2)
    assert hours.between(local(2026, 11, 21, 10), local(2026, 11, 22, 10)) == timedelta(0)


def test_quoted_text_is_shortened_and_masked() -> None:
    text = "Hey @lumora_support and @jan_doe " + "very long " * 30
    out = safe_text(text, "Lumora", None, limit=60)
    assert len(out) <= 60 and out.endswith("…") and "@lumora_support" in out and "jan_doe" not in out
    assert safe_url("https://x.com/jan_doe/status/9", "jan_doe", named=False) == "https://x.com/i/web/status/9"
    assert safe_url("https://mastodon.social/@jan_doe/9", "jan_doe", named=False) is None
    assert safe_url("https://reddit.com/r/x/comments/1", "jan_doe", named=False) == "https://reddit.com/r/x/comments/1"


def test_alerts_and_the_digest_shorten_alike() -> None:
    from monitor.i18n import translator
    from monitor.models import PostSummary
    from monitor.notify.render import POST_TEXT_LIMIT, post_view

    text = "Lumora,   why\n" + "really " * 60
    quoted = post_view(PostSummary(id=1, text=text, reach=1, source="x", created_at=local(2026, 11, 18, 11)),
                       translator("en", TZ))
    assert quoted.text == shorten(text, POST_TEXT_LIMIT) and len(quoted.text) <= POST_TEXT_LIMIT
    assert quoted.text.endswith("really …")  # cut between words, as alerts always were
    assert shorten("see https://example.org/" + "x" * 300, 40) == "see …"
    # textwrap.shorten would give " …" alone here: a post that is one long link keeps its start.
    assert shorten("https://example.org/" + "x" * 300, 40) == "https://example.org/" + "x" * 18 + " …"
    assert shorten("one, two, three", 12) == "one, two, …"  # as textwrap.shorten, which alerts always used


def sample_posts() -> list[dict[str, object]]:
    lines = (ROOT / "monitor" / "data" / "sample_mentions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_the_sample_feeds_news_article_keeps_its_link(engine: Engine, config: EscalationConfig) -> None:
    # energiekompas is the news site's "handle" and also its domain; the domain names no person, so the
    # article link stays, as the purge keeps it (the digest used to drop it).
    [post] = [p for p in sample_posts() if "energiekompas" in str(p["url"]) and "2026/11/16" in str(p["url"])]
    url = str(post["url"])
    at = datetime.fromisoformat(str(post["created_at"]))
    w = World(engine, config, EscalationEngine(config), {}, {})
    mid = add(engine, str(post["source_id"]), at, (0.7, 0.2, 0.1), source="news", author=str(post["author_handle"]),
              reach=int(str(post["author_reach"])), text=str(post["text"]), url=url)
    open_incident(w, "news", at, Severity.WARNING, "keyword-scam", (mid,))
    [incident] = digest_of(w).brands[0].incidents
    assert incident.first_post is not None and incident.first_post.author is None  # 5,200 followers: not named
    assert incident.first_post.url == url
    assert url in render_html(digest_of(w))


def test_digest_links_follow_the_purge_rule_on_every_sample_post() -> None:
    posts = sample_posts()
    assert len(posts) > 50
    for p in posts:
        url, handle = p.get("url"), p.get("author_handle")
        assert safe_url(str(url), str(handle), named=False) == url_without_handle(str(url), str(handle)), url


# --- Slack ------------------------------------------------------------------------------------------------


def test_slack_blocks_carry_key_figures_top_incidents_and_the_report_path(world: World) -> None:
    msg = build_message(digest_of(world), "https://reports.example.org/digest-2026-W47.html")
    assert len(msg.blocks) <= 50
    dumped = json.dumps(msg.blocks, ensure_ascii=False)
    assert msg.blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Reputation digest · 2026-W47"}}
    assert "11: +267% against the average of the previous 4 weeks (3)" in dumped  # a sentence, not "(new vs …)"
    # Never acknowledged is over the target, and the summary says so.
    assert ("critical: median 15 min, worst 25 min (target 15 min: 2 over), 1 never acknowledged (counted as "
            "over)") in dumped
    assert "<https://reports.example.org/digest-2026-W47.html|2026-W47 report>" in dumped
    local_path = json.dumps(build_message(digest_of(world), "/srv/digests/digest-2026-W47.html").blocks)
    assert "/srv/digests" not in local_path  # a path on the worker's machine opens nothing in Slack
    assert ("`keyword-scam`: 1 of 2 reviewed incidents false positive, all reviewed (precision too few reviewed "
            "(under 3), 2 signals)") in dumped
    assert "smallfry" not in dumped and "person_" not in dumped
    assert msg.text == "Reputation digest 2026-W47: 13 mentions, 5 incidents"
    for block in msg.blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000 and len(block.get("fields", [])) <= 10


def test_slack_poster_posts_through_an_injected_client(httpserver) -> None:  # type: ignore[no-untyped-def]
    from slack_sdk import WebClient

    httpserver.expect_request("/chat.postMessage", method="POST").respond_with_json(
        {"ok": True, "channel": "C0DIGEST", "ts": "1763884800.000100"})
    client = WebClient(token="xoxb-test", base_url=httpserver.url_for("/"))
    message = SlackDigest(text="digest", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}])
    assert SlackPoster(client, "#reputation").post(message) == "1763884800.000100"
    [(request, _)] = httpserver.log
    body = request.get_json()
    assert body["channel"] == "#reputation" and body["blocks"] == message.blocks and body["text"] == "digest"
    assert request.headers["Authorization"] == "Bearer xoxb-test"


def test_slack_refusal_is_reported(httpserver) -> None:  # type: ignore[no-untyped-def]
    from slack_sdk import WebClient

    httpserver.expect_request("/chat.postMessage").respond_with_json({"ok": False, "error": "channel_not_found"})
    client = WebClient(token="xoxb-test", base_url=httpserver.url_for("/"))
    with pytest.raises(SlackPostError, match="channel_not_found"):
        SlackPoster(client, "#nope").post(SlackDigest(text="x", blocks=[]))


# --- the job and the command ------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.messages: list[SlackDigest] = []

    def post(self, message: SlackDigest) -> str | None:
        self.messages.append(message)
        return "ref-1"


def test_weekly_job_writes_the_report_and_posts(world: World, tmp_path: Path) -> None:
    poster = Recorder()
    run = run_weekly_digest(world.engine, world.config, poster, local(2026, 11, 23, 9), timezone=TZ,
                            out_dir=tmp_path / "digests")
    assert run.week == W47 and run.posted_ref == "ref-1"
    assert run.report == tmp_path / "digests" / "digest-2026-W47.html"
    assert run.report.read_text(encoding="utf-8") == render_html(digest_of(world))
    [message] = poster.messages
    assert str(tmp_path) not in json.dumps(message.blocks)  # never a local path


def test_the_weekly_job_links_under_the_digest_url(world: World, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_DIGEST_URL", "https://intranet.example.org/digests/")
    poster = Recorder()
    run_weekly_digest(world.engine, world.config, poster, local(2026, 11, 23, 9), timezone=TZ, out_dir=tmp_path)
    [message] = poster.messages
    assert "<https://intranet.example.org/digests/digest-2026-W47.html|2026-W47 report>" in json.dumps(message.blocks)


def test_the_weekly_job_uploads_the_report_into_the_channel(world: World, tmp_path: Path, httpserver,  # type: ignore[no-untyped-def]
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from slack_sdk import WebClient

    monkeypatch.delenv("MONITOR_DIGEST_URL", raising=False)
    httpserver.expect_request("/chat.postMessage").respond_with_json(
        {"ok": True, "channel": "C0DIGEST", "ts": "1763884800.000100"})
    httpserver.expect_request("/files.getUploadURLExternal").respond_with_json(
        {"ok": True, "upload_url": httpserver.url_for("/upload/F0REPORT"), "file_id": "F0REPORT"})
    httpserver.expect_request("/upload/F0REPORT", method="POST").respond_with_data("OK - 1234")
    httpserver.expect_request("/files.completeUploadExternal").respond_with_json(
        {"ok": True, "files": [{"id": "F0REPORT", "title": "digest-2026-W47.html"}]})
    client = WebClient(token="xoxb-test", base_url=httpserver.url_for("/"))
    run = run_weekly_digest(world.engine, world.config, SlackPoster(client, "#reputation"), local(2026, 11, 23, 9),
                            timezone=TZ, out_dir=tmp_path)
    calls = {r.path: r for r, _ in httpserver.log}
    posted = calls["/chat.postMessage"].get_json()
    assert "the HTML file in this message's thread" in json.dumps(posted["blocks"])
    assert str(tmp_path) not in json.dumps(posted["blocks"])
    assert calls["/upload/F0REPORT"].get_data() == run.report.read_bytes()
    complete = calls["/files.completeUploadExternal"].values
    assert complete["channel_id"] == "C0DIGEST" and complete["thread_ts"] == "1763884800.000100"
    assert "digest-2026-W47.html" in complete["files"]


def test_the_worker_can_schedule_it_and_a_console_gets_it_without_slack(world: World, tmp_path: Path) -> None:
    import io

    from apscheduler.schedulers.background import BackgroundScheduler

    from monitor.clock import FakeClock
    from monitor.digest.slack import ConsolePoster

    scheduler = BackgroundScheduler(timezone=ZONE)
    stream = io.StringIO()
    job = schedule_weekly_digest(scheduler, world.engine, world.config, ConsolePoster(stream),
                                 FakeClock(local(2026, 11, 23, 9)), timezone=TZ, out_dir=tmp_path)
    assert job.id == "weekly-digest" and "day_of_week='mon'" in str(job.trigger) and "hour='9'" in str(job.trigger)
    job.func()
    assert (tmp_path / "digest-2026-W47.html").exists()
    assert "Reputation digest · 2026-W47" in stream.getvalue() and "@bigvoice" in stream.getvalue()


def test_weekly_trigger_is_monday_nine_local() -> None:
    trigger = weekly_trigger(TZ)
    fire = trigger.get_next_fire_time(None, datetime(2026, 11, 18, 12, tzinfo=ZONE))
    assert fire == datetime(2026, 11, 23, 9, tzinfo=ZONE)
    summer = trigger.get_next_fire_time(None, datetime(2026, 7, 1, 12, tzinfo=ZONE))
    assert summer is not None and summer.astimezone(UTC).hour == 7  # 09:00 CEST


def test_cli_writes_the_report_and_says_slack_is_not_configured(world: World, tmp_path: Path, db_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("MONITOR_TIMEZONE", raising=False)
    monkeypatch.chdir(tmp_path)
    esc = tmp_path / "esc.yaml"
    esc.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["digest", "--week", "2026-W47", "--out", str(out), "--escalation", str(esc),
                                      "--db-url", db_url, "--post", "--channel", "#rep"])
    assert result.exit_code == 0, result.output
    assert "Slack is not configured" in result.output
    assert out.read_text(encoding="utf-8") == render_html(digest_of(world))
    bad = CliRunner().invoke(app, ["digest", "--week", "2026-W99", "--db-url", db_url])
    assert bad.exit_code == 2 and "no ISO week 99" in bad.output


# --- a real browser -------------------------------------------------------------------------------------


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(world: World, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(digest_of(world)), encoding="utf-8")
    profile = tmp_path / "profile"
    done = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}", "--window-size=390,2400",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "Reputation digest · week 2026-W47" in dom
    assert 'id="h-lumora"' in dom and "Time to acknowledge" in dom and "<svg" in dom
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    shutil.rmtree(profile, ignore_errors=True)



# --- finished text ----------------------------------------------------------------------------------------


def test_durations_are_words_never_a_raw_timedelta(world: World) -> None:
    from monitor.digest.format import duration as words
    from monitor.digest.format import human_text
    from monitor.i18n import translator

    def duration(delta: timedelta) -> str:
        return words(delta, translator("en"))

    assert human_text("nobody acknowledged and no new posts for 2 days, 0:00:00") == (
        "nobody acknowledged and no new posts for 2 days")
    assert human_text("quiet for 1 day, 0:00:00; resolved automatically") == "quiet for 1 day; resolved automatically"
    assert human_text("quiet for 4:33:00") == "quiet for 4 h 33 min"
    assert human_text("acked at 10:05, see 2026-11-16") == "acked at 10:05, see 2026-11-16"
    assert (duration(timedelta(days=2)), duration(timedelta(days=2, hours=4))) == ("2 days", "2 days 4 h")
    d = digest_of(world)
    html, slack = render_html(d), json.dumps(build_message(d).blocks, ensure_ascii=False)
    i5 = d.brands[0].incidents[-1]
    assert i5.resolution_note == "nobody acknowledged and no new posts for 1 day"  # the engine's note
    for text in (html, slack):
        assert not re.search(r"\d:\d\d:\d\d|\d days?, ", text)


def test_a_second_cycle_does_not_repeat_the_escalation_line(world: World) -> None:
    with transaction(world.engine) as conn:  # an old note, and the same people called again in a second cycle
        from monitor.store.tables import incident_events
        iid = world.incidents["i5"]
        for n in range(2):
            conn.execute(incident_events.insert().values(
                incident_id=iid, at=local(2026, 11, 21, 13, n), from_state="notified", to_state="notified",
                level=1 + n, actor="system", note=f"level {1 + n} notified: karim"))
    [i5] = [i for i in digest_of(world).brands[0].incidents if i.id == world.incidents["i5"]]
    assert i5.escalation_notes == ("level 2 notified: Karim El Amrani",)
    assert render_html(digest_of(world)).count("level 2 notified: Karim El Amrani") == 2  # i2 and i5, once each


def test_a_removed_text_is_said_not_shown_as_an_empty_quote(world: World) -> None:
    with transaction(world.engine) as conn:
        conn.execute(mentions.update().where(mentions.c.id == world.ids["bigvoice"]).values(text=""))
    d = digest_of(world)
    html = render_html(d)
    assert "“”" not in html and "[text removed]" in html
    blocks = build_message(d).blocks
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert not any(re.search(r"(^|\n)> ?(\n|$)", t) for t in texts)
    assert any("_[text removed]_" in t for t in texts)


# --- privacy and accessibility of the report ----------------------------------------------------------------


def test_only_the_brands_own_accounts_escape_masking() -> None:
    from monitor.privacy.scrub import mask_handles

    assert mask_handles("@lumorahater99", "Lumora") == "@…"
    assert mask_handles("ask @ex_lumora_staff or @LumoraSucks", "Lumora") == "ask @… or @…"
    assert mask_handles("@Lumora @Lumora_NL @lumora_be @LumoraSupport", "Lumora") == (
        "@Lumora @Lumora_NL @lumora_be @LumoraSupport")
    assert mask_handles("@lumorahater99 says", "Lumora", author="lumorahater99") == "@lumorahater99 says"


def test_who_posted_has_reach_classes_and_no_score_per_person(world: World) -> None:
    html = render_html(digest_of(world))
    section = html[html.index("<h3>Who posted</h3>"):html.index("</section>", html.index("<h3>Who posted</h3>"))]
    assert "under 100" in section and "100–999" in section and "10,000 or more" in section
    assert "@bigvoice" in section and "<th>Negative</th>" not in section
    named = section[section.index("Accounts with"):]
    assert "Negative" not in named


def test_quoted_posts_carry_their_language(world: World) -> None:
    with transaction(world.engine) as conn:
        conn.execute(mentions.update().where(mentions.c.id == world.ids["bigvoice"]).values(language="nl"))
        conn.execute(mentions.update().where(mentions.c.id == world.ids["tue_neg"]).values(language="und"))
    html = render_html(digest_of(world))
    assert '<p lang="nl">“' in html and 'lang="und"' not in html
    assert html.count(' lang="') == 2  # the page's own "en" and the Dutch quote


# --- silences on the record ---------------------------------------------------------------------------------


def test_a_removed_silence_is_expired_and_shown_in_the_digest(world: World) -> None:
    from monitor.store import silences as silence_repo

    with transaction(world.engine) as conn:
        storm = silence_repo.add(conn, brand="Lumora", rule=None, author=None, starts_at=local(2026, 11, 17, 9),
                                 ends_at=local(2026, 11, 24, 9), reason="storm handled by PR", created_by="sofie")
        silence_repo.add(conn, brand=None, rule=None, author="@smallfry", starts_at=local(2026, 11, 18, 9),
                         ends_at=local(2026, 11, 19, 9), reason="@smallfry asked us to stop", created_by="karim")
        silence_repo.add(conn, brand="Lumora", rule=None, author=None, starts_at=local(2026, 10, 1, 9),
                         ends_at=local(2026, 10, 2, 9), reason="long ago", created_by="sofie")
        assert silence_repo.remove(conn, storm, by="karim", now=local(2026, 11, 18, 12))
        assert not silence_repo.remove(conn, 999, by="karim", now=local(2026, 11, 18, 12))
        [kept] = [s for s in silence_repo.all_silences(conn) if s.id == storm]
        assert silence_repo.active(conn, local(2026, 11, 19, 12)) == []  # it no longer mutes anything
    assert (kept.ends_at, kept.removed_by, kept.removed_at) == (local(2026, 11, 18, 12), "karim",
                                                                local(2026, 11, 18, 12))
    d = digest_of(world)
    assert [(s.what, s.created_by, s.removed_by) for s in d.silences] == [
        ("brand Lumora", "Sofie Peeters", "Karim El Amrani"), ("an author (not named)", "Karim El Amrani", None)]
    html = render_html(d)
    assert "Silences this week" in html and "storm handled by PR" in html and "ended early by Karim El Amrani" in html
    assert "Tue 17 Nov 09:00" in html and "Wed 18 Nov 12:00" in html
    assert "smallfry" not in html.casefold() and "long ago" not in html
    assert "Silences in force this week: brand Lumora" in json.dumps(build_message(d).blocks)


def test_axis_labels_get_the_room_they_need() -> None:
    from monitor.digest import charts

    small = charts.stacked_bars("a", "t", ["Mon"], [{"x": 40}], {"x": "#000"})
    big = charts.stacked_bars("b", "t", ["Mon"], [{"x": 180_000}], {"x": "#000"})
    assert 'x1="60"' in small  # two-digit labels: the usual margin
    assert charts.left_margin(["200,000"]) > 60 and f'x1="{charts.left_margin(["200,000"])}"' in big
    assert '>200,000</text>' in big


def test_the_terminal_summary_is_plain_text(world: World) -> None:
    """``monitor digest`` prints words, not Slack markup: no *bold*, :emoji:, <url|label> or &lt;."""
    from monitor.digest.slack import to_text

    text = to_text(build_message(digest_of(world), "https://reports.example.org/digest-2026-W47.html"))
    assert not re.search(r"\*\w|:[a-z_]+:|<https?://|\|[^ ]*>|&lt;|&gt;|&amp;|`", text), text
    assert "Mentions: 11: +267% against the average of the previous 4 weeks (3)" in text
    assert "2026-W47 report (https://reports.example.org/digest-2026-W47.html)" in text
    dutch = to_text(build_message(digest_of(world), None, "nl_BE"))
    assert dutch.startswith("Reputatierapport · 2026-W47") and "Tijd tot bevestiging" in dutch
