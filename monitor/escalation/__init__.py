"""Escalation: ``escalation.yaml`` -> incidents, levels, timers, business hours."""

from monitor.escalation.engine import ActionResult, EscalationEngine
from monitor.escalation.schema import EscalationConfig

__all__ = ["ActionResult", "EscalationConfig", "EscalationEngine"]
