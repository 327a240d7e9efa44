"""Assembly: settings and config files -> a ready ``Pipeline``.

The only place that knows which concrete classes make up the worker, so the
CLI, the demo and the tests build it the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Engine

from monitor.classify import LanguageDetector, SentimentModel, load_model
from monitor.clock import Clock
from monitor.detect import RuleReloader
from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.escalation.schema import load_escalation
from monitor.notify import Notifier
from monitor.pipeline import Pipeline
from monitor.settings import Settings
from monitor.store import create_store_engine, migrate

log = logging.getLogger(__name__)


def open_store(url: str) -> Engine:
    engine = create_store_engine(url)
    migrate(engine)
    return engine


def build_pipeline(
    settings: Settings,
    *,
    notifier: Notifier,
    clock: Clock,
    engine: Engine | None = None,
    model: SentimentModel | None = None,
    languages: Sequence[str] | None = None,
    escalation_config: EscalationConfig | None = None,
) -> Pipeline:
    """Raises ``ConfigInvalid`` when the rules or the escalation file are broken."""
    rules = RuleReloader(settings.rules_dir)
    escalation = EscalationEngine(escalation_config or load_escalation(settings.escalation_file))
    # One detector for the stored language and the model's per-language
    # calibration: the two then agree, and py3langid (~100 MB) loads once.
    detector = LanguageDetector(languages or settings.languages)
    return Pipeline(
        engine=engine or open_store(settings.db_url),
        model=model or load_model(settings.sentiment_model, settings.sentiment_precision, detector),
        languages=detector,
        rules=rules,
        escalation=escalation,
        notifier=notifier,
        clock=clock,
        batch_size=settings.batch_size,
    )
