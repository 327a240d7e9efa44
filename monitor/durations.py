"""Human durations in YAML: ``90s``, ``30m``, ``1h``, ``1h30m``, ``7d``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from monitor.i18n import N_, Problem

_PART = re.compile(r"(\d+)\s*([smhdw])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[smhdw]\s*)+$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
PATTERN = r"^\s*(\d+\s*[smhdw]\s*)+$"


def parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Problem(N_("expected a duration like '30m', '2h' or '7d', got {value}"), value=repr(value))
    if isinstance(value, int):
        raise Problem(N_("a duration needs a unit, e.g. '{value}m' or '{value}h'"), value=str(value))
    if not _WHOLE.match(value):
        raise Problem(N_("expected a duration like '30m', '2h' or '7d', got {value}"), value=repr(value))
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(value))
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """Short words for messages: '45 min', '2 h', '1 h 30 min', '3 days'."""
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0 and seconds >= 86400:
        days = seconds // 86400
        return f"{days} day" + ("s" if days != 1 else "")
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours and minutes:
        return f"{hours} h {minutes} min"
    if hours:
        return f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"


def parse_positive_duration(value: Any) -> timedelta:
    """A duration that must be longer than zero: a wait of ``0m`` would fire at once, forever."""
    delta = parse_duration(value)
    if delta <= timedelta(0):
        raise Problem(N_("must be longer than zero, e.g. '30s', '15m' or '2h' (got {value})"), value=repr(value))
    return delta


def _serialise(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(_serialise, return_type=str),
    WithJsonSchema({"type": "string", "pattern": PATTERN, "examples": ["30m", "2h", "7d"]}),
]

# For waits and intervals, where zero means "at once, again and again" (40 reminders in 10 minutes).
PositiveDuration = Annotated[
    timedelta,
    BeforeValidator(parse_positive_duration),
    PlainSerializer(_serialise, return_type=str),
    WithJsonSchema({"type": "string", "pattern": PATTERN, "examples": ["30m", "2h", "7d"],
                    "description": "longer than zero"}),
]
