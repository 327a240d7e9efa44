"""The rules for rewriting copies of personal data, shared by the purge and by an erasure.

A post is copied in four places besides its row in ``mentions``: the reason of
the signal it fired and of the incident it opened ("Post by @anna on X: ..."),
the notes of that incident's timeline, and the outbox payloads, which carry the
post's text, author and link for Slack. Every copy is reached *through the
post's id* (``incident_mentions``, ``signals.mention_ids``, the ``id`` of each
post inside a payload), so a purge or an erasure rewrites exactly the copies of
the posts it handles, in the same transaction as the posts themselves: no copy
outlives its original, and no unrelated text is touched.

Handles are dropped, not pseudonymised: a hash of a public handle can be
reversed by hashing candidate handles, and once a handle has expired nothing
in the store needs to tell two removed authors apart. The markers say what
happened: ``[author removed]`` (retention) and ``[erased]`` (an erasure request).

The module is also the one place that says who a handle *is* and what a reader
outside the team may see of it: ``normalise_handle`` (used by silences, the
escalation engine's silence matching, erasure and the digest),
``url_without_handle`` (purge, erasure, the digest's links) and
``mask_handles`` (the digest's quotes). A silence and an erasure therefore
agree on whether two spellings are the same person, and a link the purge keeps
is a link the digest may publish.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from monitor import reasons

ERASED = "[erased]"
AUTHOR_REMOVED = "[author removed]"
POST_LISTS = ("top_mentions", "new_mentions")  # where a payload carries posts (see EscalationEngine._payload)
OWN_TEXT_FIELDS = ("reason", "note")  # our own sentences in a payload, which may quote a handle

_X_STATUS = re.compile(r"^https?://(?:www\.|mobile\.)?(?:x|twitter)\.com/[^/]+/status/(\d+)", re.IGNORECASE)


_HANDLE_IN_TEXT = re.compile(r"(?<![\w@])@(\w{1,50})")


def normalise_handle(handle: str) -> str:
    """The one form in which handles are compared: no '@', no surrounding space, case folded.

    ``@Anna_B`` is ``anna_b`` and ``@Straße`` is ``strasse``. Case *folding*,
    not ``lower()``: folding is Unicode's caseless match (``"STRASSE"`` and
    ``"Straße"`` fold alike, ``lower()`` keeps them apart), so a silence, an
    erasure and the digest recognise one person however a source capitalised
    the name. Silences were already stored in this form, so they need no
    rewrite. Databases cannot fold case (SQLite's ``lower`` is ASCII only), so
    stored handles are folded here, in Python, never in SQL.
    """
    return handle.strip().lstrip("@").strip().casefold()


def handle_spellings(handles: Iterable[str | None]) -> set[str]:
    """Every way to look for these handles in text: the folded form and each spelling as given.

    A regex with ``IGNORECASE`` matches simple case variants only (``@STRAßE`` for
    ``Straße``), not a folding that changes length (``ß``/``ss``); searching for
    the folded form *and* the stored spellings finds both.
    """
    found: set[str] = set()
    for h in handles:
        if h and (name := normalise_handle(h)):
            found.update((name, h.strip().lstrip("@").strip()))
    return found


def handle_pattern(handles: Iterable[str | None], *, bare: bool = False) -> re.Pattern[str] | None:
    """A regex for these handles as posts and our messages write them; None when there are none.

    Always matched: ``@anna``, ``u/anna`` and ``/user/anna`` (Reddit), ``x.com/anna`` and
    ``twitter.com/anna`` (links). With ``bare``, the name alone as a word too: for our
    own texts (reasons, notes typed by a responder) during an erasure, where a name
    may appear without '@'. Never bare in other people's posts, where "mark" or
    "support" are ordinary words. A name inside a marker (``[erased]``) is skipped,
    so an erasure of a handle called "erased" stays idempotent.
    """
    names = sorted(handle_spellings(handles), key=lambda n: (-len(n), n))
    if not names:
        return None
    prefixes = [r"(?<![\w@])@", r"\bu/", r"\buser/", r"(?<=x\.com/)", r"(?<=twitter\.com/)"]
    if bare:
        prefixes.append(r"(?<![\w@/\[])")
    alternation = "|".join(re.escape(n) for n in names)
    return re.compile(rf"(?:{'|'.join(prefixes)})(?:{alternation})(?!\w)", re.IGNORECASE)


def replace_handles(text: str | None, pattern: re.Pattern[str] | None, marker: str) -> str | None:
    if text is None or pattern is None:
        return text
    return pattern.sub(marker, text)


def url_without_handle(url: str | None, handle: str | None) -> str | None:
    """A link that no longer names the author: X's handle-free status link, else no link.

    X links carry the handle (``x.com/<handle>/status/<id>``) but resolve just as
    well as ``x.com/i/web/status/<id>``; any other link with the handle as a path
    segment (``reddit.com/user/<handle>``, ``mastodon.social/@<handle>/1``) is dropped.
    Only the path counts: a news site's "handle" is its own domain, which names no
    person, so the article link stays.
    """
    if not url or not handle:
        return url
    name = normalise_handle(handle)
    segments = {normalise_handle(s) for s in urlsplit(url).path.split("/")}
    if not name or name not in segments:
        return url
    found = _X_STATUS.match(url)
    return f"https://x.com/i/web/status/{found.group(1)}" if found else None


def mask_handles(text: str, brand: str, author: str | None = None) -> str:
    """Mask the @handles of people in a text quoted to readers outside the team (the digest).

    Those readers are not the audience the people wrote for. Only the
    brand's own accounts stay readable (``is_brand_account``: ``@Lumora``,
    ``@Lumora_NL``, ``@lumora_support``), and ``author``, which callers pass
    only for an author above the reach threshold. A handle that merely
    *contains* the brand is a person like any other (``@lumorahater99``).
    """
    keep = normalise_handle(author) if author else None

    def mask(found: re.Match[str]) -> str:
        name = found.group(1)
        if normalise_handle(name) == keep or is_brand_account(name, brand):
            return found.group(0)
        return "@…"

    return _HANDLE_IN_TEXT.sub(mask, text)


BRAND_ACCOUNT_SUFFIXES = frozenset({"", "support", "help", "care", "service", "official", "news", "app", "team",
                                    "hq", "status"})


def is_brand_account(handle: str, brand: str) -> bool:
    """The brand's name, alone or with a country code or a service word (compared without punctuation).

    ``Lumora``, ``Lumora_NL``, ``lumora_be``, ``LumoraSupport`` are the brand
    speaking; anything else that contains the name (``lumorahater99``,
    ``ex_lumora_staff``) is a person and is masked below the reach threshold.
    """
    squashed_brand, squashed = _squash(brand), _squash(handle)
    if not squashed_brand or not squashed.startswith(squashed_brand):
        return False
    rest = squashed[len(squashed_brand):]
    return rest in BRAND_ACCOUNT_SUFFIXES or (len(rest) == 2 and rest.isalpha())


def _squash(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold())


@dataclass(frozen=True, slots=True)
class CopyRules:
    """What to change in one payload (or one reason, one note).

    ``drop_text`` and ``drop_author`` name posts by id: the post's text and link, or
    its author, go. ``own_pattern`` finds handles in our own sentences (reason, note);
    ``post_pattern`` in the text of *other* posts, limited to ``post_sources``
    (None: every source), because a name is only the same person on the same platform.
    """

    drop_text: frozenset[int] = frozenset()
    drop_author: frozenset[int] = frozenset()
    author_marker: str | None = None  # what the author of a dropped post becomes (None: unknown author)
    own_pattern: re.Pattern[str] | None = None
    post_pattern: re.Pattern[str] | None = None
    post_sources: frozenset[str] | None = None
    marker: str = AUTHOR_REMOVED  # what a handle found in a text becomes
    authors: Mapping[int, str | None] = field(default_factory=dict)  # handle of each dropped post, for links

    def own_text(self, text: str | None) -> str | None:
        return replace_handles(text, self.own_pattern, self.marker)

    def post(self, post: Mapping[str, Any]) -> dict[str, Any]:
        """One post of a payload, rewritten."""
        out = dict(post)
        pid = out.get("id")
        if pid in self.drop_text:
            out["text"] = ""
            out["url"] = None
        if pid in self.drop_author:
            handle = out.get("author") or self.authors.get(int(pid))
            out["author"] = self.author_marker
            out["url"] = url_without_handle(out.get("url"), handle)
        elif self.post_pattern is not None and (self.post_sources is None or out.get("source") in self.post_sources):
            # Someone else's post that names the person: the name goes, the post stays.
            for key in ("text", "url"):
                if isinstance(out.get(key), str):
                    out[key] = replace_handles(out[key], self.post_pattern, self.marker)
        return out

    def payload(self, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        """The rewritten payload, or None when nothing in it changes (no write needed)."""
        out = dict(payload)
        for key in POST_LISTS:
            posts = out.get(key)
            if isinstance(posts, list):
                out[key] = [self.post(p) if isinstance(p, Mapping) else p for p in posts]
        for key in OWN_TEXT_FIELDS:
            if isinstance(out.get(key), str):
                out[key] = self.own_text(out[key])
        if out.get("reason_data") is not None:  # the reason's facts name the same author as its sentence
            out["reason_data"] = reasons.rewrite_json(out["reason_data"], self.own_text)
        return out if out != dict(payload) else None
