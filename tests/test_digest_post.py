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


def test_a_repeated_weekly_run_finds_its_summary_instead_of_posting_it_twice(
        slack: SlackEmulator, store: str, tmp_path: Path) -> None:
    """A worker killed between posting the digest and recording the week leaves the period unfinished; the
    next worker runs it again. The scheduled run looks for the week's summary (its metadata) first: the
    channel gets one summary and one report, whatever the number of runs."""
    from datetime import UTC, datetime

    from slack_sdk import WebClient

    from monitor.digest.job import run_weekly_digest
    from monitor.digest.slack import SlackPoster

    engine = create_store_engine(store)
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday morning: last week is 2026-W47
    client = WebClient(token=BOT_TOKEN, base_url=slack.base_url)
    first = SlackPoster(client, "#reputation-digest", once_per_week=True)
    run_weekly_digest(engine, None, first, now, timezone="Europe/Brussels", out_dir=tmp_path / "a")
    again = SlackPoster(client, "#reputation-digest", once_per_week=True)  # another worker, later
    run_weekly_digest(engine, None, again, now, timezone="Europe/Brussels", out_dir=tmp_path / "b")
    summaries = [m for m in slack.messages(DIGEST_CHANNEL) if m.thread_ts is None]
    assert len(summaries) == 1 and again.found_earlier and again.file_in_thread
    assert len([m for m in slack.replies(DIGEST_CHANNEL, summaries[0].ts) if m.files]) == 1

    # Next week: the summary posted, the report's upload failed (the week stays unfinished): the repeat
    # uploads the report once, and the summary promises the file again.
    later = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # last week is 2026-W48
    slack.fail("upload", status=500)
    lost = SlackPoster(client, "#reputation-digest", once_per_week=True)
    with pytest.raises(Exception, match="report"):
        run_weekly_digest(engine, None, lost, later, timezone="Europe/Brussels", out_dir=tmp_path / "c")
    repeat = SlackPoster(client, "#reputation-digest", once_per_week=True)
    run_weekly_digest(engine, None, repeat, later, timezone="Europe/Brussels", out_dir=tmp_path / "d")
    summaries = [m for m in slack.messages(DIGEST_CHANNEL) if m.thread_ts is None]
    assert len(summaries) == 2 and repeat.found_earlier and not repeat.file_in_thread
    assert len([m for m in slack.replies(DIGEST_CHANNEL, summaries[1].ts) if m.files]) == 1
    assert ATTACHED_LINE in summaries[1].block_text() and NOT_ATTACHED_LINE not in summaries[1].block_text()
    engine.dispose()
