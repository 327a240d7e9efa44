"""``monitor.yaml`` + environment -> the live sources the worker polls.

The only place that knows which class serves which platform and where each
one's credentials come from. A source whose credentials are absent is skipped
with one warning line (the others still run), so a missing Reddit app never
stops X from being watched. Each built source carries ``poll_every`` for its
own scheduler job and ``brand`` for its health signal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from monitor.settings import Settings
from monitor.sources.base import Source
from monitor.sources.resilience import RetryPolicy, Sleep
from monitor.sources.schema import CollectConfig, feed_source_name, reddit_source_name, x_source_name
from monitor.sources.social_factory import build_social, social_specs

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A configured source, described without building a client (for ``monitor sources``)."""

    name: str
    kind: str  # "x", "reddit", "news", "mastodon", "bluesky", "youtube", "facebook", "instagram"
    brand: str
    poll_every: timedelta
    daily_budget: int | None = None
    target: str = ""  # the query, subreddits or feed URL, for display


def configured(config: CollectConfig) -> list[SourceSpec]:
    specs: list[SourceSpec] = []
    for brand, cfg in config.brands.items():
        if cfg.x is not None:
            specs.append(SourceSpec(x_source_name(brand), "x", brand, cfg.x.poll_every, cfg.x.requests_per_day,
                                    cfg.x.query))
        if cfg.reddit is not None:
            where = "+".join(f"r/{s}" for s in cfg.reddit.subreddits) or "all of Reddit"
            what = f"{where}" + (f", search {cfg.reddit.query!r}" if cfg.reddit.query else "")
            specs.append(SourceSpec(reddit_source_name(brand), "reddit", brand, cfg.reddit.poll_every, None, what))
        for feed in cfg.feeds:
            specs.append(SourceSpec(feed_source_name(brand, feed.name), "news", brand, feed.poll_every, None,
                                    feed.url))
        for name, kind, block, what in social_specs(brand, cfg):
            budget = block.units_per_day if kind == "youtube" else None
            specs.append(SourceSpec(name, kind, brand, block.poll_every, budget, what))
    return specs


def reddit_client(config: CollectConfig, policy: RetryPolicy | None = None) -> Any:
    """A read-only praw client from praw.ini / ``praw_*`` variables, or None with the reason logged.

    Raises nothing: missing credentials are a configuration state, not a crash.
    Its requests go through a ``RedditSession``: bounded answers, and no sleep
    inside prawcore longer than the policy's ``rate_limit_max_wait``.
    """
    import praw
    from praw.exceptions import MissingRequiredAttributeException

    from monitor.sources.reddit import RedditSession

    session = RedditSession(config.http.timeout.total_seconds(), policy or RetryPolicy.from_config(config.http))
    kwargs: dict[str, Any] = {"check_for_updates": False, "requestor_kwargs": {"session": session}}
    client = config.reddit_client
    if client.oauth_url:
        kwargs["oauth_url"] = client.oauth_url.rstrip("/")
    if client.reddit_url:
        kwargs["reddit_url"] = client.reddit_url.rstrip("/")
    try:
        reddit = praw.Reddit(client.site, **kwargs) if client.site else praw.Reddit(**kwargs)
    except MissingRequiredAttributeException as exc:
        log.warning("reddit: credentials missing (%s); set praw_client_id, praw_client_secret and "
                    "praw_user_agent, or a praw.ini site", " ".join(str(exc).split()))
        return None
    except Exception as exc:  # e.g. an unknown praw.ini site
        log.warning("reddit: praw configuration unusable: %s: %s", type(exc).__name__, " ".join(str(exc).split()))
        return None
    reddit.read_only = True
    return reddit


def build_sources(config: CollectConfig, settings: Settings, *, sleep: Sleep | None = None) -> list[Source]:
    """Every configured source that has its credentials; one warning line per skipped source."""
    from monitor.sources.feeds import FeedSource
    from monitor.sources.reddit import RedditSource
    from monitor.sources.x import XSource

    policy = RetryPolicy.from_config(config.http, sleep=sleep) if sleep else RetryPolicy.from_config(config.http)
    timeout = config.http.timeout.total_seconds()
    token = settings.x_bearer_token.get_secret_value() if settings.x_bearer_token else None
    reddit: Any = None
    reddit_tried = False
    sources: list[Source] = []
    for brand, cfg in config.brands.items():
        keywords = config.keywords(brand)
        if cfg.x is not None:
            if not token:
                log.warning("%s: skipped, X_BEARER_TOKEN is not set", x_source_name(brand))
            else:
                sources.append(XSource.with_token(
                    token, timeout=timeout, brand=brand, query=cfg.x.query, languages=cfg.languages,
                    name=x_source_name(brand), daily_budget=cfg.x.requests_per_day,
                    max_pages=cfg.x.max_pages_per_poll, poll_every=cfg.x.poll_every, policy=policy,
                ))
        if cfg.reddit is not None:
            if not reddit_tried:
                reddit, reddit_tried = reddit_client(config, policy), True
            if reddit is None:
                log.warning("%s: skipped, no Reddit credentials", reddit_source_name(brand))
            else:
                r = cfg.reddit
                sources.append(RedditSource(
                    brand=brand, reddit=reddit, keywords=keywords, subreddits=r.subreddits, query=r.query,
                    submissions=r.submissions, comments=r.comments, max_items=r.max_items, lookback=r.lookback,
                    first_poll=r.first_poll, poll_every=r.poll_every, name=reddit_source_name(brand), policy=policy,
                ))
        for feed in cfg.feeds:
            sources.append(FeedSource(
                brand=brand, site=feed.name, url=feed.url, keywords=keywords, languages=cfg.languages,
                reach=feed.reach, language=feed.language, poll_every=feed.poll_every,
                name=feed_source_name(brand, feed.name), timeout=timeout, policy=policy,
            ))
    sources.extend(build_social(config, settings, policy, timeout))
    return sources
