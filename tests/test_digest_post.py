"""``monitor digest --post`` against the Slack emulator: the channel it honours, the report uploaded in three
steps (``files.getUploadURLExternal``, the bytes, ``files.completeUploadExternal``), and a failed upload that
leaves no promise of a file behind (issue 28)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.store import create_store_engine, migrate
from tests.slack_emulator import BOT_TOKEN, SlackEmulator
from tests.test_slack import manifest_scopes

DIGEST_CHANNEL = "C0DIGEST01"
ATTACHED_LINE = "Full report (charts, every incident): the HTML file in this message's thread"
NOT_ATTACHED_LINE = "The full report could not be attached to this message"


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(scopes=manifest_scopes())  # the manifest's scopes: files:write among them
    emulator.add_channel("reputation-digest", DIGEST_CHANNEL)
    with emulator:
        yield emulator


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slack: SlackEmulator) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_store_engine(url)
    migrate(engine)
    engine.dispose()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("MONITOR_SLACK_API_URL", slack.base_url)
    monkeypatch.setenv("MONITOR_SLACK_CHANNEL", "#reputation-digest")
    monkeypatch.delenv("MONITOR_DIGEST_URL", raising=False)
    return url


def _post(store: str, out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["digest", "--week", "2026-W47", "--out", str(out), "--db-url", store,
                                      "--post"])
    return result.exit_code, result.output


def test_digest_post_goes_to_monitor_slack_channel_with_the_report_uploaded_in_its_thread(
        slack: SlackEmulator, store: str, tmp_path: Path) -> None:
    """README "Setting up Slack": "`MONITOR_SLACK_CHANNEL` is the default for levels that name only people, and where
    the weekly digest is posted".

    README "Setting up Slack": "`MONITOR_SLACK_CHANNEL` is ... where the weekly digest is posted" (by the
    worker and by `monitor digest --post` alike), and the weekly digest's report is uploaded into the
    message's thread (needs `files:write`, in the manifest)."""
    out = tmp_path / "digest.html"
    code, output = _post(store, out)
    assert code == 0, output
    [summary] = [m for m in slack.messages(DIGEST_CHANNEL) if m.thread_ts is None]
    assert ATTACHED_LINE in summary.block_text()
    [shared] = slack.replies(DIGEST_CHANNEL, summary.ts)
    [report] = shared.files
    assert report["name"] == "digest.html"
    assert slack.uploads[report["id"]]["content"] == out.read_bytes()  # the very file written


@pytest.mark.parametrize("where", ["upload", "files.completeUploadExternal"])
def test_a_failed_upload_leaves_a_summary_that_promises_no_file(slack: SlackEmulator, store: str,
                                                                 tmp_path: Path, where: str) -> None:
    """README "The weekly digest": a report that could not be uploaded is not promised in the summary."""
    if where == "upload":
        slack.fail("upload", status=500)
    else:
        slack.refuse("files.completeUploadExternal", "not_in_channel")
    code, output = _post(store, tmp_path / "digest.html")
    assert code != 0 and "report" in output and "Traceback" not in output
    [summary] = [m for m in slack.messages(DIGEST_CHANNEL) if m.thread_ts is None]
    assert ATTACHED_LINE not in summary.block_text() and NOT_ATTACHED_LINE in summary.block_text()
    assert not any(m.files for m in slack.replies(DIGEST_CHANNEL, summary.ts))
