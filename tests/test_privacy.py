"""Privacy: retention per data class (with copies scrubbed) and erasure of one author, on the real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from monitor import reasons
from monitor.clock import FakeClock
from monitor.digest.figures import build_digest
from monitor.digest.week import IsoWeek
from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.i18n import translator
from monitor.models import Mention, SentimentScores, Severity, Signal
from monitor.privacy import RetentionPolicy, forget, purge, schedule_purge
from monitor.privacy.scrub import AUTHOR_REMOVED, ERASED, handle_pattern, normalise_handle, url_without_handle
from monitor.reasons import Fact, Reason, english
from monitor.settings import Settings
from monitor.store import audit, transaction
from monitor.store import mentions as mention_repo
from monitor.store import silences as silence_repo
from monitor.store.tables import (
    incident_events,
    incident_mentions,
    incidents,
    mentions,
    outbox,
    sentiments,
    signals,
    silences,
)
from monitor.yamlconfig import parse
from tests.conftest import ALWAYS_OPEN_ESCALATION
from tests.store_dump import dump_text

ZONE = "Europe/Brussels"
CONFIG = ALWAYS_OPEN_ESCALATION


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def esc(tmp_path: Path) -> EscalationEngine:
    path = tmp_path / "escalation.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return EscalationEngine(parse(EscalationConfig, path))


def post(engine: Engine, sid: str, at: datetime, author: str | None, text: str, *, source: str = "x",
         negative: float = 0.9) -> int:
    """Store one scored post the way the pipeline does; returns its row id."""
    url = f"https://x.com/{author}/status/{sid}" if source == "x" else f"https://www.reddit.com/r/belgium/{sid}"
    mention = Mention(source=source, source_id=sid, brand="Lumora", text=text, created_at=at, url=url,
                      author_handle=author, author_reach=500, language="en")
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, source, [mention], None, at)
        mid = conn.execute(select(mentions.c.id).where(mentions.c.source_id == sid)).scalar_one()
        rest = 1 - negative
        mention_repo.save_scores(conn, [(mid, SentimentScores(negative, rest * 0.5, rest * 0.5))], "m", "1", at)
    return int(mid)


def incident(engine: Engine, esc: EscalationEngine, mids: list[int], authors: list[str], at: datetime, *,
             closed_after: timedelta | None = None, note: str | None = None, rule: str = "negative") -> int:
    """An incident opened by the real engine from a signal quoting the first author, as the rules word it (the
    sentence and its facts, which name the author too: ``reason_data``, the opening note's, the payloads')."""
    detail = Reason("post", who=f"@{authors[0]}", source="x", facts=(Fact("negative", 0.9),))
    signal = Signal(rule=rule, severity=Severity.WARNING, brand="Lumora", group_key=f"Lumora|{mids[0]}",
                    reason=english(detail), fired_at=at, mention_ids=tuple(mids), detail=detail)
    with transaction(engine) as conn:
        [iid] = esc.ingest(conn, [signal], at)
        if closed_after is not None:
            esc.resolve(conn, iid, "sofie", at + closed_after, note=note)
    return iid


def rows(engine: Engine, table: Any, **where: Any) -> list[dict[str, Any]]:
    stmt = select(table)
    for key, value in where.items():
        stmt = stmt.where(table.c[key] == value)
    with transaction(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def payload_posts(engine: Engine, incident_id: int) -> list[dict[str, Any]]:
    return [p for r in rows(engine, outbox, incident_id=incident_id)
            for key in ("top_mentions", "new_mentions") for p in r["payload"].get(key) or []]


# --- the matching rules ---------------------------------------------------------------------------


def test_handles_are_matched_as_posts_and_links_write_them() -> None:
    in_posts, own = handle_pattern(["@Anna_B"]), handle_pattern(["anna_b"], bare=True)
    assert in_posts is not None and own is not None
    cases = {
        "Post by @ANNA_B on X": f"Post by {ERASED} on X",
        "see u/anna_b and reddit.com/user/anna_b": f"see {ERASED} and reddit.com/{ERASED}",
        "https://x.com/anna_b/status/1": f"https://x.com/{ERASED}/status/1",
        "@anna_bee and hanna_b and mail@anna_b.be are other people": None,  # unchanged
    }
    for text, expected in cases.items():
        assert in_posts.sub(ERASED, text) == (expected or text)
    assert in_posts.sub(ERASED, "anna_b said") == "anna_b said"  # a bare word in someone's post stays
    assert own.sub(ERASED, "called anna_b back") == f"called {ERASED} back"  # in our own notes it goes
    assert handle_pattern([None, " @ "]) is None
    assert url_without_handle("https://x.com/Anna_B/status/12", "anna_b") == "https://x.com/i/web/status/12"
    assert url_without_handle("https://www.reddit.com/user/anna_b/c/1", "anna_b") is None
    assert url_without_handle("https://www.reddit.com/r/belgium/c/1", "anna_b") == "https://www.reddit.com/r/belgium/c/1"
    assert url_without_handle("https://energiekompas.be/nieuws/1", "energiekompas") == "https://energiekompas.be/nieuws/1"


# --- retention ------------------------------------------------------------------------------------


@pytest.fixture
def aged(engine: Engine, esc: EscalationEngine, clock: FakeClock) -> dict[str, int]:
    """Posts and incidents of different ages, each built through the real store and engine."""
    now = clock.now()
    ids: dict[str, int] = {}
    ids["new"] = post(engine, "1005", now - timedelta(days=5), "fresh_fan", "Lumora is fine @fresh_fan")
    ids["i_new"] = incident(engine, esc, [ids["new"]], ["fresh_fan"], now - timedelta(days=5))
    ids["m40"] = post(engine, "1040", now - timedelta(days=40), "anna_b", "Lumora scammed me, ask @lumora_be")
    ids["i40"] = incident(engine, esc, [ids["m40"]], ["anna_b"], now - timedelta(days=40),
                          closed_after=timedelta(hours=2), note="called @anna_b back, she is fine")
    ids["m100"] = post(engine, "1100", now - timedelta(days=100), "old_bob", "Lumora cut my power")
    ids["i100"] = incident(engine, esc, [ids["m100"]], ["old_bob"], now - timedelta(days=100),
                           closed_after=timedelta(hours=1))
    ids["m420"] = post(engine, "1420", now - timedelta(days=420), "dora", "Lumora bill doubled")
    ids["i300"] = incident(engine, esc, [ids["m420"]], ["dora"], now - timedelta(days=420),
                           closed_after=timedelta(days=120))  # closed 300 days ago: kept
    ids["m500"] = post(engine, "1500", now - timedelta(days=500), "ancient_carl", "Lumora outage again")
    ids["i_old"] = incident(engine, esc, [ids["m500"]], ["ancient_carl"], now - timedelta(days=500),
                            closed_after=timedelta(days=100))  # closed 400 days ago: deleted
    with transaction(engine) as conn:
        silence_repo.add(conn, brand=None, rule=None, author="old_troll", starts_at=now - timedelta(days=90),
                         ends_at=now - timedelta(days=60), reason="spam wave", created_by="sofie")
        silence_repo.add(conn, brand=None, rule=None, author="live_troll", starts_at=now - timedelta(days=1),
                         ends_at=now + timedelta(days=1), reason="spam wave", created_by="sofie")
    return ids


def test_purge_removes_each_class_after_its_period_and_scrubs_every_copy(
        engine: Engine, aged: dict[str, int], clock: FakeClock) -> None:
    report = purge(engine, RetentionPolicy(), clock.now())
    by_id = {r["id"]: r for r in rows(engine, mentions)}

    # 5 days: untouched.
    assert by_id[aged["new"]]["author_handle"] == "fresh_fan" and by_id[aged["new"]]["text"].startswith("Lumora")
    # 40 days: the handle is gone (also from the link), the text stays.
    m40 = by_id[aged["m40"]]
    assert m40["author_handle"] is None and m40["author_reach"] == 500
    assert m40["url"] == "https://x.com/i/web/status/1040" and m40["text"] == "Lumora scammed me, ask @lumora_be"
    # 100 days: handle, text and link are gone; the score and the row stay for the digest.
    m100 = by_id[aged["m100"]]
    assert (m100["author_handle"], m100["text"], m100["url"]) == (None, "", None)
    assert m100["text_hash"] == f"purged:{aged['m100']}"
    # 420 and 500 days: deleted with their scores and incident links.
    assert aged["m420"] not in by_id and aged["m500"] not in by_id
    assert {r["mention_id"] for r in rows(engine, sentiments)} == set(by_id)
    assert {r["mention_id"] for r in rows(engine, incident_mentions)} == {aged["new"], aged["m40"], aged["m100"]}

    # Incidents: the one closed 400 days ago is gone with its timeline, signals and notifications.
    assert {r["id"] for r in rows(engine, incidents)} == {aged["i_new"], aged["i40"], aged["i100"], aged["i300"]}
    for table in (incident_events, outbox, signals):
        assert not rows(engine, table, incident_id=aged["i_old"])
    assert report.incidents_deleted == 1 and report.mentions_deleted == 2
    assert report.author_handles_removed == 2  # m40 and m100 (m420 and m500 went whole)
    assert report.mention_texts_removed == 1 and report.silences_deleted == 1
    assert [s["author"] for s in rows(engine, silences)] == ["live_troll"]

    # Copies follow their originals: reasons, notes, payloads.
    [i40] = rows(engine, incidents, id=aged["i40"])
    assert i40["reason"] == f"Post by {AUTHOR_REMOVED} on X: negative (90% sure)"
    assert all("anna_b" not in (e["note"] or "") for e in rows(engine, incident_events, incident_id=aged["i40"]))
    assert all("anna_b" not in s["reason"] for s in rows(engine, signals, incident_id=aged["i40"]))
    closed = [r["payload"] for r in rows(engine, outbox, incident_id=aged["i40"]) if r["kind"] == "resolved"]
    assert closed[0]["note"] == f"called {AUTHOR_REMOVED} back, she is fine"
    for p in payload_posts(engine, aged["i40"]):
        assert p["author"] is None and p["url"] == "https://x.com/i/web/status/1040"
        assert p["text"] == "Lumora scammed me, ask @lumora_be"
    for p in payload_posts(engine, aged["i100"]) + payload_posts(engine, aged["i300"]):
        assert (p["author"], p["text"], p["url"]) == (None, "", None)
    [i_new] = rows(engine, incidents, id=aged["i_new"])
    assert "@fresh_fan" in i_new["reason"] and payload_posts(engine, aged["i_new"])[0]["author"] == "fresh_fan"

    text = dump_text(engine)
    for gone in ("anna_b", "old_bob", "dora", "ancient_carl", "old_troll", "cut my power", "bill doubled"):
        assert gone not in text, gone
    assert "fresh_fan" in text and "live_troll" in text

    # A second run finds nothing left to do.
    assert purge(engine, RetentionPolicy(), clock.now()).total == 0


def test_purge_clears_sign_in_addresses_and_ages_out_audit_rows_of_no_incident(
        engine: Engine, aged: dict[str, int], clock: FakeClock) -> None:
    """The audit trail is personal data too: an address kept past the author period, or a sign-in row kept
    past the incident period, would outlive every post it could be about."""
    now = clock.now()
    with transaction(engine) as conn:
        for days, address, incident in ((5, "198.51.100.7", None), (40, "198.51.100.8", None),
                                        (400, "198.51.100.9", None), (400, None, aged["i300"])):
            audit.record(conn, at=now - timedelta(days=days), actor="sofie", channel="console",
                         action="sign-in" if incident is None else "acknowledge", incident_id=incident,
                         address=address)
    report = purge(engine, RetentionPolicy(), now)
    kept = {(r["address"], r["incident_id"]) for r in rows(engine, audit.audit)
            if r["actor"] == "sofie" and r["action"] in ("sign-in", "acknowledge")}
    assert kept == {("198.51.100.7", None), (None, None), (None, aged["i300"])}  # 40 d: address gone; 400 d: row gone
    assert (report.audit_addresses_removed, report.audit_rows_deleted) == (1, 1)
    assert purge(engine, RetentionPolicy(), now).total == 0


def test_digest_of_an_old_week_still_counts_after_the_purge(engine: Engine, aged: dict[str, int],
                                                            clock: FakeClock) -> None:
    week = IsoWeek.containing(clock.now() - timedelta(days=100), ZONE)

    def figures() -> tuple[int, int, int]:
        with transaction(engine) as conn:
            [brand] = build_digest(conn, week, None).brands
        return brand.volume, brand.sentiment.negative, brand.voices.other_posts

    before = figures()
    purge(engine, RetentionPolicy(), clock.now())
    assert figures() == before == (1, 1, 1)  # volume, negatives, posts: counts, not names


def test_dry_run_counts_exactly_and_changes_nothing(engine: Engine, aged: dict[str, int], clock: FakeClock) -> None:
    before = dump_text(engine)
    dry = purge(engine, RetentionPolicy(), clock.now(), dry_run=True, chunk=1)  # chunk=1: many units, one rollback
    assert dump_text(engine) == before
    real = purge(engine, RetentionPolicy(), clock.now())
    assert dry.dry_run and not real.dry_run
    assert (dry.total, dry.scrubbed) == (real.total, real.scrubbed) and real.total > 0


def test_zero_days_keeps_a_class_and_settings_feed_the_policy(
        engine: Engine, aged: dict[str, int], clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_RETENTION_AUTHOR_DAYS", "0")
    monkeypatch.setenv("MONITOR_RETENTION_MENTION_DAYS", "0")
    monkeypatch.setenv("MONITOR_RETENTION_INCIDENT_DAYS", "0")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert RetentionPolicy.from_settings(settings) == RetentionPolicy(0, 90, 0, 0)
    report = purge(engine, settings, clock.now())
    assert (report.author_handles_removed, report.mentions_deleted, report.incidents_deleted) == (0, 0, 0)
    assert report.mention_texts_removed == 3  # m100, m420 and m500: texts go, handles stay
    assert {r["author_handle"] for r in rows(engine, mentions)} >= {"old_bob", "ancient_carl"}


def test_the_purge_is_scheduled_daily_at_half_past_three_local(engine: Engine, aged: dict[str, int],
                                                              clock: FakeClock) -> None:
    scheduler = BackgroundScheduler(timezone=ZONE)
    job = schedule_purge(scheduler, engine, RetentionPolicy(), clock, ZONE)
    assert job.coalesce is True and job.max_instances == 1
    # Summer time: 03:30 in Brussels is 01:30 UTC; in winter 02:30 UTC. Never "03:30 UTC".
    summer = job.trigger.get_next_fire_time(None, datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    winter = job.trigger.get_next_fire_time(None, datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    assert summer.astimezone(UTC).hour == 1 and winter.astimezone(UTC).hour == 2 and winter.minute == 30
    report = job.func()
    assert report is not None and report.incidents_deleted == 1


def test_purge_command(engine: Engine, db_url: str, aged: dict[str, int], monkeypatch: pytest.MonkeyPatch,
                       tmp_path: Path) -> None:
    from monitor.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONITOR_DB_URL", db_url)
    # The real clock: posts were made relative to the fake one (2026-11-18); shift every period instead.
    runner = CliRunner()
    dry = runner.invoke(app, ["purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing was changed" in dry.output and "closed incidents deleted" in dry.output
    assert "anna_b" in dump_text(engine)


# --- erasure --------------------------------------------------------------------------------------


@pytest.fixture
def people(engine: Engine, esc: EscalationEngine, clock: FakeClock) -> dict[str, int]:
    now = clock.now()
    ids: dict[str, int] = {}
    ids["anna1"] = post(engine, "2001", now - timedelta(hours=5), "Anna_B", "Lumora took my money twice")
    ids["anna2"] = post(engine, "2002", now - timedelta(hours=4), "anna_b", "Still no refund from Lumora")
    ids["anna_reddit"] = post(engine, "r3", now - timedelta(hours=3), "anna_b", "Avoid Lumora", source="reddit")
    ids["bob"] = post(engine, "2004", now - timedelta(hours=2), "bob", "@anna_b is right, Lumora is a scam")
    ids["carl"] = post(engine, "2005", now - timedelta(hours=1), "carl", "Lumora fixed it quickly", negative=0.1)
    ids["i_anna"] = incident(engine, esc, [ids["anna1"], ids["anna2"]], ["Anna_B"], now - timedelta(hours=4),
                             closed_after=timedelta(minutes=30), note="DM'd anna_b, refund on its way")
    ids["i_bob"] = incident(engine, esc, [ids["bob"]], ["bob"], now - timedelta(hours=2), rule="scam")
    with transaction(engine) as conn:
        silence_repo.add(conn, brand=None, rule=None, author="@ANNA_B", starts_at=now, ends_at=now + timedelta(days=1),
                         reason="anna_b asked us to stop replying", created_by="sofie")
    return ids


def test_forget_erases_the_author_everywhere_and_digests_still_add_up(
        engine: Engine, people: dict[str, int], clock: FakeClock) -> None:
    assert "anna_b" in dump_text(engine).lower()
    report = forget(engine, "@ANNA_B")
    assert report.mentions_deleted == 3 and report.other_posts_rewritten == 1 and report.silences_deleted == 1
    assert "anna_b" not in dump_text(engine).lower()  # no table, no column, no JSON payload names her

    remaining = {r["id"]: r for r in rows(engine, mentions)}
    assert set(remaining) == {people["bob"], people["carl"]}
    assert remaining[people["bob"]]["text"] == f"{ERASED} is right, Lumora is a scam"
    assert not rows(engine, sentiments, mention_id=people["anna1"])
    assert not rows(engine, incident_mentions, incident_id=people["i_anna"])
    [i_anna] = rows(engine, incidents, id=people["i_anna"])
    assert i_anna["reason"] == f"Post by {ERASED} on X: negative (90% sure)"
    # Its facts follow: each reader sees the erased name, in their language.
    assert reasons.text(i_anna["reason_data"], "", translator("nl_BE")) == (
        f"Bericht van {ERASED} op X: negatief (90% zeker)")
    for p in payload_posts(engine, people["i_anna"]):
        assert (p["author"], p["text"], p["url"]) == (ERASED, "", None)
    [bob_post] = {p["id"]: p for p in payload_posts(engine, people["i_bob"])}.values()
    assert bob_post["author"] == "bob" and bob_post["text"].startswith(ERASED)

    # The digest reads the store: this week's counts are the two posts left, and they add up.
    with transaction(engine) as conn:
        [brand] = build_digest(conn, IsoWeek.containing(clock.now(), ZONE), None).brands
    assert brand.volume == 2 == sum(d.total for d in brand.days) == brand.sentiment.total
    assert brand.sentiment.negative == 1 and brand.sentiment.positive + brand.sentiment.neutral == 1
    assert brand.voices.other_posts + sum(a.posts for a in brand.voices.named) == 2

    again = forget(engine, "anna_b")
    assert not again.changed and "nothing to erase" in again.lines()[0]


def test_forget_on_one_source_leaves_the_same_handle_elsewhere(engine: Engine, people: dict[str, int]) -> None:
    report = forget(engine, "anna_b", source="reddit")
    assert report.mentions_deleted == 1 and report.silences_deleted == 0
    left = {r["id"]: r for r in rows(engine, mentions)}
    assert people["anna_reddit"] not in left and left[people["anna1"]]["author_handle"] == "Anna_B"
    assert left[people["bob"]]["text"].startswith("@anna_b")  # an X post: another platform's @anna_b
    assert not forget(engine, "anna_b", source="reddit").changed


def test_forget_command_prints_what_it_did(engine: Engine, db_url: str, people: dict[str, int],
                                           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from monitor.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONITOR_DB_URL", db_url)
    runner = CliRunner()
    first = runner.invoke(app, ["forget", "--author", "@anna_b"])
    assert first.exit_code == 0, first.output
    assert "3  posts by this author on every source deleted" in first.output
    assert "SLACK_BOT_TOKEN is not set, so Slack messages already posted were not updated" in first.output
    second = runner.invoke(app, ["forget", "--author", "anna_b"])
    assert second.exit_code == 0 and "nothing to erase" in second.output
    empty = runner.invoke(app, ["forget", "--author", " @ "])
    assert empty.exit_code == 2 and "handle" in empty.output


def test_one_normal_form_for_a_handle_in_silences_and_erasure(engine: Engine, esc: EscalationEngine,
                                                              clock: FakeClock) -> None:
    # Case folding, not lower(): "Straße" and "STRASSE" are one person for a silence and for an erasure alike.
    assert normalise_handle("@Straße") == normalise_handle(" STRASSE ") == normalise_handle("@strasse") == "strasse"
    now = clock.now()
    first = post(engine, "3001", now - timedelta(hours=3), "Straße", "Lumora billed me twice")
    second = post(engine, "3002", now - timedelta(hours=2), "STRASSE", "Lumora, still waiting")
    other = post(engine, "3003", now - timedelta(hours=1), "bob", "@Straße is right about Lumora")
    incident(engine, esc, [first], ["Straße"], now - timedelta(hours=3))
    with transaction(engine) as conn:
        silence_repo.add(conn, brand=None, rule=None, author="@Straße", starts_at=now, ends_at=now + timedelta(days=1),
                         reason="asked us to stop replying", created_by="sofie")
        [silence] = silence_repo.active(conn, now)
        assert silence.author == "strasse"
        # The engine's silence matching: a post by "STRASSE" is muted by the silence for "@Straße".
        muted = Signal(rule="negative", severity=Severity.WARNING, brand="Lumora", group_key="Lumora|other",
                       reason="Post by @STRASSE on X", fired_at=now, mention_ids=(second,))
        assert esc.ingest(conn, [muted], now) == []

    report = forget(engine, "strasse")  # a third spelling: the stored ones are found by their normal form
    assert report.mentions_deleted == 2 and report.silences_deleted == 1 and report.other_posts_rewritten == 1
    left = {r["id"]: r for r in rows(engine, mentions)}
    assert set(left) == {other} and left[other]["text"] == f"{ERASED} is right about Lumora"
    dump = dump_text(engine).casefold()  # JSON columns are dumped ASCII-escaped: "ß" is "\u00df" there
    assert not any(spelling in dump for spelling in ("strasse", "straße", "stra\\u00dfe")), dump
    assert not forget(engine, "@STRAẞE").changed  # capital sharp s: the same person, nothing left


ANNA_ID = "1790000000000000001"  # a real-sized X status id


def test_forget_leaves_no_id_handle_or_text_in_any_table_or_the_digest(
        engine: Engine, esc: EscalationEngine, clock: FakeClock) -> None:
    from monitor.digest.html import render_html

    now = clock.now()
    anna_text = "Lumora charged me three times this month"
    anna = post(engine, ANNA_ID, now - timedelta(hours=3), "anna_b", anna_text)
    reply = Mention(source="x", source_id="1790000000000000002", brand="Lumora", created_at=now - timedelta(hours=2),
                    text=f"Same here, see https://x.com/i/web/status/{ANNA_ID} Lumora please fix",
                    url="https://x.com/bob/status/1790000000000000002", author_handle="bob", author_reach=300,
                    conversation_id=ANNA_ID, language="en")
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", [reply], None, now)
        bob = int(conn.execute(select(mentions.c.id).where(mentions.c.source_id == reply.source_id)).scalar_one())
    key = f"Lumora|x|{ANNA_ID}"  # a rule grouping by conversation: the thread's root id is the key
    first = Signal(rule="thread", severity=Severity.WARNING, brand="Lumora", group_key=key,
                   reason=f"Post by @anna_b on X: https://x.com/anna_b/status/{ANNA_ID}",
                   fired_at=now - timedelta(hours=3), mention_ids=(anna,))
    joined = Signal(rule="thread", severity=Severity.WARNING, brand="Lumora", group_key=key,
                    reason="Reply in the thread", fired_at=now - timedelta(hours=2), mention_ids=(bob,))
    with transaction(engine) as conn:
        [iid] = esc.ingest(conn, [first], now - timedelta(hours=3))
        assert esc.ingest(conn, [joined], now - timedelta(hours=2)) in ([], [iid])
        # A hand-over note in the console that names her.
        audit.add_note(conn, iid, by="sofie", text="Called @anna_b back; Karim takes over.", at=now)
    assert ANNA_ID in dump_text(engine)

    report = forget(engine, "@anna_b")
    dump = dump_text(engine)
    for needle in (ANNA_ID, "anna_b", anna_text):
        assert needle not in dump, needle
    assert report.ids_replaced["mentions.conversation_id"] == 1
    assert report.ids_replaced["incidents.key"] == 1 and report.ids_replaced["signals.group_key"] == 2
    lines = "\n".join(report.lines())
    assert "conversation ids of replies to their posts: their post ids replaced" in lines
    # The reply stays, and stays in its thread and its incident: one random token for the id everywhere.
    [left] = rows(engine, mentions, id=bob)
    assert left["conversation_id"].startswith("erased-")
    assert left["text"] == f"Same here, see {ERASED} Lumora please fix"
    [incident_row] = rows(engine, incidents, id=iid)
    assert incident_row["key"] == f"thread|Lumora|x|{left['conversation_id']}"
    assert {r["group_key"] for r in rows(engine, signals)} == {f"Lumora|x|{left['conversation_id']}"}
    with transaction(engine) as conn:
        html = render_html(build_digest(conn, IsoWeek.containing(now, ZONE), None))
    for needle in (ANNA_ID, "anna_b", anna_text):
        assert needle not in html, needle
    assert not forget(engine, "anna_b").changed


def test_forget_help_names_the_marker() -> None:
    from monitor.cli import app

    result = CliRunner().invoke(app, ["forget", "--help"], terminal_width=200)
    assert result.exit_code == 0 and "[erased]" in result.output
