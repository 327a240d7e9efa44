"""What the review platforms' blocks share (not a platform: the registry skips ``_`` modules)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from pydantic import Field

from monitor.durations import Duration
from monitor.sources import registry
from monitor.sources.registry import BuildContext, EnvVar, SourceSpec
from monitor.sources.schema import Polled


class ReviewQuery(Polled):
    """A business listing's reviews. ``reach`` stands for the audience of a review there (README: Reviews)."""

    poll_every: Duration = Field(default=timedelta(minutes=30), description="Time between polls")
    reach: int = Field(default=1000, ge=0, description="Reach given to each review on this platform: its weight "
                                                        "for rules' min_reach (not the reviewer's followers)")


def review_spec(name: str, source: str, brand: str, block: ReviewQuery, target: str) -> list[SourceSpec]:
    return [SourceSpec(name, source, brand, block.poll_every, None, target)]


def key_file_status(key: str, file_var: EnvVar) -> Callable[[BuildContext], str]:
    """``Platform.credentials`` of a platform whose key is a file (Google Play, App Store): the variables' status,
    and whether the file named is there to read, so ``monitor sources`` tells before a poll fails on it."""

    def status(ctx: BuildContext) -> str:
        shown = registry.get(key).env_status(ctx)
        path = ctx.env(file_var.name)
        if shown.startswith("ok") and path and not (Path(path).is_file() and os.access(path, os.R_OK)):
            return f"UNREADABLE: {file_var.name}={path} is not a readable file"
        return shown

    return status
