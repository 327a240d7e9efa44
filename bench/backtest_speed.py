"""How long does a backtest take over 1,000,000 stored mentions? (targets: < 10 s, < 300 MB on 2 cores)

    python bench/backtest_speed.py [--mentions 1000000] [--db /tmp/bench-backtest.db] [--reuse]

Streams the mentions from the store into the shipped rules (with incident
grouping), as ``backtest`` reads them, and prints the wall and CPU time of
the whole pass, the peak memory of the process and the load average (the
machine is shared: CPU time is the steadier figure).
"""

from __future__ import annotations

import argparse
import os
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

    def progress(n: int) -> None:
        print(f"\r  mentions read and run: {n:,}", end="", file=sys.stderr, flush=True)

    # Streamed: the store is read while the rules run (a list of a million StoredMention is a gigabyte).
    t0, c0 = time.perf_counter(), time.process_time()
    with engine.connect() as conn:
        result = backtest(rules, iter_since(conn, datetime(2000, 1, 1, tzinfo=UTC)),
                          grouping_window=config.grouping.window, timezone=config.timezone, progress=progress)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(file=sys.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"mentions          {result.mentions:>12,}")
    print(f"read + rules      {total:>11.1f} s wall, {cpu:.1f} s CPU  ({result.mentions / total:,.0f} mentions/s)"
          "   (target < 10 s)")
    print(f"peak memory       {peak_mb:>11.0f} MB   (target < 300 MB)")
    print(f"load average      {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"alerts            {result.total_incidents:>12,}  over {result.days} days")
    for name, r in sorted(result.rules.items()):
        print(f"  {name:<22} signals {r.signals:>7,}  incidents {r.incidents:>6,}  suppressed {r.suppressed:>7,}")


if __name__ == "__main__":
    main()
