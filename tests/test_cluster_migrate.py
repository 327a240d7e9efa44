"""Several workers starting at once on a fresh database: one migrates, the others wait and find it done."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import inspect

from monitor.store import create_store_engine, migrate


def test_concurrent_migrations_on_a_fresh_database_do_not_crash(db_url: str) -> None:
    engines = [create_store_engine(db_url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            migrate(engines[i])
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(engines))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with engines[0].connect() as conn:
        assert {"workers", "leases", "period_claims", "mentions"} <= set(inspect(conn).get_table_names())
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    for e in engines:
        e.dispose()


def test_two_processes_migrating_at_once(db_url: str, tmp_path: Path) -> None:
    """README "Running several workers": "so one worker migrates and the others wait, then find the schema current".

    Real processes, as two ``monitor run`` started together by systemd: both exit 0."""
    go = tmp_path / "go"
    code = ("import sys, time, pathlib\n"
            "from monitor.store import create_store_engine, migrate\n"
            "engine = create_store_engine(sys.argv[1])\n"
            "while not pathlib.Path(sys.argv[2]).exists(): time.sleep(0.005)\n"
            "migrate(engine)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, db_url, str(go)], stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    go.touch()
    results = [(p.wait(60), p.stderr.read() if p.stderr else "") for p in procs]
    assert [rc for rc, _ in results] == [0, 0], results
