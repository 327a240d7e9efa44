"""Erasure (GDPR art. 17): ``monitor forget --author HANDLE [--source X]``.

The person's posts are deleted (their scores and incident links go with them)
and every other trace is rewritten to ``[erased]``, in one transaction:

* the author, text and link of their posts inside outbox payloads;
* ``@handle`` (and ``u/handle``, ``x.com/handle``) in other people's posts on
  the same platform, in the store and in payloads: the post stays, the name goes;
* the handle in our own sentences: signal and incident reasons, timeline notes,
  the reason and note of payloads, silence reasons. Here the name is also
  matched without '@' (a responder may have typed it so);
* their posts' platform ids (``source_id``): in replies' conversation ids,
  incident and signal keys, and links (``privacy.platform_ids``);
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
handle: a log file that kept it would undo the erasure. The queries are
``monitor.store.privacy``'s.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine

from monitor.privacy.platform_ids import replace_ids
from monitor.privacy.retention import rewrite_incident
from monitor.privacy.scrub import (
    ERASED,
    CopyRules,
    handle_pattern,
    handle_spellings,
    normalise_handle,
    replace_handles,
)
from monitor.store import privacy as privacy_repo
from monitor.store import transaction
from monitor.store.privacy import Sentence

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ErasureReport:
    """What ``forget`` did: rows deleted and rows rewritten, per table."""

    source: str | None
    mentions_deleted: int = 0
    other_posts_rewritten: int = 0
    silences_deleted: int = 0
    rewritten: Counter[str] = field(default_factory=Counter)  # table -> rows whose copies were rewritten
    ids_replaced: Counter[str] = field(default_factory=Counter)  # table.column -> rows that held a post's id
    incidents: set[int] = field(default_factory=set)  # incidents whose notifications were rewritten (Slack redraw)

    @property
    def changed(self) -> bool:
        return bool(self.mentions_deleted or self.other_posts_rewritten or self.silences_deleted
                    or sum(self.rewritten.values()) or sum(self.ids_replaced.values()))

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
        ids = {"mentions.conversation_id": "conversation ids of replies to their posts",
               "mentions.url": "links (or links in texts) of other posts to their posts",
               "incidents.key": "incident keys", "signals.group_key": "signal group keys",
               "outbox.payload": "notifications linking to their posts"}
        for where in ("mentions.conversation_id", "mentions.url", "incidents.key", "signals.group_key",
                      "outbox.payload"):
            out.append(f"{self.ids_replaced[where]:>7}  {ids[where]}: their post ids replaced")
        texts = sum(n for k, n in self.ids_replaced.items() if k.endswith(".text"))
        out.append(f"{texts:>7}  reasons and notes linking to their posts: links replaced by {ERASED}")
        return out


def forget(engine: Engine, handle: str, *, source: str | None = None) -> ErasureReport:
    """Erase one author (see the module docstring); raises ValueError for an empty handle."""
    name = normalise_handle(handle)
    if not name:
        raise ValueError("give the author's handle, e.g. --author @anna_b")
    report = ErasureReport(source=source)
    scope = frozenset([source]) if source else None
    with transaction(engine) as conn:
        stored = sorted(h for h in privacy_repo.author_handles(conn, source) if normalise_handle(h) == name)
        own = handle_pattern([handle, *stored], bare=True)
        in_posts = handle_pattern([handle, *stored])
        assert own is not None and in_posts is not None
        needles = sorted(handle_spellings([handle, *stored]))
        erased = privacy_repo.posts_by_author(conn, stored, source)
        ids = frozenset(erased)
        rules = CopyRules(drop_text=ids, drop_author=ids, author_marker=ERASED, own_pattern=own,
                          post_pattern=in_posts, post_sources=scope, marker=ERASED, authors=erased)
        # Payloads of other incidents may quote other posts naming them; without --source our own
        # sentences are searched everywhere, so every outbox row is a candidate.
        others = CopyRules(own_pattern=None if source else own, post_pattern=in_posts, post_sources=scope,
                           marker=ERASED)

        linked = set(privacy_repo.incidents_holding(conn, sorted(ids)))
        report.incidents |= linked
        for incident_id in sorted(linked):
            rewrite_incident(conn, incident_id, rules, report.rewritten)
        _rewrite_unlinked_payloads(conn, needles, linked, others, report)
        _rewrite_signals_naming(conn, ids, rules, report)
        if source is None:
            _rewrite_own_sentences(conn, name, needles, rules, report)
        report.other_posts_rewritten = _rewrite_other_posts(conn, needles, ids, in_posts, source)

        platform_ids = privacy_repo.platform_ids(conn, sorted(ids))
        report.mentions_deleted += privacy_repo.delete_posts(conn, sorted(ids))
        replace_ids(conn, platform_ids, source, report.ids_replaced)
    log.info("erasure request carried out (%s): %d post(s) deleted, %d copy row(s) rewritten",
             source or "all sources", report.mentions_deleted,
             report.other_posts_rewritten + sum(report.rewritten.values()))
    return report


def _rewrite_unlinked_payloads(conn: Connection, needles: Sequence[str], linked: set[int], rules: CopyRules,
                               report: ErasureReport) -> None:
    """Outbox rows of incidents without the person's posts that still name them (a reply quoting them)."""
    for oid, incident_id, payload in privacy_repo.payloads_containing(conn, needles):
        if incident_id in linked or not isinstance(payload, dict):
            continue
        rewritten = rules.payload(payload)
        if rewritten is not None:
            privacy_repo.set_payload(conn, oid, rewritten)
            report.rewritten["outbox"] += 1
            report.incidents.add(incident_id)


def _rewrite_signals_naming(conn: Connection, ids: frozenset[int], rules: CopyRules, report: ErasureReport) -> None:
    """Signals that fired on the person's posts but sit in another incident (or in none)."""
    if not ids:
        return
    for signal in privacy_repo.signal_reasons(conn):
        if not any(m in ids for m in signal.mention_ids):
            continue
        new = rules.own_text(signal.reason)
        if new != signal.reason:
            privacy_repo.set_sentence(conn, Sentence.SIGNAL_REASON, signal.id, new, rules.own_text)
            report.rewritten["signals"] += 1


def _rewrite_own_sentences(conn: Connection, name: str, needles: Sequence[str], rules: CopyRules,
                           report: ErasureReport) -> None:
    """Every reason and note that names them, wherever it is, and their silences (an erasure on all sources)."""
    theirs = [sid for sid, author in privacy_repo.silence_authors(conn) if normalise_handle(author) == name]
    report.silences_deleted += privacy_repo.delete_silences(conn, theirs)
    for where in Sentence:
        for rid, text in privacy_repo.sentences_containing(conn, where, needles):
            new = rules.own_text(text)
            if new != text:
                privacy_repo.set_sentence(conn, where, rid, new, rules.own_text)
                report.rewritten[where.value] += 1


def _rewrite_other_posts(conn: Connection, needles: Sequence[str], ids: frozenset[int], pattern: re.Pattern[str],
                         source: str | None) -> int:
    """Other people's posts that @-name the person: the name becomes ``[erased]``, the post stays.

    ``text_hash`` follows the new text: the rewritten text is what a score is reused for from now on.
    """
    changed = 0
    for mid, text, url in privacy_repo.posts_naming(conn, needles, source):
        if mid in ids:
            continue
        new_text = replace_handles(text, pattern, ERASED) or ""
        new_url = replace_handles(url, pattern, ERASED)
        if new_text != text or new_url != url:
            privacy_repo.rewrite_post(conn, mid, new_text, new_url)
            changed += 1
    return changed
