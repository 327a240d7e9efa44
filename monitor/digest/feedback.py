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
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, select

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
    changes: tuple[str, ...]  # one sentence per calibration change, oldest first

    @property
    def empty(self) -> bool:
        return not self.changes and not any(x.alerted for x in self.languages)

    def lines(self) -> list[str]:
        """Plain sentences, shared by the Slack message and the HTML report."""
        out = list(self.changes)
        for x in self.languages:
            share = f"{x.not_negative_share:.0%}" if x.not_negative_share is not None else "–"
            out.append(f"{language_name(x.language)}: {x.judged} of {x.alerted} alerted posts judged, "
                       f"{share} called \"not negative\"")
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
    changes = tuple(change_line(c, week.timezone) for c in feedback_repo.changes_between(conn, week.start, week.end))
    return FeedbackFigures(languages, changes)


def change_line(change: feedback_repo.Change, timezone: str) -> str:
    """'Dutch calibration updated on Mon 16 Nov, by sofie: negative precision 0.52 → 0.71 on 140 labelled posts'."""
    when = change.at.astimezone(ZoneInfo(timezone)).strftime("%a %d %b")
    if change.to_version is None:
        return (f"Calibration {change.from_version} withdrawn on {when}, by {change.by}: the model's own scores "
                "are in force again")
    verb = "rolled back to" if change.action == "rollback" else "updated to"
    parts = []
    for code, figures in sorted((change.summary.get("languages") or {}).items()):
        before = (figures.get("before") or {}).get("precision")
        after = (figures.get("after") or {}).get("precision")
        if figures.get("offset") is None:
            continue
        precision = (f"negative precision {_num(before)} → {_num(after)}" if before is not None or after is not None
                     else "negative precision not measurable")
        parts.append(f"{language_name(code)} calibration {verb} version {change.to_version} on {when}, by "
                     f"{change.by}: {precision} on {figures.get('labels', 0)} labelled posts")
    return "; ".join(parts) or f"Calibration {verb} version {change.to_version} on {when}, by {change.by}"


def _num(x: object) -> str:
    return f"{x:.2f}" if isinstance(x, (int, float)) else "–"

