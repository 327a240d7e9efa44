"""``monitor demo`` delivers to Slack when ``SLACK_BOT_TOKEN`` is set (issue 28: it printed to the console)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from tests.crash_harness import CHANNEL_ID, ESCALATION, RESPONDER, RULES, write_feed
from tests.slack_emulator import BOT_TOKEN, SlackEmulator


@pytest.mark.slow
def test_monitor_demo_with_a_bot_token_posts_its_alerts_to_slack(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """README "Setting up Slack": "`monitor demo` delivers to Slack too when `SLACK_BOT_TOKEN` is set".

    README "Setting up Slack": "`monitor demo` delivers to Slack too when `SLACK_BOT_TOKEN` is set
    (`MONITOR_SLACK_API_URL` for a test server)"."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES, encoding="utf-8")
    (tmp_path / "escalation.yaml").write_text(ESCALATION, encoding="utf-8")
    feed = tmp_path / "feed.jsonl"
    alerts = write_feed(feed, 12, 4)
    monkeypatch.chdir(tmp_path)  # the demo reads ./rules and ./escalation.yaml when they exist
    with SlackEmulator() as slack:
        slack.add_channel("reputation-alerts", CHANNEL_ID)
        slack.add_user(RESPONDER, name="Sofie")
        monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
        monkeypatch.setenv("MONITOR_SLACK_API_URL", slack.base_url)
        monkeypatch.setenv("SLACK_APP_TOKEN", "")
        result = CliRunner().invoke(app, ["demo", "--feed", str(feed), "--keep-db", str(tmp_path / "demo.db")])
        assert result.exit_code == 0, result.output
        assert "the alerts go to Slack" in result.output
        cards = [m for m in slack.messages(CHANNEL_ID) if m.thread_ts in (None, m.ts)]
        assert alerts == 3 and len(cards) == alerts
        dm = slack.dm_channel_of(RESPONDER)
        assert dm is not None and len([m for m in dm.messages if m.thread_ts in (None, m.ts)]) == alerts
