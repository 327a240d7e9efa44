"""``monitor import --format twarc``: X archives stored once, through the live source's normaliser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.store import create_store_engine, transaction
from monitor.store.tables import cursors, mentions
from tests.conftest import shared_data

FIXTURE = Path(__file__).parent / "fixtures" / "x" / "lumora_twarc.jsonl"


def run_import(db: Path, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(app, ["import", "--format", "twarc", *args],
                           env={"MONITOR_DB_URL": f"sqlite:///{db}", "MONITOR_COLLECT_FILE": "monitor.yaml"})
    return result.exit_code, result.stdout, result.stderr


def stored(db: Path) -> list[dict[str, object]]:
    engine = create_store_engine(f"sqlite:///{db}")
    try:
        with transaction(engine) as conn:
            return [dict(r._mapping) for r in conn.execute(select(mentions).order_by(mentions.c.source_id))]
    finally:
        engine.dispose()


def test_an_invented_archive_is_stored_once(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    code, out, err = run_import(db, str(FIXTURE), "--brand", "Lumora")
    assert code == 0, err
    # 3 + 2 tweets on the pages, 1 lone tweet, 1 repeated tweet; 1 tweet without text; 1 line cut short.
    assert "read 7 tweet(s) on 5 line(s) for Lumora: 5 new, 1 already stored, 1 skipped, 1 unreadable line(s)" in out
    assert "lumora_twarc.jsonl:2: skipped: tweet 2122990000000000001 has no text" in err
    assert "lumora_twarc.jsonl:4: skipped: not JSON" in err
    rows = stored(db)
    assert [r["source_id"] for r in rows] == ["2122990000000000002", "2122990000000000003", "2122990000000000004",
                                              "2122990000000000005", "2122990000000000007"]
    first = next(r for r in rows if r["source_id"] == "2122990000000000005")
    assert first["author_reach"] == 1240 and first["engagement"] == 18 and first["language"] == "nl"
    assert first["url"] == "https://x.com/jan_peeters_gent/status/2122990000000000005"
    lone = next(r for r in rows if r["source_id"] == "2122990000000000007")
    assert lone["author_handle"] == "jan_peeters_gent" and lone["author_reach"] == 1241  # twarc's inlined author

    code, out, _ = run_import(db, str(FIXTURE), "--brand", "Lumora")
    assert code == 0 and "0 new, 6 already stored, 1 skipped" in out
    assert len(stored(db)) == 5
    engine = create_store_engine(f"sqlite:///{db}")
    with transaction(engine) as conn:
        assert conn.execute(select(cursors)).first() is None  # an import never moves a live cursor
    engine.dispose()


def test_the_brand_comes_from_monitor_yaml_when_it_has_one(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text("brands:\n  Lumora:\n    languages: [nl]\n    x: {query: Lumora}\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["import", str(FIXTURE), "--config", str(config)],
                           env={"MONITOR_DB_URL": f"sqlite:///{tmp_path / 's.db'}"})
    assert result.exit_code == 0, result.stderr
    rows = {r["source_id"]: r for r in stored(tmp_path / "s.db")}
    assert {r["brand"] for r in rows.values()} == {"Lumora"}
    assert rows["2122990000000000004"]["language"] is None  # 'fr' is not expected for this brand here


def test_two_brands_need_a_choice(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text("brands:\n  Lumora: {x: {query: Lumora}}\n  Voltiq: {x: {query: Voltiq}}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["import", str(FIXTURE), "--config", str(config)],
                                env={"MONITOR_DB_URL": f"sqlite:///{tmp_path / 's.db'}"})
    assert result.exit_code == 2 and "--brand" in result.stderr


@pytest.mark.shared_data
def test_the_recorded_brexit_search_is_stored_once_with_reach_language_and_url(tmp_path: Path) -> None:
    path = shared_data("api", "x", "recent_search_brexit.jsonl")
    tweets = [t for line in path.read_text(encoding="utf-8").splitlines() for t in json.loads(line)["data"]]
    db = tmp_path / "brexit.db"
    code, out, err = run_import(db, str(path), "--brand", "Brexit", "--languages", "en,de,es")
    assert code == 0, err
    assert f"read {len(tweets)} tweet(s) on 1 line(s) for Brexit: {len(tweets)} new, 0 already stored, 0 skipped" \
        in out
    rows = {r["source_id"]: r for r in stored(db)}
    assert set(rows) == {t["id"] for t in tweets}
    for tweet in tweets:
        row = rows[tweet["id"]]
        assert row["url"] == f"https://x.com/{row['author_handle']}/status/{tweet['id']}"
        assert isinstance(row["author_reach"], int) and row["author_handle"]
        # X's tag where it names a language we expect; 'und' (undetermined) is left to our detector.
        assert row["language"] == (tweet["lang"] if tweet["lang"] != "und" else None)
    assert sum(1 for r in rows.values() if r["author_reach"]) > 90
    assert sum(1 for r in rows.values() if r["language"]) == sum(1 for t in tweets if t["lang"] != "und")

    code, out, _ = run_import(db, str(path), "--brand", "Brexit", "--languages", "en,de,es")
    assert code == 0 and f"0 new, {len(tweets)} already stored" in out
    assert len(stored(db)) == len(tweets)
