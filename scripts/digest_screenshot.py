"""Render the digest of a synthetic week in headless Chromium: desktop and phone screenshots, and a print PDF.

    python scripts/digest_screenshot.py                       # -> /tmp/digest_shots/
    python scripts/digest_screenshot.py --out /tmp/shots --mentions 60000 --chromium /usr/bin/chromium
    python scripts/digest_screenshot.py --demo                # the sample week, as `monitor demo` runs it
    python scripts/digest_screenshot.py --db /tmp/digest-bench.db --name 1m   # a store bench/digest_speed.py kept

The store is built like ``bench/digest_speed.py`` builds it (real migrations,
real escalation engine), only smaller; ``--db`` reuses one it kept (``--keep``:
the 1M-mention week without building it again); ``--demo`` runs the bundled
sample feed through ``monitor demo`` (the offline model: a few minutes). Exits non-zero when Chromium fails,
a screenshot is missing, or Chromium logs a console/JavaScript error for the
page (the report has no script, so any is a regression). Chromium on Debian:
``apt-get install -y chromium``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.digest_speed import LAST_WEEK, TZ, build_store  # noqa: E402

CONSOLE_ERROR = re.compile(r"CONSOLE|Uncaught|SyntaxError|ReferenceError|TypeError", re.IGNORECASE)
SIZES = {"desktop": (1280, 2400), "phone": (390, 2400)}


def chromium_args(chromium: str, profile: Path) -> list[str]:
    return [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}", "--hide-scrollbars"]


def run_chromium(args: list[str], what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, check=False)
    errors = [line for line in done.stderr.splitlines() if CONSOLE_ERROR.search(line)]
    if done.returncode != 0:
        raise SystemExit(f"chromium failed for {what} (exit {done.returncode}):\n{done.stderr[-3000:]}")
    if errors:
        raise SystemExit(f"chromium logged console errors for {what}:\n" + "\n".join(errors))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("/tmp/digest_shots"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--mentions", type=int, default=40_000)
    ap.add_argument("--incidents", type=int, default=60)
    ap.add_argument("--week", default=LAST_WEEK)
    ap.add_argument("--db", type=Path, help="use this existing store instead of building one")
    ap.add_argument("--demo", action="store_true", help="the sample week from `monitor demo`")
    ap.add_argument("--name", default="digest", help="file name prefix of the screenshots")
    ap.add_argument("--locale", default=None, help="nl_BE, fr_BE or en (default: the escalation file's)")
    args = ap.parse_args()
    if not Path(args.chromium).exists():
        raise SystemExit(f"{args.chromium} not found (Debian: apt-get install -y chromium)")

    from monitor.digest.html import render_html
    from monitor.digest.job import make_digest, report_name, write_report
    from monitor.digest.week import IsoWeek
    from monitor.escalation import EscalationConfig
    from monitor.store import create_store_engine
    from monitor.yamlconfig import parse

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="digest-shot-") as work:
        db = args.db or Path(work) / "synthetic.db"
        week = IsoWeek.parse(args.week, TZ)
        if args.demo:
            from monitor.cli import SAMPLE_FEED
            from monitor.demo import feed_bounds

            subprocess.run([sys.executable, "-m", "monitor.cli", "demo", "--keep-db", str(db)], cwd=REPO,
                           check=True, stdout=subprocess.DEVNULL)
            week = IsoWeek.containing(feed_bounds(SAMPLE_FEED)[0], TZ)
        elif args.db is None:
            build_store(db, n_mentions=args.mentions, n_incidents=args.incidents, last_week=args.week)
        engine = create_store_engine(f"sqlite:///{db}")
        digest = make_digest(engine, parse(EscalationConfig, REPO / "escalation.yaml"), week)
        engine.dispose()
        page = write_report(render_html(digest, args.locale), args.out / report_name(digest.week))
        produced = [page]
        for name, (width, height) in SIZES.items():
            png = args.out / f"{args.name}-{name}.png"
            png.unlink(missing_ok=True)
            run_chromium([*chromium_args(args.chromium, Path(work) / f"profile-{name}"),
                          f"--window-size={width},{height}", f"--screenshot={png}", page.resolve().as_uri()], name)
            if not png.exists() or png.stat().st_size == 0:
                raise SystemExit(f"no screenshot at {png}")
            produced.append(png)
        pdf = args.out / f"{args.name}-print.pdf"
        run_chromium([*chromium_args(args.chromium, Path(work) / "profile-print"), "--no-pdf-header-footer",
                      f"--print-to-pdf={pdf}", page.resolve().as_uri()], "print")
        produced.append(pdf)
    for path in produced:
        print(path)


if __name__ == "__main__":
    main()
