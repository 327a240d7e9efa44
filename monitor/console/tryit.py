"""'Try it': one pasted post through the real model and rules, and a changed rule file through check and backtest.

Nothing here writes to the store or to ``rules/``: a changed file is checked in
a temporary copy of the rules folder, so the worker never sees it before a
person commits it to the repository.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import tempfile
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import Connection

from monitor.classify import LanguageDetector, SentimentModel
from monitor.classify.thresholds import thresholds_of
from monitor.detect import Rule, RuleSet, load_rules
from monitor.detect.backtest import BacktestResult, backtest, score_missing
from monitor.detect.loader import rule_files
from monitor.detect.matching import match_mention
from monitor.escalation.plan import Step, plan
from monitor.escalation.schema import EscalationConfig, Policy
from monitor.i18n import N_, Words
from monitor.models import Mention, SentimentScores, StoredMention
from monitor.privacy.scrub import normalise_handle
from monitor.reasons import Fact
from monitor.store import mentions as mention_repo
from monitor.store.silences import Silence
from monitor.yamlconfig import ConfigError, ConfigInvalid

log = logging.getLogger(__name__)


class LazyModel:
    """Loads the sentiment model on first use only, once, even with two first requests at the same time.

    The offline model takes seconds to load and hundreds of MB; a console that is
    only ever used for the Now page should not pay for it.
    """

    def __init__(self, load: Callable[[], SentimentModel], model: SentimentModel | None = None) -> None:
        self._load = load
        self._model = model
        self._lock = threading.Lock()

    def get(self) -> SentimentModel:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    rule: Rule
    facts: tuple[Fact, ...] | None  # None: this post does not match; shown with the ``facts`` filter
    window: bool  # frequency/spike: one post counts towards it but cannot fire it alone
    policy: Policy | None = None
    calls: tuple[Step, ...] = ()
    silenced: Silence | None = None  # an active silence mutes it: nobody would be called


@dataclass(frozen=True, slots=True)
class PostVerdict:
    scores: SentimentScores
    language: str | None
    outcomes: list[RuleOutcome]

    @property
    def firing(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if o.facts is not None and not o.window and o.silenced is None]


def try_post(mention: Mention, rules: RuleSet, model: SentimentModel, config: EscalationConfig,
             at: dt.datetime, detector: Callable[[], LanguageDetector] | None = None,
             silences: Sequence[Silence] = ()) -> PostVerdict:
    """Score the post, match every enabled rule, and plan the calls for the ones that would fire at ``at``.

    ``silences`` are those active at ``at``: a rule one of them mutes (the engine's own ``Silence.matches``)
    is shown as silenced, with no calls, as the worker would do.
    """
    language = mention.language
    if not language and detector is not None:
        language = detector().detect(mention.text)
    post = Mention(**{**{f: getattr(mention, f) for f in Mention.__slots__}, "language": language})
    scores = model.predict([post.text])[0]
    stored = StoredMention(0, post, scores)
    outcomes = []
    thresholds = thresholds_of(model)
    for rule in rules.enabled:
        found = match_mention(rule, stored, thresholds)
        window = rule.frequency is not None or rule.spike is not None
        if found is None or window:
            outcomes.append(RuleOutcome(rule, found.details if found else None, window))
            continue
        authors = {normalise_handle(post.author_handle)} if post.author_handle else set()
        muted = next((s for s in silences if s.matches(post.brand, rule.name, authors)), None)
        if muted is not None:
            outcomes.append(RuleOutcome(rule, found.details, window, silenced=muted))
            continue
        policy, steps = plan(config, rule.severity, post.brand, rule.name, at)
        outcomes.append(RuleOutcome(rule, found.details, window, policy, tuple(steps)))
    return PostVerdict(scores, language, outcomes)


SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.ya?ml$")


@dataclass(slots=True)
class RuleFileCheck:
    file_name: str
    errors: list[ConfigError] = field(default_factory=list)
    new: RuleSet | None = None
    old: RuleSet | None = None
    text: str = ""


def check_rule_file(rules_dir: Path, file_name: str, content: bytes) -> RuleFileCheck:
    """Validate ``content`` as ``rules/<file_name>`` together with the other rule files (as `monitor check`).

    Errors name the file as the PR team knows it (``rules/reach.yaml:12:7``), not the temporary copy.
    """
    name = Path(file_name or "").name
    check = RuleFileCheck(name)
    if not SAFE_NAME.match(name):
        check.errors.append(ConfigError.of(name or "(no file)", 0, 0, "",
                                           Words(N_("choose a rule file ending in .yaml (letters, digits, - and _)"))))
        return check
    try:
        check.text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        check.errors.append(ConfigError.of(f"{rules_dir.name}/{name}", 0, 0, "",
                                           Words.of(N_("not UTF-8 text ({reason})"), reason=exc.reason)))
        return check
    try:
        check.old = load_rules(rules_dir)
    except ConfigInvalid:
        check.old = None  # the saved rules are broken themselves: compare with nothing
    with tempfile.TemporaryDirectory(prefix="console-rules-") as tmp:
        folder = Path(tmp) / rules_dir.name
        folder.mkdir()
        for path in rule_files(rules_dir):
            shutil.copy2(path, folder / path.name)
        (folder / name).write_bytes(content)

        def ours(text: str) -> str:
            """The temporary copy never shows: its path is replaced, in the file name and in the message."""
            for where in sorted({str(folder), str(folder.resolve())}, key=len, reverse=True):
                text = text.replace(where, rules_dir.name)
            for where in sorted({tmp, str(Path(tmp).resolve()), tempfile.gettempdir()}, key=len, reverse=True):
                text = text.replace(where, "")
            return text
        try:
            check.new = load_rules(folder)
        except ConfigInvalid as exc:
            check.errors = [replace(e.mapped(ours), file=_shown(ours(e.file), rules_dir.name)) for e in exc.errors]
        except (RecursionError, MemoryError, OverflowError, ValueError, TypeError) as exc:
            # Whatever the loader did not turn into a located error: one line, nothing of the machine's.
            log.warning("console: rule file %s could not be checked: %s", name, type(exc).__name__)
            check.errors = [ConfigError.of(f"{rules_dir.name}/{name}", 0, 0, "", Words(
                N_("this file could not be read as a rule file (too deeply nested or too large once expanded); "
                   "write it out plainly")))]
    return check


def _shown(file: str, folder: str) -> str:
    """'rules/reach.yaml' for any spelling of the copy's path."""
    return file if file.startswith(folder + "/") else f"{folder}/{Path(file).name}"


@dataclass(frozen=True, slots=True)
class RuleLoad:
    rule: str
    severity: str
    old_per_week: dict[str, int]
    new_per_week: dict[str, int]

    @property
    def old_total(self) -> int:
        return sum(self.old_per_week.values())

    @property
    def new_total(self) -> int:
        return sum(self.new_per_week.values())


@dataclass(frozen=True, slots=True)
class Comparison:
    mentions: int
    weeks: list[str]
    rules: list[RuleLoad]
    old_total: int
    new_total: int
    responders_old: dict[str, int]
    responders_new: dict[str, int]


def _weekly(result: BacktestResult | None, name: str) -> dict[str, int]:
    report = result.rules.get(name) if result else None
    per: Counter[str] = Counter()
    for day, n in (report.alerts_per_day.items() if report else ()):
        year, week, _ = day.isocalendar()
        per[f"{year}-W{week:02d}"] += n
    return dict(per)


def _first_called(config: EscalationConfig, result: BacktestResult, rules: RuleSet) -> dict[str, int]:
    """Alerts per person called first (level 1 of the rule's policy, any brand), the on-call person included."""
    per: defaultdict[str, int] = defaultdict(int)
    for rule in rules.enabled:
        report = result.rules.get(rule.name)
        if report is None or not report.incidents:
            continue
        policy = config.policy_for(rule.severity, "", rule.name)
        for who in {*policy.levels[0].notify, *policy.on_call}:
            per[who] += report.incidents
    return dict(per)


def compare(conn: Connection, old: RuleSet, new: RuleSet, config: EscalationConfig, model: SentimentModel,
            since: dt.datetime) -> Comparison:
    """Both rule sets over the same stored posts (unscored ones scored in memory), grouped as the engine would."""
    items = sorted(score_missing(mention_repo.iter_since(conn, since), model),
                   key=lambda s: (s.mention.created_at, s.id))
    window, zone = config.grouping.window, config.timezone
    thresholds = thresholds_of(model)
    new_result = backtest(new.rules, items, grouping_window=window, timezone=zone, negative_thresholds=thresholds)
    old_result = backtest(old.rules, items, grouping_window=window, timezone=zone, negative_thresholds=thresholds)
    names = sorted(set(new_result.rules) | set(old_result.rules))
    severities = {r.name: r.severity.value for r in (*old.rules, *new.rules)}
    loads = [RuleLoad(n, severities.get(n, ""), _weekly(old_result, n), _weekly(new_result, n)) for n in names]
    weeks = sorted({w for load in loads for w in (*load.old_per_week, *load.new_per_week)})
    return Comparison(len(items), weeks, loads, old_result.total_incidents, new_result.total_incidents,
                      _first_called(config, old_result, old), _first_called(config, new_result, new))
