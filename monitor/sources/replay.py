"""A source that replays mentions from a JSONL file (the demo, tests, backfills).

The cursor is the number of lines already consumed, so a restarted worker
continues exactly where the stored cursor says, like a live API's ``since_id``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.models import Mention
from monitor.sources.base import PollResult

log = logging.getLogger(__name__)

REQUIRED = ("source", "source_id", "brand", "text", "created_at")


def mention_from_dict(obj: Any, *, default_brand: str | None = None) -> Mention:
    """Build a Mention from a JSON object, or raise ValueError saying what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    data = dict(obj)
    if default_brand and not data.get("brand"):
        data["brand"] = default_brand
    missing = [k for k in REQUIRED if data.get(k) in (None, "")]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    text = data["text"]
    if not isinstance(text, str):
        raise ValueError("field 'text' must be a string")
    try:
        created = datetime.fromisoformat(str(data["created_at"]).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"field 'created_at' is not an ISO-8601 time: {data['created_at']!r}") from exc

    def as_int(key: str) -> int:
        value = data.get(key)
        if value in (None, ""):
            return 0
        try:
            return max(0, int(value))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"field {key!r} must be a whole number, got {value!r}") from exc

    def opt_str(key: str) -> str | None:
        value = data.get(key)
        return None if value in (None, "") else str(value)

    return Mention(
        source=str(data["source"]),
        source_id=str(data["source_id"]),
        brand=str(data["brand"]),
        text=text,
        created_at=created,
        url=opt_str("url"),
        author_handle=opt_str("author_handle"),
        author_reach=as_int("author_reach"),
        engagement=as_int("engagement"),
        language=opt_str("language"),
        conversation_id=opt_str("conversation_id"),
    )


class ReplaySource:
    """Reads ``batch_size`` lines per poll from a JSONL file."""

    def __init__(self, path: Path, *, name: str | None = None, batch_size: int = 50,
                 release_until: Callable[[], datetime] | None = None) -> None:
        self.path = path
        self._name = name or f"replay:{path.name}"
        self.batch_size = batch_size
        # For simulated time (the demo): only hand out posts whose time has come.
        self.release_until = release_until

    @property
    def name(self) -> str:
        return self._name

    def poll(self, cursor: str | None) -> PollResult:
        start = int(cursor or 0)
        horizon = self.release_until() if self.release_until else None
        found: list[Mention] = []
        skipped: list[str] = []
        line_no = 0
        consumed = start
        with self.path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                if line_no <= start:
                    continue
                if len(found) + len(skipped) >= self.batch_size:
                    return PollResult(found, str(consumed), exhausted=False, skipped=skipped)
                if not line.strip():
                    consumed = line_no
                    continue
                try:
                    mention = mention_from_dict(json.loads(line))
                except (json.JSONDecodeError, ValueError) as exc:
                    consumed = line_no
                    reason = f"{self.path.name}:{line_no}: skipped: {exc}"
                    log.warning(reason)
                    skipped.append(reason)
                    continue
                if horizon is not None and mention.created_at > horizon:
                    return PollResult(found, str(consumed), exhausted=False, skipped=skipped)
                consumed = line_no
                found.append(mention)
        return PollResult(found, str(max(consumed, start)), exhausted=True, skipped=skipped)
