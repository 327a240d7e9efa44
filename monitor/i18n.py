"""The team's language: one translator per locale, gettext catalogs plus Babel's dates and numbers.

Every text a person reads (an alert, its e-mail, the digest, the console) is
written in English in the code, marked for translation (``t._("…")``,
``t.ngettext``, ``N_`` for constants) and looked up at render time in the gettext
catalog of the reader's locale: ``monitor/locale/<lang>/LC_MESSAGES/monitor.po``,
kept with Babel (``pybabel extract/update/compile``, see ``babel.cfg`` and the
README's "Languages" section) and shipped compiled (``.mo``) as package data.
Dates, numbers and percentages are formatted by Babel for the same locale
(CLDR data: "ma 16 nov 2026", "lun. 16 nov. 2026", "12,3%"), always in the
configured time zone: nobody reads a time in UTC unless the team chose UTC.

A translator is a plain value built per reader (per responder, per digest,
per console request); there is no process-wide "current language".
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import gettext as _gettext
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from babel import Locale as BabelLocale
from babel.dates import format_date, format_datetime, format_time, get_day_names
from babel.numbers import format_decimal, format_percent

# The locales the monitor speaks. Dutch and French as written in Belgium; English as the code's own words.
LocaleName = Literal["en", "nl_BE", "fr_BE"]
LOCALES: tuple[str, ...] = get_args(LocaleName)
DEFAULT_LOCALE: LocaleName = "en"
DOMAIN = "monitor"
LOCALE_DIR = Path(__file__).parent / "locale"
# Catalog directory per locale: one Dutch and one French catalog serve Belgium (gettext's own fallback
# would find them too; naming them here makes a missing catalog an error instead of silent English).
CATALOGS: dict[str, str] = {"en": "en", "nl_BE": "nl", "fr_BE": "fr"}
# A post's language code (``Mention.language``) to the locale whose words an alert uses for it.
LANGUAGE_NAMES: dict[str, str] = {"nl": "Nederlands", "fr": "Français", "en": "English"}


class CatalogMissing(RuntimeError):
    """A locale the monitor promises has no compiled catalog: a broken install, said at start-up."""


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional name, which ``pybabel extract`` looks for
    """Marks a constant for extraction; it is translated where it is shown (``Translator._``)."""
    return message


def normalise(name: str | None) -> LocaleName:
    """'nl', 'nl-BE', 'nl_be', 'fr', 'en_GB' → the supported locale; unknown or empty → English."""
    if not name:
        return DEFAULT_LOCALE
    lang = name.replace("-", "_").split("_")[0].lower()
    for locale in LOCALES:
        if locale.split("_")[0] == lang:
            return locale  # type: ignore[return-value]  # one of LOCALES, hence a LocaleName
    return DEFAULT_LOCALE


@functools.cache
def catalog(locale: str) -> _gettext.NullTranslations:
    """The compiled catalog of one supported locale, loaded once per process."""
    if locale not in CATALOGS:
        raise CatalogMissing(f"unsupported locale {locale!r}; use one of {', '.join(LOCALES)}")
    path = LOCALE_DIR / CATALOGS[locale] / "LC_MESSAGES" / f"{DOMAIN}.mo"
    try:
        with path.open("rb") as handle:
            return _gettext.GNUTranslations(handle)
    except OSError as exc:
        raise CatalogMissing(f"the {locale} translations are missing ({path}: {exc.strerror}); reinstall the "
                             "package or run `pybabel compile -d monitor/locale -D monitor`") from None


@dataclass(frozen=True, slots=True)
class Translator:
    """Words, dates and numbers for one reader: a locale and the time zone they read times in."""

    locale: LocaleName
    zone: ZoneInfo
    catalog: _gettext.NullTranslations

    @property
    def language(self) -> str:
        """'nl', 'fr' or 'en': the language part (HTML ``lang``, holding statements)."""
        return self.locale.split("_")[0]

    # --- words ------------------------------------------------------------------------------------
    def _(self, message: str, /, **values: Any) -> str:
        """The translation of ``message``, with ``{name}`` placeholders filled from ``values``."""
        text = self.catalog.gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, n: int, /, **values: Any) -> str:
        """Singular or plural by the locale's rule; ``{n}`` is always available."""
        return self.catalog.ngettext(singular, plural, n).format(n=self.number(n), **values)

    # --- numbers ----------------------------------------------------------------------------------
    def number(self, value: float, digits: int = 0) -> str:
        """'12,345' / '12.345' / '12 345'."""
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(round(value, digits) if digits else round(value), format=pattern, locale=self.locale)

    def decimal(self, value: float) -> str:
        """'0.6' / '0,6': as many decimals as the value has (up to three), like ``:g``."""
        return format_decimal(value, locale=self.locale)

    def percent(self, share: float | None, digits: int = 0) -> str:
        """'12.3%' / '12,3%' / '12,3 %' (the locale's own pattern: French puts a space before '%'); '–' for none."""
        if share is None:
            return "–"
        pattern = _percent_pattern(self.locale)
        if digits:
            pattern = pattern.replace("0", "0." + "0" * digits, 1)
        return format_percent(share, format=pattern, locale=self.locale)

    # --- times ------------------------------------------------------------------------------------
    def local(self, when: dt.datetime) -> dt.datetime:
        return when.astimezone(self.zone)

    def date(self, day: dt.date | dt.datetime) -> str:
        """'ma 16 nov 2026' / 'lun. 16 nov. 2026' / 'Mon 16 Nov 2026'."""
        value = self.local(day).date() if isinstance(day, dt.datetime) else day
        return format_date(value, "EEE d MMM y", locale=self.locale)

    def day(self, day: dt.date) -> str:
        """'ma 16' / 'lun. 16' / 'Mon 16': a day in a chart's axis or a table of one week."""
        return format_date(day, "EEE d", locale=self.locale)

    def day_month(self, day: dt.date) -> str:
        """'ma 16 nov' / 'lun. 16 nov.' / 'Mon 16 Nov'."""
        return format_date(day, "EEE d MMM", locale=self.locale)

    def datetime(self, when: dt.datetime | None, *, year: bool = False) -> str:
        """'ma 16 nov 10:05' in the reader's zone ('…2026 10:05' with ``year``); '–' for no time."""
        if when is None:
            return "–"
        pattern = "EEE d MMM y HH:mm" if year else "EEE d MMM HH:mm"
        return format_datetime(when, pattern, tzinfo=self.zone, locale=self.locale)

    def weekday(self, key: str) -> str:
        """'mon' … 'sun' (the escalation file's business days) as the locale abbreviates them: 'ma', 'lun.'."""
        index = ("mon", "tue", "wed", "thu", "fri", "sat", "sun").index(key)
        return str(get_day_names("abbreviated", locale=self.locale)[index])

    def weekdays(self, keys: list[str] | tuple[str, ...]) -> str:
        return ", ".join(self.weekday(k) for k in keys)

    def time(self, when: dt.datetime) -> str:
        """'10:05' in the reader's zone."""
        return format_time(when, "HH:mm", tzinfo=self.zone, locale=self.locale)

    @property
    def zone_name(self) -> str:
        """The zone as a reader knows it: 'Brussel', 'Bruxelles', 'Brussels'; 'UTC' for UTC."""
        key = getattr(self.zone, "key", "UTC")
        if key in ("UTC", "Etc/UTC", "GMT"):
            return "UTC"
        return format_datetime(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "VVV", tzinfo=self.zone,
                               locale=self.locale)

    def datetime_zone(self, when: dt.datetime) -> str:
        """'ma 16 nov 10:05 (Brussel)': a time read where the zone is not obvious (a deadline, an e-mail)."""
        return self._("{time} ({zone} time)", time=self.datetime(when), zone=self.zone_name)

    def duration(self, delta: dt.timedelta | None) -> str:
        """'45 s', '12 min', '3 h 05 min', '2 days 4 h'; '–' for nothing. Rounded to the minute past one minute."""
        if delta is None:
            return "–"
        seconds = round(delta.total_seconds())
        if seconds <= 0:
            return self._("{minutes} min", minutes=0)
        if seconds < 60:
            return self._("{seconds} s", seconds=seconds)
        minutes = round(seconds / 60)
        if minutes < 60:
            return self._("{minutes} min", minutes=minutes)
        hours, minutes = divmod(minutes, 60)
        if hours < 48:
            if minutes:
                return self._("{hours} h {minutes} min", hours=hours, minutes=f"{minutes:02d}")
            return self._("{hours} h", hours=hours)
        days, hours = divmod(hours, 24)
        text = self.ngettext("{n} day", "{n} days", days)
        return self._("{days} {hours} h", days=text, hours=hours) if hours else text

    def language_name(self, code: str) -> str:
        """A language's own name in the reader's language: 'Nederlands' → 'Dutch' for an English reader."""
        try:
            return BabelLocale.parse(code).get_display_name(self.locale) or code
        except (ValueError, TypeError, LookupError):
            return code


PLAIN = "{text}"  # the template of ``Words.plain``: in no catalog, so never translated


def _whole(value: Any, t: Translator | None) -> Any:
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    return t.number(value) if t is not None else f"{value:,}"


@dataclass(frozen=True, slots=True)
class Words:
    """A sentence kept as its English template (a msgid, marked with ``N_``) and its values, written out in the
    language of whoever reads it.

    A configuration error is made where the file is read, long before anyone knows who will read it: ``monitor
    check`` and the logs read it in English (``str``), the console in the visitor's language (``text(t)``).
    A value may itself be ``Words`` ("expected {what} (got {value})"), translated with the sentence; a whole
    number is written the reader's way (100,000 / 100.000 / 100 000); any other value (a file name, a key, what
    the person typed, passed as text) is shown as it is.
    """

    template: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, template: str, /, **params: Any) -> Words:
        return cls(template, tuple(params.items()))

    @classmethod
    def plain(cls, text: str) -> Words:
        """Text with no template of ours (a library's own words): shown as it is in every language."""
        return cls(PLAIN, (("text", text),))

    @property
    def translatable(self) -> bool:
        return self.template != PLAIN

    def text(self, t: Translator | None = None) -> str:
        """The sentence in ``t``'s language (English without one); a template without values is not formatted,
        as ``Translator._`` does, so it may show braces ('{nl: [boycot]}')."""
        values = {k: v.text(t) if isinstance(v, Words) else _whole(v, t) for k, v in self.params}
        template = t.catalog.gettext(self.template) if t is not None else self.template
        return template.format(**values) if values else template

    def mapped(self, change: Callable[[str], str]) -> Words:
        """The same sentence with ``change`` applied to its text values (never to the template)."""
        return Words(self.template, tuple((k, v.mapped(change) if isinstance(v, Words) else
                                           change(v) if isinstance(v, str) else v) for k, v in self.params))

    def __str__(self) -> str:
        return self.text()


class Problem(ValueError):
    """A validator's refusal with its translatable words (``Words``). pydantic keeps the exception in the
    error's context, so ``describe`` finds the template; ``str`` is the English sentence, as before."""

    def __init__(self, template: str | Words, /, **params: Any) -> None:
        self.words = template if isinstance(template, Words) else Words.of(template, **params)
        super().__init__(str(self.words))


@functools.cache
def _percent_pattern(locale: str) -> str:
    """CLDR's percent pattern for ``locale``: '#,##0%', or '#,##0\u00a0%' in French."""
    pattern = BabelLocale.parse(locale).percent_formats[None].pattern
    return str(pattern)


@functools.cache
def _translator(locale: str, zone: str) -> Translator:
    name = normalise(locale)
    return Translator(name, ZoneInfo(zone), catalog(name))


def translator(locale: str | None = None, zone: str | ZoneInfo = "UTC") -> Translator:
    """The translator for a locale ('nl_BE', 'fr_BE', 'en'; 'nl' or 'fr-BE' also do) and a time zone."""
    key = zone if isinstance(zone, str) else getattr(zone, "key", "UTC")
    return _translator(normalise(locale), key)


def check_catalogs() -> None:
    """Load every catalog once: a missing one fails the worker's start, not the first Dutch alert."""
    for locale in LOCALES:
        catalog(locale)


def extract_python(fileobj: Any, keywords: Any, comment_tags: Any, options: Any
                   ) -> Iterator[tuple[int, str, str | tuple[str, ...], list[str]]]:
    """``pybabel extract`` for our Python files (``babel.cfg``): every ``_``, ``ngettext`` and ``N_`` call.

    Babel's own Python extractor reads tokens, and on Python 3.11 an f-string is one token, so a
    ``{t._("…")}`` inside an f-string (the digest builds its HTML that way) would be missed and stay
    English. The syntax tree sees every call, wherever it is written.
    """
    tree = ast.parse(fileobj.read())
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        texts = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if name in ("_", "gettext", "N_") and texts and isinstance(node.args[0], ast.Constant):
            yield node.lineno, str(name), texts[0], []
        elif name == "ngettext" and len(texts) >= 2 and all(isinstance(a, ast.Constant) for a in node.args[:2]):
            yield node.lineno, "ngettext", (texts[0], texts[1]), []
