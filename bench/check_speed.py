"""How long does ``monitor check`` take on each file of the check corpus, and on a 7.8 MB rule file?
(target: every check < 2 s, as the command a PR officer runs; issue 27)

    python bench/check_speed.py

Each check is a fresh ``monitor check --no-compare`` process (start-up included, as a person runs it),
with the case in its place and the checkout's other files, exactly as ``tests/test_check_corpus.py``
arranges them. Prints the slowest cases, the 7.8 MB file, and the figure against the target.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "check_corpus"
TARGET_S = 2.0
MONITOR = Path(sys.executable).parent / "monitor"


def timed_check(rules: Path, escalation: Path, collect: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system: what the wall time is on an idle machine) and exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([str(MONITOR), "check", "--no-compare", "--rules", str(rules), "--escalation",
                           str(escalation), "--config", str(collect)], capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def main() -> None:
    timings: list[tuple[float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in sorted(CORPUS.glob("*.yaml")):
            kind = case.name.split("__", 1)[0]
            folder = Path(tmp) / case.stem
            folder.mkdir()
            rules, escalation, collect = ROOT / "rules", ROOT / "escalation.yaml", ROOT / "monitor.yaml"
            if kind == "rules":
                rules = folder / "rules"
                rules.mkdir()
                shutil.copy(case, rules / case.name)
            else:
                target = Path(shutil.copy(case, folder / case.name))
                escalation = target if kind == "escalation" else escalation
                collect = target if kind == "collect" else collect
            wall, cpu, _ = timed_check(rules, escalation, collect)
            timings.append((wall, cpu, case.stem))
        big_rules = Path(tmp) / "big"
        big_rules.mkdir()
        with (big_rules / "export.yaml").open("w", encoding="utf-8") as fh:
            fh.write("rules:\n")
            i = 0
            while fh.tell() < 7_800_000:
                fh.write(f"  - name: r{i}\n    severity: warning\n    when: {{keywords: [w{i}]}}\n")
                i += 1
        big, big_cpu, code = timed_check(big_rules, ROOT / "escalation.yaml", ROOT / "monitor.yaml")
    load = os.getloadavg()[0]
    timings.sort(reverse=True)
    for wall, cpu, name in timings[:5]:
        print(f"{wall:6.2f} s wall {cpu:6.2f} s CPU  {name}")
    cpus = sorted(t[1] for t in timings)
    print(f"{len(timings)} corpus files: wall median {timings[len(timings) // 2][0]:.2f} s, slowest "
          f"{timings[0][0]:.2f} s; CPU median {cpus[len(cpus) // 2]:.2f} s, most {cpus[-1]:.2f} s")
    print(f"7.8 MB rule file: {big:.2f} s wall, {big_cpu:.2f} s CPU (exit {code})")
    slowest_wall, slowest_cpu = max(timings[0][0], big), max(cpus[-1], big_cpu)
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs (wall times stretch with it)")
    verdict = ("met" if slowest_wall < TARGET_S else "met in CPU time only" if slowest_cpu < TARGET_S
               else "NOT met")
    print(f"slowest check: {slowest_wall:.2f} s wall, {slowest_cpu:.2f} s CPU, against a target of < "
          f"{TARGET_S:.0f} s: {verdict}")


if __name__ == "__main__":
    main()
