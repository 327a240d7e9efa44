"""Configuration that changes under a running worker: the last good version, always.

``escalation.yaml``, ``monitor.yaml`` and ``rules/*.yaml`` reload the same way,
as Alertmanager's configuration does: a change on disk (seen by the worker's
reload job, forced by ``SIGHUP`` or by ``monitor reload`` through the store) is
validated in full first; a valid one replaces the running version at once, an
invalid one leaves the last good version in force and is reported, once per
broken version: every ``file:line:col`` problem in the log, in ``/healthz`` and
the metrics, and one alert to the people of the procedure.

A version is the sha256 of the bytes read, not a file's modification time, so an
editor that rewrites a file unchanged reloads nothing and two workers that read
the same bytes agree on the version.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar

from monitor.yamlconfig import ConfigInvalid

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Version:
    """What was read: its hash (the version's identity) and its text (for the record and for diffs)."""

    sha256: str
    content: str

    @property
    def short(self) -> str:
        return self.sha256[:12]


FILE_MARK = "# --- "  # starts each file's text in a version made of several files (the rules folder)


def read_version(paths: Sequence[Path], *, folder: bool = False) -> Version:
    """The version of one file or of a folder's files (in the order given); a missing file reads as absent.

    A folder's text marks where each file starts (``# --- name.yaml``), so a stored version can be
    written back into files (``monitor.config_diff``).
    """
    digest = hashlib.sha256()
    parts: list[str] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        digest.update(path.name.encode("utf-8") + b"\0" + data + b"\0")
        text = data.decode("utf-8", errors="replace")
        parts.append(f"{FILE_MARK}{path.name}\n{text}" if folder else text)
    return Version(digest.hexdigest(), "\n".join(parts))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one look at a configuration found."""

    changed: bool = False  # a new valid version replaced the old one
    invalid: ConfigInvalid | None = None  # the files on disk do not validate (the last good one stays)
    first_report: bool = False  # this broken version is reported for the first time


class Watched(Generic[T]):
    """One configuration kept at its last good version.

    ``paths`` lists the files that make it up (called each time, so a new rule
    file is seen); ``load`` validates them and raises ``ConfigInvalid``. The first
    load happens in the constructor and must succeed: a worker does not start
    on a broken procedure.
    """

    def __init__(self, kind: str, paths: Callable[[], Sequence[Path]], load: Callable[[], T],
                 now: Callable[[], datetime], *, folder: bool = False) -> None:
        self.kind = kind
        self.folder = folder
        self._paths = paths
        self._load = load
        self._now = now
        self.current: T = load()
        self.version = read_version(list(paths()), folder=folder)
        self.since = now()
        self.error: ConfigInvalid | None = None
        self.error_since: datetime | None = None
        self.bad_version: str | None = None

    @property
    def last_error(self) -> str | None:
        return str(self.error) if self.error is not None else None

    def refresh(self, *, force: bool = False) -> Outcome:
        """Look at the files; apply a valid change. ``force`` re-validates even when the bytes are the same."""
        on_disk = read_version(list(self._paths()), folder=self.folder)
        if on_disk.sha256 == self.version.sha256 and not force:
            if self.error is not None:  # edited back to the version in force: nothing is broken any more
                self._clear()
            return Outcome()
        if on_disk.sha256 == self.bad_version and not force:
            return Outcome(invalid=self.error)
        try:
            new = self._load()
        except ConfigInvalid as exc:
            first = on_disk.sha256 != self.bad_version
            self.bad_version = on_disk.sha256
            self.error = exc
            self.error_since = self.error_since or self._now()
            if first or force:  # asked to reload (SIGHUP, monitor reload): say again why nothing changed
                log.error("%s changed but is invalid; keeping the version of %s (%s):\n%s", self.kind,
                          f"{self.since:%Y-%m-%d %H:%M:%S %Z}", self.version.short, exc)
            return Outcome(invalid=exc, first_report=first)
        if on_disk.sha256 == self.version.sha256:
            self._clear()
            return Outcome()
        self.current = new
        self.version = on_disk
        self.since = self._now()
        self._clear()
        log.info("%s reloaded: version %s in force", self.kind, on_disk.short)
        return Outcome(changed=True)

    def _clear(self) -> None:
        self.error = None
        self.error_since = None
        self.bad_version = None
