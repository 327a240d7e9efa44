"""Every broken escalation.yaml and monitor.yaml gets one clear line naming file and line, never a traceback.

Like the rules corpus (test_rule_errors.py): each file's first line says where the problem is and what
the message must say. The files go through the real ``monitor check``, as the PR team runs it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from tests.conftest import ROOT

FIXTURES = Path(__file__).parent / "fixtures"
ESCALATION = sorted((FIXTURES / "broken_escalation").glob("*.yaml"))
COLLECT = sorted((FIXTURES / "broken_collect").glob("*.yaml"))


def expectation(path: Path) -> tuple[int, str]:
    header = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    match = re.match(r"# expect: (\d+): (.*)", header)
    assert match, f"{path.name} lacks an '# expect: LINE: message' header"
    return int(match.group(1)), match.group(2)


def test_corpus_is_large_enough() -> None:
    assert len(ESCALATION) + len(COLLECT) >= 40
    assert len(ESCALATION) >= 20 and len(COLLECT) >= 20


def _check(case: Path, tmp_path: Path, option: str) -> None:
    line, message = expectation(case)
    target = tmp_path / case.name
    shutil.copy(case, target)
    args = ["check", "--rules", str(ROOT / "rules"), "--escalation", str(ROOT / "escalation.yaml"),
            "--config", str(ROOT / "monitor.yaml")]
    args[args.index(option) + 1] = str(target)
    result = CliRunner().invoke(app, args)
    output = result.output
    assert result.exit_code == 1, output
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{target}:{line}:" in output, output
    assert message in output, output


@pytest.mark.parametrize("case", ESCALATION, ids=[c.stem for c in ESCALATION])
def test_broken_escalation_file_is_explained(case: Path, tmp_path: Path) -> None:
    _check(case, tmp_path, "--escalation")


@pytest.mark.parametrize("case", COLLECT, ids=[c.stem for c in COLLECT])
def test_broken_collect_file_is_explained(case: Path, tmp_path: Path) -> None:
    _check(case, tmp_path, "--config")


def test_a_date_like_value_in_a_rule_file_is_text_not_a_crash(tmp_path: Path) -> None:
    """ruamel used to build a date from `2026-13-45` while parsing and fail without a file name."""
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "r.yaml").write_text("rules:\n  - name: x\n    severity: info\n    description: 2026-13-45\n"
                                   "    when: {negative_above: 0.5}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["check", "--rules", str(folder), "--escalation", str(ROOT / "escalation.yaml"),
                                      "--config", str(ROOT / "monitor.yaml")])
    assert result.exit_code == 0, result.output
    assert "1 rule(s) in 1 file(s)" in result.output


def test_settings_errors_name_the_variable_and_the_env_file_line(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.settings import load_settings
    from monitor.yamlconfig import ConfigInvalid

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("# settings\nMONITOR_BATCH_SIZE=lots\nSLACK_BOT_TOKEN=xoxb-1\n", encoding="utf-8")
    monkeypatch.setenv("MONITOR_PASS_SECONDS", "abc")
    with pytest.raises(ConfigInvalid) as caught:
        load_settings()
    lines = [str(e) for e in caught.value.errors]
    assert "environment variable MONITOR_PASS_SECONDS: expected a number (got 'abc')" in lines
    assert ".env:2:1: MONITOR_BATCH_SIZE: expected a whole number (got 'lots')" in lines
    assert len(lines) == 2
