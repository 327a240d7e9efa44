"""Text helpers shared by every place that quotes a post: one rule for shortening.

The Slack alert, the console and the weekly digest all quote posts in a
limited space; they shorten with this one function so a quote reads the same
wherever it appears and a fix to the rule reaches all of them.
"""

from __future__ import annotations

PLACEHOLDER = " …"


def shorten(text: str, limit: int) -> str:
    """``text`` on one line in at most ``limit`` characters, cut between words, `` …`` when cut.

    Whitespace (newlines included) collapses to single spaces, and as many whole
    words are kept as fit with the placeholder (what ``textwrap.shorten`` does,
    so alerts read as they always have). Where ``textwrap.shorten`` drops a first
    word longer than the limit and leaves only the placeholder, this cuts inside
    that word: a post that is one long link still shows where it points.
    """
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    room = limit - len(PLACEHOLDER)
    kept = flat[: room + 1].rsplit(" ", 1)[0] if " " in flat[: room + 1] else ""
    return (kept or flat[:room]) + PLACEHOLDER
