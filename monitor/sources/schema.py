"""Reads ``monitor.yaml`` (what to collect), the file the operator edits.

The one module that knows that file's frame: brands, their keywords and
languages, HTTP limits, the source-health delay. Each platform's block under a
brand (``x``, ``reddit``, ``feeds``, ``mastodon``...) is declared by that
platform's module in ``sources/platforms/`` and added here from the registry
(``collect_model``), so a platform lives in one place. ``monitor check``,
``monitor run`` and ``monitor sources`` load the file through ``load_collect``.

One pydantic model is the single source of truth for the format (like the rule
and escalation files), validated through ``monitor.yamlconfig.parse`` so a typo
reads ``monitor.yaml:12:5: brands.Lumora.x: unknown key 'querry'; did you mean
'query'?``. Secrets never live here: each platform reads its own from the
environment (``Platform.env``); an unknown key such as ``bearer_token`` is
rejected like any typo.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from monitor.durations import Duration
from monitor.i18n import N_, Problem
from monitor.langcodes import language_codes
from monitor.sources import registry
from monitor.sources.registry import SourceSpec
from monitor.yamlconfig import parse

# cursors.source and source_health.source are String(64): a source name must fit.
MAX_SOURCE_NAME = 64


class Strict(BaseModel):
    """Unknown keys are errors (a typo is named, with a suggestion), and a loaded file never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def positive(value: timedelta, what: str) -> timedelta:
    if value <= timedelta(0):
        raise Problem(N_("{what} must be longer than zero"), what=what)
    return value


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|bytes?|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "byte": 1, "bytes": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20,
          "gib": 2**30}


def _byte_size(value: object) -> object:
    """'5 MB', '512kB', '2 MiB' or a plain number of bytes, as bytes; anything else is left for pydantic to refuse."""
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise Problem(N_("expected a size like '5 MB' or '500 kB', got {value}"), value=repr(value))
        return int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])
    return value


class HttpConfig(Strict):
    """How every source talks to its API: bounded waits so one slow API never stalls the worker."""

    timeout: Duration = Field(default=timedelta(seconds=20),
                              description="Per HTTP request, from connecting to the last byte of the answer")
    max_body: int = Field(default=5_000_000, ge=1_000,
                          description="Largest answer read, e.g. '5 MB'; a larger one fails the poll, saying so")
    attempts: int = Field(default=3, ge=1, le=10,
                          description="Tries for a 5xx, a timeout or a dropped connection (1 = no retry)")
    backoff: Duration = Field(default=timedelta(seconds=2),
                              description="First wait between tries; doubles each time, with jitter")
    rate_limit_max_wait: Duration = Field(
        default=timedelta(seconds=60),
        description="Wait out a 429 whose reset is at most this far away; a later reset skips polls until then",
    )

    @field_validator("timeout")
    @classmethod
    def _timeout_positive(cls, value: timedelta) -> timedelta:
        return positive(value, "the timeout")

    _size = field_validator("max_body", mode="before")(classmethod(lambda cls, v: _byte_size(v)))


class Brand(Strict):
    """One brand: its names and where to look for them."""

    keywords: list[str] = Field(
        default_factory=list,
        description="Names matched as whole words (any case) in Reddit listings and feeds; default: the brand name",
    )
    languages: list[str] = Field(default_factory=lambda: ["nl", "fr", "en"],
                                 description="Languages expected; a platform's language tag outside these is ignored")
    # Each platform's block (x, reddit, feeds, mastodon...) is added by ``collect_model()`` from the registry.

    def block(self, key: str) -> Any:
        """The brand's block for platform ``key`` (its config model, a list, or None when absent)."""
        return getattr(self, key, None)

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, value: list[str]) -> list[str]:
        return language_codes(value)

    @field_validator("keywords")
    @classmethod
    def _keywords_not_blank(cls, value: list[str]) -> list[str]:
        if any(not k.strip() for k in value):
            raise Problem(N_("a keyword cannot be empty"))
        return value


class SourceAbsence(Strict):
    """When a source that usually brings posts and has brought none raises a source-health alert."""

    factor: float = Field(default=4.0, gt=1.0, description="Silent for longer than this many of its usual gaps")
    at_least: Duration = Field(default=timedelta(hours=6),
                               description="...and at least this long; both counted in business hours")


class CollectConfig(Strict):
    """The whole of ``monitor.yaml``."""

    source_unhealthy_after: Duration = Field(
        default=timedelta(hours=2),
        description="A source failing (or rate limited) this long raises a source-health alert",
    )
    source_absence: SourceAbsence = Field(default_factory=SourceAbsence)
    http: HttpConfig = Field(default_factory=HttpConfig)
    # A platform's section shared by all brands (Reddit's ``reddit_client``) is added by ``collect_model()``.
    brands: dict[str, Brand] = Field(description="Brand name -> what to collect for it")

    @field_validator("source_unhealthy_after")
    @classmethod
    def _unhealthy_positive(cls, value: timedelta) -> timedelta:
        return positive(value, "source_unhealthy_after")

    @field_validator("brands")
    @classmethod
    def _names_fit(cls, value: dict[str, Brand]) -> dict[str, Brand]:
        if not value:
            raise Problem(N_("list at least one brand"))
        for name, brand in value.items():
            if not name.strip() or ":" in name:
                raise Problem(N_("brand name {name} must be non-empty and without ':'"), name=repr(name))
            for source in source_names(name, brand):
                if len(source) > MAX_SOURCE_NAME:
                    raise Problem(N_("source name {name} is longer than {limit} characters; shorten the brand or "
                                     "feed name"), name=repr(source), limit=MAX_SOURCE_NAME)
        return value

    def keywords(self, brand: str) -> list[str]:
        return list(self.brands[brand].keywords) or [brand]

    def section(self, key: str) -> Any:
        """A platform's top-level section (``reddit_client``), or None."""
        return getattr(self, key, None)


def source_names(name: str, brand: Brand) -> list[str]:
    """Names of the sources a brand configures: the keys of their cursors and health rows."""
    return [spec.name for spec in brand_specs(name, brand)]


def brand_specs(name: str, brand: Brand) -> list[SourceSpec]:
    """The sources a brand configures, platform by platform in the registry's order."""
    specs: list[SourceSpec] = []
    for platform in registry.platforms():
        block = brand.block(platform.key)
        if block is not None:  # stamped with the platform here, so no module can name another
            specs.extend(replace(spec, platform=platform.key) for spec in platform.specs(name, block))
    return specs


_MODELS: dict[int, type[CollectConfig]] = {}


def collect_model() -> type[CollectConfig]:
    """``CollectConfig`` with every registered platform's block under a brand (and its shared section).

    Built from the registry (and rebuilt when it changes), so a platform module alone
    makes its key valid in ``monitor.yaml``, with typos caught and suggested like any other.
    """
    generation = registry.generation()
    cached = _MODELS.get(generation)
    if cached is not None:
        return cached
    blocks: dict[str, Any] = {}
    sections: dict[str, Any] = {}
    for platform in registry.platforms():
        if platform.default_factory is registry.absent:
            blocks[platform.key] = (Optional[platform.config], None)  # noqa: UP045 (a runtime type)
        else:
            blocks[platform.key] = (platform.config, Field(default_factory=platform.default_factory))
        if platform.client_key and platform.client_config is not None:
            sections[platform.client_key] = (platform.client_config, Field(default_factory=platform.client_config))
    brand = create_model("Brand", __base__=Brand, __doc__=Brand.__doc__, **blocks)
    model = create_model("CollectConfig", __base__=CollectConfig, __doc__=CollectConfig.__doc__,
                         brands=(dict[str, brand], Field(description="Brand name -> what to collect for it")),  # type: ignore[valid-type]
                         **sections)
    _MODELS.clear()
    _MODELS[generation] = model
    return model


def load_collect(path: Path) -> CollectConfig:
    """Raises ``ConfigInvalid`` listing every problem with file, line and key."""
    return parse(collect_model(), path)


# --- shared by the platforms' blocks (sources/platforms/) -------------------------------------------

def base_url(value: str) -> str:
    """An http(s) base URL without its trailing slash (API roots, instances)."""
    if not re.match(r"^https?://[^\s/]+", value):
        raise Problem(N_("expected an http(s) URL, got {value}"), value=repr(value))
    return value.rstrip("/")


class Polled(Strict):
    """What every polled API block has: an interval and a bound on pages per poll."""

    poll_every: Duration = Field(default=timedelta(minutes=10), description="Time between polls")
    max_pages_per_poll: int = Field(default=3, ge=1, le=50,
                                    description="Pages one poll may read; a backlog continues on the next polls")

    @field_validator("poll_every")
    @classmethod
    def _poll_positive(cls, value: timedelta) -> timedelta:
        return positive(value, "the poll interval")
