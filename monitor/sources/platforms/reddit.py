"""Reddit: search and subreddit listings through praw, read-only, with praw's own credentials.

praw reads its app credentials itself (``praw.ini`` or the ``praw_*`` variables), so
this module declares them as the library's secrets (masked by ``redact``) rather
than reading them; the shared ``reddit_client`` section only says where praw connects.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from monitor.durations import Duration, PositiveDuration
from monitor.i18n import N_, Problem
from monitor.sources.registry import BuildContext, Platform, SourceSpec, register
from monitor.sources.schema import CollectConfig, Strict

if TYPE_CHECKING:
    from monitor.sources.base import Source
    from monitor.sources.resilience import RetryPolicy

log = logging.getLogger(__name__)
CREDENTIALS = "praw_client_id, praw_client_secret, praw_user_agent (or praw.ini)"


class RedditQuery(Strict):
    """Public posts through praw in read-only mode (app credentials from praw's own configuration)."""

    subreddits: list[str] = Field(default_factory=list,
                                  description="Without r/, e.g. [belgium, brussels]; none = search all of Reddit")
    query: str | None = Field(default=None, min_length=1,
                              description="Reddit search syntax; searched in the subreddits (or all), newest first")
    submissions: bool = Field(default=True,
                              description="Also read new posts of the subreddits, kept when they name the brand")
    comments: bool = Field(default=True,
                           description="Also read new comments of the subreddits, kept when they name the brand")
    poll_every: PositiveDuration = Field(default=timedelta(minutes=5), description="Time between polls")
    max_items: int = Field(default=300, ge=1, le=1000, description="Most items read per listing per poll")
    lookback: Duration = Field(
        default=timedelta(hours=1),
        description="How late an item may show up in a listing (search indexes lag) and still be collected",
    )
    first_poll: Duration = Field(default=timedelta(days=1),
                                 description="On the very first poll, collect items at most this old")

    @field_validator("subreddits")
    @classmethod
    def _clean_subreddits(cls, value: list[str]) -> list[str]:
        cleaned = []
        for name in value:
            bare = name.strip().removeprefix("/").removeprefix("r/")
            if not re.fullmatch(r"[A-Za-z0-9_]{2,21}", bare):
                raise Problem(N_("{name} is not a subreddit name (letters, digits and _ , e.g. belgium)"),
                              name=repr(name))
            cleaned.append(bare)
        return cleaned

    @model_validator(mode="after")
    def _something_to_read(self) -> RedditQuery:
        if not self.subreddits and not self.query:
            raise Problem(N_("give subreddits, a query, or both"))
        return self


class RedditClient(Strict):
    """Where praw connects; credentials stay in praw.ini or the praw_* environment variables."""

    site: str | None = Field(default=None, description="Section of praw.ini to use")
    oauth_url: str | None = Field(default=None, description="Override of https://oauth.reddit.com (tests, proxies)")
    reddit_url: str | None = Field(default=None, description="Override of https://www.reddit.com (token exchange)")


def source_name(brand: str) -> str:
    return f"reddit:{brand}"


def specs(brand: str, block: RedditQuery) -> list[SourceSpec]:
    where = "+".join(f"r/{s}" for s in block.subreddits) or "all of Reddit"
    what = f"{where}" + (f", search {block.query!r}" if block.query else "")
    return [SourceSpec(source_name(brand), "reddit", brand, block.poll_every, None, what)]


def reddit_client(config: CollectConfig, policy: RetryPolicy | None = None) -> Any:
    """A read-only praw client from praw.ini / ``praw_*`` variables, or None with the reason logged.

    Raises nothing: missing credentials are a configuration state, not a crash.
    Its requests go through a ``RedditSession``: bounded answers, and no sleep
    inside prawcore longer than the policy's ``rate_limit_max_wait``.
    """
    import praw
    from praw.exceptions import MissingRequiredAttributeException

    from monitor.sources.reddit import RedditSession
    from monitor.sources.resilience import RetryPolicy

    session = RedditSession(config.http.timeout.total_seconds(), policy or RetryPolicy.from_config(config.http))
    kwargs: dict[str, Any] = {"check_for_updates": False, "requestor_kwargs": {"session": session}}
    client = config.section("reddit_client") or RedditClient()
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


def _shared_client(ctx: BuildContext) -> Any:
    """One praw client for every brand of one build (it counts its own rate limit)."""
    if "reddit" not in ctx.shared:
        ctx.shared["reddit"] = reddit_client(ctx.config, ctx.policy)
    return ctx.shared["reddit"]


def build(ctx: BuildContext, brand: str, block: RedditQuery) -> list[Source]:
    from monitor.sources.reddit import RedditSource

    reddit = _shared_client(ctx)
    if reddit is None:
        log.warning("%s: skipped, no Reddit credentials", source_name(brand))
        return []
    return [RedditSource(
        brand=brand, reddit=reddit, keywords=ctx.keywords(brand), subreddits=block.subreddits, query=block.query,
        submissions=block.submissions, comments=block.comments, max_items=block.max_items, lookback=block.lookback,
        first_poll=block.first_poll, poll_every=block.poll_every, name=source_name(brand), policy=ctx.policy,
    )]


def credentials(ctx: BuildContext) -> str:
    return "ok (praw configuration)" if _shared_client(ctx) is not None else f"MISSING: set {CREDENTIALS}"


PLATFORM = register(Platform(
    key="reddit", source="reddit", display="Reddit", config=RedditQuery, specs=specs, build=build, order=20,
    client_key="reddit_client", client_config=RedditClient, credentials=credentials,
    library_secrets=("praw_client_secret", "praw_password", "praw_refresh_token"),
))
