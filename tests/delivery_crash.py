"""Kill -9 during a Slack outage and again during the catch-up: nothing lost, doubled, or sent out of date.

The real worker (``monitor run --feed``) runs as a process against the local
Slack (``tests/slack_emulator.py``) and a local SMTP server (``tests/smtp_server.py``),
with the e-mail fallback on. The story, with the kills at exact points rather
than at random moments, so that every run tests the same worst cases:

1. Slack is down from the start. Four posts open four incidents; level 1
   (Sofie) is e-mailed after ``email_fallback_after``.
2. Once every level-1 e-mail is recorded, the worker is SIGKILLed *inside* its
   next Slack call (a ``conversations.open`` for a DM: the emulator kills it
   before answering).
3. While no worker runs, someone acknowledges incident A and marks incident B a
   false positive (as the console, a separate process, would).
4. The worker restarts, Slack still down: A's and B's level calls are now
   overtaken; C and D (whose policy has a short level-1 window) escalate to
   level 2 (Karim), who is e-mailed, before or after the first kill.
5. Slack comes back; the worker is SIGKILLed right after Slack *accepted* the
   ``k``-th ``chat.postMessage`` of the catch-up, before the worker heard the
   answer: the worst moment, a message Slack has and the outbox does not.
6. The worker restarts, finishes the catch-up and is stopped with SIGTERM.

The kills land only in Slack calls, made by the delivery thread, never while an
e-mail is between the SMTP server and the store: that window (an e-mail can
repeat once after a crash there, with the same ``Message-ID``) is documented in
the README and is not what this harness measures.

Run it by hand: ``python -m tests.delivery_crash``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.notify.slack.notifier import EVENT_TYPE
from monitor.store import create_store_engine, transaction
from monitor.store.tables import incident_events, incidents, outbox
from monitor.yamlconfig import parse
from tests.crash_harness import RULES
from tests.slack_emulator import BOT_TOKEN, SlackEmulator
from tests.smtp_server import LocalSmtp

CHANNEL_ID = "C0ALERTS01"
SOFIE, KARIM = "U0SOFIE01", "U0KARIM01"
FALLBACK_AFTER = 2  # seconds before a level call Slack has not delivered goes by e-mail
# Two policies, so that no timing decides the story: Lumora's incidents (A, B) cannot escalate before
# they are acknowledged or closed, Rivo's (C, D) escalate to level 2 within seconds, while Slack is down.
ESCALATION = f"""\
timezone: Europe/Brussels
responders:
  sofie: {{name: Sofie, slack: {SOFIE}, email: sofie@lumora.example}}
  karim: {{name: Karim, slack: {KARIM}, email: karim@lumora.example}}
policies:
  - name: quick
    match: {{brands: [Rivo]}}
    after_hours: page
    email_fallback_after: {FALLBACK_AFTER}s
    levels:
      - {{notify: [sofie], channel: "#reputation-alerts", ack_within: 8s}}
      - {{notify: [karim], ack_within: 1h}}
  - name: patient
    after_hours: page
    email_fallback_after: {FALLBACK_AFTER}s
    levels:
      - {{notify: [sofie], channel: "#reputation-alerts", ack_within: 1h}}
      - {{notify: [karim], ack_within: 1h}}
"""
BRANDS = ("Lumora", "Lumora", "Rivo", "Rivo")  # incidents A, B, C, D


def write_feed(path: Path) -> None:
    """One alerting post per incident, each in its own conversation."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    with path.open("w", encoding="utf-8") as fh:
        for i, brand in enumerate(BRANDS):
            fh.write(json.dumps({
                "source": "x", "source_id": str(10_000 + i), "brand": brand, "text": f"Post {i} about {brand} alertme",
                "created_at": (start + timedelta(seconds=i)).isoformat(), "author_handle": f"user{i}",
                "author_reach": 100, "conversation_id": f"c{i}", "language": "en"}) + "\n")


class TrippingSlack(SlackEmulator):
    """The local Slack, able to SIGKILL the worker at an exact point of an API call.

    ``arm(trip)``: the first call for which ``trip(method)`` is true is carried out
    (or refused, during an outage) and then, before the answer is written, the
    worker process is killed; the connection is dropped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.victim: subprocess.Popen[bytes] | None = None
        self.tripped = threading.Event()
        self._trip: Callable[[str], bool] | None = None
        self._trip_lock = threading.Lock()

    def arm(self, trip: Callable[[str], bool]) -> None:
        self.tripped.clear()
        self._trip = trip

    def handle(self, method: str, params: dict[str, Any],
               headers: dict[str, str]) -> tuple[int, dict[str, str], bytes] | str | None:
        answer = super().handle(method, params, headers)
        with self._trip_lock:
            trip, victim = self._trip, self.victim
            if trip is None or victim is None or not trip(method):
                return answer
            self._trip = None
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            self.tripped.set()
        return None

    def posts(self) -> list[tuple[dict[str, Any], str, str]]:
        """(``event_payload``, channel, ts) of every message Slack accepted, in order."""
        found = []
        for call in self.ok_calls("chat.postMessage"):
            meta = call.params.get("metadata")
            meta = json.loads(meta) if isinstance(meta, str) else meta
            if isinstance(meta, dict) and meta.get("event_type") == EVENT_TYPE and call.response is not None:
                found.append((dict(meta["event_payload"]), str(call.response["channel"]), str(call.response["ts"])))
        return found


@dataclass
class Outcome:
    incidents: list[int]
    statuses: dict[int, tuple[str, str, int]]  # outbox id -> (kind, status, incident id)
    post_keys: Counter[str]  # dedupe key of every accepted chat.postMessage -> how many times
    emails: Counter[str]  # Message-ID -> how many times received
    email_to: dict[str, list[str]]
    cards: dict[int, str]  # incident id -> its channel card's text now
    dm_text: dict[str, list[str]]  # Slack user -> the DMs' texts
    posts_before_kill: int
    lookups_after_kill: int
    timelines: dict[int, list[str]]
    phases: list[str]
    sigterm_exit: int | None
    seconds: float
    logs: dict[str, str] = field(default_factory=dict)

    def ids(self, kind: str, status: str | None = None) -> list[int]:
        return [i for i, (k, s, _) in self.statuses.items() if k == kind and (status is None or s == status)]

    @property
    def duplicated(self) -> int:
        return sum(n - 1 for n in self.post_keys.values()) + sum(n - 1 for n in self.emails.values())

    @property
    def superseded_sent(self) -> int:
        gone = {i for i, (_, s, _) in self.statuses.items() if s == "superseded"}
        return sum(n for key, n in self.post_keys.items() if int(key.split(":")[0]) in gone)

    @property
    def lost(self) -> int:
        """Rows never settled, plus sent rows with nothing of theirs in Slack."""
        posted = {int(key.split(":")[0]) for key in self.post_keys}
        unsettled = sum(s not in ("sent", "superseded") for _, s, _ in self.statuses.values())
        return unsettled + sum(s == "sent" and i not in posted for i, (_, s, _) in self.statuses.items())

    def report(self) -> str:
        counts = Counter(s for _, s, _ in self.statuses.values())
        return (f"incidents {len(self.incidents)}, outbox {dict(counts)}, Slack posts {sum(self.post_keys.values())} "
                f"({self.posts_before_kill} before the catch-up kill, {self.lookups_after_kill} look-ups after), "
                f"e-mails {sum(self.emails.values())}, lost {self.lost}, duplicated {self.duplicated}, "
                f"superseded sent {self.superseded_sent}, SIGTERM exit {self.sigterm_exit}, {self.seconds:.0f} s "
                f"({'; '.join(self.phases)})")


def run(workdir: Path, *, kill_at_post: int = 3, timeout: float = 150.0) -> Outcome:
    """The story of the module docstring; ``kill_at_post``: the catch-up's accepted post the second kill follows."""
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "rules").mkdir(exist_ok=True)
    (workdir / "rules" / "r.yaml").write_text(RULES, encoding="utf-8")
    escalation_file = workdir / "escalation.yaml"
    escalation_file.write_text(ESCALATION, encoding="utf-8")
    feed = workdir / "feed.jsonl"
    write_feed(feed)
    db = workdir / "store.db"
    for old in workdir.glob("store.db*"):  # a previous run's store (by hand, the work folder is reused)
        old.unlink()
    phases: list[str] = []
    wait = _waiter(started, timeout, phases)
    smtp = LocalSmtp(user="monitor", password="smtp-secret").start()
    logs: dict[str, IO[bytes]] = {}
    slack = TrippingSlack()
    try:
        with slack:
            slack.add_channel("reputation-alerts", CHANNEL_ID)
            slack.add_user(SOFIE, name="Sofie", email="sofie@lumora.example")
            slack.add_user(KARIM, name="Karim", email="karim@lumora.example")
            env = {**os.environ, "MONITOR_DB_URL": f"sqlite:///{db}", "MONITOR_RULES_DIR": str(workdir / "rules"),
                   "MONITOR_ESCALATION_FILE": str(escalation_file), "MONITOR_POLL_SECONDS": "0.2",
                   "MONITOR_PASS_SECONDS": "0.5", "MONITOR_FEED_BATCH": "4", "SLACK_BOT_TOKEN": BOT_TOKEN,
                   "MONITOR_SLACK_API_URL": slack.base_url, "MONITOR_LOG_LEVEL": "INFO", "OMP_NUM_THREADS": "1",
                   "SLACK_APP_TOKEN": "", "MONITOR_METRICS_PORT": "0", "MONITOR_SMTP_HOST": "127.0.0.1",
                   "MONITOR_SMTP_PORT": str(smtp.port), "MONITOR_SMTP_STARTTLS": "false",
                   "MONITOR_SMTP_USER": "monitor", "MONITOR_SMTP_PASSWORD": "smtp-secret"}
            cmd = [sys.executable, "-m", "monitor.cli", "run", "--feed", str(feed)]

            def launch(name: str) -> subprocess.Popen[bytes]:
                logs[name] = (workdir / f"{name}.log").open("wb")
                proc = subprocess.Popen(cmd, env=env, cwd=workdir, stdout=logs[name], stderr=subprocess.STDOUT)
                slack.victim = proc
                return proc

            engine = create_store_engine(f"sqlite:///{db}")
            # 1-2. Slack down; the level-1 e-mails go out; then a kill inside a Slack call.
            slack.outage()
            launch("run1")
            wait(lambda: _emailed(engine, "alert") == 4, "four level-1 e-mails recorded")
            slack.arm(lambda method: method == "conversations.open")  # only the delivery thread opens DMs
            wait(slack.tripped.is_set, "the first kill, during the outage")
            # 3. With no worker running, A is acknowledged and B marked a false positive.
            with transaction(engine) as conn:
                found = conn.execute(select(incidents.c.id, incidents.c.brand).order_by(incidents.c.id)).all()
            # A and B are Lumora's, C and D Rivo's (scoring takes the newest posts first: ids say nothing).
            ids = [int(r.id) for r in found if r.brand == "Lumora"] + [int(r.id) for r in found if r.brand == "Rivo"]
            esc = EscalationEngine(parse(EscalationConfig, escalation_file))
            with transaction(engine) as conn:
                esc.acknowledge(conn, ids[0], "sofie", datetime.now(UTC))
                esc.resolve(conn, ids[1], "sofie", datetime.now(UTC), false_positive=True)
            # 4. Restart, still down: C and D escalate, Karim is e-mailed.
            launch("run2")
            wait(lambda: _emailed(engine, "escalation") == 2, "two level-2 e-mails recorded")
            # 5. Slack is back; kill right after it accepted the k-th post of the catch-up.
            slack.arm(lambda method: method == "chat.postMessage"
                      and len(slack.ok_calls("chat.postMessage")) >= kill_at_post)
            slack.restore()
            wait(slack.tripped.is_set, f"the second kill, after catch-up post {kill_at_post}")
            before_kill = len(slack.ok_calls("chat.postMessage"))
            lookups_before = _lookups(slack)
            # 6. Restart, finish, stop politely.
            proc = launch("run3")
            wait(lambda: _settled(engine), "the outbox settled")
            time.sleep(1.0)  # one more pass: nothing may go out twice after it settled
            proc.send_signal(signal.SIGTERM)
            try:
                sigterm_exit: int | None = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                sigterm_exit = None
            outcome = _outcome(engine, slack, smtp, ids, before_kill, _lookups(slack) - lookups_before,
                               sigterm_exit, time.monotonic() - started)
            outcome.phases = phases
            engine.dispose()
    finally:
        if slack.victim is not None and slack.victim.poll() is None:  # a wait timed out: leave nothing running
            slack.victim.kill()
            slack.victim.wait()
        smtp.stop()
        for fh in logs.values():
            fh.close()
    outcome.logs = {name: (workdir / f"{name}.log").read_text(encoding="utf-8", errors="replace")[-4000:]
                    for name in logs}
    return outcome


def _waiter(started: float, timeout: float, phases: list[str]) -> Callable[[Callable[[], bool], str], None]:
    """``wait(condition, what)``: poll until true, noting when in ``phases``; a ``TimeoutError`` after ``timeout``."""
    def wait(condition: Callable[[], bool], what: str) -> None:
        while not condition():
            if time.monotonic() > started + timeout:
                raise TimeoutError(f"timed out waiting for {what} (so far: {'; '.join(phases)})")
            time.sleep(0.1)
        phases.append(f"{what} at {time.monotonic() - started:.0f} s")
    return wait


def _emailed(engine: Engine, kind: str) -> int:
    try:
        with engine.connect() as conn:
            return len(conn.execute(select(outbox.c.id).where(outbox.c.kind == kind,
                                                              outbox.c.email_sent_at.is_not(None))).all())
    except OperationalError:  # not created yet, or locked for a moment
        return 0


def _settled(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            return not conn.execute(select(outbox.c.id).where(outbox.c.status.not_in(("sent", "superseded")))).all()
    except OperationalError:
        return False


def _lookups(slack: SlackEmulator) -> int:
    return len(slack.ok_calls("conversations.history")) + len(slack.ok_calls("conversations.replies"))


def _outcome(engine: Engine, slack: TrippingSlack, smtp: LocalSmtp, ids: list[int], before_kill: int,
             lookups: int, sigterm_exit: int | None, seconds: float) -> Outcome:
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.id, outbox.c.kind, outbox.c.status, outbox.c.incident_id)).all()
        events = conn.execute(select(incident_events.c.incident_id, incident_events.c.note)
                              .order_by(incident_events.c.id)).all()
    posts = slack.posts()
    cards = {int(p["incident_id"]): slack.message(channel, ts).block_text()
             for p, channel, ts in posts if channel == CHANNEL_ID and str(p["dedupe"]).endswith(":channel")}
    dm_text = {}
    for user in (SOFIE, KARIM):
        dm = slack.dm_channel_of(user)
        dm_text[user] = [m.block_text() for m in slack.messages(dm.id)] if dm is not None else []
    return Outcome(
        incidents=ids, statuses={int(r.id): (str(r.kind), str(r.status), int(r.incident_id)) for r in rows},
        post_keys=Counter(str(p["dedupe"]) for p, _, _ in posts),
        emails=Counter(str(r.message["Message-ID"]) for r in smtp.received),
        email_to={str(r.message["Message-ID"]): list(r.to) for r in smtp.received}, cards=cards, dm_text=dm_text,
        posts_before_kill=before_kill, lookups_after_kill=lookups,
        timelines={i: [str(n) for iid, n in events if iid == i and n] for i in ids}, phases=[],
        sigterm_exit=sigterm_exit, seconds=seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kill-at-post", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/monitor-delivery-kill"))
    args = parser.parse_args()
    outcome = run(args.workdir, kill_at_post=args.kill_at_post)
    print(outcome.report())
    sys.exit(0 if outcome.lost == outcome.duplicated == outcome.superseded_sent == 0 else 1)


if __name__ == "__main__":
    main()
