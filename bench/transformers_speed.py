"""Throughput of ``TransformersSentimentModel`` against the naive way to use a hub model.

The naive baseline is what a first integration usually looks like:
``transformers.pipeline("text-classification", model=..., top_k=None)`` called
once per post. Our backend de-duplicates, tokenises once, sorts by length and
runs padded batches under ``torch.inference_mode()``. The target is >= 3x.

Both sides get the same de-duplicated texts (so de-duplication, which only
helps when posts repeat, does not flatter our figure), the same truncation and
the same torch thread count, and one warm-up call before timing.

Usage::

    python -m bench.transformers_speed                       # tiny model built on the fly
    python -m bench.transformers_speed --size base           # BERT-base-sized, random weights
    python -m bench.transformers_speed MODEL_DIR [TEXTS.txt] # your model, one text per line

Without a texts file, the first ``--n`` lines of the TweetEval test set are
used when ``/work/shared/data/sentiment/tweeteval`` (or ``$MONITOR_SHARED_DATA``)
exists, else toy sentences. Random weights are fine here: speed does not
depend on what the weights are.
"""

from __future__ import annotations

import argparse
import importlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from monitor.classify.transformers_backend import TransformersSentimentModel

SHARED = Path(os.environ.get("MONITOR_SHARED_DATA", "/work/shared/data"))
TWEETEVAL = SHARED / "sentiment" / "tweeteval"

TOY = [
    "This service is terrible and I am very angry",
    "Slechte service, ik ben echt boos @user",
    "Service horrible, je suis très en colère",
    "The store opens at nine tomorrow",
    "De winkel gaat morgen om negen uur open",
    "Le magasin ouvre demain à neuf heures",
    "Great service, thank you so much! http://t.co/x",
    "Geweldige service, heel erg bedankt",
    "Service génial, merci beaucoup",
]
SIZES: dict[str, dict[str, int]] = {
    # Tiny: the test-suite model; measures overhead more than compute.
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
    # BERT-base: the size of most hub sentiment models (XLM-R base differs mainly in its 250k vocab,
    # which costs memory and load time, not per-token compute).
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
}


def _backend() -> tuple[Any, Any]:
    """torch and transformers, imported late (and typed loosely: their stubs are partial)."""
    return importlib.import_module("torch"), importlib.import_module("transformers")


def default_texts(n: int) -> list[str]:
    """First ``n`` TweetEval test tweets if the shared data is present, else varied toy sentences."""
    path = TWEETEVAL / "test_text.txt"
    if path.exists():
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        return [line for line in lines if line][:n]
    return [f"{TOY[i % len(TOY)]} {' '.join(TOY[: i % 5])} #{i}" for i in range(n)]


def build_model(out_dir: Path, size: str = "tiny", corpus: list[str] | None = None) -> Path:
    """Save a randomly initialised BERT classifier plus a WordPiece tokenizer trained on ``corpus``."""
    torch, transformers = _backend()
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    if corpus is None:
        corpus = []
        for name in ("test_text.txt", "val_text.txt"):
            if (TWEETEVAL / name).exists():
                corpus += (TWEETEVAL / name).read_text(encoding="utf-8").splitlines()
        corpus = corpus or TOY
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    vocab_size = 30_000 if size == "base" else 2_000
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )
    id2label = {0: "negative", 1: "neutral", 2: "positive"}
    config = transformers.BertConfig(
        vocab_size=max(len(tokenizer), 30_522 if size == "base" else 0),
        max_position_embeddings=512,
        num_labels=3,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        **SIZES[size],
    )
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_config(config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _time_naive(model_path: str, texts: list[str], max_length: int) -> tuple[float, float, list[float]]:
    _, transformers = _backend()
    start = time.perf_counter()
    pipe = transformers.pipeline("text-classification", model=model_path, top_k=None, device="cpu")
    load_s = time.perf_counter() - start
    pipe(texts[0], truncation=True, max_length=max_length)  # warm-up
    start = time.perf_counter()
    outputs = [pipe(text, truncation=True, max_length=max_length) for text in texts]
    run_s = time.perf_counter() - start
    p_negative = []
    for out in outputs:
        scores = out[0] if out and isinstance(out[0], list) else out  # one text -> list of label dicts
        p_negative.append(next(float(d["score"]) for d in scores if d["label"].lower() == "negative"))
    return load_s, run_s, p_negative


def _reduce_precision(model: TransformersSentimentModel, precision: str) -> None:
    """int8 is an experiment only: it converts the loaded network in place (a private attribute).

    bf16 is a product option (``precision="bf16"``), passed to the constructor
    instead; int8 is not offered because torch's dynamic int8 API is deprecated
    in favour of torchao.
    """
    torch, _ = _backend()
    if precision == "int8":
        model._model = torch.ao.quantization.quantize_dynamic(model._model, {torch.nn.Linear}, dtype=torch.qint8)
    elif precision not in ("fp32", "bf16"):
        raise ValueError(f"unknown precision {precision!r}")


def _time_ours(
    model_path: str, texts: list[str], batch_size: int, max_length: int, precision: str = "fp32"
) -> tuple[float, float, list[float]]:
    start = time.perf_counter()
    model = TransformersSentimentModel(
        model_path,
        device="cpu",
        batch_size=batch_size,
        max_length=max_length,
        precision="bf16" if precision == "bf16" else "fp32",
    )
    _reduce_precision(model, precision)
    load_s = time.perf_counter() - start
    model.predict(texts[:1])  # warm-up
    start = time.perf_counter()
    scores = model.predict(texts)
    run_s = time.perf_counter() - start
    return load_s, run_s, [s.negative for s in scores]


def compare(
    model_path: str,
    texts: list[str],
    *,
    batch_size: int = 32,
    max_length: int = 128,
    precisions: tuple[str, ...] = ("fp32",),
) -> list[dict[str, object]]:
    """Time the naive per-post pipeline and our backend on the same (de-duplicated) texts.

    Returns one row per backend: posts/s, load time, run time and speedup over
    the naive pipeline; our rows also give the largest difference in
    P(negative) from the pipeline's, as a check that both compute the same
    thing. ``precisions`` beyond ``fp32`` add rows: ``bf16`` (a product
    option) and ``int8`` (an experiment; see ``_reduce_precision``).
    """
    torch, _ = _backend()
    texts = list(dict.fromkeys(texts))
    if not texts:
        raise ValueError("no texts to score")
    threads = torch.get_num_threads()
    naive_load, naive_run, naive_neg = _time_naive(model_path, texts, max_length)
    naive_rate = len(texts) / naive_run
    rows: list[dict[str, object]] = [
        {
            "backend": "pipeline, one post per call",
            "posts": len(texts),
            "threads": threads,
            "posts_per_s": round(naive_rate, 1),
            "load_s": round(naive_load, 2),
            "run_s": round(naive_run, 2),
            "speedup": 1.0,
        }
    ]
    for precision in precisions:
        load_s, run_s, neg = _time_ours(model_path, texts, batch_size, max_length, precision)
        rate = len(texts) / run_s
        diff = max(abs(a - b) for a, b in zip(naive_neg, neg, strict=True))
        rows.append(
            {
                "backend": f"TransformersSentimentModel (batch {batch_size}, {precision})",
                "posts": len(texts),
                "threads": threads,
                "posts_per_s": round(rate, 1),
                "load_s": round(load_s, 2),
                "run_s": round(run_s, 2),
                "speedup": round(rate / naive_rate, 2),
                "max_abs_diff_p_negative": float(f"{diff:.2g}"),
            }
        )
    return rows


def _print_rows(title: str, rows: list[dict[str, object]]) -> None:
    print(f"\n{title}")
    for row in rows:
        print("  " + "  ".join(f"{key}={value}" for key, value in row.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("model", nargs="?", help="hub id or model directory; default: build one")
    parser.add_argument("texts", nargs="?", type=Path, help="text file, one post per line")
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny", help="model to build without MODEL")
    parser.add_argument("--keep", type=Path, help="build the model into this directory (reused if present)")
    parser.add_argument("-n", type=int, default=500, help="number of posts (default 500)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both sides")
    parser.add_argument(
        "--precision",
        action="append",
        choices=["fp32", "bf16", "int8"],
        help="our backend's precision; repeat for several rows (default fp32; bf16 is an option, int8 an experiment)",
    )
    args = parser.parse_args(argv)

    torch, transformers = _backend()
    transformers.utils.logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.texts:
        texts = [line for line in args.texts.read_text(encoding="utf-8").splitlines() if line.strip()][: args.n]
    else:
        texts = default_texts(args.n)

    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model
        if model_path is None:
            target = args.keep or Path(tmp) / f"bert-{args.size}"
            if not (target / "config.json").exists():
                start = time.perf_counter()
                build_model(target, args.size)
                print(f"built {args.size} model in {time.perf_counter() - start:.1f}s at {target}")
            model_path = str(target)
        rows = compare(
            model_path,
            texts,
            batch_size=args.batch_size,
            max_length=args.max_length,
            precisions=tuple(args.precision or ["fp32"]),
        )
    _print_rows(
        f"{model_path if args.model else args.size + ' model'}: {rows[0]['posts']} posts, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs",
        rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
