"""Several workers on one PostgreSQL: do they share the work, and how fast do they take over?

    python bench/scale_out.py                              # 20,000 mentions; $MONITOR_TEST_PG_URL
    python bench/scale_out.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres --mentions 5000

Two figures, each from real ``monitor run`` processes on a fresh database of the
server named by ``--pg-url`` (an administrator URL: the bench creates and drops
its own databases):

1. **Drain time.** ``--mentions`` posts are stored first (Dutch, French and
   English, each text different, so the score cache does not help); then 1 and
   then 2 workers start and the clock runs until every post is scored, through
   the rules and every notification it caused delivered (to the console). The
   model's threads are split between the workers (``--cores`` in all), so the
   two-worker run uses the same CPU as the one-worker run: on two cores the point
   is that the work is shared (each post scored once), not a speed-up.
2. **Take-over.** Two workers poll one replayed feed (one holds its lease); the
   holder is killed with SIGKILL, ``--deaths`` times, and the time until the other
   worker has polled the source again is measured, against the promise of two
   poll intervals.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.models import Mention
from monitor.store import cluster, create_store_engine, migrate, transaction
from monitor.store import health as health_repo
from monitor.store import mentions as mention_repo
from monitor.store.tables import mentions, outbox, sentiments
from tests.pg import postgres_database

ROOT = Path(__file__).resolve().parent.parent
SUBJECTS = {
    "nl": ["De levering van Lumora was {} te laat", "Klantendienst van Lumora {} niet bereikbaar",
           "Mijn pakket van Lumora kwam {} beschadigd aan", "Lumora heeft me {} goed geholpen"],
    "fr": ["La livraison Lumora était {} en retard", "Le service client Lumora est {} injoignable",
           "Mon colis Lumora est arrivé {} abîmé", "Lumora m'a {} bien aidé"],
    "en": ["Lumora delivery was {} late again", "Lumora support is {} unreachable",
           "My Lumora parcel arrived {} damaged", "Lumora helped me {} quickly"],
}
ADVERBS = ["weer", "encore", "really", "totally", "vraiment", "echt", "absolutely", "un peu", "zo", "so"]


def posts(n: int, seed: int = 7) -> list[Mention]:
    """``n`` short posts, every text different, in the last hour (the rules' windows see them as live)."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(hours=1)
    out: list[Mention] = []
    for i in range(n):
        lang = rng.choices(("nl", "fr", "en"), weights=(5, 3, 2))[0]
        body = rng.choice(SUBJECTS[lang]).format(rng.choice(ADVERBS))
        out.append(Mention(source="x", source_id=str(i), brand="Lumora", text=f"{body} (#{i})",
                           created_at=start + timedelta(seconds=3600 * i / n), url=f"https://x.com/i/status/{i}",
                           author_handle=f"user{i % 997}", author_reach=rng.choice((50, 300, 2_000)),
                           engagement=0, language=lang, conversation_id=f"c{i}"))
    return out


def start_worker(url: str, workdir: Path, feed: Path, log_name: str, *, threads: int,
                 poll: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MONITOR_DB_URL": url, "MONITOR_RULES_DIR": str(ROOT / "rules"),
           "MONITOR_ESCALATION_FILE": str(ROOT / "escalation.yaml"), "MONITOR_POLL_SECONDS": str(poll),
           "MONITOR_PASS_SECONDS": "1", "MONITOR_FEED_BATCH": "5", "MONITOR_LOG_LEVEL": "WARNING",
           "MONITOR_SENTIMENT_THREADS": str(threads), "OMP_NUM_THREADS": str(threads), "SLACK_BOT_TOKEN": "",
           "SLACK_APP_TOKEN": "", "MONITOR_METRICS_PORT": "0", "MONITOR_CONSOLE_ENABLED": "false"}
    log = (workdir / log_name).open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--feed", str(feed)], env=env,
                            cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def drained(engine: Engine, n: int) -> tuple[bool, int]:
    with engine.connect() as conn:
        done = conn.execute(select(func.count()).select_from(mentions)
                            .where(mentions.c.detected_at.is_not(None))).scalar_one()
        waiting = conn.execute(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))).scalar_one()
    return done >= n and waiting == 0, int(done)


def drain(admin_url: str, n: int, workers: int, cores: int, workdir: Path) -> tuple[float, int, int]:
    """Seconds from the workers' start to an empty backlog; (seconds, posts scored, posts stored)."""
    with postgres_database(admin_url, f"bench_scale_{workers}_{os.getpid()}") as url:
        engine = create_store_engine(url)
        migrate(engine)
        with transaction(engine) as conn:
            mention_repo.store_batch(conn, "bench", posts(n), None, datetime.now(UTC))
        feed = workdir / "empty.jsonl"
        feed.write_text("", encoding="utf-8")
        started = time.monotonic()
        procs = [start_worker(url, workdir, feed, f"drain-{workers}-{i}.log", threads=max(1, cores // workers),
                              poll=60) for i in range(workers)]
        last = -1
        try:
            while True:
                done, count = drained(engine, n)
                if done:
                    break
                if any(p.poll() is not None for p in procs):
                    raise SystemExit(f"a worker exited early: see {workdir}/drain-{workers}-*.log")
                if count // 1000 != last // 1000:
                    elapsed = time.monotonic() - started
                    print(f"  {workers} worker(s): {count:,}/{n:,} through the rules, {elapsed:.0f} s", file=sys.stderr)
                last = count
                time.sleep(0.5)
            seconds = time.monotonic() - started
        finally:
            stop(procs)
        with engine.connect() as conn:
            scored = conn.execute(select(func.count()).select_from(sentiments)).scalar_one()
            stored = conn.execute(select(func.count()).select_from(mentions)).scalar_one()
        engine.dispose()
    return seconds, int(scored), int(stored)


def take_over(admin_url: str, deaths: int, poll: float, workdir: Path) -> list[float]:
    """Seconds from SIGKILL of the source's holder to the source polled again by another worker."""
    feed = workdir / "feed.jsonl"
    with feed.open("w", encoding="utf-8") as fh:
        for m in posts(20_000, seed=11):
            fh.write(json.dumps({"source": m.source, "source_id": m.source_id, "brand": m.brand, "text": m.text,
                                 "created_at": m.created_at.isoformat(), "author_handle": m.author_handle,
                                 "author_reach": m.author_reach, "conversation_id": m.conversation_id,
                                 "language": m.language}) + "\n")
    source = f"replay:{feed.name}"
    lease = cluster.source_lease(source)
    gaps: list[float] = []
    with postgres_database(admin_url, f"bench_takeover_{os.getpid()}") as url:
        engine = create_store_engine(url)
        migrate(engine)
        procs = [start_worker(url, workdir, feed, f"takeover-{i}.log", threads=1, poll=poll) for i in range(2)]
        try:
            for death in range(deaths):
                holder = _wait_holder(engine, lease, timeout=60)
                victim = next((p for p in procs if holder.split(":")[1] == str(p.pid)), None)
                if victim is None:
                    raise SystemExit(f"lease {lease} held by {holder}, not one of the bench's workers")
                victim.send_signal(signal.SIGKILL)
                killed_at = datetime.now(UTC)
                killed = time.monotonic()
                victim.wait()
                procs.remove(victim)
                procs.append(start_worker(url, workdir, feed, f"takeover-new-{death}.log", threads=1, poll=poll))
                gaps.append(_wait_polled(engine, source, killed_at, killed, timeout=10 * poll + 30))
                print(f"  death {death + 1}/{deaths}: polled again after {gaps[-1]:.1f} s", file=sys.stderr)
        finally:
            stop(procs)
            engine.dispose()
    return gaps


def _wait_holder(engine: Engine, lease: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            holder = cluster.lease_holder(conn, lease, datetime.now(UTC))
        if holder is not None:
            return holder
        time.sleep(0.2)
    raise SystemExit(f"nobody took {lease} within {timeout:.0f} s")


def _wait_polled(engine: Engine, source: str, since: datetime, started: float, timeout: float) -> float:
    while time.monotonic() - started < timeout:
        with engine.connect() as conn:
            health = health_repo.get(conn, source)
        if health is not None and health.last_success_at is not None and health.last_success_at > since:
            return time.monotonic() - started
        time.sleep(0.1)
    raise SystemExit(f"{source} not polled again within {timeout:.0f} s of its worker's death")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default=os.environ.get("MONITOR_TEST_PG_URL"),
                        help="administrator URL of a PostgreSQL server (default: $MONITOR_TEST_PG_URL)")
    parser.add_argument("--mentions", type=int, default=20_000)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2, help="model threads in all")
    parser.add_argument("--deaths", type=int, default=5)
    parser.add_argument("--poll", type=float, default=5.0, help="poll interval of the take-over run, seconds")
    args = parser.parse_args()
    if not args.pg_url:
        parser.error("needs a PostgreSQL server: --pg-url or MONITOR_TEST_PG_URL")
    with tempfile.TemporaryDirectory(prefix="monitor-scale-") as tmp:
        workdir = Path(tmp)
        rows = []
        for workers in (1, 2):
            seconds, scored, stored = drain(args.pg_url, args.mentions, workers, args.cores, workdir)
            rows.append((workers, seconds, scored, stored))
        gaps = take_over(args.pg_url, args.deaths, args.poll, workdir)
    print(f"\nDrain {args.mentions:,} stored mentions (score, rules, escalate, deliver), {args.cores} cores in all:")
    print(f"{'workers':>8} {'seconds':>9} {'posts/s':>9} {'stored':>8} {'scored':>8}")
    for workers, seconds, scored, stored in rows:
        print(f"{workers:>8} {seconds:>9.1f} {args.mentions / seconds:>9.1f} {stored:>8,} {scored:>8,}")
    print(f"two workers vs one: {rows[0][1] / rows[1][1]:.2f}x (the same cores; the reference is 1 worker)")
    print(f"\nTake-over after SIGKILL of the source's worker, poll interval {args.poll:g} s, {len(gaps)} deaths:")
    print(f"  mean {statistics.mean(gaps):.1f} s, max {max(gaps):.1f} s; promised: within two poll intervals "
          f"({2 * args.poll:g} s)")


if __name__ == "__main__":
    main()
