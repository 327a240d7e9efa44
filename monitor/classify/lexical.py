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

import math
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
# Words, or any single non-space symbol: emoji and "!" are tokens of their own.
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def _bucket(kind: str, gram: str) -> int:
    return zlib.crc32(f"{kind}{gram}".encode()) & _MASK


def ngram_counts(text: str) -> Counter[int]:
    """Hashed counts of word 1-2 grams and within-word character 2-5 grams of a prepared text."""
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
        padded = f" {chunk} "
        for n in CHAR_NGRAMS:
            for j in range(len(padded) - n + 1):
                counts[_bucket("c", padded[j : j + n])] += 1
    return counts


def sparse_rows(
    texts: Sequence[str], idf: npt.NDArray[np.floating[Any]] | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float64]]:
    """CSR parts (indptr, indices, values) of L2-normalised sublinear tf(-idf) rows.

    ``idf=None`` gives plain sublinear tf, which is what the training script
    needs to compute document frequencies in the first place.
    """
    indptr = [0]
    indices: list[int] = []
    values: list[float] = []
    for text in texts:
        counts = ngram_counts(text)
        keys = sorted(counts)
        row = [1.0 + math.log(counts[k]) for k in keys]
        if idf is not None:
            row = [v * float(idf[k]) for v, k in zip(row, keys, strict=True)]
        norm = math.sqrt(sum(v * v for v in row)) or 1.0
        indices.extend(keys)
        values.extend(v / norm for v in row)
        indptr.append(len(indices))
    return (
        np.asarray(indptr, dtype=np.int64),
        np.asarray(indices, dtype=np.int32),
        np.asarray(values, dtype=np.float64),
    )


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

    def logits(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Raw class scores (n, 3), negative, neutral, positive: the stacker's extra features."""
        out = np.tile(self.bias, (len(texts), 1))
        if not texts:
            return out
        indptr, indices, values = sparse_rows(texts, self.idf)
        contrib = self.weights[indices] * values[:, None]
        lengths = np.diff(indptr)
        rows = np.repeat(np.arange(len(texts)), lengths)
        np.add.at(out, rows, contrib)
        return out
