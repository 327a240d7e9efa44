"""Which incident a signal joins: the one grouping rule, for the worker and for the backtest.

``monitor backtest`` promises the alert load the worker would have produced, so
the two must group signals identically. They share this module: ``decide`` is
the order of checks, written once; each side only answers three questions about
its incidents (``OpenIncidents``). The worker answers them from the store
(``escalation.engine.StoreIncidents``), the backtest from memory (``SimulatedIncidents``).

The order of checks, first match wins:

0. **follow-up** - the rule fired again inside its ``realert`` pause
   (``Signal.follow_up``: the 9th post of a burst that fired at 8): the posts
   join the incident with the same key that a firing would join in step 3, so
   a burst keeps collecting posts while it lasts and the incident is open;
   with none, they are dropped, as realert promised: a follow-up never opens
   an incident and never calls anyone.
1. **merge** - one open incident already holds *every* post of the signal (a
   second rule on the same post, a shared URL): no second page. One incident
   must hold them all; posts spread over several incidents are news to each.
2. **inhibit** - a single-post signal (``kind == "mention"``) joins the brand's
   active volume incident (``kind == "window"``): in a storm, people want one call.
3. **group** - an incident with the same key (brand, rule, group) that is
   still *current* for the rule's ``group_by`` (below).
4. **new** - otherwise the signal opens an incident.

"Open" means not closed; "active" means open and with a post inside the
grouping window (``last_mention_at >= fired_at - window``). Merging needs only
open: the same post is the same story however long ago it first came in.

What "current" means depends on the rule's ``group_by``, i.e. on what a
responder holding the incident expects:

* ``conversation`` - **open**: a thread is one story. A reply ten hours later,
  while the first incident is still acknowledged and being handled, belongs
  in that incident, not in a second page. Once it is closed, a new post in
  the thread opens a new incident.
* ``brand`` and ``source`` - **active** (open, with a post inside the grouping
  window): the key is the whole brand (or platform), so without a window one
  long-acknowledged incident would swallow every unrelated story for days; a
  new wave after ``window`` of quiet is news and pages again.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Generic, Protocol, TypeVar

from monitor.models import Signal

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

# The worker expires an incident nobody acknowledged once every level was called and no
# post came for this long (policies without ``auto_resolve_after``); the backtest uses it
# as its estimate of when an unanswered incident closes.
EXPIRE_AFTER = timedelta(days=1)
# "Any post time at all": what ``since`` is when only being open counts (a conversation).
OPEN_AT_ALL = datetime(1970, 1, 1, tzinfo=UTC)


def incident_key(signal: Signal) -> str:
    """Brand + rule (+ the rule's group, e.g. a conversation) identify one incident."""
    return f"{signal.rule}|{signal.group_key}"


class Join(enum.StrEnum):
    """Why a signal went where it went (the backtest counts each)."""

    MERGED = "merged"
    INHIBITED = "inhibited"
    GROUPED = "grouped"
    FOLLOWED = "followed"  # a follow-up (inside realert) joined its open incident
    DROPPED = "dropped"  # a follow-up found no open incident: nothing opens, nobody is called
    NEW = "new"


class OpenIncidents(Protocol[T_co]):
    """The three questions ``decide`` asks; each answer is the newest match (highest id) or None."""

    def holding_all(self, mention_ids: Sequence[int], at: datetime) -> T_co | None:
        """An incident open at ``at`` that holds every one of these mentions."""
        ...

    def active_volume(self, brand: str, since: datetime, at: datetime) -> T_co | None:
        """An open ``window`` incident of this brand with a post at or after ``since``."""
        ...

    def active_with_key(self, key: str, since: datetime, at: datetime) -> T_co | None:
        """An open incident with this key with a post at or after ``since``."""
        ...


@dataclass(frozen=True, slots=True)
class Decision(Generic[T]):
    how: Join
    key: str
    target: T | None  # the incident to join; None exactly when ``how`` is NEW or DROPPED


def group_since(signal: Signal, window: timedelta) -> datetime:
    """The oldest last-post time an incident with the signal's key may have and still take it (step 3)."""
    if signal.group_by == "conversation":
        return OPEN_AT_ALL
    return signal.fired_at - window


def decide(signal: Signal, incidents: OpenIncidents[T], window: timedelta) -> Decision[T]:
    """Where ``signal`` goes, in the one order of checks described in the module docstring."""
    key = incident_key(signal)
    at = signal.fired_at
    if signal.follow_up:
        target = incidents.active_with_key(key, group_since(signal, window), at)
        return Decision(Join.FOLLOWED if target is not None else Join.DROPPED, key, target)
    since = at - window
    target = incidents.holding_all(signal.mention_ids, at) if signal.mention_ids else None
    if target is not None:
        return Decision(Join.MERGED, key, target)
    if signal.kind == "mention":
        target = incidents.active_volume(signal.brand, since, at)
        if target is not None:
            return Decision(Join.INHIBITED, key, target)
    target = incidents.active_with_key(key, group_since(signal, window), at)
    if target is not None:
        return Decision(Join.GROUPED, key, target)
    return Decision(Join.NEW, key, None)


@dataclass(slots=True)
class SimulatedIncident:
    """What the backtest keeps of an incident: enough to group, nothing to notify."""

    id: int
    key: str
    brand: str
    rule: str
    kind: str
    opened_at: datetime
    last_mention_at: datetime
    mention_ids: set[int] = field(default_factory=set)
    # The posts of the last signal it took, every one of them now in ``mention_ids`` (``SimulatedIncidents.apply``).
    last_ids: tuple[int, ...] = ()


class SimulatedIncidents:
    """The backtest's incidents, in memory, answering as the store would.

    What it cannot model: nobody acknowledges, resolves or marks a false positive in
    the past, and there are no ticks. It approximates closing the way the worker
    closes an incident nobody answers: expired once ``closes_after`` passed with no
    new post (``EXPIRE_AFTER`` by default). The worker expires only after every
    level was called, and people often close sooner, so this errs towards merging
    a late repeat of an old post into its old incident rather than paging twice.
    Within the grouping window the two agree exactly (the property test in
    ``tests/test_grouping.py`` holds them to it).
    """

    def __init__(self, closes_after: timedelta = EXPIRE_AFTER) -> None:
        self.closes_after = closes_after
        self.incidents: list[SimulatedIncident] = []
        # Per post, the ids of the incidents holding it (``incidents[id - 1]``): numbers in a tuple, not a list
        # of incidents. A backtest indexes every post of a storm (421,015 in the 1M-post bench), and a list per
        # post is one more object the garbage collector walks at every full collection (about 1.5 s of CPU in
        # that bench); a tuple of numbers it stops following.
        self._by_mention: dict[int, tuple[int, ...]] = {}
        self._by_key: dict[str, list[SimulatedIncident]] = {}
        self._volume_by_brand: dict[str, list[SimulatedIncident]] = {}

    def _open(self, incident: SimulatedIncident, at: datetime) -> bool:
        return at < incident.last_mention_at + self.closes_after

    def _live(self, candidates: list[SimulatedIncident], at: datetime) -> list[SimulatedIncident]:
        """``candidates`` without the closed ones, dropped for good once the list grows: a backtest
        replays in time order, so an incident closed now stays closed (and a year of data stays fast)."""
        if len(candidates) > 16:
            candidates[:] = [i for i in candidates if self._open(i, at)]
        return candidates

    def holding_all(self, mention_ids: Sequence[int], at: datetime) -> SimulatedIncident | None:
        wanted = set(mention_ids)
        if not wanted:
            return None
        first = next(iter(wanted))
        held_by = self._by_mention.get(first, ())
        holders = self._live([self.incidents[i - 1] for i in held_by], at)
        if len(holders) < len(held_by):  # closed ones dropped for good, as ``_live`` does
            self._by_mention[first] = tuple(i.id for i in holders)
        return max((i for i in holders if wanted <= i.mention_ids and self._open(i, at)),
                   key=lambda i: i.id, default=None)

    def _newest_active(self, candidates: list[SimulatedIncident], since: datetime,
                       at: datetime) -> SimulatedIncident | None:
        for incident in reversed(self._live(candidates, at)):
            if incident.last_mention_at >= since and self._open(incident, at):
                return incident
        return None

    def active_volume(self, brand: str, since: datetime, at: datetime) -> SimulatedIncident | None:
        return self._newest_active(self._volume_by_brand.get(brand, []), since, at)

    def active_with_key(self, key: str, since: datetime, at: datetime) -> SimulatedIncident | None:
        return self._newest_active(self._by_key.get(key, []), since, at)

    def apply(self, decision: Decision[SimulatedIncident], signal: Signal) -> SimulatedIncident | None:
        """Carry out ``decision`` as the escalation engine does: join (posts added, newest post
        time kept) or open a new incident; returns the incident the signal is now part of (None:
        a dropped follow-up)."""
        incident = decision.target
        if decision.how is Join.DROPPED:
            return None
        if incident is None:
            incident = SimulatedIncident(len(self.incidents) + 1, decision.key, signal.brand, signal.rule,
                                         signal.kind, signal.fired_at, signal.fired_at)
            self.incidents.append(incident)
            self._by_key.setdefault(incident.key, []).append(incident)
            if incident.kind == "window":
                self._volume_by_brand.setdefault(incident.brand, []).append(incident)
        else:
            if signal.fired_at > incident.last_mention_at:
                incident.last_mention_at = signal.fired_at
        ids = signal.mention_ids
        fresh = set(_beyond_held(ids, incident.last_ids)).difference(incident.mention_ids)
        incident.mention_ids |= fresh
        incident.last_ids = ids
        by_mention, held_by = self._by_mention, (incident.id,)
        for mention_id in fresh:
            by_mention[mention_id] = by_mention.get(mention_id, ()) + held_by
        return incident


def _beyond_held(ids: tuple[int, ...], held: tuple[int, ...]) -> tuple[int, ...]:
    """``ids`` less a first stretch known to be held: the part that continues ``held`` (all of ``ids`` when none does).

    A follow-up of a burst repeats the window's posts: the last window's, less the oldest, plus the newest
    (the 1M-post bench: 421,015 repeats of about 167 posts each). Where ``ids`` starts with the end of
    ``held`` (posts the incident already took), only what follows is looked up in the incident's set:
    two tuple comparisons in C instead of a set built from every post. Anything else (a late post in the
    middle, another rule's posts) falls back to all of ``ids``; only the time changes, never the answer.
    """
    if not ids or not held:
        return ids
    try:
        start = held.index(ids[0])
    except ValueError:
        return ids
    overlap = len(held) - start
    if overlap > len(ids) or held[start:] != ids[:overlap]:
        return ids
    return ids[overlap:]
