"""Words and numbers shared by the HTML report and the Slack message, so both say the same thing."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .model import MIN_REVIEWED, RuleFigures
from .week import month_name, weekday_name


def duration(delta: timedelta | None) -> str:
    """'45 s', '12 min', '3 h 05 min', '2 d 4 h'; '–' for nothing. Rounded to the minute past one minute."""
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
    return f"{days} d {hours} h" if hours else f"{days} d"


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


SOURCE_NAMES = {"x": "X", "reddit": "Reddit", "news": "News", "rss": "News", "replay": "Replay"}


def source_name(source: str) -> str:
    return SOURCE_NAMES.get(source, source)
