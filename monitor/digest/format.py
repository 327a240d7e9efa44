"""Words and numbers shared by the HTML report and the Slack message, so both say the same thing."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.durations import format_duration
from monitor.sources.registry import display_name

from .model import MIN_REVIEWED, RuleFigures
from .week import month_name, weekday_name


def duration(delta: timedelta | None) -> str:
    """'45 s', '12 min', '3 h 05 min', '2 days 4 h'; '–' for nothing. Rounded to the minute past one minute."""
    if delta is None:
        return "–"
    seconds = round(delta.total_seconds())
    if seconds == 0:
        return "0 min"
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"


TEXT_REMOVED = "[text removed]"  # a quoted post whose text an erasure or the retention purge removed


# A ``timedelta`` printed by ``str()``: "1 day, 0:00:00", "2 days, 4:30:00", "0:45:00".
_RAW_TIMEDELTA = re.compile(r"\b(?:(\d+) days?, )?(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?(?![\d:])")


def human_text(text: str) -> str:
    """A stored sentence with any raw ``timedelta`` in human words.

    Older versions of the engine wrote "no new posts for 1 day, 0:00:00" into
    the timeline; those notes stay in the store, so the report rewrites them
    as it reads them ("1 day"). Clock times ("10:05") have no seconds and are
    left alone.
    """
    def words(found: re.Match[str]) -> str:
        days, h, m, sec = (int(g) if g else 0 for g in found.groups())
        return format_duration(timedelta(days=days, hours=h, minutes=m, seconds=sec))

    return _RAW_TIMEDELTA.sub(words, text)


def percent(share: float | None, digits: int = 0) -> str:
    return "–" if share is None else f"{share * 100:.{digits}f}%"


def precision(rule: RuleFigures) -> str:
    """'67%', or why there is no percentage: no incident, or too few reviewed to say."""
    if not rule.incidents:
        return "–"
    if rule.precision is None:
        return f"too few reviewed (under {MIN_REVIEWED})"
    return percent(rule.precision)


def not_reviewed(rule: RuleFigures) -> str:
    """'7 of 12 not reviewed': incidents that expired or closed themselves with nobody looking."""
    if not rule.incidents:
        return "–"
    if not rule.unreviewed:
        return "all reviewed"
    return f"{rule.unreviewed} of {rule.incidents} not reviewed"


def count(n: float) -> str:
    return f"{round(n):,}"


def change(current: float, usual: float) -> str:
    """'+35%' against a usual level; 'new' when there was none."""
    if usual == 0:
        return "new" if current else "±0%"
    diff = (current - usual) / usual
    return f"{diff * 100:+.0f}%"


def points(current: float | None, usual: float | None) -> str:
    """Difference of two shares in percentage points: '+4.2 pts'."""
    if current is None or usual is None:
        return "–"
    return f"{(current - usual) * 100:+.1f} pts"


def local_time(when: datetime | None, zone: ZoneInfo, *, with_day: bool = True) -> str:
    """'Mon 16 Nov 10:05' in the report's zone (month and day names fixed, not the host's locale)."""
    if when is None:
        return "–"
    local = when.astimezone(zone)
    if not with_day:
        return f"{local:%H:%M}"
    return f"{weekday_name(local.date())} {local.day} {month_name(local.date())} {local:%H:%M}"


def day_label(day: date) -> str:
    return f"{weekday_name(day)} {day.day}"


def source_name(source: str) -> str:
    """The platform's name as people read it (the registry's, the same as in alerts)."""
    return display_name(source)
