"""CLI command groups, one module per area; each exposes ``register(app)``.

Keeps ``monitor/cli.py`` small: adding a command never means editing a
shared file beyond the list in ``monitor.cli.COMMAND_MODULES``.
"""
