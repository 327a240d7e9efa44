"""Three workers on one PostgreSQL, one of them SIGKILLed every few seconds: nothing lost, nothing twice.

Issue 14's acceptance test, run by ``tests/test_cluster_kill.py`` and by hand
(``python -m tests.cluster_harness --kills 40``). Three real ``monitor run``
processes share one PostgreSQL database, one replayed feed (its source is
leased: one poller at a time, continuing from the stored cursor) and the local
Slack emulator. Every ``kill_every`` seconds a random worker is killed with
SIGKILL and a new one started in its place. When the kills are done the
survivors are left to drain the work, then stopped with SIGTERM, and the
store and the emulator are compared with what the feed says must happen:

* every mention stored once and scored once;
* every incident's channel message posted once, its level-1 DM sent once and,
  after the 15 s acknowledgement window, its level-2 DM sent once: 0 missing,
  0 duplicates;
* no incident escalated twice for one deadline (one escalation event per level);
* the weekly digest (scheduled a minute after the start) posted once.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from monitor.store import create_store_engine
from monitor.store.tables import incident_events, incidents, mentions, outbox, sentiments
from tests.crash_harness import RULES, write_feed  # the same rule: each conversation its own incident
from tests.pg import postgres_database
from tests.slack_emulator import BOT_TOKEN, SlackEmulator

CHANNEL_ID = "C0ALERTS01"
FIRST, SECOND = "U0SOFIE01", "U0KARIM01"
ZONE = ZoneInfo("Europe/Brussels")

ESCALATION = f"""\
timezone: Europe/Brussels
responders:
  sofie: {{name: Sofie, slack: {FIRST}}}
  karim: {{name: Karim, slack: {SECOND}}}
policies:
  - name: all
    after_hours: page
    levels:
      - {{notify: [sofie], channel: "#reputation-alerts", ack_within: 15s}}
      - {{notify: [karim], ack_within: 2h}}
"""


@dataclass
class Outcome:
    kills: int
    workers_started: int
    mentions_expected: int
    mentions_stored: int
    scored: int
    alerts_expected: int
    incidents: int
    channel_messages: int
    first_dms: int
    second_dms: int
    escalated_twice: int
    digests_posted: int
    backlog: int
    seconds: float
    problems: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        return (f"{self.kills} kills, {self.workers_started} workers started, "
                f"mentions {self.mentions_stored}/{self.mentions_expected} (scored {self.scored}), "
                f"incidents {self.incidents}/{self.alerts_expected}, channel {self.channel_messages}, "
                f"level-1 DMs {self.first_dms}, level-2 DMs {self.second_dms}, escalated twice "
                f"{self.escalated_twice}, digests {self.digests_posted}, outbox backlog {self.backlog}, "
                f"{self.seconds:.0f} s" + ("" if self.ok() else " — " + "; ".join(self.problems)))


class Cluster:
    """The worker processes: started, killed and stopped by the harness."""

    def __init__(self, cmd: list[str], env: dict[str, str], workdir: Path, logs: Path) -> None:
        self.cmd, self.env, self.workdir, self.logs = cmd, env, workdir, logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0

    def start(self) -> None:
        self.started += 1
        log = (self.logs / f"worker-{self.started:02d}.log").open("wb")
        self.procs.append(subprocess.Popen(self.cmd, env=self.env, cwd=self.workdir, stdout=log,
                                           stderr=subprocess.STDOUT))
        log.close()

    def kill_one(self, rng: random.Random) -> None:
        victim = self.procs.pop(rng.randrange(len(self.procs)))
        victim.send_signal(signal.SIGKILL)
        victim.wait()

    def stop_all(self) -> list[int | None]:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout=30))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(None)
        return codes


def run(workdir: Path, admin_url: str, *, kills: int = 20, kill_every: tuple[float, float] = (1.5, 3.0),
        mentions_n: int = 300, every: int = 10, seed: int = 1, settle_timeout: float = 150.0) -> Outcome:
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    (workdir / "rules").mkdir(exist_ok=True)
    (workdir / "rules" / "r.yaml").write_text(RULES, encoding="utf-8")
    (workdir / "escalation.yaml").write_text(ESCALATION, encoding="utf-8")
    feed = workdir / "feed.jsonl"
    alerts = write_feed(feed, mentions_n, every)
    name = f"monitor_cluster_{seed}_{os.getpid()}"
    started = time.monotonic()
    # The weekly digest is due while the kills go on (the next minute at least 20 s away).
    digest_at = (datetime.now(ZONE) + timedelta(seconds=80)).replace(second=0, microsecond=0)
    with postgres_database(admin_url, name) as url, SlackEmulator() as slack:
        slack.add_channel("reputation-alerts", CHANNEL_ID)
        slack.add_channel("reputation-digest", "C0DIGEST01")
        slack.add_user(FIRST, name="Sofie")
        slack.add_user(SECOND, name="Karim")
        env = {**os.environ, "MONITOR_DB_URL": url, "MONITOR_RULES_DIR": str(workdir / "rules"),
               "MONITOR_ESCALATION_FILE": str(workdir / "escalation.yaml"), "MONITOR_POLL_SECONDS": "1",
               "MONITOR_PASS_SECONDS": "0.5", "MONITOR_FEED_BATCH": "10", "SLACK_BOT_TOKEN": BOT_TOKEN,
               "MONITOR_SLACK_API_URL": slack.base_url, "MONITOR_LOG_LEVEL": "WARNING",
               "MONITOR_SLACK_CHANNEL": "#reputation-digest",
               "MONITOR_DIGEST_DAY": digest_at.strftime("%a").lower(),
               "MONITOR_DIGEST_TIME": digest_at.strftime("%H:%M"),
               "OMP_NUM_THREADS": "1", "SLACK_APP_TOKEN": "", "MONITOR_METRICS_PORT": "0"}
        cmd = [sys.executable, "-m", "monitor.cli", "run", "--feed", str(feed)]
        cluster = Cluster(cmd, env, workdir, logs)
        for _ in range(3):
            cluster.start()
        for _ in range(kills):
            time.sleep(rng.uniform(*kill_every))
            cluster.kill_one(rng)
            cluster.start()
        engine = create_store_engine(url)
        deadline = time.monotonic() + settle_timeout
        while time.monotonic() < deadline and not _settled(engine, slack, mentions_n, alerts):
            time.sleep(1.0)
        codes = cluster.stop_all()
        outcome = _measure(engine, slack, mentions_n, alerts, kills, cluster.started, started)
        engine.dispose()
        if any(code != 0 for code in codes):
            outcome.problems.append(f"SIGTERM exit codes {codes} (logs in {logs})")
    return outcome


def _digest_messages(slack: SlackEmulator) -> int:
    return len([m for m in slack.messages("C0DIGEST01")
                if m.thread_ts in (None, m.ts) and "Reputation digest" in m.block_text()])


def _dms(slack: SlackEmulator, user: str) -> int:
    dm = slack.dm_channel_of(user)
    return len([m for m in dm.messages if m.thread_ts in (None, m.ts)]) if dm is not None else 0


def _settled(engine: Engine, slack: SlackEmulator, expected: int, alerts: int) -> bool:
    """Everything stored, scored, through the rules, both levels called and delivered, the digest out."""
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(mentions)).scalar_one()
            undetected = conn.execute(select(func.count()).select_from(mentions)
                                      .where(mentions.c.detected_at.is_(None))).scalar_one()
            pending = conn.execute(select(func.count()).select_from(outbox)
                                   .where(outbox.c.sent_at.is_(None))).scalar_one()
    except OperationalError:  # not migrated yet
        return False
    return bool(stored >= expected and undetected == 0 and pending == 0
                and _dms(slack, SECOND) >= alerts and _digest_messages(slack) >= 1)


def _measure(engine: Engine, slack: SlackEmulator, expected: int, alerts: int, kills: int, started_n: int,
             started: float) -> Outcome:
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(mentions)).scalar_one()
        distinct = conn.execute(select(func.count(func.distinct(mentions.c.source_id)))).scalar_one()
        scored = conn.execute(select(func.count()).select_from(sentiments)).scalar_one()
        n_incidents = conn.execute(select(func.count()).select_from(incidents)).scalar_one()
        backlog = conn.execute(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))).scalar_one()
        # The engine's escalation step writes "level N notified: ..." (delivery writes its own "delivered: ..." lines).
        calls = Counter((r.incident_id, r.level) for r in conn.execute(
            select(incident_events.c.incident_id, incident_events.c.level, incident_events.c.note))
            if re.match(r"level \d+ notified", r.note or ""))
    top_level = [m for m in slack.messages(CHANNEL_ID) if m.thread_ts in (None, m.ts)]
    outcome = Outcome(kills=kills, workers_started=started_n, mentions_expected=expected, mentions_stored=stored,
                      scored=scored, alerts_expected=alerts, incidents=n_incidents, channel_messages=len(top_level),
                      first_dms=_dms(slack, FIRST), second_dms=_dms(slack, SECOND),
                      escalated_twice=sum(1 for n in calls.values() if n > 1),
                      digests_posted=_digest_messages(slack), backlog=backlog,
                      seconds=time.monotonic() - started)
    checks = {
        "mentions stored": (stored, expected), "distinct mentions": (distinct, expected), "scored": (scored, expected),
        "incidents": (n_incidents, alerts), "channel messages": (len(top_level), alerts),
        "level-1 DMs": (outcome.first_dms, alerts), "level-2 DMs": (outcome.second_dms, alerts),
        "level calls": (len(calls), 2 * alerts), "escalated twice": (outcome.escalated_twice, 0),
        "digests": (outcome.digests_posted, 1),
        "outbox backlog": (backlog, 0),
    }
    outcome.problems.extend(f"{what}: {got}, expected {want}" for what, (got, want) in checks.items() if got != want)
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default=os.environ.get("MONITOR_TEST_PG_URL"),
                        help="an administrator URL of a PostgreSQL server (default: $MONITOR_TEST_PG_URL)")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--mentions", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/monitor-cluster-test"))
    args = parser.parse_args()
    if not args.pg_url:
        parser.error("needs a PostgreSQL server: --pg-url or MONITOR_TEST_PG_URL")
    outcome = run(args.workdir, args.pg_url, kills=args.kills, mentions_n=args.mentions, seed=args.seed)
    print(outcome.report())
    sys.exit(0 if outcome.ok() else 1)


if __name__ == "__main__":
    main()
