"""``monitor poll NAME --once`` against local fakes: feeds, Mastodon, YouTube and X through the real poller."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import responses
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from monitor.cli import app

runner = CliRunner()
FEEDS = Path(__file__).parent / "fixtures" / "feeds"
X_PAGES = Path(__file__).parent / "fixtures" / "x"


def write_config(tmp_path: Path, root: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(f"""
brands:
  Lumora:
    keywords: [Lumora]
    x: {{query: Lumora, requests_per_day: 50}}
    feeds:
      - {{name: Energienieuws, url: "{root}/feed"}}
    mastodon: {{instances: ["{root}"], hashtags: [lumora]}}
    youtube: {{channel_id: UCxxxxxxxxxxxxxxxxxxxxxx, api_root: "{root}"}}
    bluesky: {{query: Lumora, service: "{root}"}}
""", encoding="utf-8")
    return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("X_BEARER_TOKEN", "YOUTUBE_API_KEY", "BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return {"MONITOR_DB_URL": f"sqlite:///{tmp_path / 'poll.db'}"}


def poll(config: Path, name: str, env: dict[str, str], *extra: str) -> Any:
    return runner.invoke(app, ["poll", name, "--once", "--config", str(config), *extra], env=env)


def test_a_feed_is_polled_twice_new_then_already_stored(httpserver: HTTPServer, tmp_path: Path,
                                                        env: dict[str, str]) -> None:
    config = write_config(tmp_path, httpserver.url_for("/").rstrip("/"))
    body = (FEEDS / "energienieuws.rss").read_text(encoding="utf-8")
    httpserver.expect_request("/feed").respond_with_data(body, content_type="application/rss+xml")
    first = poll(config, "news:Lumora:Energienieuws", env)
    assert first.exit_code == 0, first.output
    assert "news:Lumora:Energienieuws: 2 fetched, 2 new, 0 already stored, 0 skipped, 1 request(s)" in first.output
    assert "cursor before: none" in first.output and "budget:        no daily budget" in first.output
    # The server ignores the ETag: the same items come back and are counted as already stored.
    second = poll(config, "news:Lumora:Energienieuws", env)
    assert "0 fetched" in second.output and "cursor before: {" in second.output


def test_mastodon_and_youtube_sources_poll(httpserver: HTTPServer, tmp_path: Path, env: dict[str, str]) -> None:
    config = write_config(tmp_path, httpserver.url_for("/").rstrip("/"))
    httpserver.expect_request("/api/v1/timelines/tag/lumora").respond_with_json([{
        "id": "5", "uri": "https://m.test/s/5", "url": "https://m.test/@a/5", "visibility": "public",
        "created_at": "2026-11-18T09:00:00Z", "content": "<p>Lumora #lumora</p>", "account": {"acct": "a"}}])
    out = poll(config, f"mastodon:Lumora:{httpserver.host}:{httpserver.port}", env)
    assert out.exit_code == 0, out.output
    assert "1 fetched, 1 new" in out.output and 'cursor after:  {"tag:lumora":"5"}' in out.output

    httpserver.expect_request("/youtube/v3/commentThreads").respond_with_json({"items": []})
    missing = poll(config, "youtube:Lumora", env)
    assert missing.exit_code == 1 and "cannot be built" in missing.output
    with_key = poll(config, "youtube:Lumora", {**env, "YOUTUBE_API_KEY": "AIzaTestKey0123456789"})
    assert with_key.exit_code == 0, with_key.output
    assert "0 fetched, 0 new, 0 already stored, 0 skipped, 1 quota unit(s)" in with_key.output
    assert "budget:        9999 of 10000 quota unit(s) left today (UTC)" in with_key.output


def test_x_is_polled_with_its_budget(tmp_path: Path, env: dict[str, str]) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    page = json.loads((X_PAGES / "search_newer.json").read_text(encoding="utf-8"))
    with responses.RequestsMock() as rsps:
        rsps.get("https://api.twitter.com/2/tweets/search/recent", json=page)
        out = poll(config, "x:Lumora", {**env, "X_BEARER_TOKEN": "AAAAAAAAAAAAAAAAAAAAAtest-token-0123456789"})
    assert out.exit_code == 0, out.output
    assert "x:Lumora: 2 fetched, 2 new" in out.output
    assert "budget:        49 of 50 request(s) left today (UTC)" in out.output


def test_unknown_name_and_missing_once(tmp_path: Path, env: dict[str, str]) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    unknown = poll(config, "x:Nobody", env)
    assert unknown.exit_code == 2 and "configured: x:Lumora, news:Lumora:Energienieuws" in unknown.output
    without = runner.invoke(app, ["poll", "x:Lumora", "--config", str(config)], env=env)
    assert without.exit_code == 2 and "give --once" in without.output


def test_the_repository_example_configures_all_sources(tmp_path: Path) -> None:
    """monitor.yaml's example, with the Facebook, Instagram and app-store blocks uncommented, is valid and complete."""
    import re

    from monitor.sources.schema import load_collect, source_names

    example = (Path(__file__).resolve().parent.parent / "monitor.yaml").read_text(encoding="utf-8")
    uncommented = re.sub(r"(?m)^    # (facebook:|instagram:|google_play:|app_store:)|^    #   ",
                         lambda m: "    " + (m.group(1) or "  "), example)
    path = tmp_path / "monitor.yaml"
    path.write_text(uncommented, encoding="utf-8")
    names = source_names("Lumora", load_collect(path).brands["Lumora"])
    for kind in ("x:", "reddit:", "news:Lumora:VRT", "mastodon:", "bluesky:", "youtube:", "facebook:", "instagram:",
                 "news:Lumora:google-nl-BE", "news:Lumora:google-fr-BE", "google_play:Lumora", "app_store:Lumora"):
        assert any(n.startswith(kind) for n in names), kind


def test_a_deferred_source_is_not_a_quiet_success_and_force_polls_it(httpserver: HTTPServer, tmp_path: Path,
                                                                      env: dict[str, str]) -> None:
    config = write_config(tmp_path, httpserver.url_for("/").rstrip("/"))
    httpserver.expect_oneshot_request("/feed").respond_with_data("slow down", status=429,
                                                                  headers={"Retry-After": "3600"})
    limited = poll(config, "news:Lumora:Energienieuws", env)
    assert limited.exit_code == 1 and "rate limited" in limited.output
    again = poll(config, "news:Lumora:Energienieuws", env)
    assert again.exit_code == 3
    assert "error: news:Lumora:Energienieuws not polled: deferred until " in again.output
    assert "give --force to poll it anyway" in again.output and "rate limited" in again.output

    body = (FEEDS / "energienieuws.rss").read_text(encoding="utf-8")
    httpserver.expect_request("/feed").respond_with_data(body, content_type="application/rss+xml")
    forced = poll(config, "news:Lumora:Energienieuws", env, "--force")
    assert forced.exit_code == 0, forced.output
    assert "2 fetched, 2 new" in forced.output


def test_retries_are_counted_as_requests(httpserver: HTTPServer, tmp_path: Path, env: dict[str, str]) -> None:
    config = write_config(tmp_path, httpserver.url_for("/").rstrip("/"))
    httpserver.expect_oneshot_request("/feed").respond_with_data("oops", status=502)
    body = (FEEDS / "energienieuws.rss").read_text(encoding="utf-8")
    httpserver.expect_oneshot_request("/feed").respond_with_data(body, content_type="application/rss+xml")
    config.write_text(config.read_text(encoding="utf-8") + "http: {backoff: 0s}\n", encoding="utf-8")
    out = poll(config, "news:Lumora:Energienieuws", env)
    assert "2 fetched, 2 new, 0 already stored, 0 skipped, 2 request(s)" in out.output, out.output
