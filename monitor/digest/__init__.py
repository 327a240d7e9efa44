"""The weekly incident digest: what happened, how fast we answered, which rules were noise.

``figures`` reads the store (aggregating mentions in SQL), ``html`` and
``charts`` make the self-contained report, ``slack`` the Block Kit summary,
``job`` ties them together for the worker and ``monitor digest``.
"""

from monitor.digest.figures import DEFAULT_REACH_THRESHOLD, SENTIMENT_RULE, Digest, build_digest
from monitor.digest.html import render_html
from monitor.digest.job import DigestRun, run_weekly_digest, schedule_weekly_digest
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
