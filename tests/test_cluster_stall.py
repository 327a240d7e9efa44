"""Issue 28: a worker frozen (SIGSTOP) longer than its lease, 20 times during delivery, posts nothing twice."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cluster_harness import STALL, run
from tests.conftest import PG_ADMIN_URL


@pytest.mark.slow
def test_workers_frozen_past_their_lease_during_delivery_post_nothing_twice(tmp_path: Path) -> None:
    """README "Running several workers": "a worker frozen longer than its lease (a GC or VM pause, SIGSTOP)
    posts nothing twice when it wakes up"."""
    if not PG_ADMIN_URL:
        pytest.skip("PostgreSQL not configured (set MONITOR_TEST_PG_URL; .ci/run does)")
    pauses = int(os.environ.get("MONITOR_CLUSTER_PAUSES", "20"))
    outcome = run(tmp_path / "stall", PG_ADMIN_URL, kills=pauses, mentions_n=120, every=10, stall=True,
                  seed=int(os.environ.get("MONITOR_KILL_SEED", "1")), **STALL)  # type: ignore[arg-type]
    print(outcome.report())
    assert outcome.ok(), outcome.report()
