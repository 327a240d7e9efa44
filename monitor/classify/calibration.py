"""Recalibration from the team's labels: per-language and per-brand offsets on top of the shipped model.

Why offsets and not retraining: a few hundred labels from one brand's team cannot
retrain a sentiment model without overfitting it to last month's complaints, but
they are plenty to say "on *our* Dutch posts the model is too quick to call a post
negative". That is one number per language (and per brand, once a brand has enough
labels of its own): a shift of the log-odds of "negative", which moves every score
of that language up or down and keeps the ratio of neutral to positive. It is
exactly invertible (``unapply``), so a stored calibrated score can always be traced
back to what the model alone said, and a calibration holds numbers only, no text.

The fit is a one-parameter logistic regression per language (Newton's method, a
Gaussian prior pulling towards 0 so twenty labels cannot swing a language wildly);
a brand's offset is fitted on what the language offsets leave over, with a
stronger prior. Everything here is pure and in memory: ``monitor.tune`` reads the
labels from the store and writes the result back.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from monitor.i18n import N_
from monitor.models import SentimentScores

# What a responder can say about one post. Only the first two speak to its sentiment; the others are
# kept for the record and for the digest (a language detector or a brand query to fix, not the model).
NEGATIVE: Final = "negative"
NOT_NEGATIVE: Final = "not_negative"
WRONG_LANGUAGE: Final = "wrong_language"
NOT_ABOUT_US: Final = "not_about_us"
LABELS: Final = (NOT_NEGATIVE, WRONG_LANGUAGE, NOT_ABOUT_US, NEGATIVE)
LABEL_WORDS: Final = {NOT_NEGATIVE: N_("not negative"), WRONG_LANGUAGE: N_("wrong language"),  # shown translated
                      NOT_ABOUT_US: N_("not about us"), NEGATIVE: N_("negative (the alert was right)")}
SENTIMENT_LABELS: Final = (NEGATIVE, NOT_NEGATIVE)

MIN_LABELS: Final = 40  # sentiment labels a language needs before its offset is fitted
MIN_BRAND_LABELS: Final = 120  # ... and a brand, for an offset of its own on top
LANGUAGE_PRIOR_SD: Final = 2.0  # log-odds; a shift beyond about +-4 needs overwhelming evidence
BRAND_PRIOR_SD: Final = 0.75
FOLDS: Final = 5
_EPS: Final = 1e-9


@dataclass(frozen=True, slots=True)
class Calibration:
    """Offsets on the log-odds of "negative": ``language[code] + brand[name]`` for a post."""

    version: int
    language: Mapping[str, float] = field(default_factory=dict)
    brand: Mapping[str, float] = field(default_factory=dict)

    def offset(self, language: str | None, brand: str | None) -> float:
        return self.language.get(language or "", 0.0) + self.brand.get(brand or "", 0.0)

    def apply(self, scores: SentimentScores, language: str | None, brand: str | None) -> SentimentScores:
        return shift(scores, self.offset(language, brand))

    def unapply(self, scores: SentimentScores, language: str | None, brand: str | None) -> SentimentScores:
        return shift(scores, -self.offset(language, brand))

    def to_json(self) -> dict[str, dict[str, float]]:
        """What the store keeps: numbers keyed by language code and brand name, nothing else."""
        return {"language": {k: round(v, 6) for k, v in sorted(self.language.items())},
                "brand": {k: round(v, 6) for k, v in sorted(self.brand.items())}}

    @classmethod
    def from_json(cls, version: int, data: Mapping[str, Any]) -> Calibration:
        return cls(version, {str(k): float(v) for k, v in (data.get("language") or {}).items()},
                   {str(k): float(v) for k, v in (data.get("brand") or {}).items()})


def shift(scores: SentimentScores, offset: float) -> SentimentScores:
    """Add ``offset`` to the log-odds of negative; neutral and positive keep their ratio."""
    if offset == 0.0:
        return scores
    p = min(max(scores.negative, _EPS), 1 - _EPS)
    new = _sigmoid(math.log(p / (1 - p)) + offset)
    rest = scores.neutral + scores.positive
    if rest <= 0:
        return SentimentScores(new, (1 - new) / 2, (1 - new) / 2)
    return SentimentScores(new, scores.neutral / rest * (1 - new), scores.positive / rest * (1 - new))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled post as the fit sees it: the model's own P(negative) and what the team said."""

    mention_id: int
    language: str
    brand: str
    negative: float  # the model's score without any calibration
    is_negative: bool


def fit_offset(examples: Sequence[Example], *, base: Mapping[int, float] | None = None,
               prior_sd: float = LANGUAGE_PRIOR_SD) -> float:
    """The log-odds shift that best explains the labels (maximum a posteriori, Newton's method).

    ``base`` adds a per-example offset already decided (the language's, when fitting a brand).
    """
    if not examples:
        return 0.0
    z = [_logit(e.negative) + (base or {}).get(e.mention_id, 0.0) for e in examples]
    y = [1.0 if e.is_negative else 0.0 for e in examples]
    penalty = 1 / (prior_sd * prior_sd)
    d = 0.0
    for _ in range(50):
        p = [_sigmoid(zi + d) for zi in z]
        grad = sum(yi - pi for yi, pi in zip(y, p, strict=True)) - penalty * d
        hess = -sum(pi * (1 - pi) for pi in p) - penalty
        step = grad / hess
        d -= max(-2.0, min(2.0, step))
        if abs(step) < 1e-8:
            break
    return d


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


@dataclass(frozen=True, slots=True)
class Shortfall:
    """A language with too few labels to be fitted, and how many more it needs."""

    language: str
    labels: int
    needed: int


def group(examples: Iterable[Example], key: str) -> dict[str, list[Example]]:
    out: defaultdict[str, list[Example]] = defaultdict(list)
    for e in examples:
        out[getattr(e, key)].append(e)
    return dict(out)


def fit(examples: Sequence[Example], version: int, *, min_labels: int = MIN_LABELS,
        min_brand_labels: int = MIN_BRAND_LABELS) -> tuple[Calibration, list[Shortfall]]:
    """Offsets for every language with ``min_labels`` labels, then every brand with ``min_brand_labels``.

    A language below the minimum gets no offset (the model alone, as before) and is
    reported with the number of labels it still needs.
    """
    by_language = group(examples, "language")
    languages: dict[str, float] = {}
    short: list[Shortfall] = []
    for code, items in sorted(by_language.items()):
        if len(items) >= min_labels:
            languages[code] = fit_offset(items)
        else:
            short.append(Shortfall(code, len(items), min_labels - len(items)))
    fitted = [e for e in examples if e.language in languages]
    base = {e.mention_id: languages[e.language] for e in fitted}
    brands = {name: fit_offset(items, base=base, prior_sd=BRAND_PRIOR_SD)
              for name, items in sorted(group(fitted, "brand").items()) if len(items) >= min_brand_labels}
    return Calibration(version, languages, brands), short


@dataclass(frozen=True, slots=True)
class Quality:
    """Precision and recall of "negative" at a threshold, against the team's labels."""

    labels: int
    precision: float | None  # None: nothing was called negative
    recall: float | None  # None: nothing was labelled negative

    def to_json(self) -> dict[str, float | int | None]:
        return {"labels": self.labels, "precision": _round(self.precision), "recall": _round(self.recall)}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def quality(pairs: Iterable[tuple[float, bool]], threshold: float) -> Quality:
    """``pairs``: (P(negative), labelled negative) for each post."""
    tp = fp = fn = n = 0
    for p, truth in pairs:
        n += 1
        called = p >= threshold
        tp += called and truth
        fp += called and not truth
        fn += truth and not called
    return Quality(n, tp / (tp + fp) if tp + fp else None, tp / (tp + fn) if tp + fn else None)


def cross_validated(examples: Sequence[Example], *, threshold: float, folds: int = FOLDS,
                    min_labels: int = MIN_LABELS, min_brand_labels: int = MIN_BRAND_LABELS
                    ) -> dict[str, tuple[Quality, Quality]]:
    """Per language: quality of the model alone and of the calibration, each post judged by a fit
    that never saw it (``folds``-fold, split by mention id so a rerun gives the same numbers)."""
    after: defaultdict[str, list[tuple[float, bool]]] = defaultdict(list)
    for k in range(folds):
        train = [e for e in examples if e.mention_id % folds != k]
        test = [e for e in examples if e.mention_id % folds == k]
        calibration, _ = fit(train, 0, min_labels=min_labels * (folds - 1) // folds,
                             min_brand_labels=min_brand_labels * (folds - 1) // folds)
        for e in test:
            p = shift(SentimentScores(e.negative, 1 - e.negative, 0.0), calibration.offset(e.language, e.brand))
            after[e.language].append((p.negative, e.is_negative))
    out = {}
    for code, items in sorted(group(examples, "language").items()):
        before = quality(((e.negative, e.is_negative) for e in items), threshold)
        out[code] = (before, quality(after[code], threshold))
    return out
