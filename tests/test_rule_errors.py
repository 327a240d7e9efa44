"""Every broken rule file gets a clear error naming file and line, through the real CLI, no traceback."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from tests.conftest import ROOT

CORPUS = Path(__file__).parent / "fixtures" / "broken_rules"
CASES = sorted(CORPUS.glob("*.yaml"))


def expectation(path: Path) -> tuple[int, str]:
    header = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    match = re.match(r"# expect: (\d+): (.*)", header)
    assert match, f"{path.name} lacks an '# expect: LINE: message' header"
    return int(match.group(1)), match.group(2)


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_broken_rule_file_is_explained(case: Path, tmp_path: Path) -> None:
    line, message = expectation(case)
    folder = tmp_path / "rules"
    folder.mkdir()
    target = folder / case.name
    shutil.copy(case, target)
    result = CliRunner().invoke(app, ["check", "--rules", str(folder), "--escalation",
                                      str(ROOT / "escalation.yaml")])
    output = result.output
    assert result.exit_code == 1, output
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    where = f"{target}:{line}:" if line else f"{target}:"
    assert where in output, output
    assert message in output, output
