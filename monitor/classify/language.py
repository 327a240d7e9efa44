"""Offline language identification restricted to the languages a brand expects.

Restricting py3langid's label set to e.g. nl/fr/en is what makes it reliable
on short posts: an unrestricted model happily calls a Flemish tweet Afrikaans.

One detector serves both the sentiment model (whose Dutch offsets depend on
the language) and the store (which keeps the language with the mention), so
the two always agree; it remembers its recent answers, so the second of the
two calls for a post costs nothing (identification is about half a
millisecond a post, a large share of scoring one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from py3langid.langid import MODEL_FILE, LanguageIdentifier

# Answers remembered, for texts of up to MEMO_MAX_CHARS (a post, not a pasted document), so the
# memo stays under ~40 MB; forgotten all at once when full.
MEMO_LIMIT: Final = 4096
MEMO_MAX_CHARS: Final = 10_000
_UNKNOWN: Final = object()


class LanguageDetector:
    def __init__(self, languages: Sequence[str]) -> None:
        if not languages:
            raise ValueError("at least one expected language is needed")
        self.languages = list(languages)
        self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
        self._identifier.set_languages(self.languages)
        self._memo: dict[str, object] = {}

    def detect(self, text: str) -> str | None:
        """ISO 639-1 code, or None for text with no letters (emoji only, links only)."""
        known = self._memo.get(text, _UNKNOWN)  # one lookup: another thread may clear the memo in between
        if known is not _UNKNOWN:
            return known  # type: ignore[return-value]
        lang: str | None = None
        if any(ch.isalpha() for ch in text):
            lang = str(self._identifier.classify(text)[0])
        if len(text) <= MEMO_MAX_CHARS:
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            self._memo[text] = lang
        return lang
