"""Google News: an RSS search feed per brand and edition (``hl=nl&gl=BE``, ``hl=fr&gl=BE``).

Each edition is an ordinary ``FeedSource`` (conditional GET, retries,
``Retry-After``, the brand filter); this module builds its URL and rewrites
what Google's items look like into what a reader needs:

* the title ``Headline - Publisher`` becomes the text ``Headline`` with the
  publisher as author (Google's summary repeats the two, so it is dropped);
* the link is Google's redirect (``news.google.com/rss/articles/<id>``).
  **Decoded offline, without a request:** a link carrying the target in a
  ``url=`` parameter, and article ids of the older format, whose base64
  payload contains the publisher URL itself. **Not decoded:** ids of the
  newer opaque format (``AU_yqL...``, most items since mid 2024), which only
  Google's servers can resolve; those keep the Google link, which still
  redirects a reader's browser to the article;
* the same article reached through several editions (or several brands'
  feeds) gets one id: ``gnews:`` + a hash of the publisher URL when decoded,
  else of the publisher and the normalised headline, so the store keeps it once;
* the language is left to the language detector (``classify.language``, the
  one the sentiment model uses): an edition lists articles in other languages
  too (an English headline in ``nl-BE``), so its ``hl`` says nothing of one item.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Collection
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit, urlunsplit

from monitor.models import Mention
from monitor.sources.base import PollResult
from monitor.sources.feeds import FeedSource
from monitor.sources.resilience import RetryPolicy

_ARTICLE = re.compile(r"/(?:rss/)?articles/([A-Za-z0-9_-]+)")
_URL_IN_BYTES = re.compile(rb"https?://[\x21-\x7e]+")
_TRACKING = re.compile(r"^(utm_|at_|xtor|fbclid|gclid|ocid)", re.IGNORECASE)


def feed_url(root: str, query: str, edition: str) -> str:
    """``nl-BE`` -> ``.../rss/search?q=...&hl=nl&gl=BE&ceid=BE:nl``."""
    language, region = edition.split("-", 1)
    return f"{root.rstrip('/')}/rss/search?q={quote_plus(query)}&hl={language}&gl={region}&ceid={region}:{language}"


def decode_link(link: str) -> str | None:
    """The publisher URL a Google News link leads to, when the link itself carries it; else None."""
    parts = urlsplit(link)
    target = parse_qs(parts.query).get("url")
    if target and target[0].startswith(("http://", "https://")):
        return target[0]
    match = _ARTICLE.search(parts.path)
    if not match:
        return None
    token = match.group(1)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    found = _URL_IN_BYTES.search(raw)
    if not found:
        return None  # the newer opaque format: only Google can resolve it
    start = found.start()
    # A protobuf string field: the URL's length is the varint just before it (one or two bytes).
    if start >= 2 and raw[start - 2] & 0x80 and not raw[start - 1] & 0x80:
        length = (raw[start - 2] & 0x7F) | (raw[start - 1] << 7)
    elif start >= 1 and not raw[start - 1] & 0x80:
        length = raw[start - 1]
    else:
        length = len(found.group(0))
    return raw[start:start + length].decode("ascii", errors="replace") if length else None


def canonical_url(url: str) -> str:
    """Lower-case host, no fragment, no tracking parameters: the same article, however it was linked."""
    parts = urlsplit(url)
    query = "&".join(p for p in parts.query.split("&") if p and not _TRACKING.match(p))
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/") or "/", query, ""))


def split_title(title: str) -> tuple[str, str | None]:
    """``Headline - Publisher`` -> (headline, publisher); a title without the suffix is all headline."""
    head, sep, publisher = title.rpartition(" - ")
    return (head.strip(), publisher.strip()) if sep and head.strip() and publisher.strip() else (title.strip(), None)


def article_id(url: str | None, publisher: str | None, headline: str) -> str:
    """One id per article across editions: from the publisher URL when known, else publisher + headline."""
    basis = canonical_url(url) if url else f"{(publisher or '').casefold()}|{' '.join(headline.casefold().split())}"
    return "gnews:" + hashlib.sha1(basis.encode("utf-8")).hexdigest()


def rewrite(mention: Mention) -> Mention:
    """A Google News item as the publisher's article (see the module docstring)."""
    title = mention.text.split("\n\n", 1)[0]
    headline, publisher = split_title(title)
    url = decode_link(mention.url) if mention.url else None
    return replace(mention, source_id=article_id(url, publisher, headline), text=headline,
                   url=url or mention.url, author_handle=publisher or mention.author_handle, language=None)


class GoogleNewsSource(FeedSource):
    """One Google News edition's search feed for one brand."""

    def poll(self, cursor: str | None) -> PollResult:
        result = super().poll(cursor)
        mentions, have = [], set()
        for m in (rewrite(m) for m in result.mentions):
            if m.source_id not in have:  # the same article twice in one feed (two publishers' syndication)
                have.add(m.source_id)
                mentions.append(m)
        return PollResult(mentions, result.next_cursor, skipped=result.skipped, requests=result.requests,
                              problem=result.problem, deferred_until=result.deferred_until)


def google_news_source(brand: str, block: Any, name: str, *, keywords: Collection[str], languages: Collection[str],
                       timeout: float, policy: RetryPolicy) -> GoogleNewsSource:
    """The source of the edition ``name`` ends with (``news:<brand>:google-nl-BE``)."""
    edition = name.rsplit(":google-", 1)[1]
    query = block.query or " OR ".join(f'"{k}"' if " " in k else k for k in keywords)
    return GoogleNewsSource(brand=brand, site=f"Google News {edition}", url=feed_url(block.root, query, edition),
                            keywords=keywords, languages=languages, language=edition.split("-")[0],
                            poll_every=block.poll_every, name=name, timeout=timeout, policy=policy)
