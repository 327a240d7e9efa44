"""The monitor speaks Dutch, French and English: complete catalogs, local dates, alerts in the reader's language.

The catalogs are read with Babel (the tool that maintains them); the alerts
are rendered by the same functions Slack, the console and the e-mail fallback
use, and checked for English interface words (``tests/i18n_terms.py``) and
for dates the way each locale writes them.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from sqlalchemy import Engine

from monitor import i18n
from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.models import AlertPayload, GuidelineText, Notification, PersonRef, PostSummary, Severity, Signal
from monitor.notify import email
from monitor.notify.render import lines
from monitor.notify.slack import blocks
from monitor.store import mentions as mention_repo
from monitor.store import outbox, transaction
from monitor.yamlconfig import parse
from tests.conftest import make_mention
from tests.i18n_terms import DATES, english_terms

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "monitor" / "locale"
PLACEHOLDER = re.compile(r"\{(\w+)\}|%\((\w+)\)s")
T = datetime(2026, 11, 16, 9, 5, tzinfo=UTC)  # a Monday: 10:05 in Brussels


def _catalog(lang: str):  # type: ignore[no-untyped-def]
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "monitor.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def _code_messages() -> set[str | tuple[str, ...]]:
    """Every message the code and the console templates mark today, extracted as ``babel.cfg`` says."""
    method_map = [("monitor/**.py", "monitor.i18n:extract_python"), ("monitor/console/templates/**.html", "jinja2")]
    options = {"monitor/console/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found: set[str | tuple[str, ...]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options, keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}):
        found.add(message)
    return found


@pytest.mark.parametrize("lang", ["nl", "fr"])
def test_every_message_has_a_translation(lang: str) -> None:
    """A new English string without its Dutch and French translation fails here, by name."""
    catalog = _catalog(lang)
    ids = {m.id for m in catalog if m.id}
    untranslated = [m.id for m in catalog if m.id and (not m.string or (isinstance(m.string, tuple)
                                                                        and not all(m.string)))]
    assert untranslated == [], f"{lang}: no translation for {untranslated}"
    not_in_catalog = sorted(map(str, _code_messages() - ids))
    assert not_in_catalog == [], (f"{lang}: marked in the code but missing from the catalog (run the commands "
                                  f"in babel.cfg): {not_in_catalog}")
    for m in catalog:
        if not m.id:
            continue
        sources = m.id if isinstance(m.id, tuple) else (m.id,)
        targets = m.string if isinstance(m.string, tuple) else (m.string,)
        def names(text: str) -> set[str]:
            return {a or b for a, b in PLACEHOLDER.findall(text)}

        wanted = names(sources[-1])
        for text in targets:
            assert names(text) <= wanted | {"n", "num"}, f"{lang}: {m.id!r} → {text!r} names other values"
            assert wanted - {"n", "num"} <= names(text), f"{lang}: {m.id!r} → {text!r} drops a value"


@pytest.mark.parametrize("lang", ["nl", "fr", "en"])
def test_the_shipped_mo_files_match_the_po_files(lang: str) -> None:
    """The compiled catalogs the package ships say what the .po files say (``pybabel compile`` was run)."""
    def plain(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    po = {plain(m.id): plain(m.string) for m in _catalog(lang)  # a word the same in both languages: either way
              if m.id and any(plain(m.string) or ()) and plain(m.string) != plain(m.id)}
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "monitor.mo").open("rb") as fh:
        mo = {plain(m.id): plain(m.string) for m in read_mo(fh)
              if m.id and any(plain(m.string) or ()) and plain(m.string) != plain(m.id)}
    assert mo == po


def test_dates_and_numbers_are_written_the_local_way() -> None:
    nl = i18n.translator("nl_BE", "Europe/Brussels")
    fr = i18n.translator("fr_BE", "Europe/Brussels")
    en = i18n.translator("en", "Europe/Brussels")
    assert re.fullmatch(r"ma 16 nov\.? 2026", nl.date(T))
    assert fr.date(T) == "lun. 16 nov. 2026"
    assert en.date(T) == "Mon 16 Nov 2026"
    assert nl.datetime(T).endswith("10:05")  # the configured zone, not UTC
    assert nl.datetime_zone(T).endswith("(tijd in Brussel)") and fr.datetime_zone(T).endswith("(heure de Bruxelles)")
    # CLDR's percent patterns: French writes a (no-break) space before '%', Dutch and English do not.
    assert (nl.number(12345), fr.percent(0.123, 1), en.number(12345)) == ("12.345", "12,3\u00a0%", "12,345")
    assert (nl.percent(0.87), fr.percent(0.87), en.percent(0.87)) == ("87%", "87\u00a0%", "87%")
    assert nl.duration(timedelta(days=2, hours=3)) == "2 dagen 3 u" and fr.duration(timedelta(hours=1)) == "1 h"
    assert i18n.normalise("fr-BE") == "fr_BE" and i18n.normalise("de") == "en"


STATEMENTS = """
guidelines:
  - holding_statement:
      nl: We bekijken het meteen.
      fr: Nous regardons cela tout de suite.
      en: We are looking into it right now.
    who_may_answer: Sofie Peeters
    never_say: [Sofie Peeters]
"""


@pytest.fixture
def config(tmp_path: Path) -> EscalationConfig:
    from tests.test_escalation import CONFIG

    base = CONFIG.split("guidelines:")[0].replace("karim: {name: Karim, email: karim@example.com}",
                                                   "karim: {name: Karim, email: karim@example.com, locale: fr_BE}")
    path = tmp_path / "escalation.yaml"
    path.write_text("locale: nl_BE\n" + base + STATEMENTS, encoding="utf-8")
    return parse(EscalationConfig, path)


def _alert(engine: Engine, config: EscalationConfig, text: str, language: str) -> AlertPayload:
    esc = EscalationEngine(config)
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", [make_mention(1, text=text, language=language, at=T)], None, T)
        esc.ingest(conn, [Signal("burst", Severity.CRITICAL, "Lumora", "Lumora", "Lumora", T, (1,), "window")], T)
    with transaction(engine) as conn:
        (n,) = outbox.pending(conn)
    return n.payload


@pytest.mark.parametrize(("text", "language", "first"), [
    ("Lumora is een ramp", "nl", "Voorlopige reactie (Nederlands): We bekijken het meteen."),
    ("Lumora c'est nul", "fr", "Voorlopige reactie (Frans): Nous regardons cela tout de suite."),
])
def test_the_holding_statement_in_the_language_of_the_post_comes_first(
        engine: Engine, config: EscalationConfig, text: str, language: str, first: str) -> None:
    payload = _alert(engine, config, text, language)
    shown = lines("alert", payload)
    statements = [line for line in shown if line.startswith("Voorlopige reactie")]
    assert statements[0] == first and len(statements) == 3  # the others follow, for a reply in another language
    card = _text(blocks.card("alert", payload, who=str, now=T))
    assert card.index(first.split(": ", 1)[1]) < min(card.index(s.split(": ", 1)[1]) for s in statements[1:])


def _text(message: blocks.SlackMessage) -> str:
    out = [message.text]
    for block in message.blocks:
        for part in (block.get("text"), *block.get("elements", ()), *block.get("fields", ()),
                     block.get("accessory")):
            if isinstance(part, dict):
                out.append(str(part.get("text", "")))
                out.append(str((part.get("placeholder") or {}).get("text", "")))  # "Snooze for…" menu
                out += [str(o["text"]["text"]) for o in part.get("options", ())]
                confirm = part.get("confirm") or {}
                out += [str(v.get("text")) for v in confirm.values()]
    return "\n".join(out)


def _payload(language: str) -> AlertPayload:
    post = PostSummary(id=7, source="x", text={"nl": "Lumora is een ramp", "fr": "Lumora c'est nul"}[language],
                       created_at=T, url="https://x.com/u/status/7", author="klant", reach=1200, language=language,
                       negative=0.91)
    return AlertPayload(
        incident_id=4, brand="Lumora", rule="burst", severity=Severity.CRITICAL, reason="Lumora", policy="critical",
        opened_at=T, mention_count=5, top_mentions=(post,), timezone="Europe/Brussels", level=1,
        ack_deadline=T + timedelta(minutes=15), recipients=(PersonRef("sofie", "Sofie", "U0SOFIE01", None),),
        guideline=GuidelineText("x", "Sofie", ("Sofie",), (("nl", "Nee."), ("fr", "Non."))), actor="Sofie",
        snoozed_until=T + timedelta(hours=1))


@pytest.mark.parametrize("locale", ["nl_BE", "fr_BE"])
def test_alerts_updates_and_messages_have_no_english_left(locale: str) -> None:
    """Every kind of card, thread line, DM intro and the e-mail, in Dutch and in French."""
    payload = _payload(locale[:2])
    texts = [_text(blocks.joined(payload, locale))]
    for kind in ("alert", "escalation", "acknowledged", "reminder", "snoozed", "resolved", "false_positive",
                 "expired"):
        texts.append(_text(blocks.card(kind, payload, who=str, now=T, recipients=("Sofie",), locale=locale)))
        texts.append(_text(blocks.thread_line(kind, payload, who=str, now=T, recipients=("Sofie",),
                                              locale=locale)))
        texts.append("\n".join(lines(kind, payload, locale)))
    notification = Notification(1, 4, "alert", ("sofie",), None, payload, T)
    texts += email.render(notification, locale)
    everything = "\n".join(texts).replace("https://x.com/u/status/7", "")
    assert english_terms(everything) == []
    assert DATES[locale].search(everything)
    assert "UTC" not in everything


def test_each_responder_reads_in_their_own_language(config: EscalationConfig) -> None:
    """Karim (fr_BE) gets the e-mail in French, Sofie the team's Dutch; the channel reads the team's language."""
    payload = _payload("nl")
    assert config.locale_of("karim") == "fr_BE" and config.locale_of("sofie") == "nl_BE"
    notification = Notification(1, 4, "alert", ("sofie", "karim"), None, payload, T)
    fallback = email.EmailFallback(email.EmailSender(email.SmtpSettings("localhost")), config)
    assert fallback.by_language(notification) == {"fr_BE": ["karim@example.com"]}
    subject, text, _page = email.render(notification, "fr_BE")
    assert subject.startswith("[NOUVEL INCIDENT]") and "Slack n’a pas pu délivrer" in text
    assert email.render(notification, "en")[0].startswith("[NEW INCIDENT]")


def test_check_names_the_languages_a_guideline_lacks(tmp_path: Path) -> None:
    path = tmp_path / "escalation.yaml"
    path.write_text("""
responders: {sofie: {name: Sofie, slack: U0SOFIE01}}
policies: [{name: all, levels: [{notify: [sofie], ack_within: 15m}]}]
guidelines:
  - {holding_statement: {nl: Bedankt., en: Thanks.}, who_may_answer: Sofie}
  - {holding_statement: One text for everyone., who_may_answer: Sofie}
""", encoding="utf-8")
    config = parse(EscalationConfig, path)
    gaps = config.statement_gaps({"Lumora": ["nl", "fr", "en"], "Other": ["nl"]})
    assert len(gaps) == 1 and "no holding statement in fr for Lumora" in gaps[0] and "add fr:" in gaps[0]


def test_the_shipped_escalation_file_speaks_every_brand_language() -> None:
    from monitor.escalation.schema import load_escalation
    from monitor.sources.schema import load_collect

    config = load_escalation(ROOT / "escalation.yaml")
    brands = load_collect(ROOT / "monitor.yaml").brands
    assert config.statement_gaps({name: list(b.languages) for name, b in brands.items()}) == []
    assert all(" / " not in text for g in config.guidelines for _, text in g.statements)


# --- the console ------------------------------------------------------------------------------------------------


def _visible(html: str) -> str:
    """A page's words as a reader sees them: no tags, quoted posts or stored notes; entities decoded."""
    import html as html_lib

    html = re.sub(r"<(blockquote|title|code)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r'<(\w+) class="data">.*?</\1>', " ", html, flags=re.S)  # the rules' and the engine's own words
    html = re.sub(r"<option[^>]*>(Nederlands|Français|English)</option>", " ", html)  # each language in its own words
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize(("locale", "heading"), [("nl_BE", "Open incidenten (1)"),
                                                 ("fr_BE", "Incidents ouverts (1)")])
def test_the_console_speaks_the_chosen_language(engine: Engine, tmp_path: Path, locale: str, heading: str) -> None:
    """The switch in the header sets the language for this visitor; every page then reads in it."""
    from starlette.testclient import TestClient

    from monitor.clock import FakeClock
    from monitor.console.tryit import LazyModel
    from monitor.console.users import UserDirectory
    from monitor.console.web import ConsoleConfig, create_app
    from tests.console_fixtures import WordModel, csrf_of, write_users
    from tests.test_console import open_incident, sign_in

    clock = FakeClock(T)
    open_incident(engine, clock)
    config = ConsoleConfig(engine=engine, rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml",
                           users=UserDirectory.load(write_users(tmp_path)), clock=clock, model=LazyModel(WordModel))
    with TestClient(create_app(config), base_url="https://testserver") as client:
        assert "Sign in" in client.get("/login").text  # English before any choice
        assert "Aanmelden" in client.get("/login", headers={"Accept-Language": "nl-BE,nl;q=0.9"}).text
        sign_in(client, "sofie")
        now = client.get("/")
        switched = client.post("/language", data={"locale": locale, "next": "/", "csrf": csrf_of(now.text)},
                               follow_redirects=False)
        assert switched.status_code == 303 and switched.headers["location"] == "/"
        assert "samesite=strict" in switched.headers["set-cookie"].lower()
        refused = client.post("/language", data={"locale": "en", "next": "/", "csrf": "forged"},
                              follow_redirects=False)
        assert refused.status_code == 403  # a signed-in visitor's switch carries the session's token
        client.post("/incidents/1/acknowledge", data={"csrf": csrf_of(client.get("/").text)})
        for path in ("/", "/silences", "/rules", "/try", "/plan", "/incidents/1", "/audit"):
            page = client.get(path)
            assert page.status_code == 200 and f'<html lang="{locale[:2]}">' in page.text, path
            words = _visible(page.text).replace("Lumora", "")
            assert english_terms(words) == [], (path, english_terms(words))
        now = client.get("/").text
        assert heading in now and DATES[locale].search(_visible(now))
        # The audit log's actions and channels, and the engine's timeline notes, in the chosen language too.
        audit = _visible(client.get("/audit").text)
        assert {"nl_BE": "aanmelden", "fr_BE": "se connecter"}[locale] in audit and "sign-in" not in audit
        assert {"nl_BE": "bevestigen", "fr_BE": "prendre en charge"}[locale] in audit
        tried = client.post("/try/post", data={"csrf": csrf_of(now), "text": "Lumora is a scam", "language": "en",
                                               "reach": "25000", "engagement": "3", "source": "x",
                                               "brand": "Lumora", "at": "2026-11-18 21:40"}).text
        assert {"nl_BE": "auteur heeft 25.000 volgers",  # what made the post match, in the visitor's words
                "fr_BE": "l’auteur a 25\u202f000 abonnés"}[locale] in html.unescape(tried)
        timeline = client.get("/incidents/1").text  # the notes are data (a person's words stay as written)
        assert {"nl_BE": "niveau 1 verwittigd", "fr_BE": "niveau 1 prévenu"}[locale] in timeline
        outside = client.post("/language", data={"locale": "en", "next": "https://evil.example/",
                                                 "csrf": csrf_of(now)}, follow_redirects=False)
        assert outside.headers["location"] == "/"  # never an open redirect


def test_the_terminal_notifier_prints_in_the_chosen_language() -> None:
    """``monitor demo --locale nl_BE``: the console notifier writes every alert in Dutch."""
    import io

    from monitor.notify.console import ConsoleNotifier

    out = io.StringIO()
    ConsoleNotifier(out, "nl_BE").send(Notification(1, 4, "alert", ("sofie",), None, _payload("nl"), T))
    text = out.getvalue()
    assert text.startswith("[NIEUW INCIDENT] #4 KRITIEK · Lumora · regel burst")
    assert "Bevestig vóór ma 16 nov 10:20 (tijd in Brussel)" in text and "Klopt een bericht niet (#7)?" in text
    assert english_terms(text.replace("monitor label --by YOU --id N --as", "")) == []


def test_a_missing_catalog_is_said_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken install names the file and the fix instead of silently falling back to English."""
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.catalog.cache_clear()
    try:
        with pytest.raises(i18n.CatalogMissing, match=r"the en translations are missing .*pybabel compile"):
            i18n.check_catalogs()
    finally:
        monkeypatch.undo()
        i18n.catalog.cache_clear()
    i18n.check_catalogs()


def test_monitor_check_warns_about_a_missing_holding_statement_language(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    broken = (ROOT / "escalation.yaml").read_text(encoding="utf-8")
    start = broken.index("      fr: >-\n        Merci de nous")
    end = broken.index("      en: >-", start)
    path = tmp_path / "escalation.yaml"
    path.write_text(broken[:start] + broken[end:], encoding="utf-8")  # the critical guideline loses its French
    args = ["check", "--rules", str(ROOT / "rules"), "--collect", str(ROOT / "monitor.yaml"), "--escalation"]
    result = CliRunner().invoke(app, [*args, str(path)])
    assert result.exit_code == 0, result.output  # a warning, not an error: the alert still has the other two
    assert (f"warning: {path}: guideline 1 ({{'severity': ['critical']}}) has no holding "
            "statement in fr for Lumora") in result.output, result.output
    clean = CliRunner().invoke(app, [*args, str(ROOT / "escalation.yaml")])
    assert "warning:" not in clean.output


# --- the rules' reasons -----------------------------------------------------------------------------------------

REASON_WORDS = {
    "nl_BE": ("Bericht van @klant op X: negatief (87% zeker); auteur heeft 85.000 volgers",
              "5 negatieve berichten over Lumora in 4 min (alarmdrempel: 5 in 10 min)"),
    "fr_BE": ("Publication de @klant sur X : négatif (certitude 87\u00a0%) ; l’auteur a 85\u202f000 abonnés",
              "5 publications négatives concernant Lumora en 4 min (seuil d’alerte : 5 en 10 min)"),
}


def _fire(engine: Engine, config: EscalationConfig, rule: dict[str, object], count: int = 1) -> AlertPayload:
    """Posts through the real rule engine and escalation engine: the payload the outbox holds for the alert."""
    from monitor.detect import RuleEngine
    from monitor.detect.schema import Rule
    from tests.conftest import scored

    rules = RuleEngine([Rule.model_validate({"name": "burst", "severity": "critical", **rule})])
    posts = [make_mention(i, text="Lumora is een ramp", language="nl", at=T + timedelta(minutes=i - 1),
                          author="klant", reach=85_000) for i in range(1, count + 1)]
    signals = [s for post in posts for s in rules.process(scored(post, 0.87))]
    assert signals and all(s.detail is not None for s in signals)
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", posts, None, T)
        EscalationEngine(config).ingest(conn, signals[-1:], T)
    with transaction(engine) as conn:
        (n,) = outbox.pending(conn)
    return n.payload


def _everything(payload: AlertPayload, locale: str) -> str:
    """An alert's card, thread line, plain lines and e-mail in one language."""
    texts = [_text(blocks.card("alert", payload, who=str, now=T, locale=locale)),
             _text(blocks.thread_line("acknowledged", payload, who=str, now=T, locale=locale)),
             "\n".join(lines("alert", payload, locale))]
    texts += email.render(Notification(1, payload.incident_id, "alert", ("sofie",), None, payload, T), locale)
    return "\n".join(texts).replace("https://x.com/u/status/1", "")


@pytest.mark.parametrize("locale", ["nl_BE", "fr_BE"])
def test_a_rules_reason_reads_in_the_readers_language(engine: Engine, config: EscalationConfig, locale: str) -> None:
    """'negative (87% sure)' is stored as facts: Slack, the e-mail and the plain lines write it the reader's way."""
    payload = _fire(engine, config, {"when": {"negative_above": 0.6, "reach_at_least": 10_000}})
    assert payload.reason == "Post by @klant on X: negative (87% sure); author has 85,000 followers"
    everything = _everything(payload, locale)
    assert REASON_WORDS[locale][0] in everything
    assert english_terms(everything) == [] and "sure" not in everything


@pytest.mark.parametrize("locale", ["nl_BE", "fr_BE"])
def test_a_bursts_reason_reads_in_the_readers_language(engine: Engine, config: EscalationConfig, locale: str) -> None:
    payload = _fire(engine, config, {"when": {"negative_above": 0.6}, "frequency": {"count": 5, "within": "10m"}},
                    count=5)
    assert payload.reason == "5 negative posts about Lumora in 4 min (alert level: 5 in 10 min)"
    everything = _everything(payload, locale)
    assert REASON_WORDS[locale][1] in everything
    assert english_terms(everything) == []


def test_a_reason_stored_as_text_only_still_shows(engine: Engine, config: EscalationConfig) -> None:
    """A row from before reasons were stored as facts (or a self-alert) shows its stored words."""
    old = Signal("burst", Severity.CRITICAL, "Lumora", "Lumora", "Post by @anna on X: negative (90% sure)", T, (1,),
                 "mention")
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", [make_mention(1, at=T)], None, T)
        EscalationEngine(config).ingest(conn, [old], T)
    with transaction(engine) as conn:
        (n,) = outbox.pending(conn)
    assert n.payload.reason_data is None
    assert "Waarom: Post by @anna on X: negative (90% sure)" in lines("alert", n.payload)
    # A payload written by a newer release, in a format this one cannot read, shows the stored words too.
    newer = replace(n.payload, reason_data={"v": 99, "kind": "post"})
    assert "Waarom: Post by @anna on X: negative (90% sure)" in lines("alert", AlertPayload.from_json(newer.to_json()))


@pytest.mark.parametrize("locale", ["nl_BE", "fr_BE"])
def test_the_digest_gives_the_reason_in_the_readers_language(engine: Engine, config: EscalationConfig,
                                                             locale: str) -> None:
    """The digest's 'Why' row: the reason's facts in the report's language, the author's handle masked."""
    from monitor.digest.figures import build_digest
    from monitor.digest.html import render_html
    from monitor.digest.week import IsoWeek

    _fire(engine, config, {"when": {"negative_above": 0.6, "reach_at_least": 10_000}})
    with transaction(engine) as conn:
        EscalationEngine(config).tick(conn, T + timedelta(minutes=16))  # nobody acknowledged: level 2
    with engine.connect() as conn:
        digest = build_digest(conn, IsoWeek.containing(T, config.timezone), config, reach_threshold=100_000)
    page = render_html(digest, locale)
    why = {"nl_BE": "Waarom", "fr_BE": "Pourquoi"}[locale]
    found = re.search(rf"<dt>{why}</dt><dd><span class=\"data\">(.*?)</span>", page)
    assert found is not None
    shown = html.unescape(found.group(1))
    assert shown == REASON_WORDS[locale][0].replace("@klant", "@…")  # below the reach threshold: not named
    assert english_terms(shown) == []
    # The escalation step, the responder by name, in the report's language.
    assert f'(<span class="data">{TIMELINE_WORDS[locale][2]}</span>)' in page.replace("&#x27;", "'")


# --- the escalation timeline ------------------------------------------------------------------------------------

TIMELINE_WORDS = {
    "nl_BE": ("niveau 1 verwittigd: Sofie", "uitgesteld: geen escalatie vóór ma 16 nov 11:05 (tijd in Brussel)",
              "niveau 2 verwittigd: Karim", "niemand heeft bevestigd; alle niveaus zijn opgeroepen",
              "niemand heeft bevestigd en 24 u lang geen nieuwe berichten"),
    "fr_BE": ("niveau 1 prévenu : Sofie", "reporté : pas d’escalade avant le lun. 16 nov. 11:05 (heure de Bruxelles)",
              "niveau 2 prévenu : Karim", "personne n’a pris en charge ; tous les niveaux ont été appelés",
              "personne n’a pris en charge et aucune nouvelle publication depuis 24 h"),
}


@pytest.mark.parametrize("locale", ["nl_BE", "fr_BE"])
def test_the_engines_timeline_notes_read_in_the_readers_language(engine: Engine, config: EscalationConfig,
                                                                 locale: str) -> None:
    """Called, snoozed, escalated, every level called, expired: each step the engine logs is stored as facts
    and reads in the reader's language, times in the team's zone; the closing update's note too."""
    from monitor import notes
    from monitor.store import incidents as incident_repo

    payload = _fire(engine, config, {"when": {"negative_above": 0.6, "reach_at_least": 10_000}})
    esc = EscalationEngine(config)
    with transaction(engine) as conn:
        esc.snooze(conn, payload.incident_id, "sofie", T + timedelta(hours=1), T)
    for hours in (1, 2, 30):
        with transaction(engine) as conn:
            esc.tick(conn, T + timedelta(hours=hours))
    t = i18n.translator(locale, config.timezone)
    names = {key: person.name for key, person in config.responders.items()}
    with transaction(engine) as conn:
        events = incident_repo.events(conn, payload.incident_id)
        closing = [n for n in outbox.pending(conn) if n.kind == "expired"]
    assert events[-1].note == "nobody acknowledged and no new posts for 1 day"  # the log keeps its English
    shown = [notes.text(e.note_data, e.note, t, names) for e in events]
    assert shown[0] == REASON_WORDS[locale][0]  # opened: the rule's reason
    for words in TIMELINE_WORDS[locale]:
        assert words in shown, (words, shown)
    assert english_terms("\n".join(shown)) == []
    (expired,) = closing
    card = _text(blocks.card("expired", expired.payload, who=str, now=T, locale=locale))
    assert TIMELINE_WORDS[locale][-1] in card and english_terms(card) == []


def test_a_note_a_person_wrote_stays_as_written(engine: Engine, config: EscalationConfig) -> None:
    from monitor import notes
    from monitor.store import incidents as incident_repo

    payload = _fire(engine, config, {"when": {"negative_above": 0.6}})
    with transaction(engine) as conn:
        EscalationEngine(config).resolve(conn, payload.incident_id, "sofie", T, note="answered by DM")
        last = incident_repo.events(conn, payload.incident_id)[-1]
    assert last.note_data is None
    assert notes.text(last.note_data, last.note, i18n.translator("fr_BE")) == "answered by DM"


@pytest.mark.parametrize(("locale", "words"), [("nl_BE", "geldige YAML: kijk of de inspringing klopt"),
                                               ("fr_BE", "pas du YAML valide à cet endroit")])
def test_a_yaml_error_reads_in_the_console_users_language(locale: str, words: str) -> None:
    from monitor.console.plain import plain_error
    from monitor.yamlconfig import ConfigError

    raw = ConfigError("rules/reach.yaml", 3, 5, "", "YAML syntax error: while parsing a block mapping expected "
                                                    "<block end>, but found '<block sequence start>'")
    shown = plain_error(raw, i18n.translator(locale))
    assert shown.startswith("rules/reach.yaml:3:5:") and words in shown and "<block end>" not in shown


def test_a_configuration_problem_keeps_the_persons_values_as_typed() -> None:
    """A template's values are never formatted again nor translated: a regex with braces stays as typed, a number
    is written the reader's way, a library's own text (no template of ours) stays English everywhere."""
    from monitor.yamlconfig import ConfigError

    typed = "a{2,}(?<=x)"
    why = i18n.Words(i18n.N_("a look-behind '(?<=...)' is not supported (rules run on a linear-time engine); match "
                             "the text itself instead"))
    words = i18n.Words.of(i18n.N_("regular expression '{pattern}' cannot be used: {why}"), pattern=typed, why=why)
    error = ConfigError.of("/tmp/x/rules/r.yaml", 6, 14, "rules[0].when.regex", words)
    assert str(error) == f"/tmp/x/rules/r.yaml:6:14: rules[0].when.regex: {error.message}"
    assert error.message.startswith(f"regular expression '{typed}' cannot be used: a look-behind")
    dutch = error.mapped(lambda text: text.replace("/tmp/x/", "")).text(i18n.translator("nl_BE"))
    assert dutch.startswith(f"rules/r.yaml:6:14: rules[0].when.regex: reguliere expressie '{typed}' kan niet")
    limit = i18n.Words.of(i18n.N_("list at least {n} items"), n=100_000)
    assert (str(limit), limit.text(i18n.translator("nl_BE")), limit.text(i18n.translator("fr_BE"))) == (
        "list at least 100,000 items", "geef minstens 100.000 items op", "indiquez au moins 100\u202f000 éléments")
    raw = ConfigError.of("f.yaml", 1, 1, "", i18n.Words.plain("Input should be a valid {thing}"))
    assert raw.words is None and raw.text(i18n.translator("fr_BE")) == "f.yaml:1:1: Input should be a valid {thing}"
