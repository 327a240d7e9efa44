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

``stall=True`` (issue 28, ``tests/test_cluster_stall.py``) freezes workers instead
of killing them: a random worker gets SIGSTOP for longer than its lease
(``MONITOR_LEASE_SECONDS``), is taken over by the others, then gets SIGCONT and
carries on, while alerts are being delivered. Nothing may be posted twice: the
woken worker finds its sending claim fenced.
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
from sqlalchemy.exc import DBAPIError, OperationalError

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
      - {{notify: [sofie], channel: "#reputation-alerts", ack_within: ACK}}
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
    duplicates: int = 0  # notification parts posted more than once (channel, thread replies, DMs)
    problems: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        return (f"{self.kills} kills, {self.workers_started} workers started, "
                f"mentions {self.mentions_stored}/{self.mentions_expected} (scored {self.scored}), "
                f"incidents {self.incidents}/{self.alerts_expected}, channel {self.channel_messages}, "
                f"level-1 DMs {self.first_dms}, level-2 DMs {self.second_dms}, escalated twice "
                f"{self.escalated_twice}, digests {self.digests_posted}, outbox backlog {self.backlog}, "
                f"parts posted twice {self.duplicates}, "
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

    def pause_one(self, rng: random.Random, seconds: float) -> None:
        """SIGSTOP a random worker for ``seconds`` (longer than its lease), then SIGCONT: a frozen, not a dead, one."""
        victim = self.procs[rng.randrange(len(self.procs))]
        victim.send_signal(signal.SIGSTOP)
        time.sleep(seconds)
        victim.send_signal(signal.SIGCONT)

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
        mentions_n: int = 300, every: int = 10, seed: int = 1, settle_timeout: float = 150.0,
        stall: bool = False, workers_n: int = 3, lease: float = 1.0,
        pause_for: tuple[float, float] = (2.0, 3.0), latency: float = 0.0) -> Outcome:
    """``kills`` SIGKILLs (or, with ``stall``, SIGSTOP/SIGCONT pauses of ``pause_for`` seconds, longer than
    ``lease``) every ``kill_every`` seconds among ``workers_n`` workers; then the outcome."""
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    (workdir / "rules").mkdir(exist_ok=True)
    (workdir / "rules" / "r.yaml").write_text(RULES, encoding="utf-8")
    # Frozen workers: a short acknowledgement window, so that level-2 calls go out while the pauses go on.
    (workdir / "escalation.yaml").write_text(ESCALATION.replace("ACK", "4s" if stall else "15s"), encoding="utf-8")
    feed = workdir / "feed.jsonl"
    alerts = write_feed(feed, mentions_n, every)
    name = f"monitor_cluster_{seed}_{os.getpid()}"
    started = time.monotonic()
    # The weekly digest is due while the kills go on (the next minute at least 20 s away); not in stall mode,
    # which stays short and is about notifications.
    digest_at = (datetime.now(ZONE) + timedelta(seconds=80)).replace(second=0, microsecond=0)
    if stall:
        digest_at += timedelta(days=3)
    with postgres_database(admin_url, name) as url, SlackEmulator() as slack:
        slack.latency = latency
        slack.add_channel("reputation-alerts", CHANNEL_ID)
        slack.add_channel("reputation-digest", "C0DIGEST01")
        slack.add_user(FIRST, name="Sofie")
        slack.add_user(SECOND, name="Karim")
        env = {**os.environ, "MONITOR_DB_URL": url, "MONITOR_RULES_DIR": str(workdir / "rules"),
               "MONITOR_ESCALATION_FILE": str(workdir / "escalation.yaml"), "MONITOR_POLL_SECONDS": "1",
               "MONITOR_LEASE_SECONDS": str(lease),
               "MONITOR_PASS_SECONDS": "0.5", "MONITOR_FEED_BATCH": "10", "SLACK_BOT_TOKEN": BOT_TOKEN,
               "MONITOR_SLACK_API_URL": slack.base_url, "MONITOR_LOG_LEVEL": "WARNING",
               "MONITOR_SLACK_CHANNEL": "#reputation-digest",
               "MONITOR_DIGEST_DAY": digest_at.strftime("%a").lower(),
               "MONITOR_DIGEST_TIME": digest_at.strftime("%H:%M"),
               "OMP_NUM_THREADS": "1", "SLACK_APP_TOKEN": "", "MONITOR_METRICS_PORT": "0"}
        cmd = [sys.executable, "-m", "monitor.cli", "run", "--feed", str(feed)]
        cluster = Cluster(cmd, env, workdir, logs)
        try:
            return _drive(cluster, url, slack, rng, workers_n=workers_n, kills=kills, kill_every=kill_every,
                          stall=stall, pause_for=pause_for, settle_timeout=settle_timeout, mentions_n=mentions_n,
                          alerts=alerts, started=started, logs=logs)
        finally:
            for proc in cluster.procs:  # a failure above must not leave workers running
                if proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)
                    proc.kill()
                    proc.wait()


def _drive(cluster: Cluster, url: str, slack: SlackEmulator, rng: random.Random, *, workers_n: int, kills: int,
           kill_every: tuple[float, float], stall: bool, pause_for: tuple[float, float], settle_timeout: float,
           mentions_n: int, alerts: int, started: float, logs: Path) -> Outcome:
    for _ in range(workers_n):
        cluster.start()
    if stall:
        engine = create_store_engine(url)
        _wait_for_delivery(engine, time.monotonic() + 60)  # pause while alerts are being sent
        engine.dispose()
    for _ in range(kills):
        time.sleep(rng.uniform(*kill_every))
        if stall:
            cluster.pause_one(rng, rng.uniform(*pause_for))
        else:
            cluster.kill_one(rng)
            cluster.start()
    engine = create_store_engine(url)
    deadline = time.monotonic() + settle_timeout
    while time.monotonic() < deadline and not _settled(engine, slack, mentions_n, alerts, digest=not stall):
        time.sleep(0.5)
    codes = cluster.stop_all()
    outcome = _measure(engine, slack, mentions_n, alerts, kills, cluster.started, started, digest=not stall)
    engine.dispose()
    if any(code != 0 for code in codes):
        outcome.problems.append(f"SIGTERM exit codes {codes} (logs in {logs})")
    return outcome


def _wait_for_delivery(engine: Engine, deadline: float) -> None:
    """Until the first notification is out (the workers started, scored and alerted), or the deadline."""
    while time.monotonic() < deadline:
        try:
            with engine.connect() as conn:
                if conn.execute(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_not(None)))\
                        .scalar_one():
                    return
        except DBAPIError:  # not migrated yet
            pass
        time.sleep(0.2)


def _digest_messages(slack: SlackEmulator) -> int:
    return len([m for m in slack.messages("C0DIGEST01")
                if m.thread_ts in (None, m.ts) and "Reputation digest" in m.block_text()])


def _dms(slack: SlackEmulator, user: str) -> int:
    dm = slack.dm_channel_of(user)
    return len([m for m in dm.messages if m.thread_ts in (None, m.ts)]) if dm is not None else 0


def _settled(engine: Engine, slack: SlackEmulator, expected: int, alerts: int, *, digest: bool = True) -> bool:
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
                and _dms(slack, SECOND) >= alerts and (not digest or _digest_messages(slack) >= 1))


def _measure(engine: Engine, slack: SlackEmulator, expected: int, alerts: int, kills: int, started_n: int,
             started: float, *, digest: bool = True) -> Outcome:
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
                      seconds=time.monotonic() - started, duplicates=sum(n - 1 for n in slack.duplicates().values()))
    checks = {
        "mentions stored": (stored, expected), "distinct mentions": (distinct, expected), "scored": (scored, expected),
        "incidents": (n_incidents, alerts), "channel messages": (len(top_level), alerts),
        "level-1 DMs": (outcome.first_dms, alerts), "level-2 DMs": (outcome.second_dms, alerts),
        "level calls": (len(calls), 2 * alerts), "escalated twice": (outcome.escalated_twice, 0),
        "digests": (outcome.digests_posted, 1 if digest else 0),
        "outbox backlog": (backlog, 0),
        "parts posted twice": (outcome.duplicates, 0),
    }
    outcome.problems.extend(f"{what}: {got}, expected {want}" for what, (got, want) in checks.items() if got != want)
    return outcome


# The frozen-worker test's shape: 3 workers, a 1.2 s lease, pauses of 1.8-2.4 s (always past the lease)
# every 0.1-0.5 s: 20 pauses in about 45 s, while the alerts and their level-2 calls go out. Slack answers
# after 0.3 s, as a real one does: a send (channel, DM, thread) is a window a pause can fall in.
STALL: dict[str, object] = {"workers_n": 3, "lease": 1.2, "pause_for": (1.8, 2.4), "kill_every": (0.1, 0.5),
                            "settle_timeout": 60.0, "latency": 0.3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default=os.environ.get("MONITOR_TEST_PG_URL"),
                        help="an administrator URL of a PostgreSQL server (default: $MONITOR_TEST_PG_URL)")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--mentions", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stall", action="store_true", help="SIGSTOP/SIGCONT workers instead of killing them")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/monitor-cluster-test"))
    args = parser.parse_args()
    if not args.pg_url:
        parser.error("needs a PostgreSQL server: --pg-url or MONITOR_TEST_PG_URL")
    outcome = (run(args.workdir, args.pg_url, kills=args.kills, mentions_n=args.mentions, seed=args.seed,
                   stall=True, **STALL) if args.stall else
               run(args.workdir, args.pg_url, kills=args.kills, mentions_n=args.mentions, seed=args.seed))
    print(outcome.report())
    sys.exit(0 if outcome.ok() else 1)


if __name__ == "__main__":
    main()
