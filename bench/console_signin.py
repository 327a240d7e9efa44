"""Console sign-in under attack: memory and password checks for many sign-ins at once (issue 29).

Starts the real console (uvicorn on a socket, SQLite store) and fires ``--parallel`` wrong sign-ins at
once from as many client addresses (a named proxy forwards them), then ``--parallel`` guesses for one
name. Prints the peak resident memory growth and how many argon2 checks ran with
``--max-verifies`` slots (the setting); ``--compare`` adds a run with as many slots as requests
(what the console did before: it takes some 2 GB, mind a shared machine). Target: growth below
200 MiB with the default 2 slots; guesses for one name checked no more than its free attempts (5).

    python bench/console_signin.py [--parallel 40] [--compare]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

from monitor.app import open_store
from monitor.clock import FakeClock
from monitor.console import ConsoleServer
from monitor.console.tryit import LazyModel
from monitor.console.users import ConsoleUser, UserDirectory, hash_password
from monitor.console.web import ConsoleConfig, create_app


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Counting(UserDirectory):
    def __init__(self, base: UserDirectory) -> None:
        super().__init__(base._entries)
        self.checks = 0
        self._lock = threading.Lock()

    def verify(self, name: str, password: str) -> ConsoleUser | None:
        with self._lock:
            self.checks += 1
        return super().verify(name, password)


def run(parallel: int, slots: int, folder: Path) -> tuple[float, int, int, dict[int, int]]:
    users_file = folder / f"users-{slots}.yaml"
    users_file.write_text(f"users:\n  sofie: {{password_hash: '{hash_password('correct horse battery')}'}}\n",
                          encoding="utf-8")
    users = Counting(UserDirectory.load(users_file))
    engine = open_store(f"sqlite:///{folder / f'bench-{slots}.db'}")
    config = ConsoleConfig(engine=engine, rules_dir=Path("rules"), escalation_file=Path("escalation.yaml"),
                           users=users, clock=FakeClock(datetime(2026, 11, 18, tzinfo=UTC)),
                           model=LazyModel(lambda: None),  # type: ignore[arg-type,return-value]
                           cookie_secure=False, trusted_proxies=("127.0.0.1",), max_verifies=slots)
    server = ConsoleServer(create_app(config), "127.0.0.1", 0)
    server.start()
    peak = base = rss_mib()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_mib())
            time.sleep(0.005)
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        page = httpx.get(f"{server.url}/login")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]

        def guess(i: int, user: str) -> int:
            return httpx.post(f"{server.url}/login", cookies=dict(page.cookies), timeout=120,
                              headers={"X-Forwarded-For": f"198.51.100.{i % 250}"},
                              data={"user": user, "password": f"guess{i}", "csrf": token}).status_code
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            spread = list(pool.map(lambda i: guess(i, f"user{i}"), range(parallel)))
        checks_spread = users.checks
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            list(pool.map(lambda i: guess(i, "sofie"), range(parallel)))
        checks_one = users.checks - checks_spread
    finally:
        stop.set()
        sampler.join()
        server.stop()
    codes: dict[int, int] = {}
    for c in spread:
        codes[c] = codes.get(c, 0) + 1
    return peak - base, checks_spread, checks_one, codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=40)
    parser.add_argument("--max-verifies", type=int, default=2)
    parser.add_argument("--compare", action="store_true", help="also run with one slot per request (~2 GB)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for slots in (args.max_verifies, args.parallel) if args.compare else (args.max_verifies,):
            grew, spread, one, codes = run(args.parallel, slots, Path(tmp))
            print(f"{slots:>3} slot(s): {args.parallel} wrong sign-ins at once from {args.parallel} addresses: "
                  f"memory +{grew:.0f} MiB, {spread} argon2 checks, answers {codes}; {args.parallel} guesses "
                  f"for one name: {one} checks")
    print("target: +200 MiB at most with the default slots; one name checked at most 5 times")


if __name__ == "__main__":
    main()
