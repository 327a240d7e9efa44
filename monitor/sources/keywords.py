"""Does a text name the brand? Whole words, any case, for listings that are not searched server-side."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection


def keyword_matcher(keywords: Collection[str]) -> Callable[[str], bool]:
    """Whole-word, case-insensitive match of any keyword (``Lumora`` but not ``Lumoravision``).

    Word edges are "not a letter or digit" rather than ``\\b``, so keywords that start or end with
    punctuation (``@lumora_be``, ``lumora.be``) match too.
    """
    alternatives = "|".join(re.escape(k.strip()) for k in sorted(keywords, key=len, reverse=True) if k.strip())
    if not alternatives:
        return lambda _text: False
    pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
    return lambda text: pattern.search(text) is not None
