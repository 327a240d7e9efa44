"""The store's named queries that commands, privacy and Slack call instead of touching tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine

from monitor.models import AlertPayload, SentimentScores, Severity, Signal
from monitor.store import arrivals, stats, transaction
from monitor.store import incidents as incident_repo
from monitor.store import mentions as mention_repo
from monitor.store import outbox as outbox_repo
from tests.conftest import make_mention

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


def test_arrivals_count_per_configured_source_by_arrival_and_are_pruned(engine: Engine) -> None:
    with transaction(engine) as conn:
        arrivals.record(conn, "mastodon:Lumora:one.test", NOW - timedelta(hours=1), fetched=3, new=2)
        arrivals.record(conn, "mastodon:Lumora:one.test", NOW - timedelta(hours=25), fetched=5, new=5)
        arrivals.record(conn, "mastodon:Lumora:two.test", NOW - timedelta(hours=2), fetched=2, new=0)  # both seen
        arrivals.record(conn, "news:Lumora:google-nl-BE", NOW, fetched=0, new=0)  # nothing delivered: no row
    with transaction(engine) as conn:
        assert arrivals.delivered_since(conn, NOW - timedelta(hours=24)) == {
            "mastodon:Lumora:one.test": (3, 2), "mastodon:Lumora:two.test": (2, 0)}
        assert [a.fetched for a in arrivals.since(conn, "mastodon:Lumora:one.test", NOW - timedelta(days=2))] == [5, 3]
        arrivals.record(conn, "mastodon:Lumora:one.test", NOW + arrivals.KEPT - timedelta(hours=12), fetched=1, new=1)
    with transaction(engine) as conn:  # the arrival older than KEPT before the newest is gone
        assert [a.fetched for a in arrivals.since(conn, "mastodon:Lumora:one.test", NOW - timedelta(days=2))] == [3, 1]


def _incident(conn: Connection, key: str, at: datetime) -> int:
    signal = Signal(rule="negative-burst", severity=Severity.CRITICAL, brand="Lumora", group_key=key,
                    reason="many negative posts", fired_at=at, mention_ids=())
    return incident_repo.create(conn, key=key, signal=signal, policy="default", now=at)


def _payload(incident_id: int, reason: str) -> AlertPayload:
    return AlertPayload(incident_id=incident_id, brand="Lumora", rule="negative-burst", severity=Severity.WARNING,
                        reason=reason)


def test_sent_notifications_are_read_back_by_incident_kind_and_order(engine: Engine) -> None:
    queue = [("a", "alert", "C1:1.0"), ("a", "escalation", "C1:2.0"), ("a", "acknowledged", None),
             ("a", "escalation", "C1:3.0"), ("b", "alert", "C1:9.0")]
    with transaction(engine) as conn:
        ids = {"a": _incident(conn, "a", NOW), "b": _incident(conn, "b", NOW)}
        for n, (key, kind, _) in enumerate(queue):
            outbox_repo.enqueue(conn, incident_id=ids[key], dedupe_key=f"k{n}", kind=kind, channel="#pr",
                                recipients=[f"r{n}"], payload=_payload(ids[key], f"reason {n}"), now=NOW)
        for n, row in enumerate(outbox_repo.pending(conn)):
            if n != 3:  # the second escalation is still waiting
                outbox_repo.mark_sent(conn, row.id, NOW, queue[n][2])
    first = ids["a"]
    with transaction(engine) as conn:
        assert outbox_repo.last_sent(conn, first, ("alert", "escalation", "acknowledged")) == \
            outbox_repo.SentNotification(kind="acknowledged", payload=_payload(first, "reason 2"), recipients=("r2",))
        assert outbox_repo.last_sent(conn, first, ("alert",)) == outbox_repo.SentNotification(
            kind="alert", payload=_payload(first, "reason 0"), recipients=("r0",))
        assert outbox_repo.last_sent(conn, first, ("expired",)) is None
        assert outbox_repo.sent_external_refs(conn, first) == ["C1:1.0", "C1:2.0"]
        assert outbox_repo.sent_per_kind(conn) == {"acknowledged": 1, "alert": 2, "escalation": 1}


def test_totals_and_incident_overview_count_what_the_demo_summarises(engine: Engine) -> None:
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", [make_mention(i) for i in (1, 2, 3)], None, NOW)
        ids = [int(r.id) for r in mention_repo.unscored(conn, 10)]
        mention_repo.save_scores(conn, [(ids[0], SentimentScores(0.5, 0.3, 0.2)),
                                        (ids[1], SentimentScores(0.1, 0.3, 0.6))], "m", "1", NOW)
        first = _incident(conn, "a", NOW)
        second = _incident(conn, "b", NOW + timedelta(hours=1))
        incident_repo.attach_mentions(conn, second, ids[:2], NOW)
        outbox_repo.enqueue(conn, incident_id=first, dedupe_key="k", kind="alert", channel=None, recipients=[],
                            payload=_payload(first, "alert"), now=NOW)
        outbox_repo.mark_sent(conn, outbox_repo.pending(conn)[0].id, NOW, None)
    with transaction(engine) as conn:
        assert stats.totals(conn, negative_at_least=0.5) == stats.StoreTotals(
            mentions=3, scored=2, negative=1, sent={"alert": 1})
        overview = stats.incident_overview(conn)
    assert [(i.id, i.rule, i.severity, i.state, i.level, i.posts) for i in overview] == [
        (first, "negative-burst", "critical", "open", 0, 0), (second, "negative-burst", "critical", "open", 0, 2)]
    assert overview[1].opened_at == NOW + timedelta(hours=1)
