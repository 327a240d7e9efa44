"""The one rule for a link that came from outside (a post's URL, a feed's item): http(s) to a host, or no link.

A stored post URL is whatever a source or a feed said. ``javascript:alert(1)``
or ``data:text/html,...`` becomes script the moment a renderer puts it in an
``href`` (the console's Content-Security-Policy was all that stopped it), and
Slack and e-mail clients have no such policy. Every renderer (console, Slack,
e-mail, digest) calls ``web_link`` and shows no link when it answers None.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_LINK = 2048  # longer is no post's address


def web_link(url: str | None) -> str | None:
    """``url`` when it is an absolute http or https address with a host; None for anything else.

    Control characters and spaces inside refuse it too: browsers drop tabs and newlines from a
    scheme, so ``java\\tscript:`` would otherwise read as ``javascript:``.
    """
    if not url:
        return None
    url = url.strip()
    if len(url) > MAX_LINK or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # an unbalanced IPv6 bracket, a bad port
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return url
