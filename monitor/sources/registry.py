"""The platforms the monitor knows, each declared once in ``sources/platforms/<name>.py``.

A platform used to be spread over the factory, ``monitor.yaml``'s schema, the
settings, the redaction list and three display-name dictionaries that
disagreed. Now each platform module registers one ``Platform``: its block in
``monitor.yaml`` (a pydantic model), the sources that block configures, how to
build them, the environment variables it reads (secrets among them, masked
everywhere by ``redact``), and the name people read in alerts and the digest.
Everything else asks this module: ``schema.collect_model()`` adds the blocks to
``monitor.yaml``'s format, ``factory`` builds and lists sources, ``redact`` and
``Settings`` learn the secrets, rules' ``sources:`` are checked against
``known_sources()``, alerts and the digest call ``display_name()``.

Adding a platform = one module in ``sources/platforms/`` (found by listing that
package, no list to edit), its tests, and one row in the README's table.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.sources.base import Source
    from monitor.sources.resilience import RetryPolicy
    from monitor.sources.schema import CollectConfig


@dataclass(frozen=True, slots=True)
class EnvVar:
    """An environment variable (or ``.env`` line) a platform reads; never a key of ``monitor.yaml``."""

    name: str
    description: str
    secret: bool = True  # masked in logs, errors and the store (``redact``)
    required: bool = True  # without it the platform's sources are skipped with a warning


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A configured source, described without building a client (for ``monitor sources`` and reloads)."""

    name: str
    kind: str  # the platform's ``source``: what its mentions carry and rules' ``sources:`` name
    brand: str
    poll_every: timedelta
    daily_budget: int | None = None
    target: str = ""  # the query, subreddits or feed URL, for display
    platform: str = ""  # the platform's key in monitor.yaml ("feeds", "google_news"...), set by the registry


@dataclass(slots=True)
class BuildContext:
    """What a platform's ``build`` needs besides its own block: limits, credentials, the whole file.

    ``shared`` lives for one ``build_sources`` (or one ``monitor sources``) call, so a
    client serving several brands (praw) is made once.
    """

    config: CollectConfig
    env: Callable[[str], str | None]  # a platform variable's value: ``Settings.env``
    policy: RetryPolicy
    timeout: float
    shared: dict[str, Any] = field(default_factory=dict)

    def keywords(self, brand: str) -> list[str]:
        return self.config.keywords(brand)

    def languages(self, brand: str) -> list[str]:
        return list(self.config.brands[brand].languages)


def absent() -> None:
    """The value of a platform's block when a brand does not have it: the block is optional."""
    return


@dataclass(frozen=True, slots=True)
class Platform:
    """One platform, as its module declares it.

    ``config`` is the type of its block under a brand in ``monitor.yaml`` (a pydantic
    model, or e.g. ``list[Feed]`` with ``default_factory=list``); a brand without the
    block has ``None`` (or the default). ``specs`` says which sources a brand's block
    configures (their names key cursors and health); ``build`` makes them, logging one
    warning line for each it must skip (missing credentials) and leaving it out.
    """

    key: str  # the block's key under a brand in monitor.yaml, e.g. "x", "feeds", "google_news"
    source: str  # ``Mention.source`` of its posts, the name rules use: "x", "news"
    display: str  # what people read: "X", "YouTube", "News"
    config: Any
    specs: Callable[[str, Any], list[SourceSpec]]
    build: Callable[[BuildContext, str, Any], list[Source]]
    env: tuple[EnvVar, ...] = ()
    order: int = 100  # position in monitor.yaml's format and in listings
    default_factory: Callable[[], Any] = absent  # the block's value when a brand omits it (``absent``: optional)
    # Top-level section of monitor.yaml shared by all brands (Reddit's ``reddit_client``), if any.
    client_key: str | None = None
    client_config: type[Any] | None = None
    # The ``credentials:`` line of ``monitor sources``; default: from ``env``.
    credentials: Callable[[BuildContext], str] | None = None
    # Secret variables read by the client library itself, not by us (praw's), masked all the same.
    library_secrets: tuple[str, ...] = ()
    # Other names people write for it ("twitter"), so a rule naming one is told the right one.
    aliases: tuple[str, ...] = ()
    # What its sources bring, as an alert says it ("no new comments"): "posts", "comments", "articles",
    # "reviews".
    brings: str = "posts"

    def credentials_status(self, ctx: BuildContext) -> str:
        """What ``monitor sources`` shows: "ok (NAMES)", "MISSING: set NAMES" or "none needed"."""
        if self.credentials is not None:
            return self.credentials(ctx)
        return self.env_status(ctx)

    def env_status(self, ctx: BuildContext) -> str:
        """The status from ``env`` alone (what a platform's own ``credentials`` adds to)."""
        required = [v.name for v in self.env if v.required]
        missing = [name for name in required if not ctx.env(name)]
        if missing:
            return f"MISSING: set {' and '.join(missing)}"
        return f"ok ({', '.join(required)})" if required else "none needed"

    def missing(self, ctx: BuildContext) -> list[str]:
        """Required variables that are not set; the caller skips the source, naming them."""
        return [v.name for v in self.env if v.required and not ctx.env(v.name)]


_lock = threading.Lock()
_platforms: dict[str, Platform] = {}
_loaded = False
_generation = 0  # bumped on every change, so models built from the registry are rebuilt


def register(platform: Platform) -> Platform:
    """Add a platform (its module calls this on import). Its key and source must fit the others."""
    global _generation
    with _lock:
        known = _platforms.get(platform.key)
        if known is not None and known != platform:
            raise ValueError(f"platform {platform.key!r} is registered twice")
        for other in _platforms.values():
            if other.source == platform.source and other.display != platform.display and other.key != platform.key:
                raise ValueError(f"platforms {other.key!r} and {platform.key!r} share the source "
                                 f"{platform.source!r} but name it {other.display!r} and {platform.display!r}")
        _platforms[platform.key] = platform
        _generation += 1
    return platform


def unregister(key: str) -> None:
    """Remove a platform (tests that add a fake one)."""
    global _generation
    with _lock:
        _platforms.pop(key, None)
        _generation += 1


@contextmanager
def registered(platform: Platform) -> Iterator[Platform]:
    """``platform`` registered for the duration of a ``with`` block."""
    register(platform)
    try:
        yield platform
    finally:
        unregister(platform.key)


def _load_builtin() -> None:
    """Import every module of ``monitor.sources.platforms`` once: each registers its platform."""
    global _loaded
    if _loaded:
        return
    from monitor.sources import platforms as package

    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")):
        importlib.import_module(f"{package.__name__}.{module}")
    _loaded = True


def generation() -> int:
    _load_builtin()
    return _generation


def platforms() -> list[Platform]:
    """Every platform, in ``order`` (then key)."""
    _load_builtin()
    with _lock:
        return sorted(_platforms.values(), key=lambda p: (p.order, p.key))


def get(key: str) -> Platform:
    _load_builtin()
    return _platforms[key]


def known_sources() -> list[str]:
    """The values of ``Mention.source`` (and of rules' ``sources:``), sorted."""
    return sorted({p.source for p in platforms()})


def suggest(name: str) -> str | None:
    """The known source someone meant by ``name``: an alias, a platform's key (``feeds``), or a near spelling."""
    folded = name.strip().casefold()
    for platform in platforms():
        if folded in (platform.key.casefold(), *(a.casefold() for a in platform.aliases)):
            return platform.source
    close = difflib.get_close_matches(folded, known_sources(), n=1, cutoff=0.6)
    return close[0] if close else None


def display_names() -> Mapping[str, str]:
    return {p.source: p.display for p in platforms()}


def display_name(source: str) -> str:
    """What people read for a ``Mention.source``: "YouTube", "Mastodon"; an unknown one as it is (replays)."""
    return display_names().get(source, source)


def env_vars() -> list[EnvVar]:
    """Every platform variable, once each (Facebook and Instagram share their token)."""
    seen: dict[str, EnvVar] = {}
    for platform in platforms():
        for var in platform.env:
            seen.setdefault(var.name, var)
    return list(seen.values())


def secret_env_names() -> list[str]:
    """Variables whose values are secrets wherever they appear (``redact`` masks them)."""
    names = [v.name for v in env_vars() if v.secret]
    names += [name for p in platforms() for name in p.library_secrets]
    return list(dict.fromkeys(names))
