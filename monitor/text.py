"""Text helpers shared by every place that quotes a post: one rule for shortening.

The Slack alert, the console and the weekly digest all quote posts in a
limited space; they shorten with this one function so a quote reads the same
wherever it appears and a fix to the rule reaches all of them.
"""

from __future__ import annotations

ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """``text`` on one line in at most ``limit`` characters, cut at a word boundary, '…' when cut.

    Whitespace (newlines included) collapses to single spaces. The cut falls on
    the last space that leaves room for the ellipsis, and punctuation left
    dangling there (``,.;:``) goes. A single word longer than the limit is cut
    inside the word rather than dropped: a post that is one long link still
    shows where it points.
    """
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = flat[: limit - 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else head
    return cut.rstrip(" ,.;:") + ELLIPSIS
