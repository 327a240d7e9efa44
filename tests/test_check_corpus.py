"""Issue 27's corpus: broken and "can never work" files through the real ``monitor check``.

Each file's first line says what ``check`` must answer (see ``fixtures/check_corpus/make_corpus.py``):
``expect`` cases are refused with exactly one plain message at ``file:line``, ``warn`` cases pass with a
warning at that line, ``ok`` cases pass. No message may show parser jargon or a Python repr. The other two
files of each check are the checkout's, so only the case at hand can be wrong. Environment cases (the
settings ``run`` would refuse) and the size cap are below.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.configuration import load_configuration
from monitor.console.plain import plain_error
from monitor.i18n import Words, translator
from monitor.settings import Settings
from monitor.yamlconfig import MAX_FILE_BYTES
from tests.conftest import ROOT

CORPUS = Path(__file__).parent / "fixtures" / "check_corpus"
CASES = sorted(CORPUS.glob("*.yaml"))
# A UTF-16 file cannot start with an ASCII header line: its expectation lives here.
HEADERLESS = {"rules__not_utf8_utf16.yaml": ("expect", 1, "the file is not UTF-8 text")}
JARGON = ("mapping values", "found character", "ScannerError", "ParserError", "pydantic", "list[str]", "dict[",
          "Traceback", "while parsing", "while scanning", "<block", "block end", "Input should be", "String should",
          "Value error", "could not find expected", "ruamel", "validation error", "stream end", "KeyError",
          "ValueError", "type=", "For further information")
REPR = re.compile(r"\{'\w+': |datetime\.|<class |object at 0x|\(got (True|False|None)\)|\\x[0-9a-f]{2}")


def expectation(path: Path) -> tuple[str, int, str]:
    if path.name in HEADERLESS:
        return HEADERLESS[path.name]
    header = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    match = re.match(r"# (expect|warn): (\d+): (.*)$|# (ok): (.*)$", header)
    assert match, f"{path.name} lacks a '# expect|warn: LINE: message' or '# ok: why' header"
    if match.group(4):
        return "ok", 0, ""
    return match.group(1), int(match.group(2)), match.group(3)


def placed(tmp_path: Path, case: Path) -> tuple[Path, Path, Path, Path]:
    """Rules folder, escalation file and collect file with ``case`` in its place and the checkout's other files;
    and the copy of ``case``."""
    kind = case.name.split("__", 1)[0]
    rules, escalation, collect = ROOT / "rules", ROOT / "escalation.yaml", ROOT / "monitor.yaml"
    if kind == "rules":
        rules = tmp_path / "rules"
        rules.mkdir()
        target = rules / case.name
    else:
        target = tmp_path / case.name
    shutil.copy(case, target)
    escalation = target if kind == "escalation" else escalation
    collect = target if kind == "collect" else collect
    return rules, escalation, collect, target


def check(tmp_path: Path, case: Path, *extra: str) -> tuple[int, str, Path]:
    """``monitor check`` with ``case`` in its place and the checkout's other files."""
    rules, escalation, collect, target = placed(tmp_path, case)
    result = CliRunner().invoke(app, ["check", "--no-compare", "--rules", str(rules), "--escalation",
                                      str(escalation), "--config", str(collect), *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output, target


def plain(output: str) -> None:
    for word in JARGON:
        assert word not in output, f"parser jargon {word!r} in:\n{output}"
    assert not REPR.search(output), f"a Python repr in:\n{output}"


def test_the_corpus_covers_the_issue() -> None:
    assert len(CASES) >= 80
    kinds = {c.name.split("__", 1)[0] for c in CASES}
    assert kinds == {"rules", "escalation", "collect"}
    verdicts = {expectation(c)[0] for c in CASES}
    assert verdicts == {"expect", "warn", "ok"}


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_check_answers_each_case_in_plain_words(case: Path, tmp_path: Path) -> None:
    verdict, line, message = expectation(case)
    code, output, target = check(tmp_path, case)
    plain(output)
    errors = [x for x in output.splitlines() if x.startswith("error: ")]
    warnings = [x for x in output.splitlines() if x.startswith("warning: ")]
    if verdict == "ok":
        assert code == 0 and not errors and not warnings, output
        return
    where = f"{target}:{line}:" if line else f"{target}:"
    if verdict == "expect":
        assert code == 1, output
        assert len(errors) == 1, f"one problem, one message:\n{output}"
        assert errors[0].startswith(f"error: {where}"), output
        assert message in errors[0], output
    else:
        assert code == 0 and not errors, output
        assert any(w.startswith(f"warning: {where}") and message in w for w in warnings), output


def _names(words: Words) -> set[str]:
    """Every value name in a message and the messages inside it."""
    out = set()
    for name, value in words.params:
        out.add(name)
        if isinstance(value, Words):
            out |= _names(value)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_the_console_reads_each_case_in_dutch_and_french(case: Path, tmp_path: Path) -> None:
    """Issue 30: what ``check`` says in English, the console says in the visitor's language: every corpus
    problem has a template, reads differently in Dutch and in French, has every value filled in and keeps the
    place; ``check``'s English is the template filled in English."""
    verdict, _, _ = expectation(case)
    rules, escalation, collect, _target = placed(tmp_path, case)
    config = load_configuration(Settings(db_url="sqlite://"), rules_dir=rules, escalation_file=escalation,
                                collect_file=collect)
    problems = config.errors + config.warnings
    assert bool(problems) == (verdict != "ok")
    for problem in problems:
        assert problem.words is not None, f"no translatable template for: {problem}"
        assert plain_error(problem, translator("en")) == str(problem) == problem.text()
        english = problem.words.text()
        assert english == problem.message
        place = str(problem).removesuffix(english)
        for locale in ("nl_BE", "fr_BE"):
            shown = plain_error(problem, translator(locale))
            assert shown.startswith(place), shown
            words = shown.removeprefix(place)
            assert words != english, f"{locale}: still English: {words}"
            left = [f"{{{name}}}" for name in _names(problem.words) if f"{{{name}}}" in words]
            assert not left, f"{locale}: {left} not filled in: {words}"
            plain(words)


def test_a_huge_rule_file_is_refused_at_once(tmp_path: Path) -> None:
    """A 7.8 MB rule file (a data export saved in rules/) is refused by its size, not parsed."""
    rules = tmp_path / "rules"
    rules.mkdir()
    big = rules / "export.yaml"
    entry = "  - name: r{i}\n    severity: warning\n    when: {{keywords: [w{i}]}}\n"
    with big.open("w", encoding="utf-8") as fh:
        fh.write("rules:\n")
        i = 0
        while fh.tell() < 7_800_000:
            fh.write(entry.format(i=i))
            i += 1
    assert big.stat().st_size > MAX_FILE_BYTES
    result = CliRunner().invoke(app, ["check", "--no-compare", "--rules", str(rules)])
    assert result.exit_code == 1
    assert f"error: {big}: the file is 7.8 MB, more than a configuration file can be" in result.output
    plain(result.output)


# --- the settings `run` would refuse, and the paths `run` reads ----------------------------------------

@pytest.mark.parametrize(("variable", "value", "message"), [
    ("MONITOR_TIMEZONE", "Europe/Brussel", "unknown time zone 'Europe/Brussel'"),
    ("MONITOR_DB_URL", "notaurl", "MONITOR_DB_URL is not a database URL"),
    ("MONITOR_DB_URL", "sqlite:///{tmp}/missing/monitor.db", "the folder of the SQLite store"),
    ("MONITOR_DB_URL", "postgresql+pg8000://monitor@localhost/monitor",
     "PostgreSQL needs its driver: install it with pip install '.[postgres]'"),
    ("MONITOR_DB_URL", "oracle+nothing://x@y/z", "names an unknown kind of database"),
    ("MONITOR_LANGUAGES", '["nl", "vl"]', "'vl' is not a language code"),
])
def test_check_refuses_the_settings_run_refuses(variable: str, value: str, message: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, value.format(tmp=tmp_path))
    result = CliRunner().invoke(app, ["check", "--no-compare"])
    assert result.exit_code == 1, result.output
    assert f"error: environment variable {variable}: " in result.output and message in result.output
    plain(result.output)
    # And `run` refuses the same, before it touches the store.
    monkeypatch.setenv("MONITOR_METRICS_PORT", "0")
    ran = CliRunner().invoke(app, ["run"])
    assert ran.exit_code == 1 and message in ran.output
    assert not list(tmp_path.glob("**/*.db"))


def test_check_reads_the_paths_run_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "my-rules"
    shutil.copytree(ROOT / "rules", rules)
    shutil.copy(CORPUS / "rules__regex_lookbehind.yaml", rules / "kraai.yaml")
    escalation = shutil.copy(CORPUS / "escalation__channel_unquoted.yaml", tmp_path / "procedure.yaml")
    collect = shutil.copy(CORPUS / "collect__language_vl.yaml", tmp_path / "collect.yaml")
    monkeypatch.setenv("MONITOR_RULES_DIR", str(rules))
    monkeypatch.setenv("MONITOR_ESCALATION_FILE", str(escalation))
    monkeypatch.setenv("MONITOR_COLLECT_FILE", str(collect))
    result = CliRunner().invoke(app, ["check", "--no-compare"])
    assert result.exit_code == 1
    for path in (rules / "kraai.yaml", escalation, collect):
        assert f"error: {path}:" in result.output, result.output
    # `--collect` still works, hidden, as the old name of `--config`.
    old = CliRunner().invoke(app, ["check", "--no-compare", "--collect", str(ROOT / "monitor.yaml")])
    assert f"ok: {ROOT / 'monitor.yaml'}: 1 brand(s)" in old.output
    assert "--collect" not in CliRunner().invoke(app, ["check", "--help"]).output


def test_run_without_monitor_yaml_refuses_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not the sample's real public feeds, silently: one line naming the file it looked for."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONITOR_RULES_DIR", str(ROOT / "rules"))
    monkeypatch.setenv("MONITOR_ESCALATION_FILE", str(ROOT / "escalation.yaml"))
    monkeypatch.setenv("MONITOR_METRICS_PORT", "0")
    monkeypatch.delenv("MONITOR_COLLECT_FILE", raising=False)
    for command in (["run"], ["check", "--no-compare"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1, result.output
        errors = [x for x in result.output.splitlines() if x.startswith("error: ")]
        assert len(errors) == 1 and f"looked for {tmp_path / 'monitor.yaml'}" in errors[0], result.output
    assert not (tmp_path / "monitor.db").exists()
    # MONITOR_COLLECT_FILE is what run reads.
    monkeypatch.setenv("MONITOR_COLLECT_FILE", str(tmp_path / "elsewhere.yaml"))
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 1 and f"looked for {tmp_path / 'elsewhere.yaml'}" in result.output


def test_a_reload_refuses_what_check_refuses_across_files(tmp_path: Path) -> None:
    """A running worker's rule reload judges a new rule against monitor.yaml as check does: a rule for a brand
    nobody collects is refused, and the last good rules stay."""
    from monitor.configuration import rules_fit
    from monitor.detect import RuleReloader
    from monitor.settings import Settings

    rules = shutil.copytree(ROOT / "rules", tmp_path / "rules")
    settings = Settings(db_url="sqlite://", rules_dir=rules)
    reloader = RuleReloader(rules, fits=rules_fit(settings, ROOT / "monitor.yaml"))
    before = {r.name for r in reloader.current.rules}
    shutil.copy(CORPUS / "rules__brand_unknown.yaml", rules / "kraai.yaml")
    outcome = reloader.refresh()
    assert not outcome.changed and outcome.invalid is not None
    assert "watches brand 'Kraai', which monitor.yaml does not collect" in str(outcome.invalid)
    assert f"{rules / 'kraai.yaml'}:5:" in str(outcome.invalid)
    assert {r.name for r in reloader.current.rules} == before
