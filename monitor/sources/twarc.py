"""X archives (``twarc2 search`` output) into the store: the backfill behind ``monitor import``.

The live X source only looks forward from its first poll, so history comes in
through archives. Every line goes through the live source's own normaliser
(``sources/x.py: mentions_from_page``) and the store's deduplicating insert, so an
imported tweet and a polled one give identical rows and importing twice is
harmless. Rows are filed under the source ``import:twarc`` and no cursor moves:
an import never changes where the live source resumes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from monitor.models import Mention
from monitor.sources.x import mentions_from_page
from monitor.store import transaction
from monitor.store.mentions import store_batch

IMPORT_SOURCE = "import:twarc"  # the source name imported rows are stored under


@dataclass(slots=True)
class ImportCounts:
    """What one import did, for the one-line summary and the problems printed before it."""

    lines: int = 0
    bad_lines: int = 0  # not JSON at all
    read: int = 0  # tweets read, usable or not
    new: int = 0
    skipped: int = 0  # tweets that could not be used
    problems: list[str] = field(default_factory=list)


def read_twarc(path: Path, *, brand: str, languages: Sequence[str] | None,
               counts: ImportCounts) -> Iterator[list[Mention]]:
    """X API v2 pages (or single tweets), one JSON document a line, through the live source's normaliser."""
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            counts.lines += 1
            where = f"{path.name}:{line_no}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                counts.bad_lines += 1
                counts.problems.append(f"{where}: skipped: not JSON ({exc.msg})")
                continue
            page = mentions_from_page(obj, brand=brand, languages=languages, where=where)
            counts.read += len(page.mentions) + len(page.skipped)
            counts.skipped += len(page.skipped)
            counts.problems.extend(page.skipped)
            if page.mentions:
                yield page.mentions


def import_file(engine: Engine, path: Path, *, brand: str, languages: Sequence[str] | None,
                now: datetime) -> ImportCounts:
    """Store every tweet of ``path`` once (dedupe on source and id); no cursor is touched.

    One transaction per page, so an archive cut short by a crash keeps what was
    stored and a rerun adds only the rest.
    """
    counts = ImportCounts()
    for batch in read_twarc(path, brand=brand, languages=languages, counts=counts):
        with transaction(engine) as conn:
            counts.new += store_batch(conn, IMPORT_SOURCE, batch, None, now)
    return counts
