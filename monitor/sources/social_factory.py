"""Builds the sources of issue 18 (Mastodon, Bluesky, YouTube, Facebook, Instagram, Google News).

Kept apart from ``factory.py`` so each platform's credentials rule sits next
to the others: a source whose credentials are missing is skipped with one
warning line naming the variable to set, and the rest still run.
"""

from __future__ import annotations

import logging
from typing import Any

from monitor.settings import Settings
from monitor.sources.base import Source
from monitor.sources.resilience import RetryPolicy
from monitor.sources.schema import (
    Brand,
    CollectConfig,
    bluesky_source_name,
    facebook_source_name,
    google_news_source_name,
    instagram_source_name,
    mastodon_source_name,
    youtube_source_name,
)

log = logging.getLogger(__name__)


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def credentials_status(kind: str, settings: Settings) -> str | None:
    """What ``monitor sources`` shows for a new kind's credentials; None for kinds this module does not build."""
    if kind == "mastodon":
        return "ok (MASTODON_ACCESS_TOKEN)" if settings.mastodon_access_token else \
            "none (anonymous; set MASTODON_ACCESS_TOKEN where search needs a login)"
    if kind == "bluesky":
        return "ok (BLUESKY_HANDLE, BLUESKY_APP_PASSWORD)" if settings.bluesky_handle and \
            settings.bluesky_app_password else "MISSING: set BLUESKY_HANDLE and BLUESKY_APP_PASSWORD"
    if kind == "youtube":
        return "ok (YOUTUBE_API_KEY)" if settings.youtube_api_key else "MISSING: set YOUTUBE_API_KEY"
    if kind in ("facebook", "instagram"):
        return "ok (FACEBOOK_PAGE_TOKEN)" if settings.facebook_page_token else "MISSING: set FACEBOOK_PAGE_TOKEN"
    return None


def social_specs(brand: str, cfg: Brand) -> list[tuple[str, str, Any, str]]:
    """(name, kind, the brand's config block, what it collects) for each configured new source."""
    out: list[tuple[str, str, Any, str]] = []
    if cfg.mastodon is not None:
        what = ", ".join(([f"search {cfg.mastodon.query!r}"] if cfg.mastodon.query else [])
                         + [f"#{t}" for t in cfg.mastodon.hashtags])
        out.extend((mastodon_source_name(brand, i), "mastodon", cfg.mastodon, f"{i}: {what}")
                   for i in cfg.mastodon.instances)
    if cfg.bluesky is not None:
        out.append((bluesky_source_name(brand), "bluesky", cfg.bluesky, f"searchPosts {cfg.bluesky.query!r}"))
    if cfg.youtube is not None:
        parts = ([f"comments on channel {cfg.youtube.channel_id}"] if cfg.youtube.channel_id else []) + (
            [f"search {cfg.youtube.search!r}"] if cfg.youtube.search else [])
        out.append((youtube_source_name(brand), "youtube", cfg.youtube, ", ".join(parts)))
    if cfg.facebook is not None:
        out.append((facebook_source_name(brand), "facebook", cfg.facebook, f"page {cfg.facebook.page_id}"))
    if cfg.instagram is not None:
        account = cfg.instagram.account_id or "INSTAGRAM_BUSINESS_ID"
        out.append((instagram_source_name(brand), "instagram", cfg.instagram, f"account {account}"))
    if cfg.google_news is not None:
        out.extend((google_news_source_name(brand, e), "news", cfg.google_news, f"Google News {e}")
                   for e in cfg.google_news.editions)
    return out


def build_social(config: CollectConfig, settings: Settings, policy: RetryPolicy, timeout: float) -> list[Source]:
    """Every configured new source that has its credentials; one warning line per skipped source."""
    sources: list[Source] = []
    for brand, cfg in config.brands.items():
        for name, kind, block, _what in social_specs(brand, cfg):
            built = _build(kind, name, brand, block, config, settings, policy, timeout)
            if built is not None:
                sources.append(built)
    return sources


def _build(kind: str, name: str, brand: str, block: Any, config: CollectConfig, settings: Settings,
           policy: RetryPolicy, timeout: float) -> Source | None:
    cfg = config.brands[brand]
    if kind == "mastodon":
        from monitor.sources.mastodon import MastodonSource

        instance = next(i for i in block.instances if mastodon_source_name(brand, i) == name)
        token = _secret(settings.mastodon_access_token) if block.account_instance and \
            block.account_instance.rstrip("/") == instance else None
        return MastodonSource.connect(instance, access_token=token, timeout=timeout, brand=brand, query=block.query,
                                      hashtags=block.hashtags, languages=cfg.languages, name=name,
                                      max_pages=block.max_pages_per_poll, poll_every=block.poll_every, policy=policy)
    if kind == "bluesky":
        from monitor.sources.bluesky import BlueskySource

        password = _secret(settings.bluesky_app_password)
        if not settings.bluesky_handle or not password:
            log.warning("%s: skipped, BLUESKY_HANDLE and BLUESKY_APP_PASSWORD are not set", name)
            return None
        return BlueskySource(brand=brand, query=block.query, handle=settings.bluesky_handle, app_password=password,
                             service=block.service, languages=cfg.languages, name=name,
                             max_pages=block.max_pages_per_poll, poll_every=block.poll_every, timeout=timeout,
                             policy=policy)
    if kind == "youtube":
        from monitor.sources.youtube import YouTubeSource

        key = _secret(settings.youtube_api_key)
        if not key:
            log.warning("%s: skipped, YOUTUBE_API_KEY is not set", name)
            return None
        return YouTubeSource(brand=brand, api_key=key, channel_id=block.channel_id, search=block.search,
                             search_every=block.search_every, units_per_day=block.units_per_day,
                             api_root=block.api_root, name=name, max_pages=block.max_pages_per_poll,
                             poll_every=block.poll_every, timeout=timeout, policy=policy, languages=cfg.languages)
    if kind in ("facebook", "instagram"):
        return _graph(kind, name, brand, block, settings, policy, timeout)
    from monitor.sources.google_news import google_news_source

    return google_news_source(brand, block, name, keywords=config.keywords(brand), languages=cfg.languages,
                              timeout=timeout, policy=policy)


def _graph(kind: str, name: str, brand: str, block: Any, settings: Settings, policy: RetryPolicy,
           timeout: float) -> Source | None:
    from monitor.sources.graph import FacebookSource, GraphClient, InstagramSource

    token = _secret(settings.facebook_page_token)
    if not token:
        log.warning("%s: skipped, FACEBOOK_PAGE_TOKEN is not set", name)
        return None
    client = GraphClient(token=token, root=block.graph_root, version=block.graph_version, timeout=timeout,
                         policy=policy)
    if kind == "facebook":
        return FacebookSource(brand=brand, page_id=block.page_id, client=client, comments=block.comments,
                              visitor_posts=block.visitor_posts, tagged=block.tagged, recent_posts=block.recent_posts,
                              max_pages=block.max_pages_per_poll, name=name, poll_every=block.poll_every)
    account = block.account_id or settings.instagram_business_id
    if not account:
        log.warning("%s: skipped, set INSTAGRAM_BUSINESS_ID (or instagram.account_id)", name)
        return None
    return InstagramSource(brand=brand, account_id=account, client=client, comments=block.comments,
                           mentions=block.mentions, recent_media=block.recent_media,
                           max_pages=block.max_pages_per_poll, name=name, poll_every=block.poll_every)
