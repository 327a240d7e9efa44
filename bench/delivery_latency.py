"""Delivery latency: time from an alerting mention being stored to Slack accepting its alert.

    python bench/delivery_latency.py                       # 1,000 alerting mentions, 4 per second
    python bench/delivery_latency.py --mentions 200 --rate 2

The whole live worker runs as ``monitor run`` assembles it (``monitor.app.build_worker``,
``Mode.LIVE``: poll job, scoring thread, alerting job, Slack checks, the real Slack
notifier and SDK client) with the README's default intervals (``MONITOR_PASS_SECONDS``
15 s, so the alerting job every 5 s), the offline model, a fresh SQLite store, and the
local Slack of the tests (``tests/slack_emulator.py``) standing in for Slack. A source
hands out ``--mentions`` posts at a steady ``--rate``, polled every ``--poll`` seconds;
each post names the test word of a one-rule rule set and opens its own incident, so
each one fires an alert: a card in the channel and a direct message to level 1.

Measured per mention: ``mentions.stored_at`` (the poll stored it) to the moment the
emulator accepted the incident's channel card (``chat.postMessage``, found by the
notification metadata the notifier attaches), split at the outbox row's ``created_at``
(the rule fired and the alert was queued).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from monitor.app import SourcePlan, build_worker
from monitor.classify import load_model
from monitor.clock import SystemClock
from monitor.models import Mention
from monitor.notify.slack.notifier import EVENT_TYPE
from monitor.settings import Settings
from monitor.sources.base import PollResult
from monitor.store.tables import incident_mentions, mentions, outbox
from tests.slack_emulator import BOT_TOKEN, SlackEmulator

CHANNEL_ID = "C0ALERTS01"
TARGET_S = 10.0  # the head-of-line target (bench/head_of_line.py): stored -> alert delivered
RULES = """\
rules:
  - name: bench-word
    description: Every post with the test word pages, each conversation its own incident.
    severity: critical
    when:
      keywords: [alertme]
    group_by: conversation
"""
ESCALATION = """\
timezone: Europe/Brussels
responders:
  sofie: {name: Sofie, slack: U0SOFIE01}
policies:
  - name: all
    after_hours: page
    levels:
      - {notify: [sofie], channel: "#reputation-alerts", ack_within: 15m}
"""


class TimedSlack(SlackEmulator):
    """The local Slack, noting when it accepted each incident's channel card (wall clock, UTC)."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: dict[int, datetime] = {}  # incident id -> when Slack accepted its card
        self.all_in = threading.Event()
        self.expected = 0

    def handle(self, method: str, params: dict[str, Any],
               headers: dict[str, str]) -> tuple[int, dict[str, str], bytes] | str | None:
        answer = super().handle(method, params, headers)
        if method == "chat.postMessage" and isinstance(answer, tuple) and b'"ok": true' in answer[2]:
            at = datetime.now(UTC)
            meta = params.get("metadata")
            meta = json.loads(meta) if isinstance(meta, str) else meta
            payload = meta.get("event_payload", {}) if isinstance(meta, dict) else {}
            if (isinstance(meta, dict) and meta.get("event_type") == EVENT_TYPE
                    and str(payload.get("dedupe", "")).endswith(":channel")):
                self.accepted.setdefault(int(payload["incident_id"]), at)
                if len(self.accepted) >= self.expected:
                    self.all_in.set()
        return answer


class SteadySource:
    """Hands out ``n`` alerting posts at ``rate`` per second from its start, whatever the poll interval."""

    name = "x:Lumora"

    def __init__(self, n: int, rate: float, poll_every: float) -> None:
        self.n, self.rate = n, rate
        self.poll_every = timedelta(seconds=poll_every)
        self.started: float | None = None

    def poll(self, cursor: str | None) -> PollResult:
        if self.started is None:
            self.started = time.monotonic()
        done = int(cursor or 0)
        due = min(self.n, int((time.monotonic() - self.started) * self.rate) + 1)
        now = datetime.now(UTC)
        posts = [Mention(source="x", source_id=str(i), brand="Lumora", author_handle=f"user{i}", author_reach=500,
                         text=f"Post {i}: Lumora lost my parcel again and nobody answers the phone. alertme",
                         created_at=now, conversation_id=f"c{i}", language="en") for i in range(done, due)]
        return PollResult(mentions=posts, next_cursor=str(due), exhausted=due >= self.n)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(folder: Path, n: int, rate: float, poll: float, timeout: float) -> tuple[dict[str, list[float]], int]:
    """Latencies in seconds (``total``, ``to queue``, ``queue to Slack``) per delivered mention; and how many
    alerts Slack never accepted within ``timeout``."""
    (folder / "rules").mkdir()
    (folder / "rules" / "bench.yaml").write_text(RULES, encoding="utf-8")
    (folder / "escalation.yaml").write_text(ESCALATION, encoding="utf-8")
    with TimedSlack() as slack:
        slack.expected = n
        slack.add_channel("reputation-alerts", CHANNEL_ID)
        slack.add_user("U0SOFIE01", name="Sofie")
        settings = Settings.model_validate({
            "db_url": f"sqlite:///{folder / 'store.db'}", "rules_dir": folder / "rules",
            "escalation_file": folder / "escalation.yaml", "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "",
            "slack_api_url": slack.base_url, "metrics_port": 0})
        model = load_model(settings.sentiment_model)
        model.predict(["warm up"])  # loading the model is start-up time, not latency
        source = SteadySource(n, rate, poll)
        assembled = build_worker(settings, SystemClock(), sources=SourcePlan((source,)), model=model)
        assembled.start()
        try:
            slack.all_in.wait(n / rate + timeout)
        finally:
            assembled.stop(timeout=30)
        with assembled.engine.connect() as conn:
            rows = conn.execute(
                select(incident_mentions.c.incident_id, mentions.c.stored_at, outbox.c.created_at)
                .join(mentions, mentions.c.id == incident_mentions.c.mention_id)
                .join(outbox, (outbox.c.incident_id == incident_mentions.c.incident_id) & (outbox.c.kind == "alert"))
            ).all()
        assembled.engine.dispose()
        accepted = dict(slack.accepted)
    result: dict[str, list[float]] = {"stored -> Slack accepted": [], "stored -> alert queued": [],
                                      "queued -> Slack accepted": []}
    for incident_id, stored_at, queued_at in rows:
        at = accepted.get(int(incident_id))
        if at is None:
            continue
        result["stored -> Slack accepted"].append((at - stored_at).total_seconds())
        result["stored -> alert queued"].append((queued_at - stored_at).total_seconds())
        result["queued -> Slack accepted"].append((at - queued_at).total_seconds())
    return result, n - len(accepted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=4.0, help="alerting mentions per second")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between polls of the source")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait after the last mention")
    args = parser.parse_args()
    defaults = Settings.model_validate({})
    alert_every = min(defaults.pass_seconds, 5.0)
    print(f"{args.mentions} alerting mentions at {args.rate:g}/s, polled every {args.poll:g} s; "
          f"MONITOR_PASS_SECONDS {defaults.pass_seconds:g} (the default), alerting job every {alert_every:g} s; "
          f"offline model; {os.cpu_count()} CPU(s)")
    with tempfile.TemporaryDirectory(prefix="delivery-latency-") as tmp:
        started = time.monotonic()
        result, missing = measure(Path(tmp), args.mentions, args.rate, args.poll, args.timeout)
        elapsed = time.monotonic() - started
    print(f"{'':28}{'p50':>8}{'p95':>8}{'max':>8}   reference")
    reference = {"stored -> Slack accepted": f"target < {TARGET_S:.0f} s (head-of-line); pass interval "
                                             f"{defaults.pass_seconds:g} s",
                 "stored -> alert queued": "scoring and rules: the scoring thread wakes on each poll",
                 "queued -> Slack accepted": f"alerting job every {alert_every:g} s (woken at once by a new incident)"}
    for name, values in result.items():
        if values:
            print(f"{name:28}{statistics.median(values):7.2f}s{percentile(values, 0.95):7.2f}s"
                  f"{max(values):7.2f}s   {reference[name]}")
    print(f"delivered {len(result['stored -> Slack accepted'])} of {args.mentions}"
          f"{f', {missing} never accepted' if missing else ''}; {elapsed:.0f} s in all")
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
