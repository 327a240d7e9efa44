"""Where mentions come from: one module per platform behind ``Source``."""

from monitor.sources.base import PollResult, Source
from monitor.sources.replay import ReplaySource, mention_from_dict

__all__ = ["PollResult", "ReplaySource", "Source", "mention_from_dict"]
