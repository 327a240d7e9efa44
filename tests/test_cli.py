"""The command line: every command has --help; classify agrees with the library; backtest on a file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.classify import load_model
from monitor.cli import SAMPLE_FEED, app
from tests.conftest import ROOT

runner = CliRunner()
COMMANDS = [["run"], ["demo"], ["check"], ["classify"], ["schema"], ["backtest"], ["import"], ["sources"],
            ["digest"], ["forget"], ["purge"], ["escalation", "test"], ["silence", "add"], ["silence", "list"],
            ["silence", "remove"]]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_classify_gives_the_library_labels(tmp_path: Path) -> None:
    texts = ["Wat een schandalige service, nooit meer!", "Merci pour votre aide rapide, au top !",
             "The new tariffs start in January.", "😡😡😡"]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in texts[:2]) + "\n"
                      + "\n".join(texts[2:]) + "\n", encoding="utf-8")  # JSONL and plain lines mixed
    result = runner.invoke(app, ["classify", str(source)])
    assert result.exit_code == 0, result.output
    # JSONL first, so the plain lines are scored with a warning naming each one.
    assert result.stderr.splitlines() == [f"warning: {source}:{n}: not JSON; scored as plain text" for n in (3, 4)]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    expected = load_model().predict(texts)
    assert [r["text"] for r in rows] == texts
    assert [r["label"] for r in rows] == [s.label.value for s in expected]
    for row, scores in zip(rows, expected, strict=True):
        assert row["scores"]["negative"] == pytest.approx(scores.negative, abs=1e-4)
        assert set(row["scores"]) == {"negative", "neutral", "positive"}
    assert [r["language"] for r in rows[:3]] == ["nl", "fr", "en"]


@pytest.mark.slow
def test_backtest_on_a_file_compares_rule_sets(tmp_path: Path) -> None:
    stricter = tmp_path / "stricter"
    shutil.copytree(ROOT / "rules", stricter)
    volume = stricter / "volume.yaml"
    volume.write_text(volume.read_text(encoding="utf-8").replace("count: 8", "count: 20"), encoding="utf-8")
    result = runner.invoke(app, ["backtest", "--data", str(SAMPLE_FEED), "--rules", str(stricter),
                                 "--compare", str(ROOT / "rules"), "--escalation", str(ROOT / "escalation.yaml")],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "79 mentions from 16 Nov 2026 to 22 Nov 2026 (7 day(s))" in out
    burst = next(line for line in out.splitlines() if "negative-burst" in line)
    assert "0 (was 1)" in burst  # the stricter burst rule no longer fires
    engagement = next(line for line in out.splitlines() if "negative-engagement" in line)
    assert engagement.split("│")[-2].strip() == "1"  # merged: the angry post already paged via its reach
    # 5 and 6, not 4 and 5: with `negative_above: default` (0.23 in Dutch) the neutral high-reach news article
    # (P(negative) 0.27) pages too, the stated price of 0.85 recall (README, "Sentiment").
    assert "Alerts a responder would have received: 5" in out
    assert "Before the change: 6" in out
    assert "[negative-high-reach] Tue 17 Nov 06:45: Post by @vlaamsavondblad on News" in out
    assert "[fraud-or-boycott] Mon 16 Nov 20:30: Post by @gert_dv on X" in out  # the display name, not "x"


def test_backtest_needs_exactly_one_data_source() -> None:
    result = runner.invoke(app, ["backtest"])
    assert result.exit_code != 0
    assert "exactly one of --since" in result.output


def test_digest_post_goes_to_the_configured_slack_with_the_retry_policy(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.store import create_store_engine, migrate
    from tests.slack_emulator import BOT_TOKEN, SlackEmulator

    db = tmp_path / "store.db"
    engine = create_store_engine(f"sqlite:///{db}")
    migrate(engine)
    engine.dispose()
    monkeypatch.chdir(tmp_path)
    with SlackEmulator() as slack:
        channel = slack.add_channel("reputation")
        # A plain WebClient gives up on a 429; the worker's retry policy waits Retry-After and tries again.
        slack.fail("chat.postMessage", status=429, retry_after=0)
        monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
        monkeypatch.setenv("MONITOR_SLACK_API_URL", slack.base_url)
        monkeypatch.setenv("MONITOR_DIGEST_URL", "https://reports.example/digests")  # a link: no file upload here
        result = runner.invoke(app, ["digest", "--week", "2026-W47", "--db-url", f"sqlite:///{db}", "--escalation",
                                     str(ROOT / "escalation.yaml"), "--post", "--channel", "#reputation"])
        assert result.exit_code == 0, result.output
        posted = slack.messages(channel)
        assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]
    assert len(posted) == 1 and "2026-W47" in posted[0].text
    assert f"posted to #reputation (ts {posted[0].ts})" in result.output
