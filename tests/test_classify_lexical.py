"""The lexical n-gram stage of the offline model: deterministic features, correct sparse maths."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from monitor.classify.lexical import N_FEATURES, LexicalModel, ngram_counts, sparse_rows

TEXTS = ["Service client NUL !!", "Wat een schandalige service 😡", "Great app, love it :)", ""]


def test_features_ignore_case_and_keep_emoji_and_punctuation() -> None:
    assert ngram_counts("Service NUL") == ngram_counts("service nul")
    assert ngram_counts("nul") != ngram_counts("nul!!")
    assert ngram_counts("top") != ngram_counts("top 😡")
    assert ngram_counts("") == {}


def test_features_are_the_same_in_every_process() -> None:
    """Training and run time are different processes: hashing must not depend on PYTHONHASHSEED."""
    code = (
        "from monitor.classify.lexical import ngram_counts; "
        "print(sorted(ngram_counts('Service client nul !!').items()))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], env={"PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert outputs.pop().strip() == str(sorted(ngram_counts("Service client nul !!").items()))


def test_rows_are_l2_normalised_sublinear_tf_idf() -> None:
    idf = np.linspace(1.0, 3.0, N_FEATURES)
    indptr, indices, values = sparse_rows(TEXTS, idf)
    assert len(indptr) == len(TEXTS) + 1
    for i, text in enumerate(TEXTS):
        row = slice(indptr[i], indptr[i + 1])
        counts = ngram_counts(text)
        assert sorted(indices[row].tolist()) == sorted(counts)
        if not counts:
            continue
        raw = {k: (1 + math.log(c)) * idf[k] for k, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in raw.values()))
        got = dict(zip(indices[row].tolist(), values[row].tolist(), strict=True))
        assert got == pytest.approx({k: v / norm for k, v in raw.items()})
        assert float(np.linalg.norm(values[row])) == pytest.approx(1.0)


def test_logits_equal_the_dense_product() -> None:
    rng = np.random.default_rng(0)
    idf = rng.uniform(1, 5, N_FEATURES)
    weights = rng.normal(size=(N_FEATURES, 3))
    bias = np.array([0.1, -0.2, 0.3])
    model = LexicalModel(idf, weights, bias)
    indptr, indices, values = sparse_rows(TEXTS, idf)
    dense = np.zeros((len(TEXTS), N_FEATURES))
    for i in range(len(TEXTS)):
        dense[i, indices[indptr[i] : indptr[i + 1]]] = values[indptr[i] : indptr[i + 1]]
    np.testing.assert_allclose(model.logits(TEXTS), dense @ weights + bias, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.logits([""]), [bias])
    assert model.logits([]).shape == (0, 3)


def test_rejects_weights_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="expected"):
        LexicalModel(np.ones(10), np.zeros((10, 3)), np.zeros(3))


def test_remembered_chunks_give_the_same_features_as_fresh_ones() -> None:
    """The chunk memo (and the ASCII fast path for hashing) must not change a single count."""
    texts = ["Service client NUL !! nul nul", "Wat een schandalige service 😡 service", "café crème, très bon"]
    memo: dict[str, list[int]] = {}
    first = [ngram_counts(t, memo) for t in texts]
    assert memo  # chunks were remembered
    again = [ngram_counts(t, memo) for t in texts]
    fresh = [ngram_counts(t) for t in texts]
    assert first == again == fresh
    # "é" is not ASCII: that chunk takes the character path and must still agree with the byte path's scheme.
    assert ngram_counts("café") == ngram_counts("CAFÉ")


def test_the_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import monitor.classify.lexical as lexical

    monkeypatch.setattr(lexical, "MEMO_LIMIT", 3)
    memo: dict[str, list[int]] = {}
    ngram_counts("een twee drie vier vijf zes", memo)
    assert len(memo) <= 3
