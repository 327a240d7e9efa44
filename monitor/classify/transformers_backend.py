"""Sentiment from any Hugging Face sequence-classification model.

This is the backend for users with hub access (or a model directory on disk):
``TransformersSentimentModel("cardiffnlp/twitter-xlm-roberta-base-sentiment")``
plugs a hub model into the pipeline behind the same ``SentimentModel``
interface as the offline default.

Design choices, and why:

* **Lazy imports.** ``torch`` is an optional extra (``monitor[transformers]``);
  the worker must import and run with the offline backend where it is absent,
  so ``torch``/``transformers`` are imported only when this class is built.
* **Labels come from the model config** (``id2label``), never from a fixed
  index order, because hub models disagree on the order of their classes.
  Names are matched case-insensitively (``negative``/``neg``, ...). Configs that
  only say ``LABEL_0..LABEL_2`` are taken in the cardiffnlp order
  (negative, neutral, positive) with a warning; two-class negative/positive
  models score ``neutral = 0``; anything else is refused at load time with the
  labels found, rather than silently producing wrong alerts.
* **Throughput.** Texts are de-duplicated per call (retweets and copy-paste
  campaigns repeat verbatim), tokenised once, sorted by token length and
  batched so that each batch pads to similar lengths (length bucketing), then
  put back in input order. Truncation at ``max_length`` bounds the cost of a
  long post. Inference runs under ``torch.inference_mode()``.
* **Precision.** ``precision="bf16"`` runs the network in bfloat16: about 2-4×
  faster on CPUs with AVX-512 and half the memory, for P(negative) that moves
  by ~1e-2. It is opt-in because scores change; the stored ``version`` gets a
  ``+bf16`` suffix so the digest can tell such scores apart. (Dynamic int8 was
  faster still in our benchmark, but torch's API for it is deprecated.)
* **Provenance.** ``version`` is stored with every score so a digest can say
  which weights judged a post: the hub commit hash when the model came from
  the hub, else a content fingerprint of the local directory (see
  ``_model_version``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from monitor.models import SentimentLabel, SentimentScores

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'monitor[transformers]'"

# Lower-cased label names accepted for each class. Kept deliberately small: a
# label we do not recognise is an error, not a guess.
_LABEL_ALIASES: dict[str, SentimentLabel] = {
    "negative": SentimentLabel.NEGATIVE,
    "neg": SentimentLabel.NEGATIVE,
    "neutral": SentimentLabel.NEUTRAL,
    "neu": SentimentLabel.NEUTRAL,
    "positive": SentimentLabel.POSITIVE,
    "pos": SentimentLabel.POSITIVE,
}
_GENERIC_LABEL = re.compile(r"label_?(\d+)")
# cardiffnlp's twitter sentiment models (and TweetEval) use this order; older
# checkpoints of theirs ship configs with only LABEL_0..LABEL_2.
_CARDIFF_ORDER = (SentimentLabel.NEGATIVE, SentimentLabel.NEUTRAL, SentimentLabel.POSITIVE)

# Files whose content decides what a local model predicts; hashed for ``version``.
_FINGERPRINT_SUFFIXES = frozenset({".json", ".safetensors", ".bin", ".model", ".txt"})
Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16")
_SNAPSHOT_COMMIT = re.compile(r"[\\/]snapshots[\\/]([0-9a-f]{40})[\\/]")


@dataclass(frozen=True, slots=True)
class LabelIndices:
    """Which logit index holds each class; ``neutral`` is None for two-class models."""

    negative: int
    neutral: int | None
    positive: int


def resolve_label_indices(id2label: Mapping[Any, Any]) -> LabelIndices:
    """Map a config's ``id2label`` onto negative/neutral/positive.

    Raises ``ValueError`` naming the labels found when they cannot be mapped
    unambiguously: a wrong mapping would invert alerts, which is worse than a
    model that refuses to load.
    """
    labels = sorted((int(k), str(v)) for k, v in id2label.items())
    if not labels:
        raise ValueError("model config has no id2label; cannot tell which output is negative")

    mapped: dict[SentimentLabel, int] = {}
    unknown: list[str] = []
    for index, name in labels:
        cls = _LABEL_ALIASES.get(name.strip().lower())
        if cls is None:
            unknown.append(name)
        elif cls in mapped:
            raise ValueError(f"model labels {labels} name {cls.value!r} twice; cannot map them unambiguously")
        else:
            mapped[cls] = index

    if not unknown and set(mapped) in (
        set(_CARDIFF_ORDER),
        {SentimentLabel.NEGATIVE, SentimentLabel.POSITIVE},
    ):
        return LabelIndices(
            negative=mapped[SentimentLabel.NEGATIVE],
            neutral=mapped.get(SentimentLabel.NEUTRAL),
            positive=mapped[SentimentLabel.POSITIVE],
        )

    generic = [_GENERIC_LABEL.fullmatch(name.strip().lower()) for _, name in labels]
    numbers = [int(match.group(1)) if match else None for match in generic]
    if [index for index, _ in labels] == [0, 1, 2] and numbers == [0, 1, 2]:
        log.warning(
            "model config only has generic labels %s; assuming the cardiffnlp order "
            "0=negative, 1=neutral, 2=positive. Set id2label in the model's config.json if that is wrong.",
            [name for _, name in labels],
        )
        return LabelIndices(negative=0, neutral=1, positive=2)

    raise ValueError(
        f"cannot map model labels {labels} to negative/neutral/positive: expected names like "
        "negative/neutral/positive (or neg/neu/pos), two classes negative/positive, or exactly "
        "LABEL_0..LABEL_2 (taken as negative, neutral, positive). Fix id2label in the model's config.json."
    )


def _import_backend() -> tuple[Any, Any]:
    """Import torch and transformers, with an actionable message when the extra is missing."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"TransformersSentimentModel needs PyTorch, which is not installed: {INSTALL_HINT}") from exc
    try:
        import transformers
    except ImportError as exc:
        raise ImportError(
            f"TransformersSentimentModel needs transformers, which is not installed: {INSTALL_HINT}"
        ) from exc
    return torch, transformers


def hub_commit_hash(model_id: str, cache_dir: str | Path | None = None) -> str | None:
    """Commit hash of a hub model's files in the local Hugging Face cache, without network access.

    ``from_pretrained`` has just downloaded (or found) ``config.json`` in the
    cache, whose layout is ``.../snapshots/<commit>/config.json``. transformers
    4.x also exposed this as ``config._commit_hash``; 5.x no longer does.
    """
    try:
        from huggingface_hub import try_to_load_from_cache

        resolved = try_to_load_from_cache(model_id, "config.json", cache_dir=cache_dir)
    except Exception:  # a malformed id or cache must not stop the model from loading
        log.debug("could not look up %s in the hub cache", model_id, exc_info=True)
        return None
    if not isinstance(resolved, str):
        return None
    match = _SNAPSHOT_COMMIT.search(resolved)
    return match.group(1) if match else None


def directory_fingerprint(path: Path) -> str:
    """Short content hash of the files in a model directory that decide its predictions.

    Hashes the names and bytes of the top-level config, tokenizer and weight
    files (``*.json``, ``*.safetensors``, ``*.bin``, ``*.model``, ``*.txt``).
    Content rather than mtimes, so copying a model directory to another host
    keeps its version while retraining in place changes it; the cost is one
    read of the weights at load time (about a second per GB, usually from the
    page cache that loading has just filled).
    """
    digest = hashlib.blake2b(digest_size=16)
    for file in sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _FINGERPRINT_SUFFIXES):
        digest.update(file.name.encode())
        digest.update(b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()[:12]


def _model_version(model: str, config: Any) -> str:
    """The weights' version, in order of preference.

    1. ``config._commit_hash`` (set by transformers 4.x for hub models);
    2. for a local directory: ``local-<12 hex>``, a content fingerprint
       (``directory_fingerprint``);
    3. for a hub id: the commit hash of the cached snapshot (``hub_commit_hash``);
    4. failing all that: ``config-<12 hex>``, a hash of the config JSON. This
       tells label or architecture changes apart but not retrained weights.
    """
    commit = getattr(config, "_commit_hash", None)
    if isinstance(commit, str) and commit:
        return commit
    path = Path(model)
    if path.is_dir():
        return f"local-{directory_fingerprint(path)}"
    commit = hub_commit_hash(model)
    if commit:
        return commit
    config_json = config.to_json_string(use_diff=True).encode()
    return f"config-{hashlib.blake2b(config_json, digest_size=16).hexdigest()[:12]}"


class TransformersSentimentModel:
    """``SentimentModel`` backed by a Hugging Face sequence-classification model.

    ``model`` is a hub id or a local directory saved with ``save_pretrained``.
    ``device`` is a torch device string; by default CUDA when available, else
    CPU. ``batch_size`` bounds memory per forward pass; ``max_length`` (in
    tokens) truncates long posts, bounding latency. ``precision`` is ``fp32``
    (default) or ``bf16`` (see the module docstring).
    """

    def __init__(
        self,
        model: str,
        *,
        device: str | None = None,
        batch_size: int = 32,
        max_length: int = 128,
        precision: Precision = "fp32",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 (room for special tokens), got {max_length}")
        torch, transformers = _import_backend()
        self._torch = torch
        self._name = str(model)
        self._batch_size = batch_size

        # The config alone decides whether we can use this model: check it
        # before spending time and memory on the weights.
        config = transformers.AutoConfig.from_pretrained(model)
        self._labels = resolve_label_indices(config.id2label)

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._device = torch.device(device)

        tokenizer = transformers.AutoTokenizer.from_pretrained(model)
        hf_model = transformers.AutoModelForSequenceClassification.from_pretrained(model, config=config)
        hf_model.eval()
        if self._device.type == "cpu" and hf_model.dtype in (torch.float16, torch.bfloat16):
            # transformers 5 loads a checkpoint in the dtype it was saved in;
            # many hub checkpoints are fp16, which CPUs run slowly if at all.
            hf_model.float()
        if precision == "bf16":
            hf_model.to(torch.bfloat16)
        hf_model.to(self._device)

        pad_id = tokenizer.pad_token_id
        if pad_id is None:
            # Decoder-style classifiers often ship without a pad token; padding
            # with EOS is the usual convention and the attention mask hides it.
            pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
            if getattr(hf_model.config, "pad_token_id", None) is None:
                hf_model.config.pad_token_id = pad_id
        self._pad_id: int = int(pad_id)
        self._pad_type_id: int = int(getattr(tokenizer, "pad_token_type_id", 0) or 0)
        self._pad_left = getattr(tokenizer, "padding_side", "right") == "left"
        # A token to feed when a text tokenises to nothing at all (tokenizers
        # without special tokens, given an empty string): the model cannot
        # take an empty sequence, and empty text must not raise.
        unk_id = tokenizer.unk_token_id
        self._filler_id: int = int(unk_id) if unk_id is not None else self._pad_id

        model_max = getattr(tokenizer, "model_max_length", None)
        if isinstance(model_max, int) and 0 < model_max < max_length:
            log.info("max_length %d exceeds what %s accepts; using %d", max_length, model, model_max)
            max_length = model_max
        self._max_length = max_length

        self._tokenizer: Any = tokenizer
        self._model: Any = hf_model
        self._precision: Precision = precision
        self._version = _model_version(self._name, config) + ("+bf16" if precision == "bf16" else "")

    @property
    def name(self) -> str:
        """The hub id or path exactly as given, so stored scores name what was configured."""
        return self._name

    @property
    def version(self) -> str:
        """Hub commit hash, or ``local-``/``config-`` fingerprint; see ``_model_version``."""
        return self._version

    @property
    def precision(self) -> Precision:
        """``fp32`` or ``bf16``: the dtype the network runs in."""
        return self._precision

    @property
    def device(self) -> str:
        """Where inference runs (``cpu``, ``cuda``, ``cuda:1``...)."""
        return str(self._device)

    @property
    def labels(self) -> LabelIndices:
        """Logit index of each class, as read from the model config."""
        return self._labels

    def predict(self, texts: Sequence[str]) -> list[SentimentScores]:
        """One ``SentimentScores`` per text, in input order; identical texts are scored once."""
        if not texts:
            return []
        slot_of: dict[str, int] = {}
        slots = [slot_of.setdefault(text, len(slot_of)) for text in texts]
        unique_scores = self._score_unique(list(slot_of))
        return [unique_scores[slot] for slot in slots]

    def _score_unique(self, texts: list[str]) -> list[SentimentScores]:
        torch = self._torch
        encoded = self._tokenizer(texts, truncation=True, max_length=self._max_length, padding=False)
        keys = [key for key in encoded if key != "attention_mask"]
        rows: list[dict[str, list[int]]] = []
        for i in range(len(texts)):
            row = {key: list(encoded[key][i]) for key in keys}
            if not row["input_ids"]:
                row = {key: [self._filler_id if key == "input_ids" else 0] for key in keys}
            rows.append(row)

        # Longest first: similar lengths share a batch (little padding), and a
        # batch too big for memory fails on the first forward, not the last.
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]), reverse=True)
        probabilities: list[list[float]] = [[] for _ in rows]
        with torch.inference_mode():
            for start in range(0, len(order), self._batch_size):
                batch_ids = order[start : start + self._batch_size]
                inputs = self._collate([rows[i] for i in batch_ids], keys)
                logits = self._model(**inputs).logits
                # float64 softmax so the three probabilities sum to 1 to ~1e-15.
                for i, probs in zip(batch_ids, logits.double().softmax(dim=-1).cpu().tolist(), strict=True):
                    probabilities[i] = probs

        idx = self._labels
        return [
            SentimentScores(
                negative=probs[idx.negative],
                neutral=probs[idx.neutral] if idx.neutral is not None else 0.0,
                positive=probs[idx.positive],
            )
            for probs in probabilities
        ]

    def _collate(self, rows: list[dict[str, list[int]]], keys: list[str]) -> dict[str, Any]:
        """Pad one batch to its own longest row (not to ``max_length``) and move it to the device."""
        torch = self._torch
        width = max(len(row["input_ids"]) for row in rows)
        pad_values = {key: self._pad_id if key == "input_ids" else self._pad_type_id for key in keys}
        columns: dict[str, list[list[int]]] = {key: [] for key in [*keys, "attention_mask"]}
        for row in rows:
            gap = width - len(row["input_ids"])
            for key in keys:
                padding = [pad_values[key]] * gap
                columns[key].append(padding + row[key] if self._pad_left else row[key] + padding)
            mask = [1] * len(row["input_ids"])
            columns["attention_mask"].append([0] * gap + mask if self._pad_left else mask + [0] * gap)
        return {key: torch.tensor(values, dtype=torch.long, device=self._device) for key, values in columns.items()}
