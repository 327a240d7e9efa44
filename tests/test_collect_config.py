"""monitor.yaml: validation with file, line, key and suggestion; the source factory; ``monitor sources``."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.settings import Settings
from monitor.sources.factory import build_sources, configured
from monitor.sources.feeds import FeedSource
from monitor.sources.reddit import RedditSource
from monitor.sources.schema import collect_model, load_collect
from monitor.sources.x import XSource
from monitor.store import arrivals as arrivals_repo
from monitor.store import create_store_engine, migrate, transaction
from monitor.store import health as health_repo
from monitor.store.mentions import set_cursor, store_batch
from monitor.yamlconfig import ConfigInvalid
from tests.conftest import ROOT, make_mention

GOOD = """\
source_unhealthy_after: 90m
brands:
  Lumora:
    keywords: [Lumora, "@lumora_be"]
    languages: [nl, fr]
    x:
      query: '"Lumora" OR @lumora_be -is:retweet'
      poll_every: 2m
      requests_per_day: 100
    reddit:
      subreddits: [r/belgium, brussels]
    feeds:
      - name: VRT NWS
        url: https://www.vrt.be/vrtnws/nl.rss.articles.xml
        reach: 1500000
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigInvalid) as caught:
        load_collect(path)
    return [str(e) for e in caught.value.errors]


def test_the_shipped_example_is_valid() -> None:
    config = load_collect(ROOT / "monitor.yaml")
    lumora = config.brands["Lumora"]
    assert lumora.x is not None and "@lumora_be" in lumora.x.query and "-is:retweet" in lumora.x.query
    assert lumora.x.requests_per_day and lumora.reddit and lumora.feeds
    assert config.source_unhealthy_after == timedelta(hours=2)
    assert [s.name for s in configured(config)][:2] == ["x:Lumora", "reddit:Lumora"]
    assert "token" not in (ROOT / "monitor.yaml").read_text(encoding="utf-8").split("# A source failing")[1]


def test_a_good_file_parses_with_durations_and_defaults(tmp_path: Path) -> None:
    config = load_collect(write(tmp_path, GOOD))
    lumora = config.brands["Lumora"]
    assert config.source_unhealthy_after == timedelta(minutes=90)
    assert lumora.x is not None and lumora.x.poll_every == timedelta(minutes=2)
    assert lumora.reddit is not None and lumora.reddit.subreddits == ["belgium", "brussels"]
    assert lumora.feeds[0].poll_every == timedelta(minutes=15)
    assert config.keywords("Lumora") == ["Lumora", "@lumora_be"]
    assert config.http.rate_limit_max_wait == timedelta(seconds=60)


def test_a_typo_names_file_line_key_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("      poll_every: 2m", "      pol_every: 2m"))
    assert errors_of(path) == [f"{path}:8:7: brands.Lumora.x: unknown key 'pol_every'; did you mean 'poll_every'?"]


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    text = (GOOD.replace("poll_every: 2m", "poll_every: 2")
            .replace("subreddits: [r/belgium, brussels]", "subredits: [belgium]")
            .replace("url: https://www.vrt.be", "url: www.vrt.be"))
    errors = errors_of(write(tmp_path, text))
    assert any(":8:19: brands.Lumora.x.poll_every: a duration needs a unit, e.g. '2m' or '2h'" in e for e in errors)
    assert any("brands.Lumora.reddit: unknown key 'subredits'; did you mean 'subreddits'?" in e for e in errors)
    assert any("brands.Lumora.feeds[0].url: expected an http(s) URL" in e for e in errors)


def test_secrets_have_no_place_in_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("      requests_per_day: 100", "      bearer_token: AAAA"))
    (error,) = errors_of(path)
    assert ":9:7: brands.Lumora.x: unknown key 'bearer_token'" in error


def test_reddit_needs_subreddits_or_a_query(tmp_path: Path) -> None:
    (error,) = errors_of(write(tmp_path, "brands:\n  Lumora:\n    reddit: {poll_every: 5m}\n"))
    assert "brands.Lumora.reddit: give subreddits, a query, or both" in error


def test_factory_skips_sources_without_credentials_with_one_line_each(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("praw_client_id", "praw_client_secret", "praw_user_agent", "X_BEARER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/praw.ini
    monkeypatch.chdir(tmp_path)  # no ./praw.ini nor .env
    config = load_collect(write(tmp_path, GOOD))
    with caplog.at_level(logging.WARNING):
        sources = build_sources(config, Settings())
    assert [type(s) for s in sources] == [FeedSource]
    lines = [r.getMessage() for r in caplog.records]
    assert any("x:Lumora: skipped, X_BEARER_TOKEN is not set" in line for line in lines)
    assert any("reddit:Lumora: skipped" in line for line in lines)
    assert all("\n" not in line for line in lines)

    monkeypatch.setenv("X_BEARER_TOKEN", "test-token-0123456789")
    monkeypatch.setenv("praw_client_id", "cid")
    monkeypatch.setenv("praw_client_secret", "secret-0123456789")
    monkeypatch.setenv("praw_user_agent", "monitor-tests/1.0")
    sources = build_sources(config, Settings())
    x, reddit, feed = sources
    assert isinstance(x, XSource) and x.daily_budget == 100 and x.poll_every == timedelta(minutes=2)
    assert isinstance(reddit, RedditSource) and reddit.reddit.read_only
    assert isinstance(feed, FeedSource) and feed.name == "news:Lumora:VRT NWS" and feed.reach == 1_500_000
    assert x.client.session.timeout == 20.0  # tweepy itself never times out


def test_monitor_sources_lists_health_cursor_recent_items_and_budget(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, GOOD)
    db = tmp_path / "store.db"
    engine = create_store_engine(f"sqlite:///{db}")
    migrate(engine)
    now = datetime.now(UTC)
    with transaction(engine) as conn:
        store_batch(conn, "x:Lumora", [make_mention(1), make_mention(2)], "2122990000000000007", now)
        arrivals_repo.record(conn, "x:Lumora", now, fetched=3, new=2)  # as poll_source records it
        health_repo.record_success(conn, "x:Lumora", now - timedelta(minutes=3), requests=7)
        set_cursor(conn, "news:Lumora:VRT NWS", '{"etag":"abc"}', now)
        health_repo.record_failure(conn, "news:Lumora:VRT NWS", now - timedelta(hours=3), "HTTPError: 500")
        health_repo.record_failure(conn, "news:Lumora:VRT NWS", now - timedelta(minutes=1),
                                   "HTTPError: 500 Server Error for {'Authorization': 'Bearer sekrit-token-123456'}")
    engine.dispose()
    result = CliRunner().invoke(app, ["sources", "--config", str(path)],
                                env={"MONITOR_DB_URL": f"sqlite:///{db}", "X_BEARER_TOKEN": "t-0123456789"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "x:Lumora  [ok]" in out and "credentials:  ok (X_BEARER_TOKEN)" in out
    assert "cursor:       2122990000000000007" in out
    assert "last 24 h:    2 new item(s) stored, 3 delivered by this source" in out
    assert "93 of 100 request(s) left today (UTC)" in out
    assert "reddit:Lumora  [never polled]" in out and "MISSING: set praw_client_id" in out
    assert "news:Lumora:VRT NWS  [failing: 2 poll(s) in a row - UNHEALTHY (failing for 3 h)]" in out
    assert "last error:" in out and "500 Server Error for {'Authorization': '***'}" in out
    assert "sekrit" not in out


def test_monitor_sources_reports_a_broken_file_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("requests_per_day: 100", "requests_per_dya: 100"))
    result = CliRunner().invoke(app, ["sources", "--config", str(path)],
                                env={"MONITOR_DB_URL": f"sqlite:///{tmp_path / 's.db'}"})
    assert result.exit_code == 1
    assert f"error: {path}:9:7: brands.Lumora.x: unknown key 'requests_per_dya'; did you mean 'requests_per_day'?" \
        in result.stderr


def test_schema_round_trip_keeps_durations() -> None:
    schema = collect_model().model_json_schema()
    assert "brands" in schema["required"]
    brand = schema["$defs"]["Brand"]["properties"]
    assert {"x", "reddit", "feeds", "google_news", "mastodon", "bluesky", "youtube", "facebook",
            "instagram"} <= set(brand)  # every platform's block, from the registry
