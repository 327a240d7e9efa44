"""Language codes a post can carry: the ones our detector can answer (py3langid's label set).

A rule with ``languages: [NL]`` or keywords under ``vl:`` can never fire: the store
only ever holds the lowercase codes below. The list is py3langid's (a test holds it
equal to the model's labels); it is written out because loading the model to read it
takes seconds, and ``monitor check`` must answer at once.
"""

from __future__ import annotations

import difflib
from typing import Final

from monitor.i18n import N_, Problem, Words

KNOWN_LANGUAGES: Final = frozenset({
    "ace", "af", "am", "an", "ar", "ary", "arz", "as", "az", "ba", "bcl", "be", "bg", "bn", "br", "bs", "ca",
    "crh", "cs", "cy", "da", "de", "dz", "el", "en", "eo", "es", "et", "eu", "ext", "fa", "fi", "fo", "fr", "fuv",
    "fy", "ga", "gcf", "gcr", "gd", "gl", "gom", "grc", "gu", "gug", "guw", "ha", "hbo", "he", "hi", "hr", "ht",
    "hu", "hy", "id", "ig", "is", "it", "ja", "jv", "ka", "kab", "kik", "kk", "km", "kn", "ko", "ku", "ky", "la",
    "lb", "lg", "lij", "ln", "lo", "lt", "ltg", "lv", "mg", "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl",
    "nn", "no", "nso", "oc", "om", "or", "pa", "pcm", "pl", "ps", "pt", "qu", "ro", "ru", "rw", "sa", "sdh", "se",
    "si", "sk", "sl", "sn", "so", "sq", "sr", "st", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl", "tr", "tt",
    "ug", "uk", "ur", "uz", "uzs", "vec", "vi", "vo", "wa", "wuu", "xh", "yo", "yue", "zh", "zu", "zxx",
})
# Keys of a per-language keyword list that mean "whatever the language".
ANY_LANGUAGE: Final = frozenset({"any", "*"})
# The codes people mean most often when they mistype one (Flemish is Dutch: nl).
_USUAL: Final = ("nl", "fr", "en", "de")


def language_problem(code: str, *, any_allowed: bool = False) -> Words | None:
    """Why ``code`` can never be a post's language, in one sentence; None when it can.

    ``any_allowed``: a per-language keyword list, where 'any' (or '*') stands for every language.
    """
    if code in KNOWN_LANGUAGES or (any_allowed and code in ANY_LANGUAGE):
        return None
    if code.lower() in KNOWN_LANGUAGES:
        return Words.of(N_("language codes are lowercase: write '{lower}', not '{code}'"), lower=code.lower(),
                        code=code)
    hint = difflib.get_close_matches(code.lower(), _USUAL, n=1, cutoff=0.5)
    if any_allowed:
        problem = Words.of(N_("'{code}' is not a language code (two letters like nl, fr, en, or 'any' for every "
                              "language)"), code=code)
    else:
        problem = Words.of(N_("'{code}' is not a language code (two letters like nl, fr, en)"), code=code)
    return Words.of(N_("{problem}; did you mean '{hint}'?"), problem=problem, hint=hint[0]) if hint else problem


def language_codes(codes: list[str]) -> list[str]:
    """``codes`` when each can be a post's language and there is at least one; else ``ValueError`` saying why.

    The one check of a list of expected languages: MONITOR_LANGUAGES and a brand's ``languages:``.
    """
    for code in codes:
        problem = language_problem(code)
        if problem is not None:
            raise Problem(problem)
    if not codes:
        raise Problem(N_("list at least one language, e.g. [nl, fr, en]"))
    return codes
