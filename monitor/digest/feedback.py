"""The digest's "model quality from your feedback" section: what the team said about alerted posts,
and every calibration put in force or rolled back during the week.

Kept apart from the other figures so it reads on its own: per language, how many
alerted posts somebody judged and the share they called "not negative" (the
model's false alarms as the team sees them), and one line per calibration change
("Dutch calibration updated on Mon 16 Nov, by sofie: negative precision 0.52 → 0.71
on 140 labelled posts").
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, select

from monitor.i18n import Translator
from monitor.store import feedback as feedback_repo
from monitor.store.tables import incident_mentions, incidents, labels, mentions

from .week import IsoWeek

LANGUAGE_NAMES = {"nl": "Dutch", "fr": "French", "en": "English", "de": "German", "es": "Spanish",
                  "it": "Italian", "pt": "Portuguese", "ar": "Arabic", "hi": "Hindi"}


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


@dataclass(frozen=True, slots=True)
class LanguageFeedback:
    language: str
    alerted: int  # posts in incidents opened this week
    judged: int  # ... that somebody labelled
    not_negative: int  # ... whose latest label says "not negative"

    @property
    def not_negative_share(self) -> float | None:
        return self.not_negative / self.judged if self.judged else None


@dataclass(frozen=True, slots=True)
class FeedbackFigures:
    languages: tuple[LanguageFeedback, ...]
    changes: tuple[feedback_repo.Change, ...]  # calibration changes, oldest first

    @property
    def empty(self) -> bool:
        return not self.changes and not any(x.alerted for x in self.languages)

    def lines(self, t: Translator) -> list[str]:
        """Plain sentences in the digest's language, shared by the Slack message and the HTML report."""
        out = [change_line(c, t) for c in self.changes]
        for x in self.languages:
            out.append(t._("{language}: {judged} of {alerted} alerted posts judged, {share} called “not negative”",
                           language=t.language_name(x.language), judged=x.judged, alerted=x.alerted,
                           share=t.percent(x.not_negative_share)))
        return out


def build_feedback(conn: Connection, week: IsoWeek) -> FeedbackFigures:
    alerted = conn.execute(
        select(mentions.c.id, mentions.c.language).distinct()
        .join(incident_mentions, incident_mentions.c.mention_id == mentions.c.id)
        .join(incidents, incidents.c.id == incident_mentions.c.incident_id)
        .where(and_(incidents.c.opened_at >= week.start, incidents.c.opened_at < week.end))).all()
    language_of = {int(r.id): r.language or "?" for r in alerted}
    latest: dict[int, str] = {}
    ids = list(language_of)
    for start in range(0, len(ids), 500):
        for r in conn.execute(select(labels.c.mention_id, labels.c.label)
                              .where(labels.c.mention_id.in_(ids[start: start + 500]))
                              .order_by(labels.c.at, labels.c.id)):
            latest[int(r.mention_id)] = r.label
    per: dict[str, list[int]] = {}
    for mid, code in language_of.items():
        acc = per.setdefault(code, [0, 0, 0])
        acc[0] += 1
        if mid in latest:
            acc[1] += 1
            acc[2] += latest[mid] == "not_negative"
    languages = tuple(LanguageFeedback(code, *acc) for code, acc in sorted(per.items(), key=lambda kv: -kv[1][0]))
    return FeedbackFigures(languages, tuple(feedback_repo.changes_between(conn, week.start, week.end)))


def change_line(change: feedback_repo.Change, t: Translator) -> str:
    """'Dutch calibration updated on Mon 16 Nov, by sofie: negative precision 0.52 → 0.71 on 140 labelled posts'."""
    when = t.day_month(t.local(change.at).date())
    if change.to_version is None:
        return t._("Calibration {version} withdrawn on {when}, by {who}: the model's own scores are in force again",
                   version=change.from_version, when=when, who=change.by)
    rollback = change.action == "rollback"
    parts = []
    for code, figures in sorted((change.summary.get("languages") or {}).items()):
        before = (figures.get("before") or {}).get("precision")
        after = (figures.get("after") or {}).get("precision")
        if figures.get("offset") is None:
            continue
        precision = (t._("negative precision {before} → {after}", before=_num(before, t), after=_num(after, t))
                     if before is not None or after is not None else t._("negative precision not measurable"))
        values = {"language": t.language_name(code), "version": change.to_version, "when": when, "who": change.by,
                  "precision": precision, "labels": figures.get("labels", 0)}
        parts.append(t._("{language} calibration rolled back to version {version} on {when}, by {who}: {precision} "
                         "on {labels} labelled posts", **values) if rollback else
                     t._("{language} calibration updated to version {version} on {when}, by {who}: {precision} on "
                         "{labels} labelled posts", **values))
    if parts:
        return "; ".join(parts)
    values = {"version": change.to_version, "when": when, "who": change.by}
    return (t._("Calibration rolled back to version {version} on {when}, by {who}", **values) if rollback
            else t._("Calibration updated to version {version} on {when}, by {who}", **values))


def _num(x: object, t: Translator) -> str:
    return t.number(x, 2) if isinstance(x, (int, float)) else "–"

