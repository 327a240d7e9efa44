"""Personal data: how long each kind is kept (``retention``) and erasing one person (``erasure``).

Both rewrite the *copies* of a post as well as the post itself (an incident's
reason quotes the author, an outbox payload carries the text), with the same
rules from ``scrub``, so no table keeps what another has already let go.
"""

from monitor.privacy.erasure import ErasureReport, forget
from monitor.privacy.retention import PurgeReport, RetentionPolicy, purge, schedule_purge

__all__ = ["ErasureReport", "PurgeReport", "RetentionPolicy", "forget", "purge", "schedule_purge"]
