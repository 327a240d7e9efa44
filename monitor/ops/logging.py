"""Log setup for the worker: JSON lines for machines, text for people, secrets redacted in both.

``setup_logging`` writes JSON lines (``time``, ``level``, ``logger``,
``message``, the record's extras, ``exc`` for a traceback) when stderr is not a
terminal (a container, systemd, a log shipper parses them without regexes), and
readable text when someone watches a terminal. ``MONITOR_LOG_FORMAT=json|text``
(or the ``json`` argument) overrides the guess.

Every line passes ``monitor.redact`` twice over: a ``RedactingFilter`` on the
handler rewrites the message, and the formatter redacts the whole output,
including tracebacks and extras, which the filter cannot reach. Third-party
clients log requests at DEBUG; whatever they put in a message, an API error or
an ``extra=``, no token leaves through our handler.
"""

from __future__ import annotations

import json as jsonlib
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from monitor.redact import RedactingFilter, redact

FORMAT_ENV = "MONITOR_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


def wants_json(log_format: str | None, stream: TextIO | None = None) -> bool:
    """``json``/``text`` decide; ``auto`` (or nothing) means JSON unless ``stream`` is a terminal."""
    choice = (log_format or "auto").strip().lower()
    if choice == "json":
        return True
    if choice == "text":
        return False
    target = stream if stream is not None else sys.stderr
    isatty = getattr(target, "isatty", None)
    return not (callable(isatty) and isatty())


def _clean(value: Any) -> Any:
    """An extra as JSON can carry it, with secrets masked in every string inside it."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value, keep_lines=True)
    try:
        return jsonlib.loads(redact(jsonlib.dumps(value, default=str, ensure_ascii=False), keep_lines=True))
    except ValueError:  # masking broke the JSON syntax: keep it as one masked string
        return redact(str(value), keep_lines=True)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extras passed with ``extra={...}`` become fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage(), keep_lines=True),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in data:
                data[key] = _clean(value)
        if record.exc_info:
            data["exc"] = redact(self.formatException(record.exc_info), keep_lines=True)
        if record.stack_info:
            data["stack"] = redact(self.formatStack(record.stack_info), keep_lines=True)
        return jsonlib.dumps(data, ensure_ascii=False, default=str)


class RedactingTextFormatter(logging.Formatter):
    """The usual text line, with the traceback kept on its lines and masked like the message."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), keep_lines=True)


class _CurrentStderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes, not the one at set-up.

    Why: a handler holding the stderr of its set-up writes into a closed file
    once that stream is replaced and closed (an embedding program, a test
    runner capturing a command's output), and every later record then prints
    a "Logging error" traceback instead of the line.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def setup_logging(level: str, json: bool | None = None, *, stream: TextIO | None = None) -> logging.Handler:
    """Send every logger's records to stderr (or ``stream``) in the chosen format; returns the handler.

    ``json=None`` reads ``MONITOR_LOG_FORMAT`` (json, text, auto) and otherwise
    guesses from the terminal. Calling it again replaces our handler instead of
    adding a second one (tests, a reload), and leaves other handlers alone.
    """
    target = stream if stream is not None else sys.stderr
    use_json = json if json is not None else wants_json(os.environ.get(FORMAT_ENV), target)
    handler: logging.StreamHandler[TextIO] = (
        logging.StreamHandler(stream) if stream is not None else _CurrentStderrHandler()
    )
    handler.setFormatter(JsonFormatter() if use_json else RedactingTextFormatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter())
    handler._monitor_handler = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_monitor_handler", False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    # APScheduler reports every run at INFO: only its warnings (missed or skipped runs) are news.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
    return handler
