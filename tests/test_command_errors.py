"""Every command, every bad input: one clear ``error:`` line and a non-zero exit, never a traceback.

Each case is run the way an operator would meet it (through the real CLI,
with the real store and files), and asserts the exact line printed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from monitor.cli import app
from monitor.store import create_store_engine, transaction
from monitor.store.tables import mentions
from tests.conftest import ROOT

runner = CliRunner()
FIXTURE = Path(__file__).parent / "fixtures" / "x" / "lumora_twarc.jsonl"  # 5 lines, 5 storable tweets
BINARY = bytes(range(256)) * 4


@pytest.fixture(autouse=True)
def _no_stale_log_handler() -> Iterator[None]:
    """Drop the handler an earlier ``setup_logging`` left on the root logger, writing to a closed CliRunner stream.

    Its "--- Logging error --- Traceback" would otherwise be mistaken for a traceback of the command under test.
    """
    root = logging.getLogger()
    stale = [h for h in root.handlers if getattr(h, "_monitor_handler", False)]
    for handler in stale:
        root.removeHandler(handler)
    yield
    for handler in stale:
        root.addHandler(handler)


def invoke(args: list[str], tmp_path: Path, **env: str) -> Result:
    base = {"MONITOR_DB_URL": f"sqlite:///{tmp_path / 'store.db'}", "MONITOR_COLLECT_FILE": "monitor.yaml",
            "HF_HUB_OFFLINE": "1"}
    return runner.invoke(app, args, env={**base, **env})


def assert_one_error(result: Result, expected: str, code: int = 1) -> None:
    """The command ended through its own exit (no exception escaped) with exactly this error line."""
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [expected], result.stderr


def stored_ids(db: Path) -> list[str]:
    engine = create_store_engine(f"sqlite:///{db}")
    try:
        with transaction(engine) as conn:
            return [r[0] for r in conn.execute(select(mentions.c.source_id).order_by(mentions.c.source_id))]
    finally:
        engine.dispose()


# --- monitor classify -----------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "expected"), [
    (BINARY, "{f}:1: NUL bytes: binary data or UTF-16 text, not UTF-8 text"),
    ("Lumora is top\n".encode("utf-16"), "{f}: UTF-16 text; convert it to UTF-8 first "
                                          "(iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8)"),
    (b"fine\nLumora \xed\xa0\x80 raw surrogate\n", "{f}:2: not UTF-8 text (byte 0xed at column 8); "
                                                    "binary data or another encoding"),
], ids=["binary", "utf-16", "raw-surrogate-bytes"])
def test_classify_refuses_what_is_not_utf8_text(tmp_path: Path, content: bytes, expected: str) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(content)
    assert_one_error(invoke(["classify", str(source)], tmp_path), "error: " + expected.format(f=source))


def test_classify_scores_a_lone_surrogate_escaped_in_json_as_a_replacement_character(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "Lumora \\ud800 service"}\n', encoding="ascii")
    result = invoke(["classify", str(source)], tmp_path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["text"] == "Lumora \ufffd service"


def test_classify_names_each_unusable_jsonl_line_and_scores_the_others(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "Lumora is top"}\n{"txt": "typo in the key"}\n{"text": "cut sh\n'
                      '{"text": "Lumora is slow"}\n', encoding="utf-8")
    result = invoke(["classify", str(source)], tmp_path)
    assert result.exit_code == 1
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == ["Lumora is top", "Lumora is slow"]
    assert result.stderr.splitlines() == [
        f"warning: {source}:2: skipped: not a JSON object with a string 'text' field",
        f"warning: {source}:3: skipped: not JSON (Unterminated string starting at)",
        f"error: 2 line(s) of {source} skipped (see the warnings above); the others were scored",
    ]


def test_classify_with_an_unknown_model_says_so_offline_without_loading_pytorch(tmp_path: Path) -> None:
    result = invoke(["classify", "--model", "no/such-model", "-"], tmp_path)
    assert_one_error(result, "error: sentiment model 'no/such-model' is not a local folder and not in the Hugging "
                             "Face cache, and the hub is offline (HF_HUB_OFFLINE); download it first or use 'default'")


def test_classify_with_a_missing_offline_head_says_so(tmp_path: Path) -> None:
    result = invoke(["classify", "--model", str(tmp_path / "head.npz"), "-"], tmp_path)
    assert_one_error(result, f"error: sentiment head {tmp_path / 'head.npz'} does not exist")


# --- monitor backtest -----------------------------------------------------------------------------

def test_backtest_with_a_since_that_is_not_a_duration(tmp_path: Path) -> None:
    result = invoke(["backtest", "--since", "banana"], tmp_path)
    assert_one_error(result, "error: --since: expected a duration like '30m', '2h' or '7d', got 'banana'", code=2)


def test_backtest_on_a_binary_data_file(tmp_path: Path) -> None:
    data = tmp_path / "posts.jsonl"
    data.write_bytes(b'{"source": "x"}\n' + BINARY)
    result = invoke(["backtest", "--data", str(data), "--rules", str(ROOT / "rules")], tmp_path)
    assert_one_error(result, f"error: {data}:2: NUL bytes: binary data or UTF-16 text, not UTF-8 text; "
                             "nothing was backtested")


# --- monitor import -------------------------------------------------------------------------------

def test_import_of_a_binary_file_stores_nothing_and_says_where(tmp_path: Path) -> None:
    archive = tmp_path / "a.jsonl"
    archive.write_bytes(BINARY)
    result = invoke(["import", str(archive), "--brand", "Lumora"], tmp_path)
    assert_one_error(result, "error: a.jsonl:1: NUL bytes: binary data or UTF-16 text, not UTF-8 text; "
                             "nothing was stored")


def test_import_of_utf16_says_to_convert_it(tmp_path: Path) -> None:
    archive = tmp_path / "a.jsonl"
    archive.write_bytes(FIXTURE.read_text(encoding="utf-8").encode("utf-16"))
    result = invoke(["import", str(archive), "--brand", "Lumora"], tmp_path)
    assert_one_error(result, "error: a.jsonl: UTF-16 text; convert it to UTF-8 first (iconv -f UTF-16 -t UTF-8 "
                             "FILE > FILE.utf8); nothing was stored")


def test_import_stores_a_lone_surrogate_as_a_replacement_character(tmp_path: Path) -> None:
    archive = tmp_path / "a.jsonl"
    archive.write_text('{"data": [{"id": "7", "text": "Lumora \\ud800 \\u0000 odd"}]}\n', encoding="ascii")
    result = invoke(["import", str(archive), "--brand", "Lumora"], tmp_path)
    assert result.exit_code == 0, result.output
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with transaction(engine) as conn:
        assert conn.execute(select(mentions.c.text)).scalar_one() == "Lumora \ufffd  odd"
    engine.dispose()


def test_good_pages_then_garbage_keeps_the_pages_reports_the_line_and_a_rerun_adds_nothing_twice(
        tmp_path: Path) -> None:
    archive = tmp_path / "a.jsonl"
    good = FIXTURE.read_bytes()
    archive.write_bytes(good + b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\n")
    result = invoke(["import", str(archive), "--brand", "Lumora"], tmp_path)
    assert_one_error(result, "error: stored 5 of 8 pages' posts, stopped at a.jsonl:6: not UTF-8 text (byte 0x89 "
                             "at column 1); binary data or another encoding; fix or remove that line, then run "
                             "again to continue (pages already stored are not stored twice)")
    first = stored_ids(tmp_path / "store.db")
    assert len(first) == 5

    archive.write_bytes(good + b'{"data": [{"id": "2122990000000000099", "text": "Lumora again"}]}\n')
    result = invoke(["import", str(archive), "--brand", "Lumora"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "1 new, 6 already stored" in result.stdout
    assert stored_ids(tmp_path / "store.db") == sorted([*first, "2122990000000000099"])


# --- settings and the store, for every command ----------------------------------------------------

STORE_COMMANDS = [
    ["import", str(FIXTURE), "--brand", "Lumora"],
    ["sources", "--config", str(ROOT / "monitor.yaml")],
    ["poll", "news:Lumora:VRT NWS", "--once", "--config", str(ROOT / "monitor.yaml")],
    ["forget", "--author", "someone"],
    ["purge", "--dry-run"],
    ["silence", "list"],
    ["silence", "remove", "1"],
    ["silence", "add", "--reason", "r", "--by", "me", "--brand", "Lumora", "--for", "1h"],
    ["backtest", "--since", "1d", "--rules", str(ROOT / "rules")],
    ["digest", "--week", "2026-W47"],
]
SETTINGS_COMMANDS = [*STORE_COMMANDS, ["demo"]]


@pytest.mark.parametrize("command", SETTINGS_COMMANDS, ids=[" ".join(c[:2]) for c in SETTINGS_COMMANDS])
def test_a_setting_that_is_not_a_number_is_one_line_for_every_command(tmp_path: Path, command: list[str]) -> None:
    result = invoke(command, tmp_path, MONITOR_PASS_SECONDS="abc")
    assert_one_error(result, "error: environment variable MONITOR_PASS_SECONDS: expected a number (got 'abc')")


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=[" ".join(c[:2]) for c in STORE_COMMANDS])
def test_a_postgres_database_that_does_not_exist_is_one_line_for_every_command(tmp_path: Path,
                                                                               command: list[str]) -> None:
    admin = os.environ.get("MONITOR_TEST_PG_URL")
    if not admin:
        pytest.skip("PostgreSQL not configured (set MONITOR_TEST_PG_URL)")
    url = make_url(admin).set(database="monitor_no_such_db")
    result = invoke(command, tmp_path, MONITOR_DB_URL=url.render_as_string(hide_password=False))
    where = f"{url.host}:{url.port}" if url.port else str(url.host)
    assert_one_error(result, f"error: database 'monitor_no_such_db' does not exist on {where}; create it with "
                             "createdb monitor_no_such_db")


# --- monitor check --------------------------------------------------------------------------------

def test_check_reports_bad_settings_with_the_files(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MONITOR_LOG_LEVEL=INFO\nMONITOR_PASS_SECONDS=soon\n", encoding="utf-8")
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        result = runner.invoke(app, ["check", "--rules", str(ROOT / "rules"), "--escalation",
                                     str(ROOT / "escalation.yaml"), "--collect", str(ROOT / "monitor.yaml")])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        "error: .env:2:1: MONITOR_PASS_SECONDS: expected a number (got 'soon')", "1 problem(s) found."]
    assert "rule(s)" in result.stdout and "brand(s)" in result.stdout  # the files are still checked


def test_check_says_the_settings_are_fine_when_they_are(tmp_path: Path) -> None:
    result = invoke(["check", "--rules", str(ROOT / "rules"), "--escalation", str(ROOT / "escalation.yaml"),
                     "--collect", str(ROOT / "monitor.yaml")], tmp_path)
    assert result.exit_code == 0, result.output
    assert "ok: settings (environment and .env)" in result.stdout
