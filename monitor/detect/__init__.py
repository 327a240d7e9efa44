"""Rules: ``rules/*.yaml`` -> validated ``Rule`` objects -> signals with reasons in words."""

from monitor.detect.engine import RuleEngine
from monitor.detect.loader import RuleReloader, RuleSet, load_rules
from monitor.detect.schema import Rule, RuleFile

__all__ = ["Rule", "RuleEngine", "RuleFile", "RuleReloader", "RuleSet", "load_rules"]
