"""What a Dutch or French reader must never see: English words of the monitor's own interface.

Shared by the alert, e-mail, digest and console language tests. Each term is a
word (or words) the code writes in English and the catalogs translate; none is
also a Dutch or French word ("incident", "info", "min", "week", "account",
"privacy", "plan" and French "mentions" are, so they are not here). Texts the
team wrote itself (a rule's name, a reason, a quoted post) are kept free of
these words in the tests' fixtures, or left out of what is checked.
"""

from __future__ import annotations

import re

UI_TERMS = (
    "Acknowledge", "Acknowledged", "acknowledged", "Resolve", "Resolved", "Snooze", "Snoozed", "False positive",
    "Holding statement", "Who may answer", "Never say", "Why", "Level", "level", "followers", "posts",
    "post", "policy", "rule", "opened", "left", "called", "next", "Negative share",
    "Time to acknowledge", "Time to resolve", "Median", "Worst", "Target", "Precision", "Signals", "Reviewed",
    "Escalated", "escalated", "Overview", "Silences", "Brand", "Day", "Days", "days", "Positive", "Neutral",
    "Negative", "not scored", "unknown author", "Open the post", "open post", "Top incidents", "Noisy rules",
    "Full report", "Reputation digest", "Who posted", "Generated",
    "How to read", "still open", "not acknowledged", "never acknowledged", "over target", "within",
    "Sign in", "Sign out", "Password", "Rules", "Now", "Try", "Open incidents", "Language",
    "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
    "Sep", "Oct", "Dec", "the", "and", "with", "without", "from", "before", "after",
)
_PATTERN = re.compile(r"(?<![\w@#/.:-])(" + "|".join(re.escape(t) for t in sorted(UI_TERMS, key=len, reverse=True))
                      + r")(?![\w-])")


def english_terms(text: str) -> list[str]:
    """The interface's English words found in ``text`` (case as written: 'Level' and 'level' are both listed)."""
    return sorted(set(_PATTERN.findall(text)))


# A date the way each locale writes it (CLDR via Babel): weekday, day, month, year.
DATES = {
    "nl_BE": re.compile(r"\b(ma|di|wo|do|vr|za|zo) \d{1,2} (jan|feb|mrt|apr|mei|jun|jul|aug|sep|okt|nov|dec)\.?\b"),
    "fr_BE": re.compile(r"\b(lun|mar|mer|jeu|ven|sam|dim)\. \d{1,2} (janv|févr|mars|avr|mai|juin|juil|août|sept|oct|"
                        r"nov|déc)\.?"),
    "en": re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b"),
}
