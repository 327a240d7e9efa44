"""Everything ``monitor run`` reads before it starts, judged once: the judgement ``monitor check`` shares.

``check`` used to validate the files one by one with its own defaults while
``run`` read other paths (MONITOR_RULES_DIR, MONITOR_COLLECT_FILE, a sample
``monitor.yaml`` from the checkout), so a configuration could pass ``check`` and
stop ``run``. Both now call ``load_configuration`` with the same settings: the
same files, the same loaders (``load_rules``, ``load_escalation``,
``load_collect``), and the checks across files that no single file can make
(a rule watching a brand ``monitor.yaml`` does not collect can never fire).
The settings themselves are judged by ``monitor.settings.load_settings``,
store URL included, before anything is opened.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.detect import RuleSet, load_rules
from monitor.detect.loader import rule_files
from monitor.escalation.schema import EscalationConfig, load_escalation
from monitor.i18n import N_, Words
from monitor.settings import Settings
from monitor.sources.schema import CollectConfig, load_collect
from monitor.yamlconfig import ConfigError, ConfigInvalid, Location, dotted, load_yaml, position


@dataclass(slots=True)
class Configuration:
    """What was read, what is wrong (``errors``: ``run`` refuses to start) and what is suspicious (``warnings``)."""

    settings: Settings
    rules_dir: Path
    escalation_file: Path
    collect_file: Path | None  # None: a replayed feed replaces the live sources
    rules: RuleSet | None = None
    escalation: EscalationConfig | None = None
    collect: CollectConfig | None = None
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)

    def raise_errors(self) -> None:
        if self.errors:
            raise ConfigInvalid(self.errors)


def load_configuration(settings: Settings, *, rules_dir: Path | None = None, escalation_file: Path | None = None,
                       collect_file: Path | None = None, feed: Path | None = None) -> Configuration:
    """Read and judge the three files ``run`` would read with ``settings``; every problem, never raising.

    ``collect_file`` (``--config``) defaults to MONITOR_COLLECT_FILE. With a replayed ``feed`` and no
    collect file named, ``monitor.yaml`` is not read (the feed replaces the live sources, as in ``run``).
    Without a feed it must exist: a worker polling nothing must not look like a quiet day.
    """
    config = Configuration(settings, rules_dir or settings.rules_dir, escalation_file or settings.escalation_file,
                           None)
    try:
        config.rules = load_rules(config.rules_dir)
    except ConfigInvalid as exc:
        config.errors.extend(exc.errors)
    try:
        config.escalation = load_escalation(config.escalation_file, config.warnings)
    except ConfigInvalid as exc:
        config.errors.extend(exc.errors)
    wanted = collect_file is not None or feed is None
    path = collect_file or settings.collect_file
    if wanted and not path.is_file():
        config.errors.append(ConfigError.of(str(path), 0, 0, "", Words.of(
            N_("file not found (looked for {path}); write what to collect there (the repository's monitor.yaml is an "
               "example), name another file with --config or MONITOR_COLLECT_FILE, or replay a file with --feed"),
            path=str(path.resolve()))))
    elif wanted:
        config.collect_file = path
        try:
            config.collect = load_collect(path)
        except ConfigInvalid as exc:
            config.errors.extend(exc.errors)
    if config.rules is not None:
        problems, warnings = rule_problems(config.rules_dir, config.rules, config.collect, settings.languages)
        config.errors.extend(problems)
        config.warnings.extend(warnings)
    return config


def rule_problems(rules_dir: Path, rules: RuleSet, collect: CollectConfig | None,
                  languages: Sequence[str]) -> tuple[list[ConfigError], list[ConfigError]]:
    """Rules that can never fire given what is collected: (errors, warnings), each at its line.

    A brand no source collects is an error (no post will ever carry it). A language code that is
    a language but not one the posts are identified in (MONITOR_LANGUAGES, the brands' ``languages``)
    is a warning: a platform may still tag a post with it.
    """
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []
    brands = set(collect.brands) if collect is not None else None
    expected = set(languages) | ({c for b in collect.brands.values() for c in b.languages} if collect else set())
    by_name = {rule.name: rule for rule in rules.rules}
    for path in rule_files(rules_dir):
        try:
            root = load_yaml(path)
        except ConfigInvalid:
            continue  # reported by load_rules
        entries = root.get("rules") if isinstance(root, dict) else None
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            rule = by_name.get(str(entry.get("name"))) if isinstance(entry, dict) else None
            if rule is None:
                continue

            def at(loc: Location, message: Words, into: list[ConfigError], path: Path = path,
                   root: Any = root) -> None:
                into.append(ConfigError.of(str(path), *position(root, loc), dotted(loc), message))

            if brands is not None:
                for b_i, brand in enumerate(rule.brands):
                    if brand not in brands:
                        known = ", ".join(sorted(brands))
                        at(("rules", index, "brands", b_i),
                           Words.of(N_("rule '{rule}' watches brand '{brand}', which monitor.yaml does not collect "
                                       "(its brands: {known}); the rule can never fire"),
                                    rule=rule.name, brand=brand, known=known), errors)
            when = rule.when
            for l_i, code in enumerate(when.languages or []):
                if code not in expected:
                    at(("rules", index, "when", "languages", l_i), _unexpected(code, expected), warnings)
            for key in ("keywords", "regex"):
                spec = getattr(when, key)
                if isinstance(spec, dict):
                    for code in spec:
                        if code not in expected and code not in ("any", "*"):
                            at(("rules", index, "when", key, code), _unexpected(code, expected), warnings)
    return errors, warnings


def rules_fit(settings: Settings, collect_file: Path | None) -> Callable[[RuleSet], None]:
    """For ``RuleReloader``: a reloaded rule set is refused for what ``check`` refuses across files."""

    def fits(rule_set: RuleSet) -> None:
        collect: CollectConfig | None = None
        if collect_file is not None:
            try:
                collect = load_collect(collect_file)
            except ConfigInvalid:
                collect = None  # the collect file's own reload reports it
        errors, _ = rule_problems(settings.rules_dir, rule_set, collect, settings.languages)
        if errors:
            raise ConfigInvalid(errors)

    return fits


def _unexpected(code: str, expected: set[str]) -> Words:
    return Words.of(N_("posts are identified as {expected} only (MONITOR_LANGUAGES and the brands' languages in "
                       "monitor.yaml), so '{code}' matches only posts a platform tagged so; add it there if it is "
                       "meant"), expected=", ".join(sorted(expected)), code=code)
