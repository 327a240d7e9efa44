"""The weekly job: build last week's digest, write the HTML report, post the summary.

The worker calls ``run_weekly_digest`` from an APScheduler cron trigger in the
configured zone (``schedule_weekly_digest``: Monday 09:00 local by default),
so "last week" and "Monday morning" mean the PR team's, never UTC's or the
container's. ``now`` is passed in: the job itself reads no clock, which is
what makes it testable and its output reproducible.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine

from monitor.clock import Clock
from monitor.escalation.schema import EscalationConfig
from monitor.membership import PeriodClaims, schedule_once_per_period

from .figures import build_digest
from .html import render_html
from .model import DEFAULT_REACH_THRESHOLD, Digest
from .slack import ATTACHED, DigestPoster, ReportUploader, build_message, report_link
from .week import IsoWeek

log = logging.getLogger(__name__)
DEFAULT_OUT_DIR = Path("digests")
DIGEST_JOB = "weekly-digest"  # its name in the store's period claims


@dataclass(frozen=True, slots=True)
class DigestRun:
    week: IsoWeek
    report: Path
    posted_ref: str | None
    digest: Digest


def report_name(week: IsoWeek) -> str:
    return f"digest-{week.label}.html"


def write_report(html: str, path: Path) -> Path:
    """Write atomically: a reader (or a file share sync) never sees half a report.

    The temporary file is created with ``open(..., "x")``, not ``mkstemp``, so
    the report gets the usual permissions (umask), not owner-only ones.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("x", encoding="utf-8", newline="\n") as fh:
            fh.write(html)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def make_digest(engine: Engine, config: EscalationConfig | None, week: IsoWeek, *,
                reach_threshold: int = DEFAULT_REACH_THRESHOLD) -> Digest:
    """Read every figure from one snapshot of the store, so totals and details agree.

    PostgreSQL gets a REPEATABLE READ transaction. On SQLite, pysqlite never
    begins a transaction for SELECTs, so an explicit ``BEGIN`` holds one read
    snapshot for all the queries (WAL: the worker keeps writing meanwhile).
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        else:
            conn.execution_options(isolation_level="REPEATABLE READ")
        try:
            return build_digest(conn, week, config, reach_threshold=reach_threshold)
        finally:
            conn.rollback()


def run_weekly_digest(engine: Engine, escalation_config: EscalationConfig | None, notifier_or_poster: DigestPoster,
                      now: datetime, *, timezone: str | None = None, out_dir: Path = DEFAULT_OUT_DIR,
                      reach_threshold: int = DEFAULT_REACH_THRESHOLD,
                      report_location: str | None = None) -> DigestRun:
    """Digest of the last complete week at ``now``: write ``out_dir/digest-<week>.html``, then post.

    ``timezone`` defaults to the configured one (``Settings().timezone``).
    ``report_location`` is the URL the message links to; by default
    ``MONITOR_DIGEST_URL``/<file>, and without that setting a poster that can
    (Slack) uploads the report into the message's thread. Never a local path.
    """
    if timezone is None:
        from monitor.settings import Settings

        timezone = Settings().timezone
    week = IsoWeek.last_complete(now, timezone)
    digest = make_digest(engine, escalation_config, week, reach_threshold=reach_threshold)
    path = write_report(render_html(digest), out_dir / report_name(week))
    if report_location is None:
        from monitor.settings import Settings

        report_location = report_link(Settings().digest_url, path.name)
    upload = report_location is None and isinstance(notifier_or_poster, ReportUploader)
    message = build_message(digest, ATTACHED if upload else report_location)
    ref = notifier_or_poster.post(message)
    if upload:
        assert isinstance(notifier_or_poster, ReportUploader)
        notifier_or_poster.upload(path, ref)
    log.info("weekly digest %s: %s written, posted (%s)", week.label, path, ref or "no reference")
    return DigestRun(week=week, report=path, posted_ref=ref, digest=digest)


def weekly_trigger(timezone: str, *, day_of_week: str = "mon", hour: int = 9, minute: int = 0) -> CronTrigger:
    """Monday 09:00 in the configured zone: the same wall-clock time in winter and summer."""
    return CronTrigger(day_of_week=day_of_week, hour=hour, minute=minute, timezone=ZoneInfo(timezone))


def schedule_weekly_digest(scheduler: BaseScheduler, engine: Engine,
                           escalation_config: EscalationConfig | Callable[[], EscalationConfig] | None,
                           poster: DigestPoster, clock: Clock, *, timezone: str,
                           out_dir: Path = DEFAULT_OUT_DIR, reach_threshold: int = DEFAULT_REACH_THRESHOLD,
                           day_of_week: str = "mon", hour: int = 9, minute: int = 0,
                           periods: PeriodClaims | None = None) -> Job:
    """Add the weekly job to a worker's scheduler.

    A grace of an hour: a worker restarted at 09:20 still posts Monday's digest;
    one restarted in the afternoon skips it rather than posting a stale "good
    morning" (``monitor digest --post`` remains). ``periods``, several workers:
    ``Membership``; the week is posted by one worker, and again by another if
    that one died before it finished (``schedule_once_per_period``).
    """
    def run(now: datetime) -> DigestRun:
        # A callable gives the procedure in force on Monday morning (escalation.yaml may have been reloaded).
        config = escalation_config() if callable(escalation_config) else escalation_config
        return run_weekly_digest(engine, config, poster, now, timezone=timezone,
                                 out_dir=out_dir, reach_threshold=reach_threshold)

    return schedule_once_per_period(
        scheduler, job_id=DIGEST_JOB, name="weekly digest",
        trigger=weekly_trigger(timezone, day_of_week=day_of_week, hour=hour, minute=minute),
        period_of=lambda now: IsoWeek.last_complete(now, timezone).label, run=run, clock=clock, periods=periods,
        grace=timedelta(hours=1))
