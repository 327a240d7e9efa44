"""Offline language identification restricted to the languages a brand expects.

Restricting py3langid's label set to e.g. nl/fr/en is what makes it reliable
on short posts: an unrestricted model happily calls a Flemish tweet Afrikaans.
"""

from __future__ import annotations

from collections.abc import Sequence

from py3langid.langid import MODEL_FILE, LanguageIdentifier


class LanguageDetector:
    def __init__(self, languages: Sequence[str]) -> None:
        if not languages:
            raise ValueError("at least one expected language is needed")
        self.languages = list(languages)
        self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
        self._identifier.set_languages(self.languages)

    def detect(self, text: str) -> str | None:
        """ISO 639-1 code, or None for text with no letters (emoji only, links only)."""
        if not any(ch.isalpha() for ch in text):
            return None
        lang, _score = self._identifier.classify(text)
        return str(lang)
