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

from . import charts
from . import format as fmt
from .model import AUTOMATIC, AckFigures, BrandDigest, Digest, IncidentFigures, ResolveFigures
from .parts import figure, table
from .week import month_name

TOP_INCIDENTS = 5
# Stacked from the bottom, most severe first; each has a fill pattern as well as a colour.
SEVERITY_COLOURS = {"critical": "#B42318", "warning": "#B7791F", "info": "#0072B2"}
SEVERITY_PATTERNS = {"critical": "solid", "warning": "hatch", "info": "dots"}


def _ack_line(i: IncidentFigures) -> str:
    if i.acknowledged_at is None:
        return '<span class="late">not acknowledged</span>'
    verdict = ""
    if i.ack_target is not None:
        ok = i.met_target
        verdict = (f' <span class="{"ok" if ok else "late"}">({"within" if ok else "over"} the '
                   f"{escape(fmt.duration(i.ack_target))} target)</span>")
    who = escape(i.acknowledged_by or "?")
    if i.business_clock and i.time_to_ack is not None and not i.time_to_ack:
        return f"by {who} outside business hours, before the clock started{verdict}"
    clock = " business time" if i.business_clock else ""
    return f"by {who} after {escape(fmt.duration(i.time_to_ack))}{clock}{verdict}"


def _resolution(i: IncidentFigures) -> str:
    if i.closed_at is None:
        return "still open"
    state = (i.closed_state.value if i.closed_state else "closed").replace("_", " ")
    note = f": “{escape(i.resolution_note)}”" if i.resolution_note else ""
    by = "automatically" if i.closed_by == AUTOMATIC else f"by {escape(i.closed_by or '?')}"
    verdict = ""
    if i.resolve_time is not None and i.resolve_target is not None:
        ok = i.resolve_time <= i.resolve_target
        verdict = (f' <span class="{"ok" if ok else "late"}">({"within" if ok else "over"} the '
                   f"{escape(fmt.duration(i.resolve_target))} target)</span>")
    return f"{escape(state)} {by} after {escape(fmt.duration(i.time_to_resolve))}{verdict}{note}"


def incident_card(i: IncidentFigures, digest: Digest) -> str:
    zone = digest.week.zone
    sev = escape(i.severity.value)
    parts = [f'<article class="incident sev-{sev}" id="incident-{i.id}">',
             f'<h4><span class="badge sev-{sev}">{sev}</span> #{i.id} · {escape(i.rule)} · '
             f'<span class="muted">{escape(i.state.value.replace("_", " "))}</span></h4>']
    if i.first_post is not None:
        p = i.first_post
        who = (f"@{escape(p.author)} ({fmt.count(p.reach or 0)} followers)" if p.author
               else f"an author under {fmt.count(digest.reach_threshold)} followers")
        link = f' · <a class="post" href="{escape(p.url, quote=True)}">open post</a>' if p.url else ""
        lang = f' lang="{escape(p.language, quote=True)}"' if p.language else ""  # the post's, not the page's
        quote = (f"<p{lang}>“{escape(p.text)}”</p>" if p.text.strip()
                 else f'<p class="muted"><em>{escape(fmt.TEXT_REMOVED)}</em></p>')
        parts.append(f"<blockquote>{quote}<div class=\"meta\">{who} on "
                     f"{escape(fmt.source_name(p.source))}, {escape(fmt.local_time(p.created_at, zone))}{link}"
                     "</div></blockquote>")
    rows = [
        ("Why", escape(i.reason) if i.reason else "–"),
        ("Opened", escape(fmt.local_time(i.opened_at, zone)) + f" · {i.mention_count:,} post(s) · policy "
         + escape(i.policy)),
        ("Acknowledged", _ack_line(i)),
    ]
    if i.max_level >= 2:
        notes = "; ".join(i.escalation_notes)
        rows.append(("Escalated", f"to level {i.max_level}" + (f" ({escape(notes)})" if notes else "")))
    rows.append(("Resolution", _resolution(i) if i.closed_at is not None else "–"))
    parts.append("<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl></article>")
    return "".join(parts)


def _day_of(i: IncidentFigures, digest: Digest) -> date:
    return i.opened_at.astimezone(digest.week.zone).date()


def _by_severity(items: Sequence[IncidentFigures]) -> str:
    """'1 critical, 2 warning': most severe first."""
    counts = Counter(i.severity.value for i in items)
    return ", ".join(f"{counts[s]} {s}" for s in SEVERITY_COLOURS if counts[s])


def incidents_chart(b: BrandDigest, digest: Digest, chart_id: str) -> str:
    """Incidents per day, stacked by severity: patterned fills, numbers in the segments, a legend and caption."""
    per_day = [Counter(i.severity.value for i in b.incidents if _day_of(i, digest) == d) for d in digest.week.days]
    series = [{s: c[s] for s in SEVERITY_COLOURS if c[s]} for c in per_day]
    svg = charts.stacked_bars(chart_id, f"{b.brand}: incidents per day by severity",
                              [fmt.day_label(d) for d in digest.week.days], series, SEVERITY_COLOURS,
                              patterns=SEVERITY_PATTERNS, label_segments=True)
    shown = {s: c for s, c in SEVERITY_COLOURS.items() if any(s in x for x in series)}
    return figure("Incidents per day, by severity (opened that day)",
                  svg + charts.legend(shown, patterns=SEVERITY_PATTERNS))


def _reach_words(i: IncidentFigures, threshold: int) -> str:
    """The widest reach, as exact as privacy allows: a number only at or above the naming threshold."""
    if i.reach >= threshold:
        return f"widest reach {fmt.count(i.reach)} followers"
    return f"every author under {fmt.count(threshold)} followers"


def _outcome(i: IncidentFigures) -> str:
    if i.closed_at is None:
        return "still open"
    state = escape((i.closed_state.value if i.closed_state else "closed").replace("_", " "))
    if not i.resolved:
        return f"{state}, nobody acknowledged" if i.acknowledged_at is None else state
    return f"{state} after {escape(fmt.duration(i.time_to_resolve))}"


def top_incidents(b: BrandDigest, digest: Digest) -> str:
    """The few incidents to read first; each links to its card in the full list."""
    items = []
    for i in b.top_incidents(TOP_INCIDENTS):
        sev = escape(i.severity.value)
        level = f" · escalated to level {i.max_level}" if i.max_level >= 2 else ""
        items.append(
            f'<li><span class="badge sev-{sev}">{sev}</span> <a href="#incident-{i.id}">#{i.id}</a> '
            f"{escape(i.rule)} · {escape(fmt.local_time(i.opened_at, digest.week.zone))} · "
            f"{fmt.count(i.mention_count)} post(s) · {escape(_reach_words(i, digest.reach_threshold))}{level} · "
            f"{_outcome(i)}</li>")
    more = (f'<p class="note">{len(b.incidents) - len(items)} more below, per day.</p>'
            if len(b.incidents) > len(items) else "")
    return f'<h4>Top incidents</h4><ol class="top">{"".join(items)}</ol>{more}'


def folded_incidents(b: BrandDigest, digest: Digest) -> str:
    """Every incident's card, one closed ``<details>`` per day: the page stays short, nothing is left out."""
    out = []
    for d in digest.week.days:
        mine = [i for i in b.incidents if _day_of(i, digest) == d]
        if not mine:
            continue
        summary = f"{fmt.day_label(d)} {month_name(d)}: {len(mine)} incident(s) ({_by_severity(mine)})"
        out.append(f'<details class="day"><summary>{escape(summary)}</summary>'
                   + "".join(incident_card(i, digest) for i in mine) + "</details>")
    return "".join(out)


def _time_cell(value: str, late: bool | None) -> str:
    if late is None:
        return escape(value)
    return f'<span class="{"late" if late else "ok"}">{escape(value)}</span>'


def _ack_row(a: AckFigures, *, overall: bool = False) -> list[str]:
    late = None if a.worst is None or a.target is None else a.worst > a.target
    name = "All policies" if overall else escape(a.policy) + (
        ' <span class="muted">(business time)</span>' if a.business_clock else "")
    target = "each its own" if overall else escape(fmt.duration(a.target))
    return [name, target, f"{a.acknowledged} of {a.incidents}", escape(fmt.duration(a.median)),
            _time_cell(fmt.duration(a.worst), late), str(a.over_target), str(a.unacknowledged)]


def ack_table(b: BrandDigest) -> str:
    overall = b.ack_overall
    if overall is None:
        return '<p class="muted">No incidents this week.</p>'
    rows = [_ack_row(overall, overall=True)] + [_ack_row(a) for a in b.ack]
    return table(["Policy", "Target", "Acknowledged", "Median", "Worst", "Over target", "Not acknowledged"], rows,
                 row_classes=["current"] + [""] * len(b.ack))


def _resolve_row(r: ResolveFigures) -> list[str]:
    late = None if r.worst is None or r.target is None else r.worst > r.target
    target = "each its own" if r.policy is None else escape(fmt.duration(r.target))
    return [escape(r.policy) if r.policy is not None else "All policies", target, f"{r.resolved} of {r.incidents}",
            escape(fmt.duration(r.median)), _time_cell(fmt.duration(r.worst), late), str(r.over_target),
            str(r.unresolved)]


def resolve_table(b: BrandDigest) -> str:
    overall = b.resolve_overall
    if overall is None:
        return ""
    rows = [_resolve_row(overall)] + [_resolve_row(r) for r in b.resolve]
    return table(["Policy", "Target", "Resolved", "Median", "Worst", "Over target", "Not resolved"], rows,
                 row_classes=["current"] + [""] * len(b.resolve))


def escalations(b: BrandDigest) -> str:
    if not b.escalations:
        return '<p class="muted">None: every incident was acknowledged at level 1 in time.</p>'
    items = []
    for i in b.escalations:
        who = f", acknowledged by {escape(i.acknowledged_by)}" if i.acknowledged_by else ", never acknowledged"
        items.append(f'<li><a href="#incident-{i.id}">#{i.id}</a> {escape(i.rule)} ({escape(i.severity.value)}): '
                     f"reached level {i.max_level}{who}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def response(b: BrandDigest, digest: Digest, slug: str) -> str:
    """Incidents and how fast we answered them, for one brand."""
    if not b.incidents:
        return f"<h3>Incidents (0)</h3>{ack_table(b)}"
    resolve = resolve_table(b)
    return (
        f"<h3>Incidents ({len(b.incidents)}: {_by_severity(b.incidents)})</h3>"
        f'<div class="charts">{incidents_chart(b, digest, f"inc-{slug}")}'
        f"<div>{top_incidents(b, digest)}</div></div>"
        f"<h3>Time to acknowledge</h3>{ack_table(b)}"
        f"<h3>Time to resolve</h3>{resolve}"
        '<p class="note">Incidents that expired with nobody answering, or are still open, count as not resolved, '
        "never as fast.</p>"
        f"<h3>Escalations to level 2 or beyond ({len(b.escalations)})</h3>{escalations(b)}"
        f"<h3>Every incident, per day</h3>{folded_incidents(b, digest)}"
    )

