"""Where mentions come from: one module per platform behind ``Source``.

``schema.py`` reads ``monitor.yaml`` (what to collect) and ``factory.py`` builds
the sources from it; ``twarc.py`` backfills X archives (``monitor import``).
"""

from monitor.sources.base import PollResult, Source
from monitor.sources.replay import ReplaySource, mention_from_dict

__all__ = ["PollResult", "ReplaySource", "Source", "mention_from_dict"]
