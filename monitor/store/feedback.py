"""Labels the team puts on posts, and the calibrations ``monitor tune`` fits on them.

A label is about a post, never about its author: one row per post and person
(``uq_labels_mention_id_by``), so a correction replaces the earlier judgement and
two people's views stay two rows. Labels go with their post (``ondelete=CASCADE``:
``monitor forget`` and retention take them along).

A "false positive" on an incident of one post says the post was not negative; it
is stored as an *implied* label, which never overwrites what the person said
explicitly and which any explicit label replaces.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from monitor.classify.calibration import LABELS, SENTIMENT_LABELS, Calibration
from monitor.models import SentimentScores
from monitor.store.tables import (
    calibration_changes,
    calibrations,
    incident_mentions,
    labels,
    mentions,
    sentiments,
)

SOURCES = ("slack", "console", "cli")


class Recorded(enum.Enum):
    NEW = "new"
    CHANGED = "changed"  # the person's earlier label was replaced
    SAME = "same"  # they said this already
    KEPT = "kept"  # an implied label did not overwrite what the person had said
    NO_POST = "no_post"  # no such mention (erased, purged, a typo)


@dataclass(frozen=True, slots=True)
class Label:
    mention_id: int
    label: str
    by: str
    at: datetime
    source: str
    implied: bool = False


def record_label(conn: Connection, mention_id: int, label: str, by: str, now: datetime, source: str, *,
                 implied: bool = False) -> Recorded:
    """Store what ``by`` says about a post; their earlier label on it, if any, is replaced (not added)."""
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}; one of {', '.join(LABELS)}")
    if source not in SOURCES:
        raise ValueError(f"unknown label source {source!r}")
    if conn.execute(select(mentions.c.id).where(mentions.c.id == mention_id)).first() is None:
        return Recorded.NO_POST
    old = conn.execute(select(labels.c.id, labels.c.label, labels.c.implied).where(
        and_(labels.c.mention_id == mention_id, labels.c.by == by))).first()
    if old is None:
        conn.execute(labels.insert().values(mention_id=mention_id, label=label, by=by, at=now, source=source,
                                            implied=implied))
        return Recorded.NEW
    if implied and not old.implied:
        return Recorded.KEPT
    if old.label == label and bool(old.implied) == implied:
        return Recorded.SAME
    conn.execute(update(labels).where(labels.c.id == old.id).values(label=label, at=now, source=source,
                                                                    implied=implied))
    return Recorded.CHANGED


def imply_from_false_positive(conn: Connection, incident_id: int, by: str, now: datetime,
                              source: str) -> int | None:
    """A false positive on a one-post incident: that post is "not negative" (by the same person).

    Returns the post's id when a label was implied; an incident of several posts says
    nothing about any one of them.
    """
    ids = [r[0] for r in conn.execute(select(incident_mentions.c.mention_id).where(
        incident_mentions.c.incident_id == incident_id))]
    if len(ids) != 1:
        return None
    result = record_label(conn, ids[0], "not_negative", by, now, source, implied=True)
    return ids[0] if result in (Recorded.NEW, Recorded.CHANGED) else None


def labels_of(conn: Connection, mention_id: int) -> list[Label]:
    rows = conn.execute(select(labels).where(labels.c.mention_id == mention_id).order_by(labels.c.at))
    return [Label(r.mention_id, r.label, r.by, r.at, r.source, bool(r.implied)) for r in rows]


@dataclass(frozen=True, slots=True)
class LabelledPost:
    """A post with its team verdict on sentiment and the model's own (uncalibrated) score."""

    mention_id: int
    language: str
    brand: str
    scores: SentimentScores
    is_negative: bool


def labelled_posts(conn: Connection) -> list[LabelledPost]:
    """Scored posts with a sentiment label; where several people judged a post, the latest judgement counts.

    Scores are given back as the model alone produced them (a stored calibration is undone).
    """
    stmt = (select(labels.c.mention_id, labels.c.label, mentions.c.language, mentions.c.brand, sentiments.c.negative,
                   sentiments.c.neutral, sentiments.c.positive, sentiments.c.calibration)
            .join(mentions, mentions.c.id == labels.c.mention_id)
            .join(sentiments, sentiments.c.mention_id == labels.c.mention_id)
            .where(labels.c.label.in_(SENTIMENT_LABELS))
            .order_by(labels.c.at, labels.c.id))
    latest: dict[int, Any] = {r.mention_id: r for r in conn.execute(stmt)}
    known = calibrations_by_version(conn, {r.calibration for r in latest.values() if r.calibration is not None})
    out = []
    for r in latest.values():
        scores = SentimentScores(r.negative, r.neutral, r.positive)
        if r.calibration is not None and r.calibration in known:
            scores = known[r.calibration].unapply(scores, r.language, r.brand)
        out.append(LabelledPost(r.mention_id, r.language or "?", r.brand, scores, r.label == "negative"))
    return sorted(out, key=lambda p: p.mention_id)


# --- calibrations ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoredCalibration:
    calibration: Calibration
    created_at: datetime
    created_by: str
    model: str
    summary: dict[str, Any]
    active: bool


def _stored(r: Any) -> StoredCalibration:
    return StoredCalibration(Calibration.from_json(r.version, r.offsets), r.created_at, r.created_by, r.model,
                             dict(r.summary), bool(r.active))


def calibrations_by_version(conn: Connection, versions: Iterable[int]) -> dict[int, Calibration]:
    wanted = sorted(set(versions))
    if not wanted:
        return {}
    rows = conn.execute(select(calibrations.c.version, calibrations.c.offsets)
                        .where(calibrations.c.version.in_(wanted)))
    return {r.version: Calibration.from_json(r.version, r.offsets) for r in rows}


def get_calibration(conn: Connection, version: int) -> StoredCalibration | None:
    row = conn.execute(select(calibrations).where(calibrations.c.version == version)).first()
    return _stored(row) if row is not None else None


def next_version(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(calibrations.c.version), 0))).scalar_one()) + 1


def save_calibration(conn: Connection, calibration: Calibration, *, at: datetime, by: str, model: str,
                     summary: dict[str, Any]) -> None:
    """A new, inactive calibration: written, never put in force by this (``activate`` does that)."""
    conn.execute(calibrations.insert().values(version=calibration.version, created_at=at, created_by=by,
                                              model=model, offsets=calibration.to_json(), summary=summary,
                                              active=False))


def active_version(conn: Connection) -> int | None:
    """The calibration in force (cheap: the live worker asks before each chunk it scores)."""
    row = conn.execute(select(calibrations.c.version).where(calibrations.c.active.is_(True))).first()
    return int(row[0]) if row is not None else None


def activate(conn: Connection, version: int | None, *, by: str, at: datetime, action: str) -> int | None:
    """Put ``version`` in force (None: the model alone); returns the version it replaces."""
    before = active_version(conn)
    conn.execute(update(calibrations).where(calibrations.c.active.is_(True)).values(active=False))
    if version is not None:
        conn.execute(update(calibrations).where(calibrations.c.version == version).values(
            active=True, activated_at=at, activated_by=by))
    conn.execute(calibration_changes.insert().values(at=at, by=by, action=action, from_version=before,
                                                     to_version=version))
    return before


def previous_version(conn: Connection) -> tuple[bool, int | None]:
    """What ``--rollback`` returns to: the version in force before the current one came in.

    (False, None) when nothing was ever applied.
    """
    current = active_version(conn)
    row = conn.execute(select(calibration_changes.c.from_version).where(
        calibration_changes.c.to_version.is_(None) if current is None
        else calibration_changes.c.to_version == current)
        .order_by(calibration_changes.c.id.desc()).limit(1)).first()
    return (False, None) if row is None else (True, row[0])


@dataclass(frozen=True, slots=True)
class Change:
    at: datetime
    by: str
    action: str
    from_version: int | None
    to_version: int | None
    summary: dict[str, Any]  # the summary of the version put in force ({} for "the model alone")


def changes_between(conn: Connection, start: datetime, end: datetime) -> list[Change]:
    rows = conn.execute(select(calibration_changes, calibrations.c.summary)
                        .outerjoin(calibrations, calibrations.c.version == calibration_changes.c.to_version)
                        .where(and_(calibration_changes.c.at >= start, calibration_changes.c.at < end))
                        .order_by(calibration_changes.c.at, calibration_changes.c.id))
    return [Change(r.at, r.by, r.action, r.from_version, r.to_version, dict(r.summary or {})) for r in rows]


def base_scores(conn: Connection, hashes: Iterable[str], model: str, version: str) -> dict[str, SentimentScores]:
    """Scores this exact model already gave these texts, as the model alone gave them (cache for scoring).

    A stored score may carry a calibration for its post's language and brand; it is
    undone here, so the caller can apply the calibration that fits the new post.
    """
    wanted = list(set(hashes))
    found: dict[str, SentimentScores] = {}
    rows: list[Any] = []
    for start in range(0, len(wanted), 500):
        rows.extend(conn.execute(
            select(mentions.c.text_hash, mentions.c.language, mentions.c.brand, sentiments.c.negative,
                   sentiments.c.neutral, sentiments.c.positive, sentiments.c.calibration)
            .join(sentiments, sentiments.c.mention_id == mentions.c.id)
            .where(and_(mentions.c.text_hash.in_(wanted[start: start + 500]), sentiments.c.model == model,
                        sentiments.c.model_version == version))))
    known = calibrations_by_version(conn, {r.calibration for r in rows if r.calibration is not None})
    for r in rows:
        scores = SentimentScores(r.negative, r.neutral, r.positive)
        if r.calibration is not None:
            if r.calibration not in known:
                continue
            scores = known[r.calibration].unapply(scores, r.language, r.brand)
        found[r.text_hash] = scores
    return found


def score_calibrations(conn: Connection, mention_ids: Sequence[int]) -> dict[int, int | None]:
    """The calibration each stored score was produced with (None: the model alone)."""
    out: dict[int, int | None] = {}
    ids = list(mention_ids)
    for start in range(0, len(ids), 500):
        for r in conn.execute(select(sentiments.c.mention_id, sentiments.c.calibration)
                              .where(sentiments.c.mention_id.in_(ids[start: start + 500]))):
            out[int(r.mention_id)] = r.calibration
    return out
