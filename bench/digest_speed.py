"""How long the weekly digest takes on a big store, and how much memory it needs.

    python bench/digest_speed.py                       # 1,000,000 mentions over 5 weeks, 300 incidents
    python bench/digest_speed.py --mentions 200000 --keep /tmp/digest-bench.db
    python bench/digest_speed.py --db /tmp/digest-bench.db --reuse     # time an existing store again

Builds a SQLite store through the real migrations: mentions and sentiments
with ``INSERT ... SELECT`` over a recursive CTE (one statement per day,
progress printed), incidents through the real ``EscalationEngine`` with
acknowledgements, escalations, false positives and resolutions at chosen
times. Then the digest of the last of the five weeks (the week compared with
the four before it: every stored mention is aggregated) is built, rendered to
HTML and to Slack blocks in a fresh child process, twice, each reporting wall
time and peak RSS (``VmHWM``: it sees SQLite's memory, which ``tracemalloc``
does not, and unlike ``ru_maxrss`` it is not inherited from the parent that
built the store; the Python-heap peak is printed as well).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from monitor.digest.week import IsoWeek  # noqa: E402

TZ = "Europe/Brussels"
LAST_WEEK = "2026-W47"
BRANDS = ("Lumora", "Verdo")
RULES = (("negative-high-reach", "critical"), ("fraud-or-boycott", "critical"), ("negative-engagement", "warning"),
         ("negative-burst", "warning"), ("negative-spike", "warning"))
RESPONDERS = ("sofie", "karim", "an")
WEEKDAY_WEIGHT = (1.15, 1.1, 1.05, 1.0, 0.95, 0.7, 0.6)

MENTIONS_SQL = """
INSERT INTO mentions (id, source, source_id, brand, url, author_handle, author_reach, engagement, text, text_hash,
                      language, conversation_id, created_at, stored_at, detected_at)
WITH RECURSIVE seq(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM seq WHERE k + 1 < :n),
rows AS (
  SELECT :first + k AS id,
         CASE WHEN (:first + k) * 13 % 100 < 55 THEN 'x' WHEN (:first + k) * 13 % 100 < 85 THEN 'reddit'
              ELSE 'news' END AS source,
         CASE WHEN (:first + k) * 7 % 4 = 0 THEN 'Verdo' ELSE 'Lumora' END AS brand,
         ((:first + k) * 7919) % 60000 AS author,
         -- 07:00-24:00 local, spread by a multiplicative hash: a realistic day, not evenly spaced ids
         :day_start + 25200 + ((k * 104729) % 61200) AS at
  FROM seq
)
SELECT id, source, 'bench-' || id, brand,
       CASE source WHEN 'x' THEN 'https://x.com/user' || author || '/status/' || id
                   WHEN 'reddit' THEN 'https://www.reddit.com/r/belgium/comments/' || id
                   ELSE 'https://news.example/article/' || id END,
       CASE WHEN source = 'news' THEN NULL ELSE 'user' || author END,
       CASE WHEN author < 60 THEN 10000 + author * 1500 ELSE author % 5000 END,
       id % 50,
       'Synthetic post ' || id || ' about ' || brand || ': the bill, the app and the helpdesk, as usual.',
       printf('%064x', id), 'nl', NULL,
       strftime('%Y-%m-%d %H:%M:%S', at, 'unixepoch') || '.000000',
       strftime('%Y-%m-%d %H:%M:%S', at, 'unixepoch') || '.000000',
       strftime('%Y-%m-%d %H:%M:%S', at, 'unixepoch') || '.000000'
FROM rows
"""

SENTIMENTS_SQL = """
INSERT INTO sentiments (mention_id, model, model_version, negative, neutral, positive, scored_at)
SELECT id, 'bench-model', '1', neg, 1.0 - neg - pos, pos, created_at
FROM (
  SELECT id, created_at, u, v,
         CASE WHEN u < :p_neg THEN 0.5 + 0.45 * v WHEN u < :p_neg + 0.3 THEN 0.1 * v ELSE 0.1 + 0.3 * v END AS neg,
         CASE WHEN u < :p_neg THEN 0.05 * v WHEN u < :p_neg + 0.3 THEN 0.6 + 0.3 * v ELSE 0.1 * v END AS pos
  FROM (SELECT id, created_at, ((id * 2654435761) % 1000) / 1000.0 AS u, ((id * 40503) % 1000) / 1000.0 AS v
        FROM mentions WHERE id BETWEEN :lo AND :hi AND id % 199 != 0)
)
"""


def peak_rss_mib() -> float:
    """This process's RSS high-water mark: ``VmHWM`` (reset by exec), else ``ru_maxrss``."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class Plan:
    day: date
    start: datetime  # local midnight as UTC
    count: int
    negative_rate: float


def day_plan(n_mentions: int, weeks: list[IsoWeek], rng: random.Random) -> list[Plan]:
    days = [(d, w.day_bounds[i]) for w in weeks for i, d in enumerate(w.days)]
    weights = [WEEKDAY_WEIGHT[d.weekday()] * rng.uniform(0.85, 1.15) * (2.2 if rng.random() < 0.06 else 1.0)
               for d, _ in days]
    total = sum(weights)
    counts = [int(n_mentions * w / total) for w in weights]
    counts[-1] += n_mentions - sum(counts)
    return [Plan(d, start, c, min(0.6, 0.18 + (0.25 if w > 1.6 else 0.0) + rng.uniform(-0.05, 0.05)))
            for (d, start), c, w in zip(days, counts, weights, strict=True)]


def build_mentions(path: Path, plan: list[Plan]) -> list[tuple[int, int]]:
    """Returns each day's (first id, last id); prints progress per day."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-200000")
    ranges = []
    first = 1
    total = sum(p.count for p in plan)
    done = 0
    started = time.perf_counter()
    for p in plan:
        with db:
            db.execute(MENTIONS_SQL, {"n": p.count, "first": first, "day_start": int(p.start.timestamp())})
            db.execute(SENTIMENTS_SQL, {"lo": first, "hi": first + p.count - 1, "p_neg": p.negative_rate})
        ranges.append((first, first + p.count - 1))
        first += p.count
        done += p.count
        rate = done / max(time.perf_counter() - started, 1e-9)
        print(f"\r  mentions {done:>9,} / {total:,}  ({rate:,.0f}/s)", end="", flush=True)
    print()
    db.execute("ANALYZE")
    db.close()
    return ranges


def build_incidents(url: str, plan: list[Plan], ranges: list[tuple[int, int]], n_incidents: int,
                    rng: random.Random) -> int:
    """Incidents through the real engine, actions replayed in time order with the engine's own ticks."""
    from sqlalchemy import func, select

    from monitor.escalation import EscalationConfig, EscalationEngine
    from monitor.models import IncidentState, Severity, Signal
    from monitor.store import create_store_engine, transaction
    from monitor.store.tables import incidents
    from monitor.yamlconfig import parse

    config = parse(EscalationConfig, REPO / "escalation.yaml")
    esc = EscalationEngine(config)
    engine = create_store_engine(url)
    actions: list[tuple[datetime, int, str, dict[str, Any]]] = []
    for n in range(n_incidents):
        k = rng.randrange(len(plan))
        day, (lo, hi) = plan[k], ranges[k]
        at = day.start + timedelta(hours=rng.uniform(7.5, 23.5))
        mid = rng.randint(lo, hi)
        brand = "Verdo" if mid * 7 % 4 == 0 else "Lumora"
        rule, severity = rng.choice(RULES)
        ids = tuple(sorted({mid, *(rng.randint(lo, hi) for _ in range(rng.randint(0, 4)))}))
        sig = Signal(rule=rule, severity=Severity(severity), brand=brand, group_key=f"{brand}:{n}",
                     reason=f"synthetic {rule}", fired_at=at, mention_ids=ids, kind="mention")
        actions.append((at, n, "open", {"signal": sig}))
        if rng.random() < 0.3:
            extra = Signal(rule=rule, severity=Severity(severity), brand=brand, group_key=f"{brand}:{n}",
                           reason="more posts", fired_at=at + timedelta(minutes=20), mention_ids=(rng.randint(lo, hi),),
                           kind="mention")
            actions.append((at + timedelta(minutes=20), n, "signal", {"signal": extra}))
        fate = rng.random()
        if fate < 0.9:  # acknowledged, sometimes late enough to escalate
            delay = timedelta(minutes=min(240.0, rng.lognormvariate(2.6, 0.8)))
            who = rng.choice(RESPONDERS)
            actions.append((at + delay, n, "ack", {"who": who}))
            fp = rng.random() < (0.45 if rule == "negative-engagement" else 0.12)
            closing = at + delay + timedelta(minutes=rng.uniform(20, 300))
            note = rng.choice(("answered publicly", "moved to DM", "statement posted", "customer called back"))
            actions.append((closing, n, "resolve", {"who": who, "fp": fp,
                                                    "note": "not about us" if fp else note}))
    actions.sort(key=lambda a: (a[0], a[1]))
    real: dict[int, int] = {}
    for when, n, kind, data in actions:
        with transaction(engine) as conn:
            esc.tick(conn, when)
            if kind in ("open", "signal"):
                opened = esc.ingest(conn, [data["signal"]], when)
                if opened:
                    real[n] = opened[0]
            elif n in real and kind == "ack":
                esc.acknowledge(conn, real[n], data["who"], when)
            elif n in real and kind == "resolve":
                esc.resolve(conn, real[n], data["who"], when, false_positive=data["fp"], note=data["note"])
    with transaction(engine) as conn:
        esc.tick(conn, actions[-1][0] + timedelta(days=3))
        count = conn.execute(select(func.count()).select_from(incidents)).scalar_one()
        fps = conn.execute(select(func.count()).select_from(incidents).where(
            incidents.c.state == IncidentState.FALSE_POSITIVE.value)).scalar_one()
    engine.dispose()
    print(f"  incidents {count} ({fps} false positives)")
    return int(count)


def build_store(path: Path, *, n_mentions: int, n_incidents: int, last_week: str = LAST_WEEK, weeks: int = 5,
                seed: int = 47) -> None:
    """A store with ``weeks`` weeks of synthetic data ending with ``last_week`` (also used for screenshots)."""
    from monitor.store import create_store_engine, migrate

    url = f"sqlite:///{path}"
    engine = create_store_engine(url)
    migrate(engine)
    engine.dispose()
    end = IsoWeek.parse(last_week, TZ)
    span = [end.shifted(-k) for k in range(weeks - 1, -1, -1)]
    rng = random.Random(seed)
    plan = day_plan(n_mentions, span, rng)
    ranges = build_mentions(path, plan)
    build_incidents(url, plan, ranges, n_incidents, rng)


def measure(path: Path, week: str) -> dict[str, float]:
    """Child-process side: one digest (figures + HTML + Slack blocks), timed, with peak memory."""
    import tracemalloc

    from monitor.digest.html import render_html
    from monitor.digest.job import make_digest
    from monitor.digest.slack import build_message
    from monitor.escalation import EscalationConfig
    from monitor.store import create_store_engine
    from monitor.yamlconfig import parse

    config = parse(EscalationConfig, REPO / "escalation.yaml")
    engine = create_store_engine(f"sqlite:///{path}")
    rss_before = peak_rss_mib()
    tracemalloc.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    digest = make_digest(engine, config, IsoWeek.parse(week, TZ))
    figures_s = time.perf_counter() - started
    html = render_html(digest)
    build_message(digest, "/tmp/report.html")
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds": seconds, "cpu_seconds": cpu, "figures_seconds": figures_s, "html_kib": len(html.encode()) / 1024,
            "peak_rss_mib": peak_rss_mib(),
            "rss_before_mib": rss_before, "python_peak_mib": py_peak / 2**20,
            "mentions_in_week": sum(b.volume for b in digest.brands),
            "mentions_compared": sum(t.volume for b in digest.brands for t in b.trend)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mentions", type=int, default=1_000_000)
    ap.add_argument("--incidents", type=int, default=300)
    ap.add_argument("--db", type=Path, help="store path (default: a temporary file)")
    ap.add_argument("--reuse", action="store_true", help="time an existing --db instead of building it")
    ap.add_argument("--keep", action="store_true", help="keep the store after the run")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--week", default=LAST_WEEK)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.week)))
        return

    tmp = None
    if args.db is None:
        tmp = Path(tempfile.mkdtemp(prefix="digest-bench-"))
        args.db = tmp / "bench.db"
    if not args.reuse:
        args.db.unlink(missing_ok=True)
        print(f"building {args.db}: {args.mentions:,} mentions over 5 weeks, {args.incidents} incidents")
        started = time.perf_counter()
        build_store(args.db, n_mentions=args.mentions, n_incidents=args.incidents, last_week=args.week)
        print(f"  built in {time.perf_counter() - started:.1f} s, {args.db.stat().st_size / 2**20:,.0f} MiB")
    for run in range(1, args.runs + 1):
        out = subprocess.run([sys.executable, __file__, "--measure", str(args.db), "--week", args.week],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout)
        print(f"digest {args.week} run {run}: {r['seconds']:.2f} s wall, {r['cpu_seconds']:.2f} s CPU (target < 2 s) "
              f"(figures {r['figures_seconds']:.2f} s), "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB (interpreter + imports {r['rss_before_mib']:.0f} MiB), "
              f"Python heap peak {r['python_peak_mib']:.1f} MiB; {r['mentions_in_week']:,} mentions in the week, "
              f"{r['mentions_compared']:,} aggregated with the previous 4; report {r['html_kib']:.0f} KiB")
    if tmp is not None and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    elif tmp is not None:
        print(f"kept {args.db}")


if __name__ == "__main__":
    main()
