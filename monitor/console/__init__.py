"""The PR team's web console: what is happening now, silences, rules in plain words, try a change, the plan.

Server-rendered HTML (Starlette + Jinja2, no JavaScript), served by uvicorn in a
thread (``ConsoleServer``) from ``monitor console`` or inside ``monitor run``.
It reads the store and the configuration files through the project's own
functions and changes incidents only through ``EscalationEngine``.
"""

from monitor.console.server import ConsoleServer, check_bind_address
from monitor.console.web import ConsoleConfig, create_app

__all__ = ["ConsoleConfig", "ConsoleServer", "check_bind_address", "create_app"]
