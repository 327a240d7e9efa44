"""One poll of one source, with its health: skip, fetch, store, record.

``Pipeline.poll`` delegates here and gets back the source's own ``PollResult``
with what was stored added (``new``), or one saying it was skipped
(``ran=False``). The order matters:

1. read the cursor and the health row; a source deferred (rate limit, spent
   budget) is skipped without a request until the time it was given;
2. a source with a daily request budget gets what is left of it today;
3. ``source.poll`` runs outside any transaction (it may take seconds); an
   exception is caught and logged as one line, never a traceback;
4. the mentions, the cursor and the health row are written in one
   transaction, so ``monitor sources`` never disagrees with the store. A post
   the database refuses is quarantined (``store.quarantine``) and the rest of
   the batch stored; any other exception in this step rolls it back and counts
   as a failure of the source, like one of the API: a source is never blocked
   silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import Engine

from monitor.models import utc
from monitor.redact import describe
from monitor.sources.base import PollResult, Source
from monitor.store import arrivals as arrivals_repo
from monitor.store import health as health_repo
from monitor.store import mentions as mention_repo
from monitor.store import transaction

log = logging.getLogger(__name__)


@runtime_checkable
class Budgeted(Protocol):
    """A source that spends a metered allowance of requests per UTC day (X bills each read)."""

    @property
    def name(self) -> str: ...

    @property
    def daily_budget(self) -> int | None: ...

    def poll(self, cursor: str | None, *, requests_left: int | None = None) -> PollResult: ...


def next_utc_midnight(now: datetime) -> datetime:
    return datetime.combine(utc(now).date() + timedelta(days=1), time(0), tzinfo=now.tzinfo)


REQUEST_UNITS = {"youtube": "quota unit(s)"}  # what a source's "requests" count, where not requests


def request_unit(kind: str) -> str:
    """'request(s)', or what a platform's metered allowance counts instead (YouTube: quota units)."""
    return REQUEST_UNITS.get(kind, "request(s)")


def poll_source(engine: Engine, source: Source, now: Callable[[], datetime], *, force: bool = False) -> PollResult:
    """Poll ``source`` once and record what happened; never raises.

    Whatever goes wrong (the API, the store, a bug in a source) is one failure of
    this source, recorded in its health row when the store can still be written,
    so ``monitor sources``, ``/healthz`` and the source-health incident all see it.
    ``force`` (``monitor poll --force``) polls a deferred source anyway; a
    spent daily budget still holds.
    """
    try:
        return _poll_source(engine, source, now, force)
    except Exception as exc:
        error = describe(exc)
        try:
            with transaction(engine) as conn:
                recorded = health_repo.record_failure(conn, source.name, now(), error)
            streak = recorded.consecutive_failures
        except Exception as store_exc:  # the store itself is gone: the log line is all there is
            log.error("%s: poll failed: %s; and its failure could not be recorded: %s", source.name, error,
                      describe(store_exc))
            return PollResult(problem=error)
        log.error("%s: poll failed (%d in a row): %s", source.name, streak, error)
        return PollResult(problem=error)


def _poll_source(engine: Engine, source: Source, now: Callable[[], datetime], force: bool) -> PollResult:
    name = source.name
    started = now()
    with transaction(engine) as conn:
        cursor = mention_repo.get_cursor(conn, name)
        health = health_repo.get(conn, name) or health_repo.SourceHealth(name)

    if health.deferred_until is not None and started < health.deferred_until and not force:
        log.debug("%s: skipped until %s (%s)", name, f"{health.deferred_until:%H:%M:%S}", health.last_error)
        return PollResult(next_cursor=cursor, ran=False, deferred_until=health.deferred_until)

    try:
        if isinstance(source, Budgeted) and source.daily_budget is not None:
            left = health.budget_left(source.daily_budget, started.date())
            if not left:
                return _budget_spent(engine, name, cursor, source.daily_budget, started)
            result = source.poll(cursor, requests_left=left)
        else:
            result = source.poll(cursor)
    except Exception as exc:  # one failing API must never stop the worker or the other sources
        error = describe(exc)
        with transaction(engine) as conn:
            recorded = health_repo.record_failure(conn, name, now(), error)
        log.error("%s: poll failed (%d in a row): %s", name, recorded.consecutive_failures, error)
        return PollResult(next_cursor=cursor, problem=error)

    problem, deferred = result.problem, result.deferred_until
    finished = now()
    try:
        with transaction(engine) as conn:
            new = mention_repo.store_batch(conn, name, result.mentions, result.next_cursor, finished,
                                           quarantine_bad=True)
            arrivals_repo.record(conn, name, finished, fetched=len(result.mentions), new=new)
            if problem is None and deferred is None:
                health_repo.record_success(conn, name, finished, requests=result.requests)
            else:
                text = problem or f"deferred until {deferred:%Y-%m-%d %H:%M:%S} UTC"
                recorded = health_repo.record_failure(conn, name, finished, text, requests=result.requests,
                                                      deferred_until=deferred, blind=result.blind)
    except Exception as exc:  # the store step failed as a whole: the batch waits, the source is failing
        error = f"storing {len(result.mentions)} post(s) failed: {describe(exc)}"
        with transaction(engine) as conn:
            recorded = health_repo.record_failure(conn, name, now(), error, requests=result.requests)
        log.error("%s: %s (%d in a row)", name, error, recorded.consecutive_failures)
        return PollResult(next_cursor=cursor, problem=error, requests=result.requests)
    if problem is not None or deferred is not None:
        until = f"; next poll after {deferred:%Y-%m-%d %H:%M:%S} UTC" if deferred else ""
        log.warning("%s: poll incomplete (%d in a row): %s%s; %d fetched, %d new", name,
                    recorded.consecutive_failures, problem or "deferred", until, len(result.mentions), new)
    elif result.mentions or result.skipped:
        log.info("%s: %d fetched, %d new, %d skipped", name, len(result.mentions), new, len(result.skipped))
    return replace(result, new=new, ran=True)


def _budget_spent(engine: Engine, name: str, cursor: str | None, budget: int, now: datetime) -> PollResult:
    until = next_utc_midnight(now)
    problem = f"daily budget of {budget} request(s) used up; deferred until {until:%Y-%m-%d %H:%M} UTC"
    with transaction(engine) as conn:
        health_repo.record_failure(conn, name, now, problem, deferred_until=until)
    log.warning("%s: %s", name, problem)
    return PollResult(next_cursor=cursor, ran=False, problem=problem, deferred_until=until)
