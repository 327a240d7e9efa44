"""The weekly report as ONE self-contained HTML file: inline CSS, inline SVG, no script.

One file because it travels: attached to a mail, dropped on a share, opened
on a phone, printed for a board meeting. No JavaScript and no external URL
means it renders the same offline and years later, and cannot leak who read
it. Every value is escaped; quoted posts are already made safe by
``timeline`` (handles of people below the reach threshold never get here).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from . import charts, sections
from . import format as fmt
from .model import MIN_CLASS_AUTHORS, MIN_REVIEWED, SENTIMENT_RULE, BrandDigest, Digest, ReachClass, RuleFigures
from .parts import slug, table
from .style import CSS


def _kpi(label: str, value: str, vs: str = "") -> str:
    vs_html = f'<div class="vs">{escape(vs)}</div>' if vs else ""
    return (f'<div class="kpi"><div class="label">{escape(label)}</div>'
            f'<div class="value">{escape(value)}</div>{vs_html}</div>')


def _kpis(b: BrandDigest) -> str:
    base, now = b.baseline, b.trend[-1]
    weeks = f"{base.weeks}-week"
    esc, resolve = b.escalations, b.resolve_overall
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
        _kpi("Median time to resolve", fmt.duration(resolve.median if resolve else None),
             f"{resolve.unresolved} not resolved" if resolve and resolve.unresolved else ""),
        _kpi("Escalated to level 2+", str(len(esc)), "nobody acknowledged at level 1 in time" if esc else ""),
        *([_kpi("Reviews", f"{b.reviews.count} · {b.reviews.average:.1f}★",
                f"first public reply in {fmt.duration(b.reviews.median_first_reply)} (median); "
                f"{b.reviews.unanswered} not answered")] if b.reviews else []),
    ]) + "</div>"


def _charts(b: BrandDigest, colours: dict[str, str], sid: str) -> str:
    labels = [fmt.day_label(d.day) for d in b.days]
    mine = {fmt.source_name(s): colours[s] for s in b.sources}
    volume = charts.stacked_bars(
        f"vol-{sid}", f"{b.brand}: mentions per day by source", labels,
        [{fmt.source_name(s): n for s, n in d.by_source.items()} for d in b.days], mine)
    shares = {k: [d.sentiment.share(k) for d in b.days] for k in ("negative", "neutral", "positive")}
    sentiment = charts.share_lines(f"sent-{sid}", f"{b.brand}: share of negative, neutral and positive mentions",
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
    return table(head, rows, row_classes=[""] * len(b.days) + ["current"])


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
        f"trend-{slug(b.brand)}", f"{b.brand}: mentions per week", [w.label[-3:] for w in b.trend],
        [{"mentions": w.volume} for w in b.trend], {"mentions": charts.PALETTE[0]}, highlight_last=True)
    chart_table = table(["Week", "Mentions", "Negative share", "Incidents", "Median time to ack."], rows,
                   row_classes=classes)
    return (f'<div class="charts trend"><div>{chart_table}</div><figure><figcaption>Mentions per week, this week '
            f"highlighted</figcaption>{chart}</figure></div>")


def _rules_table(rules: Sequence[RuleFigures]) -> str:
    if not rules:
        return '<p class="muted">No rule fired this week.</p>'
    rows = [[escape(r.rule), fmt.count(r.signals), fmt.count(r.incidents), escape(fmt.not_reviewed(r)),
             fmt.count(r.false_positives), escape(fmt.precision(r))] for r in rules]
    return table(["Rule", "Signals", "Incidents", "Reviewed", "False positives", "Precision"], rows)


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
        out.append(table(["Followers", "Authors", "Posts", "Negative share"], rows))
        out.append(f'<p class="note">The negative share is shown for classes of {MIN_CLASS_AUTHORS} authors or '
                   "more only: a smaller class would describe a person.</p>")
    if v.named:
        rows = [[f"@{escape(a.handle)}", fmt.count(a.reach), fmt.count(a.posts)] for a in v.named[:10]]
        out.append(f"<h4>Accounts with {fmt.count(threshold)} followers or more</h4>")
        out.append(table(["Account", "Followers", "Posts"], rows))
        if len(v.named) > 10:
            out.append(f'<p class="note">…and {len(v.named) - 10} more authors above the threshold.</p>')
    else:
        out.append(f'<p class="muted">No author with {fmt.count(threshold)} followers or more.</p>')
    out.append(f'<p class="note">{fmt.count(v.other_posts)} post(s) by {fmt.count(v.other_authors)} other '
               f"author(s) under {fmt.count(threshold)} followers are counted, not named.</p>")
    return "".join(out)


def _brand(b: BrandDigest, digest: Digest, colours: dict[str, str]) -> str:
    sid = slug(b.brand)
    return (
        f'<section class="brand" id="brand-{sid}" aria-labelledby="h-{sid}">'
        f'<h2 id="h-{sid}">{escape(b.brand)}</h2>'
        f"{_kpis(b)}"
        f"<h3>Mentions and sentiment per day</h3>{_charts(b, colours, sid)}{_day_table(b)}"
        f"<h3>This week against the previous {b.baseline.weeks}</h3>{_trend_table(b)}"
        f"{sections.response(b, digest, sid)}"
        f"<h3>Rules: signals, incidents, false positives</h3>{_rules_table(b.rules)}"
        f"<h3>Who posted</h3>{_voices(b, digest.reach_threshold)}"
        "</section>"
    )


def _overview(digest: Digest) -> str:
    rows = []
    for b in digest.brands:
        now = b.trend[-1]
        rows.append([f'<a href="#brand-{slug(b.brand)}">{escape(b.brand)}</a>', fmt.count(now.volume),
                     escape(fmt.change(now.volume, b.baseline.volume)), fmt.percent(now.negative_share, 1),
                     fmt.count(now.incidents), str(b.false_positives), escape(fmt.duration(now.median_tta)),
                     str(len(b.escalations))])
    overview = table(["Brand", "Mentions", "vs usual", "Negative", "Incidents", "False pos.", "Median ack.",
                    "Level 2+"], rows) if rows else '<p class="muted">No brand had mentions or incidents.</p>'
    noisy = [r for r in digest.rules if r.false_positives]
    noisy_html = (
        "<h3>Noisy rules to fix</h3>" + _rules_table(noisy) if noisy
        else '<p class="note">No false positives this week.</p>'
    )
    return (f'<section class="overview"><h2>Overview</h2>{overview}{noisy_html}{_silences(digest)}'
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
            + table(["Muted", "From", "To", "Set by", "Why", "Removed"], rows, text_cols=(4,)))


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
    nav = "".join(f'<a href="#brand-{slug(b.brand)}">{escape(b.brand)}</a>' for b in digest.brands)
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
