"""The platform registry: every platform in one module, and a new one added through the registry alone.

A fake platform ("Lemmy") is declared in this file and nowhere else: its block in
``monitor.yaml``, its source name, its variable (a secret), its builder and its
display name. Registered, it is accepted by ``monitor check`` (its block and rules
naming it), listed by ``monitor sources`` with its credentials, its posts alert as
"on Lemmy" through the real worker, and the weekly digest names it. Unregistered,
the same files are refused, which shows the registry, not a list elsewhere, decides.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field
from typer.testing import CliRunner

from monitor.app import Mode, SourcePlan, build_worker
from monitor.cli import app
from monitor.clock import FakeClock
from monitor.detect.matching import Match, post_reason
from monitor.digest.format import source_name as digest_source_name
from monitor.i18n import translator
from monitor.models import PostSummary, StoredMention
from monitor.notify import ConsoleNotifier
from monitor.notify.render import post_view
from monitor.reasons import english
from monitor.redact import redact
from monitor.settings import Settings
from monitor.sources import ReplaySource, registry
from monitor.sources.base import Source
from monitor.sources.factory import build_sources, configured
from monitor.sources.registry import BuildContext, EnvVar, Platform, SourceSpec
from monitor.sources.schema import Strict, load_collect
from monitor.store import create_store_engine, migrate
from tests.conftest import ALWAYS_OPEN_ESCALATION, ROOT, make_mention

TOKEN = "LEMMY_TOKEN"
SECRET = "lemmy-secret-0123456789"


class LemmyQuery(Strict):
    """Posts of one Lemmy community (here: replayed from a file, as a recorded API would be)."""

    community: str = Field(pattern=r"^!\w+@[\w.]+$")
    file: Path


def lemmy_specs(brand: str, block: LemmyQuery) -> list[SourceSpec]:
    return [SourceSpec(f"lemmy:{brand}", "lemmy", brand, timedelta(minutes=5), None, block.community)]


def lemmy_build(ctx: BuildContext, brand: str, block: LemmyQuery) -> list[Source]:
    if not ctx.env(TOKEN):
        return []
    return [ReplaySource(block.file, name=f"lemmy:{brand}")]


LEMMY = Platform(key="lemmy", source="lemmy", display="Lemmy", config=LemmyQuery, specs=lemmy_specs,
                 build=lemmy_build, env=(EnvVar(TOKEN, "a Lemmy instance's JWT"),))

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)  # a Wednesday of ISO week 2026-W47
POSTS = [
    {"source": "lemmy", "source_id": "lemmy-1", "brand": "Lumora", "author_handle": "Anna_B", "author_reach": 120,
     "text": "Lumora is oplichting, drie maanden geen factuur en nu dit", "created_at": "2026-11-18T09:10:00Z",
     "url": "https://lemmy.world/post/1", "language": "nl"},
    {"source": "lemmy", "source_id": "lemmy-2", "brand": "Lumora", "author_handle": "piet", "author_reach": 40,
     "text": "Lumora heeft mijn meterstand eindelijk verwerkt", "created_at": "2026-11-18T09:20:00Z",
     "language": "nl"},
]
RULE = """\
rules:
  - name: lemmy-fraud
    severity: warning
    when:
      sources: [lemmy]
      keywords: [oplichting]
"""


@pytest.fixture
def lemmy() -> Iterator[Platform]:
    with registry.registered(LEMMY) as platform:
        yield platform


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """monitor.yaml with a ``lemmy:`` block, a rule naming ``lemmy``, the escalation file, the replayed posts."""
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.delenv(TOKEN, raising=False)
    feed = tmp_path / "lemmy.jsonl"
    feed.write_text("".join(json.dumps(p) + "\n" for p in POSTS), encoding="utf-8")
    collect = tmp_path / "monitor.yaml"
    collect.write_text(f"brands:\n  Lumora:\n    lemmy:\n      community: '!lumora@lemmy.world'\n"
                       f"      file: {feed}\n", encoding="utf-8")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "lemmy.yaml").write_text(RULE, encoding="utf-8")
    escalation = tmp_path / "escalation.yaml"
    escalation.write_text(ALWAYS_OPEN_ESCALATION, encoding="utf-8")
    return {"collect": collect, "rules": rules, "escalation": escalation, "feed": feed}


def check(files: dict[str, Path]) -> Any:
    return CliRunner().invoke(app, ["check", "--rules", str(files["rules"]), "--escalation",
                                    str(files["escalation"]), "--collect", str(files["collect"]), "--no-compare"])


# --- the built-in platforms ------------------------------------------------------------------------


def test_every_platform_is_registered_once_with_its_display_name() -> None:
    names = {p.key: p.display for p in registry.platforms()}
    assert names == {"x": "X", "reddit": "Reddit", "feeds": "News", "google_news": "News", "mastodon": "Mastodon",
                     "bluesky": "Bluesky", "youtube": "YouTube", "facebook": "Facebook", "instagram": "Instagram",
                     "google_business": "Google reviews", "trustpilot": "Trustpilot",
                     "facebook_reviews": "Facebook reviews", "google_play": "Google Play", "app_store": "App Store"}
    assert registry.known_sources() == ["app_store", "bluesky", "facebook", "facebook_reviews", "google_business",
                                        "google_play", "instagram", "mastodon", "news", "reddit", "trustpilot", "x",
                                        "youtube"]
    assert registry.display_name("replay") == "replay"  # a replayed file's own source, shown as it is


@pytest.mark.parametrize(("source", "shown"), [("youtube", "YouTube"), ("mastodon", "Mastodon"), ("x", "X"),
                                               ("news", "News"), ("bluesky", "Bluesky")])
def test_alerts_the_console_and_the_digest_use_the_same_name(source: str, shown: str) -> None:
    mention = make_mention(1, source=source, author="ANNA_B")
    reason = english(post_reason(StoredMention(1, mention), Match(())))
    assert reason.startswith(f"Post by @ANNA_B on {shown}")  # not lowercased, not the key
    summary = PostSummary(id=1, source=source, text=mention.text, created_at=mention.created_at)
    assert post_view(summary, translator("en", "Europe/Brussels")).source == shown
    assert digest_source_name(source) == shown


def test_each_secret_variable_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"X_BEARER_TOKEN": "x-token-0123456789", "YOUTUBE_API_KEY": "AIzaSy-youtube-key-0123",
              "BLUESKY_APP_PASSWORD": "abcd-efgh-ijkl-mnop", "FACEBOOK_PAGE_TOKEN": "EAAG-page-token-0123",
              "MASTODON_ACCESS_TOKEN": "masto-token-0123456", "praw_client_secret": "praw-secret-0123456"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    shown = redact("echoed: " + " | ".join(values.values()))
    assert not any(value in shown for value in values.values()), shown
    assert "BLUESKY_HANDLE" not in registry.secret_env_names()  # a handle is not a secret


def test_rules_naming_an_unknown_platform_are_refused_with_the_known_ones(files: dict[str, Path]) -> None:
    (files["rules"] / "lemmy.yaml").write_text(RULE.replace("[lemmy]", "[twitter, tiktok]"), encoding="utf-8")
    result = check(files)
    assert result.exit_code == 1
    assert (f"{files['rules'] / 'lemmy.yaml'}:5:16: rules[0].when.sources: unknown source 'twitter', 'tiktok' "
            "(did you mean 'x'?); known sources: app_store, bluesky, facebook, facebook_reviews, google_business, "
            "google_play, instagram, mastodon, news, reddit, trustpilot, x, youtube"
            in result.output), result.output
    assert "Traceback" not in result.output


# --- a platform added through the registry alone -----------------------------------------------------


def test_monitor_check_accepts_the_new_platform_only_once_registered(files: dict[str, Path]) -> None:
    refused = check(files)
    assert refused.exit_code == 1
    assert f"{files['collect']}:3:5: brands.Lumora: unknown key 'lemmy'" in refused.output
    assert "unknown source 'lemmy'" in refused.output

    with registry.registered(LEMMY):
        accepted = check(files)
        assert accepted.exit_code == 0, accepted.output
        assert f"ok: {files['collect']}: 1 brand(s)" in accepted.output
        files["collect"].write_text(files["collect"].read_text(encoding="utf-8").replace("community:", "comunity:"),
                                    encoding="utf-8")
        typo = check(files)
    assert f"{files['collect']}:4:7: brands.Lumora.lemmy: unknown key 'comunity'; did you mean 'community'?" \
        in typo.output


def test_monitor_sources_lists_it_with_its_credentials(lemmy: Platform, files: dict[str, Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"MONITOR_DB_URL": f"sqlite:///{tmp_path / 'store.db'}"}
    missing = CliRunner().invoke(app, ["sources", "--config", str(files["collect"])], env=env)
    assert missing.exit_code == 0, missing.output
    assert "lemmy:Lumora  [never polled]\n  platform:     Lemmy (lemmy in monitor.yaml)" in missing.stdout
    assert "collects:     !lumora@lemmy.world  (every 5 min)" in missing.stdout
    assert "credentials:  MISSING: set LEMMY_TOKEN" in missing.stdout
    present = CliRunner().invoke(app, ["sources", "--config", str(files["collect"])], env={**env, TOKEN: SECRET})
    assert "credentials:  ok (LEMMY_TOKEN)" in present.stdout
    monkeypatch.setenv(TOKEN, SECRET)
    assert SECRET not in redact(f"401 for token {SECRET[::-1]} / {SECRET}")  # its secret is masked like X's


def test_its_posts_alert_and_reach_the_digest_under_its_display_name(lemmy: Platform, files: dict[str, Path],
                                                                     tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    config = load_collect(files["collect"])
    assert [s.name for s in configured(config)] == ["lemmy:Lumora"]
    assert build_sources(config, Settings()) == []  # no LEMMY_TOKEN: skipped
    monkeypatch.setenv(TOKEN, SECRET)
    settings = Settings(db_url=db, rules_dir=files["rules"], escalation_file=files["escalation"], metrics_port=0)
    (source,) = build_sources(config, settings)
    engine = create_store_engine(db)
    migrate(engine)
    clock, out = FakeClock(T0), io.StringIO()
    worker = build_worker(settings, clock, mode=Mode.SIMULATED, sources=SourcePlan((source,)),
                          notifier=ConsoleNotifier(out), engine=engine)
    worker.run_simulated(clock, step=timedelta(minutes=15), until=T0 + timedelta(hours=2))
    engine.dispose()
    alert = out.getvalue()
    assert "Post by @Anna_B on Lemmy" in alert, alert  # the rule's reason
    assert re.search(r"@Anna_B · 120 followers · Lemmy ·", alert), alert  # the post line of the alert

    report = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["digest", "--week", "2026-W47", "--out", str(report), "--escalation",
                                      str(files["escalation"]), "--db-url", db])
    assert result.exit_code == 0, result.output
    html = report.read_text(encoding="utf-8")
    assert "Lemmy" in html and ">lemmy<" not in html


def test_forget_refuses_a_platform_it_does_not_know(tmp_path: Path) -> None:
    """``forget --source twitter`` would erase nothing and look done: it names the platform meant instead."""
    env = {"MONITOR_DB_URL": f"sqlite:///{tmp_path / 'store.db'}"}
    result = CliRunner().invoke(app, ["forget", "--author", "@anna", "--source", "twitter"], env=env)
    assert result.exit_code == 2
    assert "--source 'twitter' is no platform (did you mean 'x'?); known: app_store, bluesky, facebook, " \
        "facebook_reviews, google_business, google_play, instagram, mastodon, news, reddit, trustpilot, x, " \
        "youtube" in result.output
    done = CliRunner().invoke(app, ["forget", "--author", "@anna", "--source", "youtube"], env=env)
    assert done.exit_code == 0, done.output


def test_the_readme_lists_every_platform_where_it_promises_to() -> None:
    """Opening paragraph, diagram, the sources table, "What is collected", ``forget --source``, variables."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    opening = readme.split("## Quick start")[0]
    diagram = readme.split("## What it does")[1].split("```")[1]
    table = readme.split("### Sources and their access")[1].split("\n\n")[1]
    collected = readme.split("**What is collected.**")[1].split("\n\n")[0]
    forget = readme.split("**Erasing a person.**")[1].split("\n\n")[0]
    variables = readme.split("## Configuration by environment variables")[1].split("\n### ")[0]
    for platform in registry.platforms():
        name = {"feeds": "news feeds", "google_news": "Google News"}.get(platform.key, platform.display)
        for where, text in (("opening", opening), ("diagram", diagram), ("What is collected", collected)):
            assert name.casefold() in " ".join(text.split()).casefold(), f"{platform.key} not in the {where}"
        assert f"| `{platform.key}` |" in table, f"{platform.key} has no row in 'Sources and their access'"
        assert platform.source in forget.split("--source ")[1].split("]")[0].split("|"), platform.source
        for var in platform.env:
            assert f"`{var.name}`" in variables, f"{var.name} is not in 'Configuration by environment variables'"


def test_each_poll_module_stamps_its_posts_with_the_registered_source() -> None:
    """The poll modules keep their own ``SOURCE`` (they load the client libraries); it must match the registry."""
    from monitor.sources import bluesky, feeds, mastodon, reddit, x, youtube
    from monitor.sources.graph import FacebookSource, InstagramSource

    stamped = {"x": x.SOURCE, "reddit": reddit.SOURCE, "feeds": feeds.SOURCE, "google_news": feeds.SOURCE,
               "mastodon": mastodon.SOURCE, "bluesky": bluesky.SOURCE, "youtube": youtube.SOURCE,
               "facebook": FacebookSource.source, "instagram": InstagramSource.source,
               # ReviewSource is given its platform's source by the platform module:
               "google_business": "google_business", "trustpilot": "trustpilot",
               "facebook_reviews": "facebook_reviews", "google_play": "google_play", "app_store": "app_store"}
    assert stamped == {p.key: p.source for p in registry.platforms()}


def test_settings_read_only_declared_platform_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From ``.env`` like the other settings, and a name no platform declares is refused, not read as unset."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("YOUTUBE_API_KEY", raising=False)
    (tmp_path / ".env").write_text("youtube_api_key=AIzaSy-from-dotenv-0123\n", encoding="utf-8")
    settings = Settings()
    assert settings.env("YOUTUBE_API_KEY") == "AIzaSy-from-dotenv-0123"
    assert "AIzaSy-from-dotenv-0123" not in redact("key=AIzaSy-from-dotenv-0123 rejected")
    assert settings.env("BLUESKY_HANDLE") is None
    with pytest.raises(KeyError, match="TIKTOK_TOKEN is not declared"):
        settings.env("TIKTOK_TOKEN")
