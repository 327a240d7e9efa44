"""Reputation monitoring and escalation worker.

Pipeline, one package per stage, data flowing one way:
``sources`` (poll platforms) -> ``store`` (SQLite/PostgreSQL) -> ``classify`` (sentiment, language)
-> ``detect`` (rules -> signals) -> ``escalation`` (incidents, levels, timers) -> ``notify`` (Slack,
console); ``digest`` reads the store every week, ``privacy`` enforces retention and erasure, ``ops``
serves metrics, health and logs.

The three files people edit, and the one module that reads each:

* ``monitor.yaml`` (what to collect): ``sources/schema.py``, each platform's block in ``sources/platforms/``
* ``rules/*.yaml`` (what deserves attention): ``detect/loader.py`` (format in ``detect/schema.py``)
* ``escalation.yaml`` (who is called, when): ``escalation/schema.py``

Beside the stages: ``app`` is the one composition root (``monitor run``, ``monitor demo`` and the
tests build the worker there), ``worker`` schedules it, ``pipeline`` is one pass of the stages,
``cli`` and ``commands/`` the command line; ``models`` the typed payloads between stages,
``settings`` the environment (the only place secrets enter), ``yamlconfig``/``durations`` the
YAML error messages and ``30m`` durations, ``clock`` injectable time, ``redact`` secret removal,
``text`` the one shortening rule. See README.md for the module map.
"""

__version__ = "0.1.0"
