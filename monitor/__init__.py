"""Reputation monitoring and escalation worker.

Pipeline, one package per stage: sources -> store -> classify -> detect -> escalation -> notify;
digest reads the store. See README.md for the module map.
"""

__version__ = "0.1.0"
