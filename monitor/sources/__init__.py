"""Where mentions come from: one module per platform behind ``Source``.

Each platform is declared once in ``platforms/<name>.py`` and registered in
``registry.py`` (its ``monitor.yaml`` block, names, variables, builder, display
name); its poll logic lives in ``<name>.py`` here. ``schema.py`` reads
``monitor.yaml`` (what to collect) and ``factory.py`` builds the sources from it
through the registry; ``twarc.py`` backfills X archives (``monitor import``).
"""

from monitor.sources.base import PollResult, Source
from monitor.sources.replay import ReplaySource, mention_from_dict

__all__ = ["PollResult", "ReplaySource", "Source", "mention_from_dict"]
