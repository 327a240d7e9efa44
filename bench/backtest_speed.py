"""How long does ``monitor backtest`` take over 1,000,000 stored mentions? (target: < 60 s on 2 cores)

    python bench/backtest_speed.py [--mentions 1000000] [--db /tmp/bench-backtest.db] [--reuse]

Prints the time to stream the mentions from the store, the time to run the
shipped rules (with incident grouping), and the peak memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._synthetic import build
from monitor.detect import load_rules
from monitor.detect.backtest import backtest
from monitor.escalation.schema import load_escalation
from monitor.store import create_store_engine
from monitor.store.mentions import iter_since

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/bench-backtest.db"))
    parser.add_argument("--reuse", action="store_true", help="keep an existing store of the right size")
    args = parser.parse_args()
    if not (args.reuse and args.db.exists()):
        build(args.db, args.mentions)
    rules = load_rules(ROOT / "rules").rules
    config = load_escalation(ROOT / "escalation.yaml")
    engine = create_store_engine(f"sqlite:///{args.db}")
    t0 = time.perf_counter()
    with engine.connect() as conn:
        items = list(iter_since(conn, datetime(2000, 1, 1, tzinfo=UTC)))
    t_load = time.perf_counter() - t0

    def progress(n: int) -> None:
        print(f"\r  rules: {n:,}/{len(items):,}", end="", file=sys.stderr, flush=True)

    t1 = time.perf_counter()
    result = backtest(rules, items, grouping_window=config.grouping.window, timezone=config.timezone,
                      progress=progress)
    t_rules = time.perf_counter() - t1
    print(file=sys.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"mentions          {result.mentions:>12,}")
    print(f"load from store   {t_load:>11.1f} s")
    print(f"rules + grouping  {t_rules:>11.1f} s  ({result.mentions / t_rules:,.0f} mentions/s)")
    print(f"total             {t_load + t_rules:>11.1f} s   (target < 60 s)")
    print(f"peak memory       {peak_mb:>11.0f} MB")
    print(f"alerts            {result.total_incidents:>12,}  over {result.days} days")
    for name, r in sorted(result.rules.items()):
        print(f"  {name:<22} signals {r.signals:>7,}  incidents {r.incidents:>6,}  suppressed {r.suppressed:>7,}")


if __name__ == "__main__":
    main()
