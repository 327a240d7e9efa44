"""``monitor.yaml`` + environment -> the live sources the worker polls, platform by platform.

Which class serves which platform and where its credentials come from is each
platform's own business (``sources/platforms/``, through the registry); this
module walks the brands and asks each platform. A source whose credentials
are absent is skipped with one warning line (the others still run), so a
missing Reddit app never stops X from being watched. Each built source
carries ``poll_every`` for its own scheduler job and ``brand`` for its health
signal.
"""

from __future__ import annotations

from monitor.settings import Settings
from monitor.sources import registry
from monitor.sources.base import Source
from monitor.sources.registry import BuildContext, SourceSpec
from monitor.sources.resilience import RetryPolicy, Sleep
from monitor.sources.schema import CollectConfig, brand_specs

__all__ = ["SourceSpec", "build_sources", "configured", "credentials_status", "platform_line"]


def configured(config: CollectConfig) -> list[SourceSpec]:
    """Every source ``monitor.yaml`` configures, built or not (for ``monitor sources`` and reloads)."""
    return [spec for brand, cfg in config.brands.items() for spec in brand_specs(brand, cfg)]


def context(config: CollectConfig, settings: Settings, *, sleep: Sleep | None = None) -> BuildContext:
    """What the platforms' ``build`` and ``credentials`` share for one pass over the file."""
    policy = RetryPolicy.from_config(config.http, sleep=sleep) if sleep else RetryPolicy.from_config(config.http)
    return BuildContext(config=config, env=settings.env, policy=policy, timeout=config.http.timeout.total_seconds())


def build_sources(config: CollectConfig, settings: Settings, *, sleep: Sleep | None = None) -> list[Source]:
    """Every configured source that has its credentials; one warning line per skipped source."""
    ctx = context(config, settings, sleep=sleep)
    sources: list[Source] = []
    for brand, cfg in config.brands.items():
        for platform in registry.platforms():
            block = cfg.block(platform.key)
            if block is not None:
                sources.extend(platform.build(ctx, brand, block))
    return sources


def credentials_status(spec: SourceSpec, ctx: BuildContext) -> str:
    """The ``credentials:`` line of ``monitor sources`` for one configured source."""
    return registry.get(spec.platform).credentials_status(ctx)


def platform_line(spec: SourceSpec) -> str:
    """'YouTube (youtube in monitor.yaml)': the name alerts use, and the block that configures the source."""
    platform = registry.get(spec.platform)
    return f"{platform.display} ({platform.key} in monitor.yaml)"
