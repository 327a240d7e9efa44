"""The snooze lengths a responder may choose: one list for the console's form and Slack's menu.

The same few lengths a person would say ("give me 4 hours"), nothing to type, so
a snooze can never be absurdly short or silence an incident for a week. Both the
console and the Slack interactivity handler accept only these lengths: a value
outside them (a forged form or payload) is refused, not rounded.
"""

from __future__ import annotations

import datetime as dt

from monitor.i18n import N_

# Minutes -> words. The words are translated where they are shown; the audit keeps them in English.
SNOOZES: dict[int, str] = {30: N_("30 minutes"), 60: N_("1 hour"), 120: N_("2 hours"), 240: N_("4 hours"),
                           480: N_("8 hours"), 1440: N_("24 hours")}
DEFAULT_MINUTES = 60  # preselected in the console; what a Slack card's old "Snooze 1 h" button still means


def snooze_length(minutes: int) -> dt.timedelta:
    """An offered length as a duration; ValueError for any other number of minutes."""
    if minutes not in SNOOZES:
        raise ValueError(f"{minutes} minutes is not one of the snooze lengths offered")
    return dt.timedelta(minutes=minutes)
