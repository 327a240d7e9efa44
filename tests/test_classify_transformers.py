"""Offline tests of the Hugging Face backend.

No hub access here, so the tests build a tiny model themselves (a tokenizer
trained on the toy sentences below, a 2-layer BERT trained for a few steps)
and save it with ``save_pretrained``: the backend then loads it from a
directory, which is the same code path a user's hub model takes.
Skipped where torch is not installed (it is the optional ``[transformers]`` extra).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from monitor.classify.base import SentimentModel  # noqa: E402
from monitor.classify.transformers_backend import (  # noqa: E402
    LabelIndices,
    TransformersSentimentModel,
    hub_commit_hash,
    resolve_label_indices,
)

NEGATIVE = [
    "This service is terrible and I am very angry",
    "Worst customer support ever, never again",
    "My order arrived broken and nobody answers",
    "I hate this bank, they stole my money",
    "Awful experience, a complete scam",
    "Slechte service, ik ben echt boos",
    "Nooit meer, wat een waardeloze klantenservice",
    "Mijn pakket is kapot en niemand reageert",
    "Schandalig, ze hebben mijn geld gestolen",
    "Vreselijke ervaring, echt oplichterij",
    "Service horrible, je suis très en colère",
    "Le pire support client, plus jamais",
    "Ma commande est arrivée cassée et personne ne répond",
    "Je déteste cette banque, une vraie arnaque",
    "Expérience affreuse, c'est scandaleux",
]
NEUTRAL = [
    "The store opens at nine tomorrow",
    "I called the support line this morning",
    "The new app version was released today",
    "Their office is next to the station",
    "The meeting is scheduled for Monday",
    "De winkel gaat morgen om negen uur open",
    "Ik heb vanochtend de klantenservice gebeld",
    "De nieuwe versie van de app is vandaag uitgebracht",
    "Hun kantoor ligt naast het station",
    "De vergadering is op maandag",
    "Le magasin ouvre demain à neuf heures",
    "J'ai appelé le service client ce matin",
    "La nouvelle version de l'application est sortie aujourd'hui",
    "Leur bureau est à côté de la gare",
    "La réunion est prévue lundi",
]
POSITIVE = [
    "Great service, thank you so much",
    "I love this bank, very helpful staff",
    "Fast delivery and excellent quality",
    "Best customer support I have ever had",
    "Wonderful experience, highly recommended",
    "Geweldige service, heel erg bedankt",
    "Ik ben blij met deze bank, heel behulpzaam",
    "Snelle levering en uitstekende kwaliteit",
    "De beste klantenservice ooit",
    "Fantastische ervaring, echt een aanrader",
    "Service génial, merci beaucoup",
    "J'adore cette banque, personnel très serviable",
    "Livraison rapide et excellente qualité",
    "Le meilleur service client que j'ai jamais eu",
    "Expérience merveilleuse, je recommande vivement",
]
ID2LABEL = {0: "negative", 1: "neutral", 2: "positive"}


def _train_tokenizer(sentences: list[str]) -> Any:
    """A WordPiece tokenizer trained on the toy corpus, wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        sentences, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials, show_progress=False)
    )
    # The trainer breaks frequency ties in hash order, so ids differ from run to
    # run; re-number the learned vocabulary so the tiny model is reproducible.
    learned = sorted(set(tok.get_vocab()) - set(specials))
    tok.model = models.WordPiece({t: i for i, t in enumerate(specials + learned)}, unk_token="[UNK]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )


def _tiny_config(vocab_size: int, id2label: dict[int, str]) -> Any:
    return transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=0.1,  # with the default 0.02 a 32-wide BERT often collapses on this toy set
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """A 32-wide model gains nothing from threads, and on a busy 2-core box
    OpenMP threads fighting over the cores made training ~5x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="module", autouse=True)
def _one_thread_for_tests() -> Iterator[None]:
    with _one_torch_thread():
        yield


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tokenizer + tiny BERT, trained a few steps so negative posts score higher P(negative)."""
    out = tmp_path_factory.mktemp("tiny-sentiment")
    texts = NEGATIVE + NEUTRAL + POSITIVE
    labels = [0] * len(NEGATIVE) + [1] * len(NEUTRAL) + [2] * len(POSITIVE)
    tokenizer = _train_tokenizer(texts)
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_config(_tiny_config(len(tokenizer), ID2LABEL))
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    target = torch.tensor(labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    with _one_torch_thread():
        for _ in range(100):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(**batch).logits, target)
            loss.backward()
            optimizer.step()
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _variant(src: Path, dst: Path, id2label: dict[int, str]) -> Path:
    """Same weights and tokenizer, different id2label in config.json."""
    if not dst.exists():
        shutil.copytree(src, dst)
        config_file = dst / "config.json"
        config = json.loads(config_file.read_text())
        config["id2label"] = {str(k): v for k, v in id2label.items()}
        config["label2id"] = {v: k for k, v in id2label.items()}
        config_file.write_text(json.dumps(config))
    return dst


@pytest.fixture(scope="session")
def tiny(tiny_dir: Path) -> TransformersSentimentModel:
    return TransformersSentimentModel(str(tiny_dir), batch_size=4)


def _raw_probs(model_dir: Path, texts: list[str]) -> list[list[float]]:
    """Softmax over the model's own logits, bypassing the backend."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir)
    with torch.inference_mode():
        logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
    probs: list[list[float]] = logits.double().softmax(-1).tolist()
    return probs


MIXED = [
    "ok",
    NEGATIVE[0] + " " + NEGATIVE[1] + " " + NEGATIVE[2],
    NEUTRAL[5],
    "",
    POSITIVE[10] + " " + POSITIVE[11],
    NEGATIVE[7],
    "Great",
    NEUTRAL[0] + " " + POSITIVE[0] + " " + NEGATIVE[12] + " " + NEUTRAL[14],
    POSITIVE[3],
]


def test_satisfies_protocol_and_identity(tiny: TransformersSentimentModel, tiny_dir: Path) -> None:
    assert isinstance(tiny, SentimentModel)
    assert tiny.name == str(tiny_dir)
    assert tiny.version.startswith("local-") and len(tiny.version) == len("local-") + 12
    assert tiny.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert tiny.labels == LabelIndices(negative=0, neutral=1, positive=2)


def test_probabilities_sum_to_one(tiny: TransformersSentimentModel) -> None:
    scores = tiny.predict(MIXED)
    assert len(scores) == len(MIXED)
    for s in scores:
        assert math.isclose(s.negative + s.neutral + s.positive, 1.0, abs_tol=1e-9)
        assert all(0.0 <= p <= 1.0 for p in (s.negative, s.neutral, s.positive))


def test_order_preserved_under_length_bucketing(tiny_dir: Path, tiny: TransformersSentimentModel) -> None:
    one_by_one = TransformersSentimentModel(str(tiny_dir), batch_size=1)
    bucketed = tiny.predict(MIXED)  # batch_size=4: sorted by length, padded, restored
    reference = [one_by_one.predict([text])[0] for text in MIXED]
    for got, want in zip(bucketed, reference, strict=True):
        assert got.as_dict() == pytest.approx(want.as_dict(), abs=1e-5)


def test_matches_raw_model_softmax(tiny: TransformersSentimentModel, tiny_dir: Path) -> None:
    texts = [NEGATIVE[0], NEUTRAL[6], POSITIVE[12]]
    raw = _raw_probs(tiny_dir, texts)
    for s, probs in zip(tiny.predict(texts), raw, strict=True):
        assert [s.negative, s.neutral, s.positive] == pytest.approx(probs, abs=1e-5)


def test_trained_model_ranks_negative_posts_higher(tiny: TransformersSentimentModel) -> None:
    neg = [s.negative for s in tiny.predict(NEGATIVE)]
    pos = [s.negative for s in tiny.predict(POSITIVE)]
    assert sum(neg) / len(neg) > sum(pos) / len(pos) + 0.3


def test_duplicates_scored_once(tiny: TransformersSentimentModel, monkeypatch: pytest.MonkeyPatch) -> None:
    seen_rows: list[int] = []
    real = tiny._model

    def counting(**inputs: Any) -> Any:
        seen_rows.append(int(inputs["input_ids"].shape[0]))
        return real(**inputs)

    monkeypatch.setattr(tiny, "_model", counting)
    texts = [NEGATIVE[3], POSITIVE[2], NEGATIVE[3], NEGATIVE[3], POSITIVE[2], NEUTRAL[1]]
    scores = tiny.predict(texts)
    assert sum(seen_rows) == 3
    assert scores[0] == scores[2] == scores[3]
    assert scores[1] == scores[4]


def test_empty_inputs(tiny: TransformersSentimentModel) -> None:
    assert tiny.predict([]) == []
    scores = tiny.predict(["", "   ", "\n"])
    assert len(scores) == 3
    assert math.isclose(sum(scores[0].as_dict().values()), 1.0, abs_tol=1e-9)


def test_truncation_at_max_length(tiny_dir: Path, tiny: TransformersSentimentModel) -> None:
    head = "great service thank you"
    texts = [head, head + " " + " ".join(NEGATIVE) * 5]  # the tail is far beyond 64 positions
    full = tiny.predict(texts)  # max_length 128, capped at the tokenizer's 64: no crash
    assert full[0].as_dict() != pytest.approx(full[1].as_dict(), abs=1e-3)
    short = TransformersSentimentModel(str(tiny_dir), max_length=6)  # [CLS] + 4 word pieces + [SEP]
    a, b = short.predict(texts)
    assert a.as_dict() == pytest.approx(b.as_dict(), abs=1e-6)


def test_label_order_read_from_config(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    permuted = _variant(
        tiny_dir,
        tmp_path_factory.getbasetemp() / "permuted",
        {0: "Positive", 1: "NEGATIVE", 2: "neutral"},
    )
    model = TransformersSentimentModel(str(permuted))
    assert model.labels == LabelIndices(negative=1, neutral=2, positive=0)
    texts = [NEGATIVE[1], NEUTRAL[2], POSITIVE[4], ""]
    raw = _raw_probs(permuted, texts)
    for s, probs in zip(model.predict(texts), raw, strict=True):
        assert s.negative == pytest.approx(probs[1], abs=1e-5)
        assert s.neutral == pytest.approx(probs[2], abs=1e-5)
        assert s.positive == pytest.approx(probs[0], abs=1e-5)
    # Different config, different version: stored scores can tell them apart.
    assert model.version != TransformersSentimentModel(str(tiny_dir)).version


def test_generic_labels_assume_cardiff_order(
    tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    generic = _variant(tiny_dir, tmp_path_factory.getbasetemp() / "generic", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    with caplog.at_level(logging.WARNING, logger="monitor.classify.transformers_backend"):
        model = TransformersSentimentModel(str(generic))
    assert model.labels == LabelIndices(negative=0, neutral=1, positive=2)
    assert "cardiffnlp" in caplog.text


def test_unmappable_labels_raise(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    stars = _variant(tiny_dir, tmp_path_factory.getbasetemp() / "stars", {0: "1 star", 1: "2 stars", 2: "3 stars"})
    with pytest.raises(ValueError, match="1 star"):
        TransformersSentimentModel(str(stars))


def test_two_class_model_has_zero_neutral(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    out = tmp_path_factory.getbasetemp() / "binary"
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_dir)
    torch.manual_seed(1)
    transformers.AutoModelForSequenceClassification.from_config(
        _tiny_config(len(tokenizer), {0: "NEG", 1: "POS"})
    ).save_pretrained(out)
    tokenizer.save_pretrained(out)
    model = TransformersSentimentModel(str(out))
    for s in model.predict([NEGATIVE[0], POSITIVE[0], ""]):
        assert s.neutral == 0.0
        assert math.isclose(s.negative + s.positive, 1.0, abs_tol=1e-9)


@pytest.mark.parametrize(
    ("id2label", "expected"),
    [
        ({"0": "negative", "1": "neutral", "2": "positive"}, LabelIndices(0, 1, 2)),
        ({2: "neg", 0: "neu", 1: "pos"}, LabelIndices(2, 0, 1)),
        ({0: " Positive ", 1: "Negative"}, LabelIndices(1, None, 0)),
    ],
)
def test_resolve_label_indices(id2label: dict[object, str], expected: LabelIndices) -> None:
    assert resolve_label_indices(id2label) == expected


@pytest.mark.parametrize(
    "id2label",
    [
        {0: "negative", 1: "negative", 2: "positive"},  # duplicate
        {0: "neutral", 1: "positive"},  # no negative class
        {0: "negative", 1: "neutral", 2: "positive", 3: "mixed"},  # extra class
        {0: "LABEL_0", 1: "LABEL_1"},  # two generic labels: no convention to rely on
        {0: "LABEL_2", 1: "LABEL_1", 2: "LABEL_0"},  # generic but out of order
        {},
    ],
)
def test_resolve_label_indices_refuses(id2label: dict[int, str]) -> None:
    with pytest.raises(ValueError):
        resolve_label_indices(id2label)


def test_hub_commit_hash_from_cache_layout(tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--someorg--some-model"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    assert hub_commit_hash("someorg/some-model", cache_dir=tmp_path) == commit
    assert hub_commit_hash("someorg/not-cached", cache_dir=tmp_path) is None


def test_missing_torch_gives_install_hint(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ImportError, match=r"monitor\[transformers\]"):
        TransformersSentimentModel(str(tiny_dir))


def test_module_imports_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None; "
        "import monitor.classify.transformers_backend"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_rejects_bad_arguments(tiny_dir: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        TransformersSentimentModel(str(tiny_dir), batch_size=0)
    with pytest.raises(ValueError, match="max_length"):
        TransformersSentimentModel(str(tiny_dir), max_length=1)
    with pytest.raises(ValueError, match="precision"):
        TransformersSentimentModel(str(tiny_dir), precision="int4")  # type: ignore[arg-type]


def test_bf16_runs_in_bfloat16_and_keeps_the_scores_close(tiny: TransformersSentimentModel, tiny_dir: Path) -> None:
    import torch

    half = TransformersSentimentModel(str(tiny_dir), device="cpu", precision="bf16")
    assert half.precision == "bf16"
    assert {p.dtype for p in half._model.parameters()} == {torch.bfloat16}
    assert half.version == tiny.version + "+bf16"  # scores say which precision made them
    texts = [*NEGATIVE[:4], *NEUTRAL[:4], *POSITIVE[:4]]
    for a, b in zip(tiny.predict(texts), half.predict(texts), strict=True):
        assert [b.negative, b.neutral, b.positive] == pytest.approx([a.negative, a.neutral, a.positive], abs=0.05)
        assert b.negative + b.neutral + b.positive == pytest.approx(1.0, abs=1e-6)


def test_load_model_passes_the_precision(tiny_dir: Path) -> None:
    from monitor.classify import load_model

    model = load_model(str(tiny_dir), "bf16")
    assert isinstance(model, TransformersSentimentModel) and model.precision == "bf16"
    with pytest.raises(ValueError, match="precision"):
        load_model(str(tiny_dir), "fp8")
