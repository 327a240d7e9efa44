"""Erasure (GDPR art. 17): ``monitor forget --author HANDLE [--source X]``.

The person's posts are deleted (their scores and incident links go with them)
and every other trace is rewritten to ``[erased]``, in one transaction:

* the author, text and link of their posts inside outbox payloads;
* ``@handle`` (and ``u/handle``, ``x.com/handle``) in other people's posts on
  the same platform, in the store and in payloads: the post stays, the name goes;
* the handle in our own sentences: signal and incident reasons, timeline notes,
  the reason and note of payloads, silence reasons. Here the name is also
  matched without '@' (a responder may have typed it so);
* silences of this author are deleted (a mute needs the handle to work, so
  their new posts alert again: an erasure is not an objection to collection).

Without ``--source`` our own sentences are searched everywhere; with it, only
the copies linked to that platform's posts, because "@anna" on Reddit says
nothing about "@anna" on X (and silences, which hold for every platform, stay).
The digest reads the store, so it follows.

Matching ignores case and a leading '@', in the one form ``scrub.normalise_handle``
defines (case folding: ``@Straße`` and ``STRASSE`` are one person), the form
silences use too. The database cannot fold case (SQLite's ``lower`` is ASCII
only, and no database turns ``ß`` into ``ss``), so the stored handles are read
once, folded in Python, and the matching spellings are then selected exactly.

Running it again finds nothing and changes nothing. Nothing here logs the
handle: a log file that kept it would undo the erasure.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Text, and_, cast, delete, func, or_, select, update

from monitor.privacy.retention import rewrite_incident
from monitor.privacy.scrub import (
    ERASED,
    CopyRules,
    handle_pattern,
    handle_spellings,
    normalise_handle,
    replace_handles,
)
from monitor.store import transaction
from monitor.store.mentions import text_hash
from monitor.store.tables import (
    incident_events,
    incident_mentions,
    incidents,
    mentions,
    outbox,
    sentiments,
    signals,
    silences,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ErasureReport:
    """What ``forget`` did: rows deleted and rows rewritten, per table."""

    source: str | None
    mentions_deleted: int = 0
    other_posts_rewritten: int = 0
    silences_deleted: int = 0
    rewritten: Counter[str] = field(default_factory=Counter)  # table -> rows whose copies were rewritten

    @property
    def changed(self) -> bool:
        return bool(self.mentions_deleted or self.other_posts_rewritten or self.silences_deleted
                    or sum(self.rewritten.values()))

    def lines(self) -> list[str]:
        where = f"on {self.source}" if self.source else "on every source"
        if not self.changed:
            return [f"nothing to erase {where}: no post by this author and no copy of their handle is stored"]
        out = [f"{self.mentions_deleted:>7}  posts by this author {where} deleted (with their scores and "
               "incident links)",
               f"{self.other_posts_rewritten:>7}  other people's posts naming them rewritten ({ERASED})"]
        names = {"incidents": "incident reasons", "incident_events": "incident timeline notes",
                 "signals": "signal reasons", "outbox": "notifications (text, link and author removed)",
                 "silences": "silence reasons"}
        for table in ("incidents", "incident_events", "signals", "outbox", "silences"):
            out.append(f"{self.rewritten[table]:>7}  {names[table]} rewritten")
        out.append(f"{self.silences_deleted:>7}  silences of this author deleted (their new posts alert again)")
        return out


def _contains(column: ColumnElement[Any], needles: Sequence[str]) -> ColumnElement[bool]:
    """A case-insensitive prefilter for any spelling; the regex decides. ``_`` in a handle is a LIKE wildcard."""
    return or_(*(func.lower(column).contains(n.lower(), autoescape=True) for n in needles))


def _spellings_of(conn: Connection, name: str, source: str | None) -> list[str]:
    """The stored spellings of ``author_handle`` whose normal form is ``name`` (see the module docstring)."""
    stmt = select(mentions.c.author_handle).distinct().where(mentions.c.author_handle.is_not(None))
    if source:
        stmt = stmt.where(mentions.c.source == source)
    return sorted(h for h in conn.execute(stmt).scalars() if normalise_handle(h) == name)


def forget(engine: Engine, handle: str, *, source: str | None = None) -> ErasureReport:
    """Erase one author (see the module docstring); raises ValueError for an empty handle."""
    name = normalise_handle(handle)
    if not name:
        raise ValueError("give the author's handle, e.g. --author @anna_b")
    report = ErasureReport(source=source)
    scope = frozenset([source]) if source else None
    with transaction(engine) as conn:
        stored = _spellings_of(conn, name, source)
        own = handle_pattern([handle, *stored], bare=True)
        in_posts = handle_pattern([handle, *stored])
        assert own is not None and in_posts is not None
        needles = sorted(handle_spellings([handle, *stored]))
        wanted: list[ColumnElement[bool]] = [mentions.c.author_handle.in_(stored)]
        if source:
            wanted.append(mentions.c.source == source)
        erased = {int(i): a for i, a in conn.execute(select(mentions.c.id, mentions.c.author_handle)
                                                     .where(and_(*wanted)))}
        ids = frozenset(erased)
        rules = CopyRules(drop_text=ids, drop_author=ids, author_marker=ERASED, own_pattern=own,
                          post_pattern=in_posts, post_sources=scope, marker=ERASED, authors=erased)
        # Payloads of other incidents may quote other posts naming them; without --source our own
        # sentences are searched everywhere, so every outbox row is a candidate.
        others = CopyRules(own_pattern=None if source else own, post_pattern=in_posts, post_sources=scope,
                           marker=ERASED)

        linked: set[int] = set()
        for chunk in _chunks(sorted(ids)):
            linked.update(int(i) for i in conn.execute(select(incident_mentions.c.incident_id).where(
                incident_mentions.c.mention_id.in_(chunk))).scalars())
        for incident_id in sorted(linked):
            rewrite_incident(conn, incident_id, rules, report.rewritten)
        _rewrite_unlinked_payloads(conn, needles, linked, others, report)
        _rewrite_signals_naming(conn, ids, rules, report)
        if source is None:
            _rewrite_own_sentences(conn, name, needles, rules, report)
        report.other_posts_rewritten = _rewrite_other_posts(conn, needles, ids, in_posts, source)

        for chunk in _chunks(sorted(ids)):
            conn.execute(delete(sentiments).where(sentiments.c.mention_id.in_(chunk)))
            conn.execute(delete(incident_mentions).where(incident_mentions.c.mention_id.in_(chunk)))
            report.mentions_deleted += conn.execute(delete(mentions).where(mentions.c.id.in_(chunk))).rowcount
    log.info("erasure request carried out (%s): %d post(s) deleted, %d copy row(s) rewritten",
             source or "all sources", report.mentions_deleted,
             report.other_posts_rewritten + sum(report.rewritten.values()))
    return report


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _rewrite_unlinked_payloads(conn: Connection, needles: Sequence[str], linked: set[int], rules: CopyRules,
                               report: ErasureReport) -> None:
    """Outbox rows of incidents without the person's posts that still name them (a reply quoting them).

    The payload is searched as JSON text, where SQLite keeps ``ß`` escaped (``\\u00df``): both forms are looked for.
    """
    in_json = sorted({*needles, *(json.dumps(n)[1:-1] for n in needles)})
    rows = conn.execute(select(outbox.c.id, outbox.c.incident_id, outbox.c.payload)
                        .where(_contains(cast(outbox.c.payload, Text), in_json)))
    for oid, incident_id, payload in rows.all():
        if int(incident_id) in linked or not isinstance(payload, dict):
            continue
        rewritten = rules.payload(payload)
        if rewritten is not None:
            conn.execute(update(outbox).where(outbox.c.id == oid).values(payload=rewritten))
            report.rewritten["outbox"] += 1


def _rewrite_signals_naming(conn: Connection, ids: frozenset[int], rules: CopyRules, report: ErasureReport) -> None:
    """Signals that fired on the person's posts but sit in another incident (or in none)."""
    if not ids:
        return
    for sid, reason, mention_ids in conn.execute(select(signals.c.id, signals.c.reason, signals.c.mention_ids)).all():
        if not any(int(m) in ids for m in (mention_ids or [])):
            continue
        new = rules.own_text(reason)
        if new != reason:
            conn.execute(update(signals).where(signals.c.id == sid).values(reason=new))
            report.rewritten["signals"] += 1


def _rewrite_own_sentences(conn: Connection, name: str, needles: Sequence[str], rules: CopyRules,
                           report: ErasureReport) -> None:
    """Every reason and note that names them, wherever it is, and their silences (an erasure on all sources)."""
    theirs = [int(i) for i, author in conn.execute(select(silences.c.id, silences.c.author)
                                                   .where(silences.c.author.is_not(None))).all()
              if normalise_handle(author) == name]
    if theirs:
        report.silences_deleted += conn.execute(delete(silences).where(silences.c.id.in_(theirs))).rowcount
    for table, key, column in ((incidents, "incidents", incidents.c.reason),
                               (incident_events, "incident_events", incident_events.c.note),
                               (signals, "signals", signals.c.reason),
                               (silences, "silences", silences.c.reason)):
        for rid, text in conn.execute(select(table.c.id, column).where(_contains(column, needles))).all():
            new = rules.own_text(text)
            if new != text:
                conn.execute(update(table).where(table.c.id == rid).values({column.name: new}))
                report.rewritten[key] += 1


def _rewrite_other_posts(conn: Connection, needles: Sequence[str], ids: frozenset[int], pattern: re.Pattern[str],
                         source: str | None) -> int:
    """Other people's posts that @-name the person: the name becomes ``[erased]``, the post stays.

    ``text_hash`` follows the new text: the rewritten text is what a score is reused for from now on.
    """
    where: list[ColumnElement[bool]] = [or_(_contains(mentions.c.text, needles), _contains(mentions.c.url, needles))]
    if source:
        where.append(mentions.c.source == source)
    changed = 0
    for mid, text, url in conn.execute(select(mentions.c.id, mentions.c.text, mentions.c.url)
                                       .where(and_(*where))).all():
        if int(mid) in ids:
            continue
        new_text = replace_handles(text, pattern, ERASED) or ""
        new_url = replace_handles(url, pattern, ERASED)
        if new_text != text or new_url != url:
            conn.execute(update(mentions).where(mentions.c.id == mid)
                         .values(text=new_text, url=new_url, text_hash=text_hash(new_text)))
            changed += 1
    return changed
