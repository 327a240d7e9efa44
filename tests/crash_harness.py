"""Kill the worker with SIGKILL at random moments and prove nothing is lost or doubled.

The worker runs as a real process (``monitor run``) over a replayed feed, with
the offline model, a SQLite store and the local Slack emulator. It is killed
again and again mid-work, restarted each time, and finally stopped with
SIGTERM. Then the store and the emulator are compared with what the feed
says must have happened:

* every mention stored exactly once;
* every alert due (one per ``ALERTME`` post, each in its own conversation)
  posted to the channel exactly once, and sent by DM exactly once;
* no incident stuck (all notified) and an empty outbox;
* SIGTERM ends the process cleanly (exit code 0).

The final run is stopped only once it has polled (its source's health row in the
store says so), so SIGTERM finds its handlers installed. No port is involved:
the metrics endpoint is off, and nothing picks a "free" port and hopes it stays free.

Run it by hand for more runs: ``python -m tests.crash_harness --runs 50``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from monitor.store import create_store_engine
from monitor.store import health as health_repo
from monitor.store.tables import incidents, mentions, outbox
from tests.slack_emulator import BOT_TOKEN, SlackEmulator

ROOT = Path(__file__).resolve().parent.parent
CHANNEL_ID = "C0ALERTS01"
RESPONDER = "U0SOFIE01"

RULES = """\
rules:
  - name: alert-word
    description: Every post with the test word pages, each conversation its own incident.
    severity: critical
    when:
      keywords: [alertme]
    group_by: conversation
"""

ESCALATION = f"""\
timezone: Europe/Brussels
responders:
  sofie: {{name: Sofie, slack: {RESPONDER}}}
policies:
  - name: all
    after_hours: page
    levels:
      - {{notify: [sofie], channel: "#reputation-alerts", ack_within: 2h}}
"""


@dataclass
class Outcome:
    runs: int
    kills: int
    mentions_expected: int
    mentions_stored: int
    alerts_expected: int
    channel_messages: int
    direct_messages: int
    incidents: int
    stuck: int
    backlog: int
    sigterm_exit: int | None
    seconds: float
    kills_mid_work: int = 0  # kills that hit while mentions or alerts were still in flight
    cause: str = ""  # when it did not settle: the end of the final run's log (why the worker did not work)

    @property
    def lost(self) -> int:
        return max(0, self.mentions_expected - self.mentions_stored) + max(
            0, self.alerts_expected - self.channel_messages)

    @property
    def duplicated(self) -> int:
        return max(0, self.mentions_stored - self.mentions_expected) + max(
            0, self.channel_messages - self.alerts_expected) + max(0, self.direct_messages - self.alerts_expected)

    def ok(self) -> bool:
        return (self.lost == 0 and self.duplicated == 0 and self.stuck == 0 and self.backlog == 0
                and self.incidents == self.alerts_expected and self.sigterm_exit == 0)

    def report(self) -> str:
        return (f"runs {self.runs}, kills {self.kills} ({self.kills_mid_work} mid-work), "
                f"mentions {self.mentions_stored}/{self.mentions_expected}, "
                f"alerts {self.channel_messages}/{self.alerts_expected} (DMs {self.direct_messages}), "
                f"incidents {self.incidents}, lost {self.lost}, duplicated {self.duplicated}, stuck {self.stuck}, "
                f"backlog {self.backlog}, SIGTERM exit {self.sigterm_exit}, {self.seconds:.0f} s"
                + ("" if self.ok() or not self.cause else f"\nthe final run's log ends with:\n{self.cause}"))


def write_feed(path: Path, n: int, every: int) -> int:
    start = datetime.now(UTC) - timedelta(minutes=30)
    alerts = 0
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            alert = i % every == 0
            alerts += alert
            text = f"Post {i} about Lumora" + (" alertme" if alert else ", all fine")
            fh.write(json.dumps({
                "source": "x", "source_id": str(10_000 + i), "brand": "Lumora", "text": text,
                "created_at": (start + timedelta(seconds=i)).isoformat(), "author_handle": f"user{i}",
                "author_reach": 100, "conversation_id": f"c{i}", "language": "en",
            }) + "\n")
    return alerts


def run(workdir: Path, *, runs: int, mentions_n: int = 600, every: int = 5, seed: int = 1) -> Outcome:
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "rules").mkdir(exist_ok=True)
    (workdir / "rules" / "r.yaml").write_text(RULES, encoding="utf-8")
    (workdir / "escalation.yaml").write_text(ESCALATION, encoding="utf-8")
    feed = workdir / "feed.jsonl"
    alerts = write_feed(feed, mentions_n, every)
    db = workdir / "store.db"
    started = time.monotonic()
    with SlackEmulator() as slack:
        slack.add_channel("reputation-alerts", CHANNEL_ID)
        slack.add_user(RESPONDER, name="Sofie")
        env = {**os.environ, "MONITOR_DB_URL": f"sqlite:///{db}", "MONITOR_RULES_DIR": str(workdir / "rules"),
               "MONITOR_ESCALATION_FILE": str(workdir / "escalation.yaml"), "MONITOR_POLL_SECONDS": "0.2",
               "MONITOR_PASS_SECONDS": "0.2", "MONITOR_FEED_BATCH": "5", "SLACK_BOT_TOKEN": BOT_TOKEN,
               "MONITOR_SLACK_API_URL": slack.base_url, "MONITOR_LOG_LEVEL": "WARNING",
               "OMP_NUM_THREADS": "1", "SLACK_APP_TOKEN": "", "MONITOR_METRICS_PORT": "0"}
        cmd = [sys.executable, "-m", "monitor.cli", "run", "--feed", str(feed)]
        kills = mid_work = 0
        engine = create_store_engine(f"sqlite:///{db}")
        logs = workdir / "logs"
        logs.mkdir(exist_ok=True)

        def start(i: int) -> subprocess.Popen[bytes]:
            """Each run's output kept in ``logs/run-NN.log``: a run that fails says why."""
            with (logs / f"run-{i:02d}.log").open("wb") as out:
                return subprocess.Popen(cmd, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)

        for i in range(runs):
            proc = start(i)
            time.sleep(rng.uniform(1.0, 4.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            mid_work += not _settled(engine, mentions_n)
        # The last run is left to finish, then stopped the polite way once it is up (it has polled).
        launched = datetime.now(UTC)
        proc = start(runs)
        _wait_polled(engine, f"replay:{feed.name}", launched, timeout=60)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _settled(engine, mentions_n):
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        try:
            sigterm_exit: int | None = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            sigterm_exit = None
        try:
            with engine.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(mentions)).scalar_one()
                n_incidents = conn.execute(select(func.count()).select_from(incidents)).scalar_one()
                stuck = conn.execute(select(func.count()).select_from(incidents)
                                     .where(incidents.c.state != "notified")).scalar_one()
                backlog = conn.execute(select(func.count()).select_from(outbox)
                                       .where(outbox.c.sent_at.is_(None))).scalar_one()
        except OperationalError:  # the store never opened: the final run's log (below) says why
            stored = n_incidents = stuck = backlog = -1
        engine.dispose()
        cause = "\n".join((logs / f"run-{runs:02d}.log").read_text(encoding="utf-8", errors="replace")
                          .splitlines()[-15:])
        top_level = [m for m in slack.messages(CHANNEL_ID) if m.thread_ts in (None, m.ts)]
        dm = slack.dm_channel_of(RESPONDER)
        dms = len([m for m in dm.messages if m.thread_ts in (None, m.ts)]) if dm is not None else 0
    return Outcome(runs=runs + 1, kills=kills, mentions_expected=mentions_n, mentions_stored=stored,
                   alerts_expected=alerts, channel_messages=len(top_level), direct_messages=dms,
                   incidents=n_incidents, stuck=stuck, backlog=backlog, sigterm_exit=sigterm_exit,
                   seconds=time.monotonic() - started, kills_mid_work=mid_work, cause=cause)


def _wait_polled(engine: Engine, source: str, since: datetime, timeout: float) -> None:
    """Until the worker started after ``since`` has polled ``source`` (or the time is up).

    The worker installs its signal handlers before anything else, so once it has polled,
    SIGTERM means "stop cleanly".
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with engine.connect() as conn:
                health = health_repo.get(conn, source)
        except OperationalError:  # the store is being created or is locked for a moment
            health = None
        if health is not None and health.last_success_at is not None and health.last_success_at >= since:
            return
        time.sleep(0.2)


def _settled(engine: Engine, expected: int) -> bool:
    """Everything stored, through the rules, and delivered (False before the first run created the store)."""
    try:
        return _counts_settled(engine, expected)
    except OperationalError:
        return False


def _counts_settled(engine: Engine, expected: int) -> bool:
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(mentions)).scalar_one()
        pending = conn.execute(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))).scalar_one()
        undetected = conn.execute(select(func.count()).select_from(mentions)
                                  .where(mentions.c.detected_at.is_(None))).scalar_one()
    return bool(stored >= expected and pending == 0 and undetected == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="SIGKILLs before the final run")
    parser.add_argument("--mentions", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/monitor-kill-test"))
    args = parser.parse_args()
    outcome = run(args.workdir, runs=args.runs, mentions_n=args.mentions, seed=args.seed)
    print(outcome.report())
    sys.exit(0 if outcome.ok() else 1)


if __name__ == "__main__":
    main()
