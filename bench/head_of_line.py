"""Head-of-line blocking: time from a triggering post being stored to its alert being delivered,
with ``--posts`` long posts (``--size`` characters each) queued ahead of it.

    python bench/head_of_line.py                      # 1,000 posts of ~5 KB, the offline model
    python bench/head_of_line.py --old 20             # also the old single pass, on 20 long posts

The live worker (``monitor.worker.Worker``) runs as ``monitor run`` runs it, on
the wall clock with its scoring thread and its alerting job, on a fresh SQLite
store with the repository's rules and an always-open escalation policy; the
alert goes to the console notifier, whose first line is the moment it counts.
The long posts are stored first and the worker is given a moment to get busy
on them, then the trigger is stored through a poll, as a source would. Target:
under 10 s. ``--old N`` times ``Pipeline.run_pass`` (the single pass every
stage used to wait in) on N long posts and the trigger, oldest first, as
before; issue 20 measured 74 s for 120 posts that way.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.app import build_pipeline
from monitor.classify import SentimentModel, load_model
from monitor.clock import SystemClock
from monitor.models import Mention
from monitor.notify import ConsoleNotifier
from monitor.pipeline import Pipeline
from monitor.settings import Settings
from monitor.sources.base import PollResult
from monitor.store import mentions as mention_repo
from monitor.store import transaction
from monitor.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 10.0
ESCALATION = """
timezone: Europe/Brussels
business_hours: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
grouping: {window: 1h}
responders:
  sofie: {name: Sofie, slack: U0SOFIE01}
policies:
  - name: normal
    after_hours: page
    levels:
      - {notify: [sofie], channel: "#alerts", ack_within: 15m}
"""
FILLER = ("Lumora delivered my parcel on time and the courier was friendly. The tracking page showed every "
          "step and the box arrived in good shape. I compared prices with other shops this week and ")
TRIGGER = "Lumora is a scam and a fraud, they took my money and never answered. I am furious!"


class Stamped(io.StringIO):
    """The console notifier's stream: notes when the first alert line arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.first_alert = threading.Event()
        self.at = 0.0

    def write(self, text: str) -> int:
        if not self.first_alert.is_set() and text.strip():
            self.at = time.monotonic()
            self.first_alert.set()
        return super().write(text)


class Once:
    """One poll that returns the trigger post (what a source would do)."""

    name = "x:Lumora"

    def __init__(self, mention: Mention) -> None:
        self.mention = mention

    def poll(self, cursor: str | None) -> PollResult:
        return PollResult(mentions=[self.mention], next_cursor="1")


def long_posts(n: int, size: int, now: datetime) -> list[Mention]:
    text = (FILLER * (size // len(FILLER) + 1))[:size]
    # The number first: the model reads the first 2,000 characters and embeds identical texts once.
    return [Mention(source="x", source_id=f"long-{i}", brand="Lumora", text=f"#{i} {text}", author_handle=f"u{i}",
                    created_at=now - timedelta(minutes=30) + timedelta(seconds=i), author_reach=10)
            for i in range(n)]


def trigger(now: datetime) -> Mention:
    return Mention(source="x", source_id="trigger", brand="Lumora", text=TRIGGER, author_handle="angry",
                   created_at=now, author_reach=50_000)


def setup(folder: Path, model: SentimentModel, stream: io.StringIO) -> Pipeline:
    (folder / "escalation.yaml").write_text(ESCALATION, encoding="utf-8")
    settings = Settings(db_url=f"sqlite:///{folder / 'store.db'}", rules_dir=ROOT / "rules",
                        escalation_file=folder / "escalation.yaml")
    return build_pipeline(settings, notifier=ConsoleNotifier(stream), clock=SystemClock(), model=model)


def store(pipeline: Pipeline, batch: list[Mention]) -> None:
    with transaction(pipeline.engine) as conn:
        mention_repo.store_batch(conn, "backlog", batch, None, datetime.now(UTC))


def live(n: int, size: int, model: SentimentModel, folder: Path, timeout: float) -> tuple[float | None, int]:
    """Seconds from the trigger's poll to its alert with the live worker; and how many posts were scored."""
    stream = Stamped()
    pipeline = setup(folder, model, stream)
    store(pipeline, long_posts(n, size, datetime.now(UTC)))
    worker = Worker(pipeline, [], timezone="Europe/Brussels", poll_every=timedelta(seconds=60),
                    pass_every=timedelta(seconds=15))
    worker.start()
    try:
        time.sleep(2.0)  # the scoring thread is now busy on the backlog
        started = time.monotonic()
        pipeline.poll(Once(trigger(datetime.now(UTC))))
        worker._wake.set()  # what the poll job does after storing (Worker._poll)
        delivered = stream.first_alert.wait(timeout)
        elapsed = stream.at - started if delivered else None
    finally:
        clean = worker.stop(timeout=30)
    with transaction(pipeline.engine) as conn:
        _, unscored = mention_repo.backlog(conn)
    if not clean:
        print("warning: the worker did not stop within 30 s", file=sys.stderr)
    return elapsed, n + 1 - unscored


def old(n: int, size: int, model: SentimentModel, folder: Path) -> float | None:
    """The old behaviour: everything in one pass, oldest first; the alert comes at its end."""
    stream = Stamped()
    pipeline = setup(folder, model, stream)
    now = datetime.now(UTC)
    store(pipeline, long_posts(n, size, now))
    started = time.monotonic()
    pipeline.poll(Once(trigger(now)))
    pipeline.run_pass()
    return stream.at - started if stream.first_alert.is_set() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--size", type=int, default=5000, help="characters per long post")
    parser.add_argument("--model", default="default", help="'default' (offline) or a model id")
    parser.add_argument("--old", type=int, default=0, metavar="N", help="also time the old single pass on N posts")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    model = load_model(args.model)
    model.predict(["warm up"])  # loading is start-up time, not latency
    print(f"{args.posts} posts of {args.size} characters queued ahead of the trigger; model {model.name}; "
          f"{os.cpu_count()} CPU(s)")
    with tempfile.TemporaryDirectory(prefix="head-of-line-") as tmp:
        elapsed, scored = live(args.posts, args.size, model, Path(tmp), args.timeout)
        shown = f"{elapsed:.1f} s" if elapsed is not None else f"no alert within {args.timeout:.0f} s"
        print(f"stored -> alert delivered: {shown}   (target < {TARGET_S:.0f} s; "
              f"{scored - 1} of the {args.posts} long posts scored meanwhile)")
    if args.old:
        with tempfile.TemporaryDirectory(prefix="head-of-line-old-") as tmp:
            before = old(args.old, args.size, model, Path(tmp))
        shown = f"{before:.1f} s" if before is not None else "no alert"
        print(f"old single pass, {args.old} posts ahead: {shown}  "
              f"(~{(before or 0) / max(1, args.old) * args.posts:.0f} s for {args.posts} at that rate)")
    else:
        print("old single pass: 74 s with 120 posts ahead (issue 20); run with --old N to measure here")


if __name__ == "__main__":
    main()
