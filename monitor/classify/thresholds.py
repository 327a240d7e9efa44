"""What ``negative_above: default`` means: a P(negative) threshold per language, calibrated for the head.

Why: one threshold for every language meant a different recall and precision
in each (the model is surer of itself in some languages than in others).
``scripts/calibrate_thresholds.py`` picks, per language, the highest threshold
whose negative recall on that language's calibration data reaches the target
(0.85), measures recall and precision on held-out data, and writes both to
``<head>.thresholds.json`` beside the head. A rule that says
``negative_above: default`` then applies the threshold of the post's stored
language, and the head's global threshold (``default_negative_threshold`` in
its metadata) to languages without one. A rule with a number keeps its number.

The file names the head it was calibrated for (sha256): thresholds only mean
something for the head they were measured on, so a file that names another
head is ignored with a warning and the global threshold applies.

Only ``json`` and ``hashlib`` here: the rule matcher imports this, and must
not pay for numpy.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

WEIGHTS_DIR: Final = Path(__file__).resolve().parent / "weights"
SHIPPED_HEAD: Final = WEIGHTS_DIR / "e5_sentiment_head.npz"
# When a head has no metadata at all (offline.FALLBACK_NEGATIVE_THRESHOLD says the same).
FALLBACK: Final = 0.5


def thresholds_path(head: Path) -> Path:
    """``<head>.thresholds.json`` beside the head file."""
    return head.with_name(f"{head.stem}.thresholds.json")


@dataclass(frozen=True, slots=True)
class NegativeThresholds:
    """The global threshold and the per-language ones (ISO 639-1 code -> threshold)."""

    default: float
    by_language: Mapping[str, float] = field(default_factory=dict)
    # Encoder weights these thresholds were chosen and measured on: running on other weights is allowed, and
    # said by ``monitor check`` and ``/healthz``.
    measured_on: frozenset[str] = frozenset()

    def for_language(self, language: str | None) -> float:
        return self.by_language.get(language or "", self.default)


@functools.lru_cache(maxsize=8)
def load_thresholds(head: Path = SHIPPED_HEAD, weights: str | None = None) -> NegativeThresholds:
    """The thresholds calibrated for ``head`` on the encoder ``weights`` it runs on (read once per head and
    weights), else those of the head's own weights, else its global threshold alone.

    Why per weights: the int8 graph (VNNI CPUs) moves scores slightly, and the calibration picks thresholds
    up to 0.02 apart; each weights' thresholds come with held-out figures measured on those weights.
    """
    default = global_threshold(head.with_suffix(".json"))
    path = thresholds_path(head)
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return NegativeThresholds(default)
    except (OSError, ValueError) as exc:
        log.warning("negative thresholds: %s is unreadable (%s); 'default' means %.2f in every language",
                    path, exc, default)
        return NegativeThresholds(default)
    try:
        named = str(document["head_sha256"])
        own = str(document.get("encoder_weights", ""))
        chosen = dict(document["by_language"])
        measured = own
        per_weights = dict(document.get("by_weights") or {})
        if weights and weights != own and weights in per_weights:
            chosen, measured = dict(per_weights[weights]["by_language"]), weights
        by_language = {str(k): float(v) for k, v in chosen.items()}
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("negative thresholds: %s lacks %s; 'default' means %.2f in every language", path, exc, default)
        return NegativeThresholds(default)
    actual = hashlib.sha256(head.read_bytes()).hexdigest()
    if named != actual:
        log.warning("negative thresholds: %s was calibrated for another head (%s, not %s); 'default' means %.2f "
                    "in every language until scripts/calibrate_thresholds.py is run for this head",
                    path, named[:12], actual[:12], default)
        return NegativeThresholds(default)
    if not all(0.0 <= t <= 1.0 for t in by_language.values()):
        log.warning("negative thresholds: %s holds a threshold outside 0..1; ignored", path)
        return NegativeThresholds(default)
    return NegativeThresholds(default, by_language, frozenset({measured} - {""}))


def thresholds_of(model: object) -> NegativeThresholds | None:
    """What ``negative_above: default`` means for the posts ``model`` scores: the offline model's set for the
    encoder weights it runs (int8 on a VNNI CPU), None for a model without one (the shipped head's then).

    One place for the worker, Try it and the backtests: a backtest that applied the head's own (4-bit) set
    while the worker applies the int8 one would disagree with it on posts near a threshold.
    """
    thresholds = getattr(model, "negative_thresholds", None)
    return thresholds if isinstance(thresholds, NegativeThresholds) else None


def global_threshold(meta: Path) -> float:
    """The P(negative) threshold the training script recorded in a head's metadata, else 0.5."""
    try:
        return float(json.loads(meta.read_text(encoding="utf-8"))["default_negative_threshold"])
    except (OSError, KeyError, ValueError, TypeError):
        return FALLBACK
