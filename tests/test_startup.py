"""Start-up: the CLI imports a command's module only when it runs, and the classify stage's tables load once.

Timings are not asserted (``bench/sentiment_speed.py`` prints them): these tests hold what makes start-up
short, namely what is imported, what is read from the cache instead of rebuilt, and that answers are the same.
"""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from monitor import cli
from monitor.classify import language
from monitor.classify.e5_engine import bundled_model_file
from monitor.classify.e5_file import E5File, Vocabulary
from monitor.classify.e5_tokenizer import E5Tokenizer
from monitor.classify.language import LanguageDetector
from tests.conftest import ROOT

runner = CliRunner()
POSTS = ["Wat een schandalige service, nooit meer!", "Merci pour votre aide rapide, au top !",
         "The new tariffs start in January.", "Ik ben heel tevreden over de nieuwe app",
         "Le service client ne répond jamais", "Worst. Update. Ever. 😡", "Lumora zeer slecht!!"]


def registered_by(module: str) -> list[str]:
    sub = typer.Typer()
    importlib.import_module(f"monitor.commands.{module}").register(sub)
    return list(typer.main.get_group(sub).commands)


def test_the_lazy_map_names_exactly_what_each_module_registers() -> None:
    for module in cli.COMMAND_MODULES:
        assert sorted(registered_by(module)) == sorted(n for n, m in cli.LAZY_COMMANDS.items() if m == module)


def test_help_still_lists_every_command() -> None:
    result = runner.invoke(cli.app, ["--help"])
    assert result.exit_code == 0
    for name in [*cli.LAZY_COMMANDS, "check", "schema", "classify", "run", "demo"]:
        assert f" {name} " in result.output, name


def test_importing_the_cli_imports_no_command_module_and_no_sqlalchemy() -> None:
    code = ("import sys, monitor.cli; print(' '.join(sorted(m for m in sys.modules "
            "if m.startswith(('monitor.commands.', 'sqlalchemy', 'alembic', 'monitor.escalation')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["monitor.commands.common"]


def test_a_command_missing_from_the_map_still_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(cli.LAZY_COMMANDS, "poll")
    result = runner.invoke(cli.app, ["poll", "--help"])
    assert result.exit_code == 0 and "Usage" in result.output
    assert runner.invoke(cli.app, ["no-such-command"]).exit_code == 2


@pytest.fixture
def fresh_tables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    language._tables.cache_clear()
    yield tmp_path / "monitor"
    language._tables.cache_clear()


def test_the_language_tables_are_unpacked_once_and_answer_as_py3langid(fresh_tables: Path) -> None:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    first = LanguageDetector(["nl", "fr", "en"])
    unpacked = list(fresh_tables.glob("langid-*/*.npy"))
    assert len(unpacked) == 6
    second = LanguageDetector(["nl", "fr", "en", "de"])  # another detector: the same tables, not reloaded
    assert language._tables.cache_info().hits == 1 and language._tables.cache_info().misses == 1
    language._tables.cache_clear()
    third = LanguageDetector(["nl", "fr", "en"])  # a new process reads the unpacked copy
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
    reference.set_languages(["nl", "fr", "en"])
    for post in POSTS:
        assert first.detect(post) == third.detect(post) == reference.classify(post)[0], post
    assert second.detect(POSTS[0]) == "nl"


def test_an_unusable_cache_folder_still_identifies_languages_and_says_so(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_folder))
    language._tables.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.classify.language"):
            detector = LanguageDetector(["nl", "fr", "en"])
        assert detector.detect(POSTS[0]) == "nl" and detector.detect(POSTS[1]) == "fr"
        assert any("reading the packaged model" in r.getMessage() for r in caplog.records)
    finally:
        language._tables.cache_clear()


def test_the_tokenizer_tables_are_built_once_then_read_and_give_the_same_ids(tmp_path: Path) -> None:
    vocabulary = E5File(bundled_model_file()).vocabulary
    calls: list[int] = []

    def counted() -> Vocabulary:
        calls.append(1)
        return vocabulary

    def never() -> Vocabulary:
        raise AssertionError("the cached tables should have been read")

    path = E5Tokenizer.cache_path(tmp_path, "ab" * 32)
    built = E5Tokenizer.cached(counted, path)
    assert calls == [1] and path.is_file()
    read = E5Tokenizer.cached(never, path)
    reference = E5Tokenizer(vocabulary)
    assert read.content_ids(POSTS) == built.content_ids(POSTS) == reference.content_ids(POSTS)
    assert (read.bos, read.eos, read.pad, read.unk) == (vocabulary.bos, vocabulary.eos, vocabulary.pad,
                                                        vocabulary.unk)

    path.write_bytes(b"not marshal at all")  # damaged: rebuilt, never trusted
    assert E5Tokenizer.cached(counted, path).content_ids(POSTS) == reference.content_ids(POSTS)
    assert calls == [1, 1]


def test_a_tokenizer_cache_that_cannot_be_written_is_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    vocabulary = E5File(bundled_model_file()).vocabulary
    with caplog.at_level(logging.WARNING, logger="monitor.classify.e5_tokenizer"):
        tokenizer = E5Tokenizer.cached(lambda: vocabulary, E5Tokenizer.cache_path(blocker, "cd" * 32))
    assert tokenizer.content_ids(POSTS[:1]) == E5Tokenizer(vocabulary).content_ids(POSTS[:1])
    assert any("cannot keep its tables" in r.getMessage() for r in caplog.records)
