"""Clean starts and stops: nothing migrated by a failed start, a missing folder is an error, SIGTERM ends
`monitor run` within seconds, and no secret in what an unexpected error prints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from monitor.app import build_worker
from monitor.cli import main
from monitor.clock import SystemClock
from monitor.settings import Settings
from monitor.store import StoreUnavailable, check_connection, create_store_engine
from monitor.yamlconfig import ConfigInvalid
from tests.conftest import PG_ADMIN_URL, ROOT


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["monitor", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0)


def test_a_broken_rule_file_stops_the_start_before_the_store_is_migrated(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad.yaml").write_text("rules:\n  - name: x\n    severity: loud\n", encoding="utf-8")
    db = tmp_path / "store.db"
    settings = Settings(db_url=f"sqlite:///{db}", rules_dir=rules, escalation_file=ROOT / "escalation.yaml",
                        metrics_port=0)
    with pytest.raises(ConfigInvalid):
        build_worker(settings, SystemClock())
    assert not db.exists() or inspect(create_engine(f"sqlite:///{db}")).get_table_names() == []


def test_a_sqlite_url_into_a_missing_folder_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    with pytest.raises(StoreUnavailable) as err:
        create_store_engine(f"sqlite:///{missing / 'store.db'}")
    assert str(err.value) == (f"the folder of the SQLite store {missing / 'store.db'} does not exist: "
                              f"create {missing} or correct MONITOR_DB_URL")
    assert not (tmp_path / "no").exists()


def test_a_database_that_does_not_exist_is_one_line_without_the_password(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    if not PG_ADMIN_URL:
        pytest.skip("PostgreSQL not configured (set MONITOR_TEST_PG_URL)")
    from sqlalchemy.engine import make_url

    url = make_url(PG_ADMIN_URL).set(database="monitor_no_such_db", password="s3cret-pass-word")
    engine = create_store_engine(url.render_as_string(hide_password=False))
    with pytest.raises(StoreUnavailable) as err:
        check_connection(engine)
    message = str(err.value)
    assert message.startswith("cannot open the store postgresql+psycopg://postgres:***@")
    assert "s3cret-pass-word" not in message and "\n" not in message


def test_an_unexpected_error_is_one_redacted_line_and_exit_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    token = "xoxb-1234567890-abcdefghijkl"
    monkeypatch.setenv("SLACK_BOT_TOKEN", token)
    monkeypatch.setenv("MONITOR_DB_URL", f"sqlite:///{tmp_path / 'missing' / token / 'store.db'}")
    monkeypatch.setenv("MONITOR_RULES_DIR", str(ROOT / "rules"))
    monkeypatch.setenv("MONITOR_ESCALATION_FILE", str(ROOT / "escalation.yaml"))
    assert run_main(monkeypatch, "sources", "--config", str(ROOT / "monitor.yaml")) == 1
    err = capsys.readouterr().err.strip()
    # Judged with the settings, before anything is opened: one line for the variable, then the count.
    assert token not in err and "Traceback" not in err and len(err.splitlines()) == 2
    assert err.startswith("error: environment variable MONITOR_DB_URL: the folder of the SQLite store ")
    assert "/missing/***/store.db" in err


@pytest.mark.slow
def test_sigterm_ends_monitor_run_within_seconds_mid_classification(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    feed = tmp_path / "feed.jsonl"
    long_text = "Lumora delivered the parcel and the courier was friendly. " * 90
    feed.write_text("\n".join(json.dumps({
        "source": "x", "source_id": str(i), "brand": "Lumora", "text": f"{long_text} {i}",
        "created_at": (now - timedelta(minutes=i)).isoformat(), "author_reach": 10}) for i in range(300)) + "\n",
        encoding="utf-8")
    env = {**os.environ, "MONITOR_DB_URL": f"sqlite:///{tmp_path / 'store.db'}", "MONITOR_METRICS_PORT": "0",
           "MONITOR_RULES_DIR": str(ROOT / "rules"), "MONITOR_ESCALATION_FILE": str(ROOT / "escalation.yaml"),
           "MONITOR_LOG_FORMAT": "text", "MONITOR_LOG_LEVEL": "INFO"}
    env.pop("SLACK_BOT_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--feed", str(feed)], cwd=tmp_path,
                            env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # wait until the worker is up and has stored the feed
        line = proc.stderr.readline()
        seen.append(line)
        if "fetched" in line or proc.poll() is not None:
            break
    assert any("fetched" in line for line in seen), "".join(seen)
    time.sleep(1.0)  # scoring 300 long posts is now under way
    asked = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=30)
    assert rc == 0 and time.monotonic() - asked < 15
