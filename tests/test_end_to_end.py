"""The whole pipeline on the bundled feed with the real offline model: which posts alert, which do not."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from monitor.app import AssembledWorker, Mode, SourcePlan, build_worker
from monitor.cli import SAMPLE_FEED
from monitor.clock import FakeClock
from monitor.demo import feed_bounds
from monitor.notify import ConsoleNotifier
from monitor.settings import Settings
from monitor.sources import ReplaySource
from monitor.store import create_store_engine, migrate, transaction
from monitor.store.tables import incident_mentions, incidents, mentions, outbox
from tests.conftest import ROOT, database_url

pytestmark = pytest.mark.slow  # the whole sample week through the real offline model: about a minute per store

ANGRY_HIGH_REACH = "2123154276883890190"
BURST = {"2123462609057091589", "2123464593180196916", "2123466342977515533", "2123468409032933418",
         "2123471653430239239", "t3_1p3qql", "t1_n8a4wb1", "t1_n8a55yv", "t1_n8a6iuc", "2123463734349803551",
         "2123469312856428582", "2123474553772441607"}
KEYWORD_POSTS = {"2122412051268370432", "2123018436590837767", "t1_n8a7fgy"}
# The high-reach neutral news article (P(negative) 0.275) is no longer here: the shipped rules say
# `negative_above: default`, 0.23 for Dutch, chosen for a negative recall of 0.85, at which about half of
# what is flagged is not negative (README, "Sentiment"). test_a_neutral_article_pays_for_the_recall says so.
NEUTRAL_HIGH_REACH_NEWS = "vlaamsavondblad.be/economie/2026/11/17/energiefactuur-daalt-licht-in-december"
MUST_NOT_ALERT = {
    "2122970564254498867",  # high-reach praise
    "2123485962455494698", "2122630826084143161",  # the brand's own posts
    "2122677443000021007", "2122696503730774053",  # praise and its verbatim copy
}


SETTINGS = Settings(db_url="sqlite://", rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml")


def simulated(engine: Engine, clock: FakeClock, out: io.StringIO) -> AssembledWorker:
    """The worker ``monitor demo`` runs (``build_worker``, simulated mode), alerts written to ``out``."""
    source = ReplaySource(SAMPLE_FEED, name="sample", release_until=clock.now)
    return build_worker(SETTINGS, clock, mode=Mode.SIMULATED, sources=SourcePlan((source,)),
                        notifier=ConsoleNotifier(out), engine=engine)


def run_feed(engine: Engine, step: timedelta = timedelta(minutes=15)) -> str:
    """The whole sample feed as ``monitor demo`` replays it; returns the alerts' text."""
    first, last = feed_bounds(SAMPLE_FEED)
    clock = FakeClock(first - timedelta(minutes=1))
    out = io.StringIO()
    simulated(engine, clock, out).run_simulated(clock, step=step, until=last + timedelta(hours=2))
    return out.getvalue()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[Engine, str]]:
    with database_url(request.param, tmp_path_factory.mktemp("e2e")) as url:
        engine = create_store_engine(url)
        migrate(engine)
        yield engine, run_feed(engine)
        engine.dispose()


def alerted_posts(engine: Engine) -> dict[str, set[str]]:
    """source_id -> rules of the incidents it belongs to."""
    stmt = (select(mentions.c.source_id, incidents.c.rule)
            .join(incident_mentions, incident_mentions.c.mention_id == mentions.c.id)
            .join(incidents, incidents.c.id == incident_mentions.c.incident_id))
    found: dict[str, set[str]] = {}
    with transaction(engine) as conn:
        for sid, rule in conn.execute(stmt):
            found.setdefault(sid, set()).add(rule)
    return found


def test_every_mention_is_stored_and_scored_once(demo_run: tuple[Engine, str]) -> None:
    engine, _ = demo_run
    lines = [line for line in SAMPLE_FEED.read_text(encoding="utf-8").splitlines() if line.strip()]
    with transaction(engine) as conn:
        stored = conn.execute(select(mentions.c.source_id, mentions.c.language, mentions.c.detected_at)).all()
    assert len(stored) == len(lines)
    assert all(row.language in ("nl", "fr", "en") and row.detected_at is not None for row in stored)


def test_the_high_reach_angry_post_pages_at_night(demo_run: tuple[Engine, str]) -> None:
    engine, output = demo_run
    assert "negative-high-reach" in alerted_posts(engine)[ANGRY_HIGH_REACH]
    assert "@mdelcourt_conso · 85,000 followers" in output
    assert "On-call communications" in output  # 21:40 in Brussels: the on-call person, at once


def test_the_burst_is_one_critical_incident(demo_run: tuple[Engine, str]) -> None:
    engine, _ = demo_run
    alerted = alerted_posts(engine)
    in_burst_incident = {sid for sid, rules in alerted.items() if "negative-burst" in rules}
    assert len(in_burst_incident & BURST) >= 8
    with transaction(engine) as conn:
        bursts = conn.execute(select(incidents).where(incidents.c.rule == "negative-burst")).all()
    assert len(bursts) == 1 and bursts[0].severity == "critical"


def test_keyword_posts_alert(demo_run: tuple[Engine, str]) -> None:
    engine, _ = demo_run
    alerted = alerted_posts(engine)
    assert all("fraud-or-boycott" in alerted.get(sid, set()) for sid in KEYWORD_POSTS)


def test_praise_news_and_own_posts_do_not_alert(demo_run: tuple[Engine, str]) -> None:
    engine, _ = demo_run
    assert not MUST_NOT_ALERT & set(alerted_posts(engine))


def test_a_neutral_article_pays_for_the_recall(demo_run: tuple[Engine, str]) -> None:
    engine, _ = demo_run
    assert alerted_posts(engine).get(NEUTRAL_HIGH_REACH_NEWS) == {"negative-high-reach"}


def test_each_alert_is_delivered_once(demo_run: tuple[Engine, str]) -> None:
    engine, output = demo_run
    with transaction(engine) as conn:
        rows = conn.execute(select(outbox.c.dedupe_key, outbox.c.sent_at)).all()
    assert rows and all(r.sent_at is not None for r in rows)
    assert output.count("[NEW INCIDENT]") == sum(1 for r in rows if ":alert:" in r.dedupe_key)


def test_restart_resumes_from_the_cursor_without_realerting(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    first, _ = feed_bounds(SAMPLE_FEED)
    clock = FakeClock(first)
    out1, out2 = io.StringIO(), io.StringIO()
    # Run up to the middle of the burst (Thursday 17:30 UTC), then "crash" and restart with a new worker.
    simulated(engine, clock, out1).run_simulated(clock, step=timedelta(minutes=15),
                                                 until=first.replace(day=19, hour=17, minute=30), drain=False)
    simulated(engine, clock, out2).run_simulated(clock, step=timedelta(minutes=15),
                                                 until=clock.now() + timedelta(days=4), drain=False)
    with transaction(engine) as conn:
        keys = conn.execute(select(outbox.c.dedupe_key)).scalars().all()
        n_mentions = conn.execute(select(mentions.c.id)).all()
    assert len(keys) == len(set(keys))
    assert len(n_mentions) == len([ln for ln in SAMPLE_FEED.read_text(encoding="utf-8").splitlines() if ln.strip()])
    # The restarted worker rebuilt the burst window from the store: the burst still fires exactly once.
    assert sum(1 for k in keys if k.endswith(":alert:0:1")) == (out1.getvalue() + out2.getvalue()).count(
        "[NEW INCIDENT]")
    assert (out1.getvalue() + out2.getvalue()).count("rule negative-burst") >= 1
    assert sum("negative-burst" in line and "NEW INCIDENT" in line for line in
               (out1.getvalue() + out2.getvalue()).splitlines()) == 1


def test_demo_command_prints_what_the_tested_worker_alerts(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "monitor.cli", "demo"], capture_output=True, text=True,
                            timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[NEW INCIDENT]" in result.stdout and "rule negative-high-reach" in result.stdout
    assert "Incidents" in result.stdout and "mentions stored" in result.stdout
    engine = create_store_engine(f"sqlite:///{tmp_path / 'e2e.db'}")
    migrate(engine)
    alerts = run_feed(engine)
    engine.dispose()
    assert alerts and alerts in result.stdout  # the demo is the worker these tests check, alert for alert
