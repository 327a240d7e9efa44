"""The weekly incident digest: what happened, how fast we answered, which rules were noise.

``model`` holds the figures as dataclasses, ``queries`` reads the store
(aggregating mentions in SQL), ``timeline`` interprets each incident's
events, ``figures`` assembles one week from them; ``html`` and ``charts`` make
the self-contained report, ``slack`` the Block Kit summary, ``job`` ties them
together for the worker and ``monitor digest``. Masking of handles and
business time are not the digest's own rules: they come from ``privacy.scrub``
and ``escalation.hours``.
"""

from monitor.digest.figures import build_digest
from monitor.digest.html import render_html
from monitor.digest.job import DigestRun, run_weekly_digest, schedule_weekly_digest
from monitor.digest.model import DEFAULT_REACH_THRESHOLD, SENTIMENT_RULE, Digest
from monitor.digest.slack import ConsolePoster, DigestPoster, SlackDigest, SlackPoster, build_message
from monitor.digest.week import IsoWeek

__all__ = [
    "DEFAULT_REACH_THRESHOLD",
    "SENTIMENT_RULE",
    "ConsolePoster",
    "Digest",
    "DigestPoster",
    "DigestRun",
    "IsoWeek",
    "SlackDigest",
    "SlackPoster",
    "build_digest",
    "build_message",
    "render_html",
    "run_weekly_digest",
    "schedule_weekly_digest",
]
