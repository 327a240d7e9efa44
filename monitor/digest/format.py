"""Words and numbers shared by the HTML report and the Slack message, so both say the same thing.

Every function takes the digest's translator (``monitor.i18n``): the report's language and zone.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from monitor.durations import format_duration
from monitor.i18n import N_, Translator
from monitor.sources.registry import display_name

from .model import MIN_REVIEWED, RuleFigures
from .week import IsoWeek


def duration(delta: timedelta | None, t: Translator) -> str:
    """'45 s', '12 min', '3 h 05 min', '2 days 4 h' in the reader's words; '–' for nothing."""
    return t.duration(delta)


TEXT_REMOVED = N_("[text removed]")  # a quoted post whose text an erasure or the retention purge removed


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


def percent(share: float | None, t: Translator, digits: int = 0) -> str:
    return t.percent(share, digits)


def precision(rule: RuleFigures, t: Translator) -> str:
    """'67%', or why there is no percentage: no incident, or too few reviewed to say."""
    if not rule.incidents:
        return "–"
    if rule.precision is None:
        return t._("too few reviewed (under {n})", n=MIN_REVIEWED)
    return percent(rule.precision, t)


def not_reviewed(rule: RuleFigures, t: Translator) -> str:
    """'7 of 12 not reviewed': incidents that expired or closed themselves with nobody looking."""
    if not rule.incidents:
        return "–"
    if not rule.unreviewed:
        return t._("all reviewed")
    return t._("{count} of {total} not reviewed", count=rule.unreviewed, total=rule.incidents)


def count(n: float, t: Translator) -> str:
    return t.number(n)


def change(current: float, usual: float, t: Translator) -> str:
    """'+35%' against a usual level; 'new' when there was none."""
    if usual == 0:
        return t._("new") if current else "±0%"
    diff = (current - usual) / usual
    return ("+" if diff > 0 else "") + t.percent(diff)


def versus_usual(current: float, usual: float, weeks: int, t: Translator) -> str:
    """'+35% against the 4-week average of 58' / 'new: none in the previous 4 weeks' as a sentence."""
    if usual == 0:
        return (t.ngettext("new: none in the previous week", "new: none in the previous {n} weeks", weeks)
                if current else t.ngettext("none in the previous week either",
                                           "none in the previous {n} weeks either", weeks))
    return t.ngettext("{change} against the previous week ({usual})",
                      "{change} against the average of the previous {n} weeks ({usual})", weeks,
                      change=change(current, usual, t), usual=count(usual, t))


def points(current: float | None, usual: float | None, t: Translator) -> str:
    """Difference of two shares in percentage points: '+4.2 pts'."""
    if current is None or usual is None:
        return "–"
    diff = (current - usual) * 100
    return t._("{value} pts", value=("+" if diff > 0 else "") + t.number(diff, 1))


def local_time(when: datetime | None, t: Translator, *, with_day: bool = True) -> str:
    """'ma 16 nov 10:05' in the report's zone and language; '–' for no time."""
    if when is None:
        return "–"
    return t.datetime(when) if with_day else t.time(when)


def day_label(day: date, t: Translator) -> str:
    return t.day(day)


def source_name(source: str) -> str:
    """The platform's name as people read it (the registry's, the same as in alerts; a proper name, untranslated)."""
    return display_name(source)


SEVERITIES = {"critical": N_("critical"), "warning": N_("warning"), "info": N_("info")}
STATES = {"open": N_("open"), "notified": N_("notified"), "acknowledged": N_("acknowledged"),
          "resolved": N_("resolved"), "false_positive": N_("false positive"), "expired": N_("expired"),
          "closed": N_("closed")}


def severity(value: str, t: Translator) -> str:
    return t._(SEVERITIES[value]) if value in SEVERITIES else value


def state(value: str, t: Translator) -> str:
    """An incident state in words: 'false positive', 'vals alarm', 'fausse alerte'."""
    return t._(STATES[value]) if value in STATES else value.replace("_", " ")


def week_span(week: IsoWeek, t: Translator) -> str:
    """'Mon 16 Nov – Sun 22 Nov 2026' in the reader's language (the first year too when the week spans two)."""
    first, last = week.days[0], week.days[-1]
    start = t.date(first) if first.year != last.year else t.day_month(first)
    return f"{start} – {t.date(last)}"
