"""Word and character n-gram features: the lexical half of the offline sentiment model.

Why a second, lexical view next to the e5 embedding: a mean-pooled sentence
embedding blurs the small tokens that carry tone in posts (an emoji, "!!",
"not", a hashtag, a swear word, "nul", "waardeloos"). A linear model on hashed
n-grams sees exactly those, and stacking its three logits onto the embedding
lifted TweetEval macro-recall from 0.693 to 0.704 and XLM-T French macro-F1
from 0.619 to 0.661 (``bench/sentiment_quality.py``), for about 0.1 ms a post.

Why hashing: no vocabulary file to ship or keep in sync; the feature space is
a fixed ``2**HASH_BITS`` buckets and the trained weights are a dense array of
that size. ``zlib.crc32`` is used because it is stable across processes and
Python versions (``hash()`` is salted per process), so training and run time
agree bit for bit.

The same function builds the training matrix (``scripts/train_sentiment_head.py``)
and the run-time features, so the two cannot drift apart.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

HASH_BITS: Final = 19
N_FEATURES: Final = 1 << HASH_BITS
_MASK: Final = N_FEATURES - 1
CHAR_NGRAMS: Final = (2, 3, 4, 5)
# Chunks whose character-gram buckets a LexicalModel remembers (a few tens of MB at most).
MEMO_LIMIT: Final = 100_000
# Words, or any single non-space symbol: emoji and "!" are tokens of their own.
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def _bucket(kind: str, gram: str) -> int:
    return zlib.crc32(f"{kind}{gram}".encode()) & _MASK


# crc32 of the kind prefix: zlib.crc32(gram, _CHAR_SEED) == zlib.crc32(b"c" + gram), without building the string.
_CHAR_SEED: Final = zlib.crc32(b"c")


def _chunk_grams(chunk: str) -> list[int]:
    """Buckets of the character 2-5 grams of one whitespace-separated chunk, padded by a space each side."""
    padded = f" {chunk} "
    encoded = padded.encode()
    if len(encoded) == len(padded):  # ASCII: byte slices are character slices
        return [
            zlib.crc32(encoded[j : j + n], _CHAR_SEED) & _MASK
            for n in CHAR_NGRAMS
            for j in range(len(encoded) - n + 1)
        ]
    return [_bucket("c", padded[j : j + n]) for n in CHAR_NGRAMS for j in range(len(padded) - n + 1)]


def ngram_counts(text: str, memo: dict[str, list[int]] | None = None) -> Counter[int]:
    """Hashed counts of word 1-2 grams and within-word character 2-5 grams of a prepared text.

    ``memo`` (chunk -> its character-gram buckets) saves recomputing the
    buckets of chunks seen before: posts repeat their words, and hashing
    every character n-gram is most of this function's time. The caller owns
    it and bounds its size; the counts are the same with or without it.
    """
    counts: Counter[int] = Counter()
    lowered = text.lower()
    words = _TOKEN.findall(lowered)
    for i, word in enumerate(words):
        counts[_bucket("w", word)] += 1
        if i:
            counts[_bucket("b", f"{words[i - 1]} {word}")] += 1
    # Character n-grams run over whitespace-separated chunks, punctuation kept
    # attached: "nul!!", ":-(" and "top :)" keep their shape.
    for chunk in lowered.split():
        grams = memo.get(chunk) if memo is not None else None
        if grams is None:
            grams = _chunk_grams(chunk)
            if memo is not None:
                if len(memo) >= MEMO_LIMIT:
                    memo.clear()
                memo[chunk] = grams
        counts.update(grams)
    return counts


def sparse_rows(
    texts: Sequence[str],
    idf: npt.NDArray[np.floating[Any]] | None = None,
    memo: dict[str, list[int]] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float64]]:
    """CSR parts (indptr, indices, values) of L2-normalised sublinear tf(-idf) rows.

    ``idf=None`` gives plain sublinear tf, which is what the training script
    needs to compute document frequencies in the first place.
    """
    indptr = [0]
    indices: list[int] = []
    raw: list[int] = []
    for text in texts:
        counts = ngram_counts(text, memo)
        keys = sorted(counts)
        indices.extend(keys)
        raw.extend(map(counts.__getitem__, keys))
        indptr.append(len(indices))
    # The arithmetic runs on whole arrays: per value in Python it was most of the stage's time.
    ptr = np.asarray(indptr, dtype=np.int64)
    idx = np.asarray(indices, dtype=np.int32)
    values = 1.0 + np.log(np.asarray(raw, dtype=np.float64))
    if idf is not None:
        values *= np.asarray(idf, dtype=np.float64)[idx]
    rows = np.repeat(np.arange(len(texts)), np.diff(ptr))
    norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=len(texts)))
    values /= np.where(norms > 0, norms, 1.0)[rows]
    return ptr, idx, values


class LexicalModel:
    """Linear model on hashed n-grams: ``idf`` (N_FEATURES,), ``weights`` (N_FEATURES, 3), ``bias`` (3,)."""

    def __init__(
        self,
        idf: npt.NDArray[np.floating[Any]],
        weights: npt.NDArray[np.floating[Any]],
        bias: npt.NDArray[np.floating[Any]],
    ) -> None:
        if idf.shape != (N_FEATURES,) or weights.shape != (N_FEATURES, 3) or bias.shape != (3,):
            raise ValueError(
                f"lexical model has shapes idf {idf.shape}, weights {weights.shape}, bias {bias.shape}; "
                f"expected ({N_FEATURES},), ({N_FEATURES}, 3), (3,)"
            )
        self.idf = np.asarray(idf, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.bias = np.asarray(bias, dtype=np.float64)
        self._memo: dict[str, list[int]] = {}

    def logits(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Raw class scores (n, 3), negative, neutral, positive: the stacker's extra features."""
        out = np.tile(self.bias, (len(texts), 1))
        if not texts:
            return out
        indptr, indices, values = sparse_rows(texts, self.idf, self._memo)
        contrib = self.weights[indices] * values[:, None]
        rows = np.repeat(np.arange(len(texts)), np.diff(indptr))
        for k in range(3):
            out[:, k] += np.bincount(rows, weights=contrib[:, k], minlength=len(texts))
        return out
