"""Issue 14's acceptance test: three workers on one PostgreSQL, a random one SIGKILLed every few seconds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cluster_harness import run
from tests.conftest import PG_ADMIN_URL


@pytest.mark.slow
def test_three_workers_killed_at_random_store_score_and_notify_everything_once(tmp_path: Path) -> None:
    """README "Running several workers": "kills a random worker with SIGKILL every 1.5–3 s (20 times) and starts a new
    one in its place".
    """
    if not PG_ADMIN_URL:
        pytest.skip("PostgreSQL not configured (set MONITOR_TEST_PG_URL; .ci/run does)")
    kills = int(os.environ.get("MONITOR_CLUSTER_KILLS", "20"))
    outcome = run(tmp_path / "cluster", PG_ADMIN_URL, kills=kills, seed=int(os.environ.get("MONITOR_KILL_SEED", "1")))
    print(outcome.report())
    assert outcome.ok(), outcome.report()
