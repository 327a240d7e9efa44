"""Offline language identification restricted to the languages a brand expects.

Restricting py3langid's label set to e.g. nl/fr/en is what makes it reliable
on short posts: an unrestricted model happily calls a Flemish tweet Afrikaans.

One detector serves both the sentiment model (whose Dutch offsets depend on
the language) and the store (which keeps the language with the mention), so
the two always agree; it remembers its recent answers, so the second of the
two calls for a post costs nothing (identification is about half a
millisecond a post, a large share of scoring one).

Loading is cheap: py3langid ships its model LZMA-compressed, and
decompressing it took half a second of every start (of ``monitor classify``
on one post, of every worker). The tables are unpacked once into the cache
folder (``cache.py``; named by the packaged file's hash) as plain ``.npy``
files that later starts map instead of decompressing, and a process loads
them once however many detectors it builds. When the cache folder cannot be
written, the packaged file is read as before, with one warning.
"""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
from py3langid import modelio
from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

from monitor.classify.cache import cache_folder, file_sha256

log = logging.getLogger(__name__)

# Answers remembered, for texts of up to MEMO_MAX_CHARS (a post, not a pasted document), so the
# memo stays under ~40 MB; forgotten all at once when full.
MEMO_LIMIT: Final = 4096
MEMO_MAX_CHARS: Final = 10_000
_UNKNOWN: Final = object()


class LanguageDetector:
    def __init__(self, languages: Sequence[str]) -> None:
        if not languages:
            raise ValueError("at least one expected language is needed")
        self.languages = list(languages)
        ptc, pc, classes, nextmove, row, output = _tables(MODEL_DIR / MODEL_FILE, cache_folder())
        # A fresh identifier per detector (set_languages changes it); the tables under it are shared.
        self._identifier = LanguageIdentifier(ptc, pc, list(classes), nextmove, output, norm_probs=False, tk_row=row)
        self._identifier.set_languages(self.languages)
        self._memo: dict[str, object] = {}

    def detect(self, text: str) -> str | None:
        """ISO 639-1 code, or None for text with no letters (emoji only, links only)."""
        known = self._memo.get(text, _UNKNOWN)  # one lookup: another thread may clear the memo in between
        if known is not _UNKNOWN:
            return known  # type: ignore[return-value]
        lang: str | None = None
        if any(ch.isalpha() for ch in text):
            lang = str(self._identifier.classify(text)[0])
        if len(text) <= MEMO_MAX_CHARS:
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            self._memo[text] = lang
        return lang


# The arrays of py3langid's model, in the order of its ``load_model``; stored as <name>.npy.
_ARRAYS: Final = ("ptc", "pc", "classes", "nextmove", "nextmove_row", "out_feat")
_Tables = tuple[Any, Any, list[str], "array[int]", "array[int]", list[int]]


@functools.cache
def _tables(packaged: Path, folder: Path) -> _Tables:
    """py3langid's model tables, from the unpacked copy in ``folder`` (made on first use), once per process."""
    try:
        unpacked = _unpacked(packaged, folder)
    except (OSError, ValueError) as exc:
        log.warning("language identifier: cannot keep an unpacked copy in %s (%s); reading the packaged model "
                    "(about half a second more at every start)", folder, exc)
        ptc, pc, classes, nextmove, row, output = modelio.load_model(packaged)
        return np.asarray(ptc), np.asarray(pc), list(classes), nextmove, row, output
    data = {name: np.load(unpacked / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in _ARRAYS}
    return (data["ptc"], np.asarray(data["pc"]), [str(c) for c in data["classes"]], _stdlib(data["nextmove"]),
            _stdlib(data["nextmove_row"]), data["out_feat"].tolist())


def _stdlib(values: Any) -> array[int]:
    """A numpy array of unsigned ints as the stdlib ``array`` py3langid's tokenizer indexes."""
    return modelio._to_array(np.asarray(values))  # type: ignore[no-any-return]


def _unpacked(packaged: Path, folder: Path) -> Path:
    """The folder of ``.npy`` files unpacked from ``packaged``, creating it atomically if missing."""
    target = folder / f"langid-{file_sha256(packaged)[:16]}"
    if all((target / f"{name}.npy").is_file() for name in _ARRAYS):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".langid-", dir=folder))
    try:
        import lzma

        with tempfile.TemporaryFile(suffix=".npz") as raw:
            with lzma.open(packaged) as src:
                shutil.copyfileobj(src, raw, length=1 << 20)
            raw.seek(0)
            with np.load(raw, allow_pickle=False) as npz:
                missing = set(_ARRAYS).difference(npz.files)
                if missing:
                    raise ValueError(f"{packaged}: no {', '.join(sorted(missing))} in the model")
                for name in _ARRAYS:
                    np.save(tmp / f"{name}.npy", npz[name], allow_pickle=False)
        if target.is_dir():  # left incomplete by a process that died while renaming: replace it
            shutil.rmtree(target, ignore_errors=True)
        try:
            tmp.replace(target)  # same folder: an atomic rename
        except OSError:
            if not all((target / f"{name}.npy").is_file() for name in _ARRAYS):
                raise
            # another process renamed its copy first: use that one
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
