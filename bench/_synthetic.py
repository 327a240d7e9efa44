"""Builds a large synthetic store (mentions + sentiment scores) quickly, for benchmarks.

Rows go in through the real schema (Alembic-migrated) with raw executemany in
big batches; the values are random but shaped like a brand's traffic: a
daily rhythm, a few storms, most authors with a small audience.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from monitor.store import create_store_engine, migrate

WORDS = ("service", "factuur", "facture", "app", "prijs", "prix", "panne", "storing", "bill", "support")


def build(path: Path, n: int, *, days: int = 35, brands: int = 3, seed: int = 7,
          start: datetime = datetime(2026, 10, 19, tzinfo=UTC)) -> None:
    if path.exists():
        path.unlink()
    engine = create_store_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, days * 86400, size=n))
    # A few storms: 0.2 % of posts squeezed into 40-minute windows, strongly negative.
    storm = rng.random(n) < 0.002
    neg = np.where(storm, rng.beta(8, 2, n), rng.beta(1.2, 4, n))
    pos = (1 - neg) * rng.random(n)
    neu = 1 - neg - pos
    reach = rng.lognormal(5, 1.6, n).astype(np.int64)
    engagement = rng.poisson(3, n)
    brand = rng.integers(0, brands, n)
    sources = np.array(["x", "reddit", "news"])[rng.choice(3, n, p=[0.7, 0.25, 0.05])]
    lang = np.array(["nl", "fr", "en"])[rng.choice(3, n, p=[0.45, 0.35, 0.2])]
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    t0 = time.perf_counter()
    batch = 50_000
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        rows = []
        scores = []
        for i in range(lo, hi):
            created = (start + timedelta(seconds=int(seconds[i]))).strftime("%Y-%m-%d %H:%M:%S.000000")
            text = f"Brand{brand[i]} {WORDS[i % len(WORDS)]} post {i}"
            rows.append((i + 1, str(sources[i]), str(i), f"Brand{brand[i]}", None, f"user{i % 50000}",
                         int(reach[i]), int(engagement[i]), text, f"{i:064x}", str(lang[i]), None, created, created,
                         created))
            scores.append((i + 1, "synthetic", "1", float(neg[i]), float(neu[i]), float(pos[i]), created))
        con.executemany("INSERT INTO mentions (id, source, source_id, brand, url, author_handle, author_reach, "
                        "engagement, text, text_hash, language, conversation_id, created_at, stored_at, "
                        "detected_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        con.executemany("INSERT INTO sentiments (mention_id, model, model_version, negative, neutral, positive, "
                        "scored_at) VALUES (?,?,?,?,?,?,?)", scores)
        con.commit()
        print(f"\r  building store: {hi:,}/{n:,} mentions ({time.perf_counter() - t0:.0f} s)", end="",
              file=sys.stderr, flush=True)
    print(file=sys.stderr)
    con.close()
