"""SIGKILL the real worker process at random moments: nothing lost, nothing doubled, nothing stuck."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.crash_harness import run


@pytest.mark.slow
def test_worker_survives_random_sigkills_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    runs = int(os.environ.get("MONITOR_KILL_RUNS", "20"))
    seed = int(os.environ.get("MONITOR_KILL_SEED", "1"))
    outcome = run(tmp_path / "kill", runs=runs, mentions_n=30 * runs, seed=seed)
    print(outcome.report())
    assert outcome.ok(), outcome.report()  # first: the report names the cause (the final run's log) when it fails
    assert outcome.kills_mid_work >= runs // 2, outcome.report()  # the kills really hit work in flight
    assert outcome.mentions_stored == outcome.mentions_expected, outcome.report()
    assert outcome.channel_messages == outcome.alerts_expected, outcome.report()
    assert outcome.direct_messages == outcome.alerts_expected, outcome.report()
    assert outcome.incidents == outcome.alerts_expected and outcome.stuck == 0 and outcome.backlog == 0
    assert outcome.sigterm_exit == 0
