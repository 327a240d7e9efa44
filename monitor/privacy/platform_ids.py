"""An erased post's platform id, wherever it is copied: the last way back to the person.

Deleting a post and replacing its author's handle is not enough: its id
(``source_id``, e.g. a tweet id) stays behind in other rows, and
``x.com/i/web/status/<id>`` opens the post, and so the person, again. The id
is copied into:

* ``mentions.conversation_id`` of the replies to the post;
* ``signals.group_key`` and ``incidents.key`` (``brand|source|<id>`` when a
  rule groups by conversation);
* links: other posts' ``url`` and links inside texts (a quote of the post),
  our own sentences (reasons, notes, silence reasons) and outbox payloads.

Keys and conversation ids are *grouping* values: replies must stay one
conversation and one incident, so each erased id becomes one random token
(``erased-<12 hex>``), the same everywhere in one erasure. It is drawn at
random, not hashed: a hash of a public id is reversed by hashing the id. A link
that names the id leads to the post and is replaced whole by ``[erased]``; a
bare number inside a free text is left alone (a short id is too likely to be
an ordinary number there).
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from monitor.privacy.scrub import ERASED
from monitor.store import privacy as privacy_repo

_URL = re.compile(r"https?://[^\s<>\"')]+", re.IGNORECASE)  # '[' kept: '[erased]' may sit in a link


def _token_pattern(ids: list[str]) -> re.Pattern[str]:
    alternation = "|".join(re.escape(i) for i in sorted(ids, key=lambda i: (-len(i), i)))
    return re.compile(rf"(?<![\w-])(?:{alternation})(?![\w-])")


@dataclass(frozen=True, slots=True)
class IdRewriter:
    """Rewrites copies of erased platform ids: ``tokens`` maps each id to its random replacement."""

    tokens: Mapping[str, str]

    @classmethod
    def for_ids(cls, ids: list[str]) -> IdRewriter:
        return cls({i: f"erased-{secrets.token_hex(6)}" for i in sorted(set(ids)) if i})

    @property
    def pattern(self) -> re.Pattern[str] | None:
        return _token_pattern(list(self.tokens)) if self.tokens else None

    def key(self, key: str) -> str:
        """A grouping key or conversation id: each id segment becomes its token (groups stay together)."""
        pattern = self.pattern
        return pattern.sub(lambda m: self.tokens[m.group(0)], key) if pattern else key

    def url(self, url: str | None) -> str | None:
        """A link that names an erased id leads to the post: it goes (None)."""
        pattern = self.pattern
        if url is None or pattern is None or not pattern.search(url):
            return url
        return None

    def text(self, text: str | None) -> str | None:
        """Links to an erased post inside a text become ``[erased]``; the rest of the text stays."""
        pattern = self.pattern
        if text is None or pattern is None:
            return text
        return _URL.sub(lambda m: ERASED if pattern.search(m.group(0)) else m.group(0), text)

    def value(self, value: Any, field: str | None = None) -> Any:
        """Any JSON value of a payload: links and texts as ``text``, a ``url`` field dropped, keys as ``key``."""
        if isinstance(value, Mapping):
            return {k: self.value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, field) for v in value]
        if isinstance(value, str):
            if field == "url":
                return self.url(value)
            if field in ("key", "group_key", "conversation_id"):
                return self.key(value)
            return self.text(value)
        return value


def replace_ids(conn: Connection, ids: list[str], source: str | None, counts: Counter[str]) -> None:
    """Rewrite every copy of ``ids`` (the erased posts' platform ids); ``counts`` gets rows per table.column."""
    rewriter = IdRewriter.for_ids(ids)
    needles = sorted(rewriter.tokens)
    if not needles:
        return
    for row_id, conversation in privacy_repo.conversations_in(conn, needles, source):
        privacy_repo.set_conversation(conn, row_id, rewriter.key(conversation))
        counts["mentions.conversation_id"] += 1
    for row_id, text, url in privacy_repo.posts_naming(conn, needles, source):
        new_text, new_url = rewriter.text(text) or "", rewriter.url(url)
        if (new_text, new_url) != (text, url):
            privacy_repo.rewrite_post(conn, row_id, new_text, new_url)
            counts["mentions.url"] += 1
    for where, row_id, key in privacy_repo.keys_containing(conn, needles):
        new_key = rewriter.key(key)
        if new_key != key:
            privacy_repo.set_key(conn, where, row_id, new_key)
            counts[f"{where}.key" if where == "incidents" else f"{where}.group_key"] += 1
    for where in privacy_repo.Sentence:
        for row_id, sentence in privacy_repo.sentences_containing(conn, where, needles):
            new = rewriter.text(sentence)
            if new != sentence:
                privacy_repo.set_sentence(conn, where, row_id, new, rewriter.text)
                counts[f"{where.value}.text"] += 1
    for oid, _incident, payload in privacy_repo.payloads_containing(conn, needles):
        new_payload = rewriter.value(payload)
        if new_payload != payload:
            privacy_repo.set_payload(conn, oid, new_payload)
            counts["outbox.payload"] += 1
