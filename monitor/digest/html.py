"""The weekly report as ONE self-contained HTML file: inline CSS, inline SVG, no script.

One file because it travels: attached to a mail, dropped on a share, opened
on a phone, printed for a board meeting. No JavaScript and no external URL
means it renders the same offline and years later, and cannot leak who read
it. Every value is escaped; quoted posts are already made safe by
``timeline`` (handles of people below the reach threshold never get here).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape

from . import charts
from . import format as fmt
from .model import (
    AUTOMATIC,
    MIN_CLASS_AUTHORS,
    MIN_REVIEWED,
    SENTIMENT_RULE,
    BrandDigest,
    Digest,
    IncidentFigures,
    ReachClass,
    RuleFigures,
)

CSS = """
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--card:#f6f8fa;--bad:#b42318;--warn:#9a6700;--good:#1e7b34;
--accent:#0b5cad}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;color:var(--fg);background:#fff;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
main{max-width:1080px;margin:0 auto;padding:20px 16px 40px}
header h1{margin:0 0 4px;font-size:1.6em;line-height:1.2}
.sub{color:var(--muted);margin:0}
nav{margin:14px 0;display:flex;flex-wrap:wrap;gap:6px 14px}
nav a{color:var(--accent)}
h2{font-size:1.35em;margin:32px 0 10px;padding-bottom:4px;border-bottom:2px solid var(--fg)}
h3{font-size:1.08em;margin:24px 0 8px}
h4{font-size:1em;margin:0 0 6px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin:10px 0}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.kpi .label{color:var(--muted);font-size:.85em}
.kpi .value{font-size:1.55em;font-weight:650;line-height:1.25}
.kpi .vs{font-size:.85em;color:var(--muted)}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:18px}
.charts>*{min-width:0}
.charts.trend{grid-template-columns:minmax(0,3fr) minmax(0,2fr);align-items:start}
figure{margin:0}
figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;height:auto;display:block;max-height:340px}
svg.chart .grid{stroke:#e4e7eb;stroke-width:1}
svg.chart .axis{font-size:13px;fill:#57606a}
svg.chart .value{font-size:12px;fill:#1b1f24}
svg.chart g.dim{opacity:.5}
.legend{list-style:none;padding:0;margin:6px 0 0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:.88em}
.legend li{display:flex;align-items:center;gap:6px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px}
.swatch.line{width:22px;height:0;border-radius:0}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:.92em;font-variant-numeric:tabular-nums}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:var(--card);font-weight:600}
th:first-child,td:first-child{text-align:left}
td.text,th.text{text-align:left;white-space:normal}
tr.current td{font-weight:650}
tr.baseline td{color:var(--muted);font-style:italic}
.incident{border:1px solid var(--line);border-left:5px solid var(--muted);border-radius:6px;padding:10px 12px;
margin:10px 0}
.incident.sev-critical{border-left-color:var(--bad)}
.incident.sev-warning{border-left-color:#d4a72c}
.badge{display:inline-block;font-size:.78em;font-weight:650;text-transform:uppercase;letter-spacing:.03em;
padding:1px 6px;border-radius:4px;background:var(--card);border:1px solid var(--line);vertical-align:1px}
.badge.sev-critical{background:#ffebe9;border-color:#ff8182;color:var(--bad)}
.badge.sev-warning{background:#fff8c5;border-color:#d4a72c;color:var(--warn)}
.incident blockquote{margin:6px 0 8px;padding:6px 10px;background:var(--card);border-radius:4px}
.incident blockquote p{margin:0 0 4px}
.incident .meta{color:var(--muted);font-size:.88em}
.incident dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0}
.incident dt{color:var(--muted)}
.incident dd{margin:0}
.ok{color:var(--good);font-weight:600}
.late{color:var(--bad);font-weight:600}
.muted{color:var(--muted)}
.note{font-size:.9em;color:var(--muted)}
footer{margin-top:36px;border-top:1px solid var(--line);padding-top:10px;font-size:.88em;color:var(--muted)}
footer dt{font-weight:600;color:var(--fg)}
footer dd{margin:0 0 8px}
a{color:var(--accent);overflow-wrap:anywhere}
@media (max-width:600px){
body{font-size:15px}
main{padding:12px 10px 28px}
header h1{font-size:1.3em}
.kpis{grid-template-columns:repeat(2,minmax(0,1fr))}
.kpi .value{font-size:1.3em}
.charts,.charts.trend{grid-template-columns:minmax(0,1fr)}
th,td{padding:4px 6px}
.incident dl{grid-template-columns:1fr}
.incident dt{margin-top:4px}
svg.chart .axis{font-size:15px}
svg.chart .value{font-size:14px}
}
@media print{
@page{size:A4;margin:14mm}
body{font-size:10pt;color:#000}
main{max-width:none;padding:0}
nav{display:none}
h2{break-before:page;break-after:avoid}
h3,h4{break-after:avoid}
section.overview h2,footer h2{break-before:auto}
.kpi,figure,.incident,tr{break-inside:avoid}
.kpi{background:none}
.table-wrap{overflow:visible}
.charts.trend{grid-template-columns:minmax(0,1fr)}
.charts.trend figure{max-width:65%}
th{background:none}
a{color:inherit;text-decoration:none}
a.post::after{content:" (" attr(href) ")";font-size:8pt;color:#555;overflow-wrap:anywhere}
}
""".strip()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-") or "brand"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], *, row_classes: Sequence[str] | None = None,
           text_cols: Sequence[int] = ()) -> str:
    """A scrollable table; cells are already-escaped HTML."""
    def cell(tag: str, i: int, value: str) -> str:
        cls = ' class="text"' if i in text_cols else ""
        return f"<{tag}{cls}>{value}</{tag}>"

    out = ['<div class="table-wrap"><table>', "<thead><tr>",
           "".join(cell("th", i, escape(h)) for i, h in enumerate(head)), "</tr></thead><tbody>"]
    for n, row in enumerate(rows):
        cls = f' class="{row_classes[n]}"' if row_classes and row_classes[n] else ""
        out.append(f"<tr{cls}>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _kpi(label: str, value: str, vs: str = "") -> str:
    vs_html = f'<div class="vs">{escape(vs)}</div>' if vs else ""
    return (f'<div class="kpi"><div class="label">{escape(label)}</div>'
            f'<div class="value">{escape(value)}</div>{vs_html}</div>')


def _kpis(b: BrandDigest) -> str:
    base, now = b.baseline, b.trend[-1]
    weeks = f"{base.weeks}-week"
    esc = b.escalations
    return '<div class="kpis">' + "".join([
        _kpi("Mentions", fmt.count(now.volume),
             f"{fmt.change(now.volume, base.volume)} vs {weeks} avg ({fmt.count(base.volume)})"),
        _kpi("Negative share", fmt.percent(now.negative_share, 1),
             f"{fmt.points(now.negative_share, base.negative_share)} vs {weeks} "
             f"({fmt.percent(base.negative_share)})"),
        _kpi("Incidents", fmt.count(now.incidents),
             f"{b.false_positives} false positive(s); {weeks} avg {base.incidents:.1f}"),
        _kpi("Median time to acknowledge", fmt.duration(now.median_tta),
             f"{weeks}: {fmt.duration(base.median_tta)}"),
        _kpi("Escalated to level 2+", str(len(esc)), "nobody acknowledged at level 1 in time" if esc else ""),
    ]) + "</div>"


def _charts(b: BrandDigest, colours: dict[str, str], slug: str) -> str:
    labels = [fmt.day_label(d.day) for d in b.days]
    mine = {fmt.source_name(s): colours[s] for s in b.sources}
    volume = charts.stacked_bars(
        f"vol-{slug}", f"{b.brand}: mentions per day by source", labels,
        [{fmt.source_name(s): n for s, n in d.by_source.items()} for d in b.days], mine)
    shares = {k: [d.sentiment.share(k) for d in b.days] for k in ("negative", "neutral", "positive")}
    sentiment = charts.share_lines(f"sent-{slug}", f"{b.brand}: share of negative, neutral and positive mentions",
                                   labels, shares)
    sentiment_legend = charts.legend({k: v[0] for k, v in charts.SENTIMENT_STYLE.items()},
                                     styles=charts.SENTIMENT_STYLE)
    return (
        '<div class="charts">'
        f"<figure><figcaption>Mentions per day, by source</figcaption>{volume}{charts.legend(mine)}</figure>"
        f"<figure><figcaption>Sentiment per day (share of scored mentions)</figcaption>{sentiment}"
        f"{sentiment_legend}</figure></div>"
    )


def _day_table(b: BrandDigest) -> str:
    head = ["Day", "Mentions", *[fmt.source_name(s) for s in b.sources], "Negative", "Neutral", "Positive",
            "Not scored"]
    rows = []
    for d in b.days:
        s = d.sentiment
        rows.append([escape(fmt.day_label(d.day)), fmt.count(d.total), *[fmt.count(d.by_source.get(x, 0))
                     for x in b.sources], fmt.percent(s.share("negative")), fmt.percent(s.share("neutral")),
                     fmt.percent(s.share("positive")), fmt.count(s.unscored)])
    t = b.sentiment
    rows.append(["Week", fmt.count(b.volume), *[fmt.count(n) for n in b.by_source.values()],
                 fmt.percent(t.share("negative")), fmt.percent(t.share("neutral")), fmt.percent(t.share("positive")),
                 fmt.count(t.unscored)])
    return _table(head, rows, row_classes=[""] * len(b.days) + ["current"])


def _trend_table(b: BrandDigest) -> str:
    rows, classes = [], []
    for n, w in enumerate(b.trend):
        rows.append([escape(w.label) + (" (this week)" if n == len(b.trend) - 1 else ""), fmt.count(w.volume),
                     fmt.percent(w.negative_share, 1), fmt.count(w.incidents), fmt.duration(w.median_tta)])
        classes.append("current" if n == len(b.trend) - 1 else "")
    base = b.baseline
    rows.append([f"Previous {base.weeks} weeks", f"{fmt.count(base.volume)}/wk", fmt.percent(base.negative_share, 1),
                 f"{base.incidents:.1f}/wk", fmt.duration(base.median_tta)])
    classes.append("baseline")
    chart = charts.stacked_bars(
        f"trend-{_slug(b.brand)}", f"{b.brand}: mentions per week", [w.label[-3:] for w in b.trend],
        [{"mentions": w.volume} for w in b.trend], {"mentions": charts.PALETTE[0]}, highlight_last=True)
    table = _table(["Week", "Mentions", "Negative share", "Incidents", "Median time to ack."], rows,
                   row_classes=classes)
    return (f'<div class="charts trend"><div>{table}</div><figure><figcaption>Mentions per week, this week '
            f"highlighted</figcaption>{chart}</figure></div>")


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


def _incident(i: IncidentFigures, digest: Digest) -> str:
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
    closed = "–"
    if i.closed_at is not None:
        state = (i.closed_state.value if i.closed_state else "closed").replace("_", " ")
        note = f": “{escape(i.resolution_note)}”" if i.resolution_note else ""
        by = "automatically" if i.closed_by == AUTOMATIC else f"by {escape(i.closed_by or '?')}"
        closed = f"{escape(state)} {by} after {escape(fmt.duration(i.time_to_resolve))}{note}"
    rows = [
        ("Why", escape(i.reason) if i.reason else "–"),
        ("Opened", escape(fmt.local_time(i.opened_at, zone)) + f" · {i.mention_count:,} post(s) · policy "
         + escape(i.policy)),
        ("Acknowledged", _ack_line(i)),
    ]
    if i.max_level >= 2:
        notes = "; ".join(i.escalation_notes)
        rows.append(("Escalated", f"to level {i.max_level}" + (f" ({escape(notes)})" if notes else "")))
    rows.append(("Resolution", closed))
    parts.append("<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl></article>")
    return "".join(parts)


def _ack_table(b: BrandDigest) -> str:
    if not b.ack:
        return '<p class="muted">No incidents this week.</p>'
    rows = []
    for a in b.ack:
        worst = fmt.duration(a.worst)
        if a.worst is not None and a.target is not None:
            worst = f'<span class="{"ok" if a.worst <= a.target else "late"}">{escape(worst)}</span>'
        rows.append([escape(a.policy) + (" <span class=\"muted\">(business time)</span>" if a.business_clock else ""),
                     escape(fmt.duration(a.target)), f"{a.acknowledged} of {a.incidents}",
                     escape(fmt.duration(a.median)), worst, str(a.over_target), str(a.unacknowledged)])
    return _table(["Policy", "Target", "Acknowledged", "Median", "Worst", "Over target", "Not acknowledged"], rows)


def _rules_table(rules: Sequence[RuleFigures]) -> str:
    if not rules:
        return '<p class="muted">No rule fired this week.</p>'
    rows = [[escape(r.rule), fmt.count(r.signals), fmt.count(r.incidents), escape(fmt.not_reviewed(r)),
             fmt.count(r.false_positives), escape(fmt.precision(r))] for r in rules]
    return _table(["Rule", "Signals", "Incidents", "Reviewed", "False positives", "Precision"], rows)


def _escalations(b: BrandDigest) -> str:
    if not b.escalations:
        return '<p class="muted">None: every incident was acknowledged at level 1 in time.</p>'
    items = []
    for i in b.escalations:
        who = f", acknowledged by {escape(i.acknowledged_by)}" if i.acknowledged_by else ", never acknowledged"
        items.append(f'<li><a href="#incident-{i.id}">#{i.id}</a> {escape(i.rule)} ({escape(i.severity.value)}): '
                     f"reached level {i.max_level}{who}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _reach_label(c: ReachClass) -> str:
    if c.high is None:
        return f"{fmt.count(c.low)} or more"
    if c.low == 0:
        return f"under {fmt.count(c.high)}"
    return f"{fmt.count(c.low)}–{fmt.count(c.high - 1)}"


def _voices(b: BrandDigest, threshold: int) -> str:
    """Reach classes for everyone; handles only above the threshold, and never a score per person."""
    v = b.voices
    out = []
    if v.classes:
        rows = [[escape(_reach_label(c)), fmt.count(c.authors), fmt.count(c.posts), fmt.percent(c.negative_share)]
                for c in v.classes]
        out.append(_table(["Followers", "Authors", "Posts", "Negative share"], rows))
        out.append(f'<p class="note">The negative share is shown for classes of {MIN_CLASS_AUTHORS} authors or '
                   "more only: a smaller class would describe a person.</p>")
    if v.named:
        rows = [[f"@{escape(a.handle)}", fmt.count(a.reach), fmt.count(a.posts)] for a in v.named[:10]]
        out.append(f"<h4>Accounts with {fmt.count(threshold)} followers or more</h4>")
        out.append(_table(["Account", "Followers", "Posts"], rows))
        if len(v.named) > 10:
            out.append(f'<p class="note">…and {len(v.named) - 10} more authors above the threshold.</p>')
    else:
        out.append(f'<p class="muted">No author with {fmt.count(threshold)} followers or more.</p>')
    out.append(f'<p class="note">{fmt.count(v.other_posts)} post(s) by {fmt.count(v.other_authors)} other '
               f"author(s) under {fmt.count(threshold)} followers are counted, not named.</p>")
    return "".join(out)


def _brand(b: BrandDigest, digest: Digest, colours: dict[str, str]) -> str:
    slug = _slug(b.brand)
    incidents = "".join(_incident(i, digest) for i in b.incidents) or '<p class="muted">No incidents.</p>'
    return (
        f'<section class="brand" id="brand-{slug}" aria-labelledby="h-{slug}">'
        f'<h2 id="h-{slug}">{escape(b.brand)}</h2>'
        f"{_kpis(b)}"
        f"<h3>Mentions and sentiment per day</h3>{_charts(b, colours, slug)}{_day_table(b)}"
        f"<h3>This week against the previous {b.baseline.weeks}</h3>{_trend_table(b)}"
        f"<h3>Incidents ({len(b.incidents)})</h3>{incidents}"
        f"<h3>Time to acknowledge</h3>{_ack_table(b)}"
        f"<h3>Escalations to level 2 or beyond ({len(b.escalations)})</h3>{_escalations(b)}"
        f"<h3>Rules: signals, incidents, false positives</h3>{_rules_table(b.rules)}"
        f"<h3>Who posted</h3>{_voices(b, digest.reach_threshold)}"
        "</section>"
    )


def _overview(digest: Digest) -> str:
    rows = []
    for b in digest.brands:
        now = b.trend[-1]
        rows.append([f'<a href="#brand-{_slug(b.brand)}">{escape(b.brand)}</a>', fmt.count(now.volume),
                     escape(fmt.change(now.volume, b.baseline.volume)), fmt.percent(now.negative_share, 1),
                     fmt.count(now.incidents), str(b.false_positives), escape(fmt.duration(now.median_tta)),
                     str(len(b.escalations))])
    table = _table(["Brand", "Mentions", "vs usual", "Negative", "Incidents", "False pos.", "Median ack.",
                    "Level 2+"], rows) if rows else '<p class="muted">No brand had mentions or incidents.</p>'
    noisy = [r for r in digest.rules if r.false_positives]
    noisy_html = (
        "<h3>Noisy rules to fix</h3>" + _rules_table(noisy) if noisy
        else '<p class="note">No false positives this week.</p>'
    )
    return (f'<section class="overview"><h2>Overview</h2>{table}{noisy_html}{_silences(digest)}'
            f'{_feedback(digest)}</section>')


def _feedback(digest: Digest) -> str:
    """The team's verdicts on alerted posts per language, and calibration changes (``digest.feedback``)."""
    if digest.feedback is None or digest.feedback.empty:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in digest.feedback.lines())
    return f"<h3>Model quality from your feedback</h3><ul>{items}</ul>"


def _silences(digest: Digest) -> str:
    """The week's mutes, ended early ones included: alerts nobody received are part of the week's story."""
    if not digest.silences:
        return '<p class="note">No silence was in force this week.</p>'
    zone = digest.week.zone
    rows = []
    for s in digest.silences:
        ended = (f"ended early by {escape(s.removed_by or '?')}" if s.removed_at is not None
                 and s.removed_at <= s.ends_at else "")
        rows.append([escape(s.what), escape(fmt.local_time(s.starts_at, zone)), escape(fmt.local_time(s.ends_at, zone)),
                     escape(s.created_by), escape(s.reason), ended or "–"])
    return ("<h3>Silences this week</h3>"
            + _table(["Muted", "From", "To", "Set by", "Why", "Removed"], rows, text_cols=(4,)))


def _footer(digest: Digest) -> str:
    models = ", ".join(f"{m.model} {m.version} ({fmt.count(m.mentions)} mentions)" for m in digest.models) or "–"
    generated = (f"<dt>Generated</dt><dd>{escape(fmt.local_time(digest.generated_at, digest.week.zone))}</dd>"
                 if digest.generated_at else "")
    return (
        "<footer><h2>How to read this report</h2><dl>"
        f"<dt>Sentiment</dt><dd>{escape(SENTIMENT_RULE)} Scored by: {escape(models)}.</dd>"
        "<dt>Time to acknowledge</dt><dd>From the first notification (or the opening, if acknowledged before any "
        "notification went out) to the acknowledgement, counted like the escalation policy counts its deadline: "
        "real time for policies that page after hours, business time for policies that wait for business hours. "
        "The target is the first level's <code>ack_within</code>.</dd>"
        "<dt>Time to resolve</dt><dd>From the opening to the resolution (or the false-positive verdict), in real "
        "time.</dd>"
        "<dt>Precision</dt><dd>(reviewed − false positives) ÷ reviewed, per rule, over the incidents opened this "
        "week that a person reviewed: acknowledged, resolved or marked false positive. Incidents that expired or "
        "resolved themselves with nobody looking are counted apart as not reviewed; with fewer than "
        f"{MIN_REVIEWED} reviewed incidents no percentage is shown.</dd>"
        f"<dt>Privacy</dt><dd>Authors are shown by handle only with {fmt.count(digest.reach_threshold)} followers "
        "or more; everyone else is counted, not named, and @handles of people inside quoted posts are masked.</dd>"
        f"<dt>Week</dt><dd>{escape(digest.week.label)}: {escape(digest.week.describe())}, "
        f"local time {escape(digest.week.timezone)}.</dd>{generated}</dl></footer>"
    )


def render_html(digest: Digest) -> str:
    """The complete report: the same digest always gives the same bytes."""
    colours = charts.source_colours([s for b in digest.brands for s in b.sources])
    title = f"Reputation digest {digest.week.label}"
    nav = "".join(f'<a href="#brand-{_slug(b.brand)}">{escape(b.brand)}</a>' for b in digest.brands)
    body = "".join(_brand(b, digest, colours) for b in digest.brands)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>Reputation digest · week {escape(digest.week.label)}</h1>"
        f'<p class="sub">{escape(digest.week.describe())} · {escape(digest.week.timezone)}</p></header>'
        f'<nav aria-label="Brands">{nav}</nav>'
        f"{_overview(digest)}{body}{_footer(digest)}"
        "</main></body></html>\n"
    )
