"""CLI command groups, one module per area; each exposes ``register(app)``.

Keeps ``monitor/cli.py`` small: adding a command never means editing a
shared file beyond the map in ``monitor.cli.LAZY_COMMANDS`` (command name -> module; a module is
imported only when one of its commands runs).
"""
