"""Reads ``rules/*.yaml``: all files valid, or none applied.

The one module that opens the rule files (their format is ``detect/schema.py``);
``monitor check``, ``monitor backtest`` and the worker all load rules here.

A running worker refreshes ``RuleReloader`` each pass; a half-edited file must
never take rules away from a live system, so a change is applied only when
every file validates, and otherwise the last good set stays. The reloading
itself is ``monitor.reload.Watched``, shared with ``escalation.yaml`` and
``monitor.yaml``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitor.detect.schema import Rule, RuleFile
from monitor.i18n import N_, Words
from monitor.reload import Watched
from monitor.yamlconfig import ConfigError, ConfigInvalid, load_yaml, parse, position

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    files: tuple[Path, ...]

    @property
    def enabled(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.enabled)


def rule_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def load_rules(directory: Path) -> RuleSet:
    """Validate every rule file in ``directory``; raise ``ConfigInvalid`` listing all problems."""
    if not directory.is_dir():
        raise ConfigInvalid([ConfigError.of(str(directory), 0, 0, "", Words(N_("rules folder not found")))])
    files = rule_files(directory)
    if not files:
        raise ConfigInvalid([ConfigError.of(str(directory), 0, 0, "",
                                            Words(N_("no rule files (*.yaml) in this folder")))])
    errors: list[ConfigError] = []
    rules: list[Rule] = []
    seen: dict[str, tuple[Path, int]] = {}
    for path in files:
        try:
            parsed = parse(RuleFile, path)
        except ConfigInvalid as exc:
            errors.extend(exc.errors)
            continue
        root = load_yaml(path)
        for index, rule in enumerate(parsed.rules):
            line, col = position(root, ["rules", index, "name"])
            if rule.name in seen:
                other, other_line = seen[rule.name]
                errors.append(ConfigError.of(str(path), line, col, f"rules[{index}].name", Words.of(
                    N_("rule name '{name}' is already used in {other}; names must be unique"), name=rule.name,
                    other=f"{other}:{other_line}")))
                continue
            seen[rule.name] = (path, line)
            rules.append(rule)
    if errors:
        raise ConfigInvalid(errors)
    return RuleSet(tuple(rules), tuple(files))


class RuleReloader(Watched[RuleSet]):
    """The rule set at its last good version (see ``monitor.reload``): every file valid, or none applied."""

    def __init__(self, directory: Path, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 fits: Callable[[RuleSet], None] | None = None) -> None:
        """``fits`` raises ``ConfigInvalid`` for a rule set that is valid alone but cannot work with the rest
        of the configuration (``monitor.configuration.rule_problems``): refused at start and on reload alike."""
        self.directory = directory

        def load() -> RuleSet:
            rule_set = load_rules(directory)
            if fits is not None:
                fits(rule_set)
            return rule_set

        super().__init__("rules", lambda: rule_files(directory), load, now, folder=True)
