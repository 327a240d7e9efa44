"""The report's response section: incidents per day, the top incidents, how fast we answered, every incident.

Read on a Monday, the questions come in this order: how many incidents and
how bad (the chart), which ones mattered (top incidents: highest severity,
then the widest reach), did we answer in time (time to acknowledge and to
resolve, overall and per policy, against the policy's own targets), and only
then the detail of each one, folded per day (``<details>``) so a busy week
stays a short page. Definitions are in ``model``'s docstring.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from html import escape

from monitor import reasons
from monitor.i18n import Translator

from . import charts
from . import format as fmt
from .model import AUTOMATIC, AckFigures, BrandDigest, Digest, IncidentFigures, ResolveFigures
from .parts import figure, table

TOP_INCIDENTS = 5
# Stacked from the bottom, most severe first; each has a fill pattern as well as a colour.
SEVERITY_COLOURS = {"critical": "#B42318", "warning": "#B7791F", "info": "#0072B2"}
SEVERITY_PATTERNS = {"critical": "solid", "warning": "hatch", "info": "dots"}


def _verdict(ok: bool, target: str, t: Translator) -> str:
    words = t._("(within the {target} target)", target=target) if ok else t._("(over the {target} target)",
                                                                                target=target)
    return f' <span class="{"ok" if ok else "late"}">{escape(words)}</span>'


def _ack_line(i: IncidentFigures, t: Translator) -> str:
    if i.acknowledged_at is None:
        over = t._(" (over the {target} target)", target=fmt.duration(i.ack_target, t)) if i.ack_target else ""
        return f'<span class="late">{escape(t._("never acknowledged") + over)}</span>'
    verdict = ""
    if i.ack_target is not None and i.met_target is not None:
        verdict = _verdict(i.met_target, fmt.duration(i.ack_target, t), t)
    who = i.acknowledged_by or "?"
    if i.business_clock and i.time_to_ack is not None and not i.time_to_ack:
        return escape(t._("by {who} outside business hours, before the clock started", who=who)) + verdict
    if i.business_clock:
        return escape(t._("by {who} after {time} business time", who=who,
                          time=fmt.duration(i.time_to_ack, t))) + verdict
    return escape(t._("by {who} after {time}", who=who, time=fmt.duration(i.time_to_ack, t))) + verdict


def _closed_state(i: IncidentFigures, t: Translator) -> str:
    return fmt.state(i.closed_state.value if i.closed_state else "closed", t)


def _resolution(i: IncidentFigures, t: Translator) -> str:
    if i.closed_at is None:
        return escape(t._("still open"))
    words = i.resolution_words(t)
    note = f': “<span class="data">{escape(words)}</span>”' if words else ""
    by = t._("automatically") if i.closed_by == AUTOMATIC else t._("by {who}", who=i.closed_by or "?")
    verdict = ""
    if i.resolve_time is not None and i.resolve_target is not None:
        verdict = _verdict(i.resolve_time <= i.resolve_target, fmt.duration(i.resolve_target, t), t)
    words = t._("{state} {by} after {time}", state=_closed_state(i, t), by=by,
                time=fmt.duration(i.time_to_resolve, t))
    return f"{escape(words)}{verdict}{note}"


def incident_card(i: IncidentFigures, digest: Digest, t: Translator) -> str:
    sev = escape(i.severity.value)
    parts = [f'<article class="incident sev-{sev}" id="incident-{i.id}">',
             f'<h4><span class="badge sev-{sev}">{escape(fmt.severity(i.severity.value, t))}</span> #{i.id} · '
             f'{escape(i.rule)} · <span class="muted">{escape(fmt.state(i.state.value, t))}</span></h4>']
    if i.first_post is not None:
        p = i.first_post
        who = (t._("@{handle} ({n} followers)", handle=p.author, n=fmt.count(p.reach or 0, t)) if p.author
               else t._("an author under {n} followers", n=fmt.count(digest.reach_threshold, t)))
        link = (f' · <a class="post" href="{escape(p.url, quote=True)}">{escape(t._("open post"))}</a>'
                if p.url else "")
        lang = f' lang="{escape(p.language, quote=True)}"' if p.language else ""  # the post's, not the page's
        quote = (f"<p{lang}>“{escape(p.text)}”</p>" if p.text.strip()
                 else f'<p class="muted"><em>{escape(t._(fmt.TEXT_REMOVED))}</em></p>')
        meta = t._("{who} on {source}, {time}", who=who, source=fmt.source_name(p.source),
                   time=fmt.local_time(p.created_at, t))
        parts.append(f'<blockquote>{quote}<div class="meta">{escape(meta)}{link}</div></blockquote>')
    opened = t.ngettext("{time} · {n} post · policy {policy}", "{time} · {n} posts · policy {policy}",
                        i.mention_count, time=fmt.local_time(i.opened_at, t), policy=i.policy)
    rows = [
        (t._("Why"), f'<span class="data">{escape(reasons.text(i.reason_data, i.reason, t))}</span>'
         if i.reason else "–"),
        (t._("Opened"), escape(opened)),
        (t._("Acknowledged"), _ack_line(i, t)),
    ]
    if i.max_level >= 2:
        notes = "; ".join(i.escalation_words(t))
        rows.append((t._("Escalated"), escape(t._("to level {level}", level=i.max_level))
                     + (f' (<span class="data">{escape(notes)}</span>)' if notes else "")))
    rows.append((t._("Resolution"), _resolution(i, t) if i.closed_at is not None else "–"))
    parts.append("<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl></article>")
    return "".join(parts)


def _day_of(i: IncidentFigures, digest: Digest) -> date:
    return i.opened_at.astimezone(digest.week.zone).date()


def _by_severity(items: Sequence[IncidentFigures], t: Translator) -> str:
    """'1 critical, 2 warning': most severe first."""
    counts = Counter(i.severity.value for i in items)
    return ", ".join(f"{counts[s]} {fmt.severity(s, t)}" for s in SEVERITY_COLOURS if counts[s])


def incidents_chart(b: BrandDigest, digest: Digest, chart_id: str, t: Translator) -> str:
    """Incidents per day, stacked by severity: patterned fills, numbers in the segments, a legend and caption."""
    per_day = [Counter(i.severity.value for i in b.incidents if _day_of(i, digest) == d) for d in digest.week.days]
    names = {s: fmt.severity(s, t) for s in SEVERITY_COLOURS}
    colours = {names[s]: c for s, c in SEVERITY_COLOURS.items()}
    patterns = {names[s]: p for s, p in SEVERITY_PATTERNS.items()}
    series = [{names[s]: c[s] for s in SEVERITY_COLOURS if c[s]} for c in per_day]
    svg = charts.stacked_bars(chart_id, t._("{brand}: incidents per day by severity", brand=b.brand),
                              [fmt.day_label(d, t) for d in digest.week.days], series, colours,
                              patterns=patterns, label_segments=True)
    shown = {s: c for s, c in colours.items() if any(s in x for x in series)}
    return figure(t._("Incidents per day, by severity (opened that day)"),
                  svg + charts.legend(shown, patterns=patterns))


def _reach_words(i: IncidentFigures, threshold: int, t: Translator) -> str:
    """The widest reach, as exact as privacy allows: a number only at or above the naming threshold."""
    if i.reach >= threshold:
        return t._("widest reach {n} followers", n=fmt.count(i.reach, t))
    return t._("every author under {n} followers", n=fmt.count(threshold, t))


def _outcome(i: IncidentFigures, t: Translator) -> str:
    if i.closed_at is None:
        return escape(t._("still open"))
    state = _closed_state(i, t)
    if not i.resolved:
        return escape(t._("{state}, nobody acknowledged", state=state) if i.acknowledged_at is None else state)
    return escape(t._("{state} after {time}", state=state, time=fmt.duration(i.time_to_resolve, t)))


def top_incidents(b: BrandDigest, digest: Digest, t: Translator) -> str:
    """The few incidents to read first; each links to its card in the full list."""
    items = []
    for i in b.top_incidents(TOP_INCIDENTS):
        sev = escape(i.severity.value)
        level = " · " + escape(t._("escalated to level {level}", level=i.max_level)) if i.max_level >= 2 else ""
        posts = t.ngettext("{n} post", "{n} posts", i.mention_count)
        items.append(
            f'<li><span class="badge sev-{sev}">{escape(fmt.severity(i.severity.value, t))}</span> '
            f'<a href="#incident-{i.id}">#{i.id}</a> '
            f"{escape(i.rule)} · {escape(fmt.local_time(i.opened_at, t))} · "
            f"{escape(posts)} · {escape(_reach_words(i, digest.reach_threshold, t))}{level} · "
            f"{_outcome(i, t)}</li>")
    more = (f'<p class="note">{escape(t._("{n} more below, per day.", n=len(b.incidents) - len(items)))}</p>'
            if len(b.incidents) > len(items) else "")
    return f'<h4>{escape(t._("Top incidents"))}</h4><ol class="top">{"".join(items)}</ol>{more}'


def folded_incidents(b: BrandDigest, digest: Digest, t: Translator) -> str:
    """Every incident's card, one closed ``<details>`` per day: the page stays short, nothing is left out."""
    out = []
    for d in digest.week.days:
        mine = [i for i in b.incidents if _day_of(i, digest) == d]
        if not mine:
            continue
        summary = t.ngettext("{day}: {n} incident ({severities})", "{day}: {n} incidents ({severities})", len(mine),
                             day=t.day_month(d), severities=_by_severity(mine, t))
        out.append(f'<details class="day"><summary>{escape(summary)}</summary>'
                   + "".join(incident_card(i, digest, t) for i in mine) + "</details>")
    return "".join(out)


def _time_cell(value: str, late: bool | None) -> str:
    if late is None:
        return escape(value)
    return f'<span class="{"late" if late else "ok"}">{escape(value)}</span>'


def _count_cell(n: int, t: Translator) -> str:
    return f'<span class="late">{t.number(n)}</span>' if n else t.number(n)


def _ack_row(a: AckFigures, t: Translator, *, overall: bool = False) -> list[str]:
    late = None if a.worst is None or a.target is None else a.worst > a.target
    name = escape(t._("All policies")) if overall else escape(a.policy) + (
        f' <span class="muted">({escape(t._("business time"))})</span>' if a.business_clock else "")
    target = escape(t._("each its own")) if overall else escape(fmt.duration(a.target, t))
    return [name, target, escape(t._("{done} of {total}", done=a.acknowledged, total=a.incidents)),
            _count_cell(a.over_target, t), _count_cell(a.unacknowledged, t), escape(fmt.duration(a.median, t)),
            _time_cell(fmt.duration(a.worst, t), late)]


def ack_table(b: BrandDigest, t: Translator) -> str:
    """Key figures first (how many were answered, how many missed the target), then the times."""
    overall = b.ack_overall
    if overall is None:
        return f'<p class="muted">{escape(t._("No incidents this week."))}</p>'
    rows = [_ack_row(overall, t, overall=True)] + [_ack_row(a, t) for a in b.ack]
    return table([t._("Policy"), t._("Target"), t._("Acknowledged"), t._("Over target"), t._("Never acknowledged"),
                  t._("Median"), t._("Worst")], rows, row_classes=["current"] + [""] * len(b.ack), cards=True)


def _resolve_row(r: ResolveFigures, t: Translator) -> list[str]:
    late = None if r.worst is None or r.target is None else r.worst > r.target
    target = escape(t._("each its own")) if r.policy is None else escape(fmt.duration(r.target, t))
    return [escape(r.policy) if r.policy is not None else escape(t._("All policies")), target,
            escape(t._("{done} of {total}", done=r.resolved, total=r.incidents)), _count_cell(r.over_target, t),
            _count_cell(r.unresolved, t), escape(fmt.duration(r.median, t)),
            _time_cell(fmt.duration(r.worst, t), late)]


def resolve_table(b: BrandDigest, t: Translator) -> str:
    overall = b.resolve_overall
    if overall is None:
        return ""
    rows = [_resolve_row(overall, t)] + [_resolve_row(r, t) for r in b.resolve]
    return table([t._("Policy"), t._("Target"), t._("Resolved"), t._("Over target"), t._("Not resolved"),
                  t._("Median"), t._("Worst")], rows, row_classes=["current"] + [""] * len(b.resolve), cards=True)


def escalations(b: BrandDigest, t: Translator) -> str:
    if not b.escalations:
        return f'<p class="muted">{escape(t._("None: every incident was acknowledged at level 1 in time."))}</p>'
    items = []
    for i in b.escalations:
        words = (t._("{rule} ({severity}): reached level {level}, acknowledged by {who}", rule=i.rule,
                     severity=fmt.severity(i.severity.value, t), level=i.max_level, who=i.acknowledged_by)
                 if i.acknowledged_by else
                 t._("{rule} ({severity}): reached level {level}, never acknowledged", rule=i.rule,
                     severity=fmt.severity(i.severity.value, t), level=i.max_level))
        items.append(f'<li><a href="#incident-{i.id}">#{i.id}</a> {escape(words)}</li>')
    return "<ul>" + "".join(items) + "</ul>"


def response(b: BrandDigest, digest: Digest, slug: str, t: Translator) -> str:
    """Incidents and how fast we answered them, for one brand."""
    if not b.incidents:
        return f"<h3>{escape(t._('Incidents ({n})', n=0))}</h3>{ack_table(b, t)}"
    never = b.ack_overall.unacknowledged if b.ack_overall else 0
    never_note = t.ngettext("{n} incident was never acknowledged: it counts as over target.",
                            "{n} incidents were never acknowledged: they count as over target.", never)
    heading = t._("Incidents ({n}: {severities})", n=len(b.incidents), severities=_by_severity(b.incidents, t))
    not_resolved = t._("Incidents that expired with nobody answering, or are still open, count as not resolved, "
                       "never as fast.")
    escalated = t._("Escalations to level 2 or beyond ({n})", n=len(b.escalations))
    return (
        f"<h3>{escape(heading)}</h3>"
        f'<div class="charts">{incidents_chart(b, digest, f"inc-{slug}", t)}'
        f"<div>{top_incidents(b, digest, t)}</div></div>"
        f"<h3>{escape(t._('Time to acknowledge'))}</h3>{ack_table(b, t)}"
        + (f'<p class="note">{escape(never_note)}</p>' if never else "")
        + f"<h3>{escape(t._('Time to resolve'))}</h3>{resolve_table(b, t)}"
        f'<p class="note">{escape(not_resolved)}</p>'
        f"<h3>{escape(escalated)}</h3>{escalations(b, t)}"
        f"<h3>{escape(t._('Every incident, per day'))}</h3>{folded_incidents(b, digest, t)}"
    )
