"""X archives (``twarc2 search`` output) into the store: the backfill behind ``monitor import``.

The live X source only looks forward from its first poll, so history comes in
through archives. Every line goes through the live source's own normaliser
(``sources/x.py: mentions_from_page``) and the store's deduplicating insert, so an
imported tweet and a polled one give identical rows and importing twice is
harmless. Rows are filed under the source ``import:twarc`` and no cursor moves:
an import never changes where the live source resumes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from monitor.inputs import BadInput, json_lines
from monitor.models import Mention
from monitor.redact import describe
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
    pages: int = 0  # non-blank lines of the file: each is one page (or one tweet), stored whole or not at all
    pages_done: int = 0  # pages read and, where they had tweets, committed
    stopped: str | None = None  # "FILE:LINE: reason" when the import stopped before the end
    file_at_fault: bool = False  # the stop is the file's (fix it first), not a passing store error


class _Stop(Exception):
    """The import cannot go past this line; everything before it is committed."""


def read_twarc(path: Path, *, brand: str, languages: Sequence[str] | None,
               counts: ImportCounts) -> Iterator[tuple[str, list[Mention]]]:
    """("FILE:LINE", mentions) per X API v2 page (or single tweet), one JSON document a line.

    A line that is JSON but not usable is skipped with a reason (as the live
    source skips a bad tweet); a line that is not UTF-8 text at all (binary
    data, UTF-16) ends the import there: what follows it cannot be trusted.
    """
    with path.open("rb") as fh:
        for where, obj, problem in json_lines(fh, path.name):
            counts.lines += 1
            if problem is not None:
                counts.bad_lines += 1
                counts.problems.append(problem)
                counts.pages_done += 1
                continue
            page = mentions_from_page(obj, brand=brand, languages=languages, where=where)
            counts.read += len(page.mentions) + len(page.skipped)
            counts.skipped += len(page.skipped)
            counts.problems.extend(page.skipped)
            yield where, list(page.mentions)  # Mention cleans its text itself (models.clean_text)


def count_pages(path: Path) -> int:
    """Non-blank lines of ``path`` (bytes: counting must not fail where reading will report the problem)."""
    with path.open("rb") as fh:
        return sum(1 for raw in fh if raw.strip())


def import_file(engine: Engine, path: Path, *, brand: str, languages: Sequence[str] | None,
                now: datetime) -> ImportCounts:
    """Store every tweet of ``path`` once (dedupe on source and id); no cursor is touched.

    One transaction per page: a page is stored whole or not at all, so an
    import that stops (a crash, garbage after the good pages, a store error)
    keeps every page before the stop, says where it stopped in
    ``counts.stopped``, and a rerun adds only the rest (the stored tweets are
    recognised by their id and not stored twice).
    """
    counts = ImportCounts(pages=count_pages(path))
    try:
        for where, batch in read_twarc(path, brand=brand, languages=languages, counts=counts):
            if batch:
                try:
                    with transaction(engine) as conn:
                        counts.new += store_batch(conn, IMPORT_SOURCE, batch, None, now)
                except SQLAlchemyError as exc:
                    raise _Stop(f"{where}: the store refused the page ({describe(exc, limit=200)})") from None
            counts.pages_done += 1
    except BadInput as exc:
        counts.stopped, counts.file_at_fault = str(exc), True
    except _Stop as exc:
        counts.stopped = str(exc)
    return counts
