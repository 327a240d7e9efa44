"""The weekly report as ONE self-contained HTML file: inline CSS, inline SVG, no script.

One file because it travels: attached to a mail, dropped on a share, opened
on a phone, printed for a board meeting. No JavaScript and no external URL
means it renders the same offline and years later, and cannot leak who read
it. Every value is escaped; quoted posts are already made safe by
``timeline`` (handles of people below the reach threshold never get here).
Written in the digest's language (``Digest.locale``: the escalation file's
``locale``), every date and number formatted for it, every time in its zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from monitor.i18n import Translator, translator

from . import charts, sections
from . import format as fmt
from .model import MIN_CLASS_AUTHORS, MIN_REVIEWED, SENTIMENT_RULE, BrandDigest, Digest, ReachClass, RuleFigures
from .parts import slug, table
from .style import CSS


def _kpi(label: str, value: str, vs: str = "") -> str:
    vs_html = f'<div class="vs">{escape(vs)}</div>' if vs else ""
    return (f'<div class="kpi"><div class="label">{escape(label)}</div>'
            f'<div class="value">{escape(value)}</div>{vs_html}</div>')


def _kpis(b: BrandDigest, t: Translator) -> str:
    base, now = b.baseline, b.trend[-1]
    esc, resolve = b.escalations, b.resolve_overall
    return '<div class="kpis">' + "".join([
        _kpi(t._("Mentions"), fmt.count(now.volume, t), fmt.versus_usual(now.volume, base.volume, base.weeks, t)),
        _kpi(t._("Negative share"), fmt.percent(now.negative_share, t, 1),
             t.ngettext("{points} against the previous week ({usual})",
                        "{points} against the previous {n} weeks ({usual})", base.weeks,
                        points=fmt.points(now.negative_share, base.negative_share, t),
                        usual=fmt.percent(base.negative_share, t))),
        _kpi(t._("Incidents"), fmt.count(now.incidents, t),
             t.ngettext("{n} false positive", "{n} false positives", b.false_positives) + "; "
             + t._("average {value} a week", value=t.number(base.incidents, 1))),
        _kpi(t._("Median time to acknowledge"), fmt.duration(now.median_tta, t),
             t.ngettext("previous week: {value}", "previous {n} weeks: {value}", base.weeks,
                        value=fmt.duration(base.median_tta, t))),
        _kpi(t._("Median time to resolve"), fmt.duration(resolve.median if resolve else None, t),
             t.ngettext("{n} not resolved", "{n} not resolved", resolve.unresolved)
             if resolve and resolve.unresolved else ""),
        _kpi(t._("Escalated to level 2+"), t.number(len(esc)),
             t._("nobody acknowledged at level 1 in time") if esc else ""),
        *([_kpi(t._("Reviews"), f"{fmt.count(b.reviews.count, t)} · {t.number(b.reviews.average, 1)}★",
                t._("first public reply in {time} (median)", time=fmt.duration(b.reviews.median_first_reply, t))
                + "; " + t.ngettext("{n} not answered", "{n} not answered", b.reviews.unanswered))]
          if b.reviews else []),
    ]) + "</div>"


def _charts(b: BrandDigest, colours: dict[str, str], sid: str, t: Translator) -> str:
    labels = [fmt.day_label(d.day, t) for d in b.days]
    mine = {fmt.source_name(s): colours[s] for s in b.sources}
    volume = charts.stacked_bars(
        f"vol-{sid}", t._("{brand}: mentions per day by source", brand=b.brand), labels,
        [{fmt.source_name(s): n for s, n in d.by_source.items()} for d in b.days], mine)
    shares = {k: [d.sentiment.share(k) for d in b.days] for k in ("negative", "neutral", "positive")}
    names = {"negative": t._("negative"), "neutral": t._("neutral"), "positive": t._("positive")}
    sentiment = charts.share_lines(
        f"sent-{sid}", t._("{brand}: share of negative, neutral and positive mentions", brand=b.brand), labels,
        {names[k]: v for k, v in shares.items()},
        styles={names[k]: v for k, v in charts.SENTIMENT_STYLE.items()})
    sentiment_legend = charts.legend({names[k]: v[0] for k, v in charts.SENTIMENT_STYLE.items()},
                                     styles={names[k]: v for k, v in charts.SENTIMENT_STYLE.items()})
    return (
        '<div class="charts">'
        f"<figure><figcaption>{escape(t._('Mentions per day, by source'))}</figcaption>{volume}"
        f"{charts.legend(mine)}</figure>"
        f"<figure><figcaption>{escape(t._('Sentiment per day (share of scored mentions)'))}</figcaption>{sentiment}"
        f"{sentiment_legend}</figure></div>"
    )


def _day_table(b: BrandDigest, t: Translator) -> str:
    head = [t._("Day"), t._("Mentions"), *[fmt.source_name(s) for s in b.sources], t._("Negative"),
            t._("Neutral"), t._("Positive"), t._("Not scored")]
    rows = []
    for d in b.days:
        s = d.sentiment
        rows.append([escape(fmt.day_label(d.day, t)), fmt.count(d.total, t),
                     *[fmt.count(d.by_source.get(x, 0), t) for x in b.sources],
                     fmt.percent(s.share("negative"), t), fmt.percent(s.share("neutral"), t),
                     fmt.percent(s.share("positive"), t), fmt.count(s.unscored, t)])
    w = b.sentiment
    rows.append([escape(t._("Week")), fmt.count(b.volume, t), *[fmt.count(n, t) for n in b.by_source.values()],
                 fmt.percent(w.share("negative"), t), fmt.percent(w.share("neutral"), t),
                 fmt.percent(w.share("positive"), t), fmt.count(w.unscored, t)])
    return table(head, rows, row_classes=[""] * len(b.days) + ["current"])


def _trend_table(b: BrandDigest, t: Translator) -> str:
    rows, classes = [], []
    for n, w in enumerate(b.trend):
        this = n == len(b.trend) - 1
        rows.append([escape(w.label) + (escape(t._(" (this week)")) if this else ""), fmt.count(w.volume, t),
                     fmt.percent(w.negative_share, t, 1), fmt.count(w.incidents, t), fmt.duration(w.median_tta, t)])
        classes.append("current" if this else "")
    base = b.baseline
    rows.append([escape(t.ngettext("Previous week", "Previous {n} weeks", base.weeks)),
                 escape(t._("{value}/wk", value=fmt.count(base.volume, t))), fmt.percent(base.negative_share, t, 1),
                 escape(t._("{value}/wk", value=t.number(base.incidents, 1))), fmt.duration(base.median_tta, t)])
    classes.append("baseline")
    chart = charts.stacked_bars(
        f"trend-{slug(b.brand)}", t._("{brand}: mentions per week", brand=b.brand), [w.label[-3:] for w in b.trend],
        [{t._("mentions"): w.volume} for w in b.trend], {t._("mentions"): charts.PALETTE[0]}, highlight_last=True)
    chart_table = table([t._("Week"), t._("Mentions"), t._("Negative share"), t._("Incidents"),
                         t._("Median time to ack.")], rows, row_classes=classes)
    return (f'<div class="charts trend"><div>{chart_table}</div><figure><figcaption>'
            f"{escape(t._('Mentions per week, this week highlighted'))}</figcaption>{chart}</figure></div>")


def _rules_table(rules: Sequence[RuleFigures], t: Translator) -> str:
    if not rules:
        return f'<p class="muted">{escape(t._("No rule fired this week."))}</p>'
    rows = [[escape(r.rule), fmt.count(r.signals, t), fmt.count(r.incidents, t), escape(fmt.not_reviewed(r, t)),
             fmt.count(r.false_positives, t), escape(fmt.precision(r, t))] for r in rules]
    return table([t._("Rule"), t._("Signals"), t._("Incidents"), t._("Reviewed"), t._("False positives"),
                  t._("Precision")], rows)


def _reach_label(c: ReachClass, t: Translator) -> str:
    if c.high is None:
        return t._("{low} or more", low=fmt.count(c.low, t))
    if c.low == 0:
        return t._("under {high}", high=fmt.count(c.high, t))
    return f"{fmt.count(c.low, t)}–{fmt.count(c.high - 1, t)}"


def _voices(b: BrandDigest, threshold: int, t: Translator) -> str:
    """Reach classes for everyone; handles only above the threshold, and never a score per person."""
    v = b.voices
    out = []
    if v.classes:
        rows = [[escape(_reach_label(c, t)), fmt.count(c.authors, t), fmt.count(c.posts, t),
                 fmt.percent(c.negative_share, t)] for c in v.classes]
        out.append(table([t._("Followers"), t._("Authors"), t._("Posts"), t._("Negative share")], rows))
        out.append('<p class="note">' + escape(t._(
            "The negative share is shown for classes of {n} authors or more only: a smaller class would describe "
            "a person.", n=MIN_CLASS_AUTHORS)) + "</p>")
    if v.named:
        rows = [[f"@{escape(a.handle)}", fmt.count(a.reach, t), fmt.count(a.posts, t)] for a in v.named[:10]]
        out.append(f"<h4>{escape(t._('Accounts with {n} followers or more', n=fmt.count(threshold, t)))}</h4>")
        out.append(table([t._("Account"), t._("Followers"), t._("Posts")], rows))
        if len(v.named) > 10:
            out.append('<p class="note">' + escape(t._("…and {n} more authors above the threshold.",
                                                       n=len(v.named) - 10)) + "</p>")
    else:
        out.append('<p class="muted">' + escape(t._("No author with {n} followers or more.",
                                                    n=fmt.count(threshold, t))) + "</p>")
    out.append('<p class="note">' + escape(t._(
        "{posts} post(s) by {authors} other author(s) under {n} followers are counted, not named.",
        posts=fmt.count(v.other_posts, t), authors=fmt.count(v.other_authors, t), n=fmt.count(threshold, t)))
        + "</p>")
    return "".join(out)


def _brand(b: BrandDigest, digest: Digest, colours: dict[str, str], t: Translator) -> str:
    sid = slug(b.brand)
    against = t.ngettext("This week against the previous one", "This week against the previous {n}",
                         b.baseline.weeks)
    return (
        f'<section class="brand" id="brand-{sid}" aria-labelledby="h-{sid}">'
        f'<h2 id="h-{sid}">{escape(b.brand)}</h2>'
        f"{_kpis(b, t)}"
        f"<h3>{escape(t._('Mentions and sentiment per day'))}</h3>{_charts(b, colours, sid, t)}{_day_table(b, t)}"
        f"<h3>{escape(against)}</h3>{_trend_table(b, t)}"
        f"{sections.response(b, digest, sid, t)}"
        f"<h3>{escape(t._('Rules: signals, incidents, false positives'))}</h3>{_rules_table(b.rules, t)}"
        f"<h3>{escape(t._('Who posted'))}</h3>{_voices(b, digest.reach_threshold, t)}"
        "</section>"
    )


def _overview(digest: Digest, t: Translator) -> str:
    rows = []
    for b in digest.brands:
        now = b.trend[-1]
        rows.append([f'<a href="#brand-{slug(b.brand)}">{escape(b.brand)}</a>', fmt.count(now.volume, t),
                     escape(fmt.change(now.volume, b.baseline.volume, t)), fmt.percent(now.negative_share, t, 1),
                     fmt.count(now.incidents, t), t.number(b.false_positives),
                     escape(fmt.duration(now.median_tta, t)), t.number(len(b.escalations))])
    overview = table([t._("Brand"), t._("Mentions"), t._("vs usual"), t._("Negative"), t._("Incidents"),
                      t._("False pos."), t._("Median ack."), t._("Level 2+")], rows) if rows \
        else f'<p class="muted">{escape(t._("No brand had mentions or incidents."))}</p>'
    noisy = [r for r in digest.rules if r.false_positives]
    noisy_html = (
        f"<h3>{escape(t._('Noisy rules to fix'))}</h3>" + _rules_table(noisy, t) if noisy
        else f'<p class="note">{escape(t._("No false positives this week."))}</p>'
    )
    return (f'<section class="overview"><h2>{escape(t._("Overview"))}</h2>{overview}{noisy_html}'
            f"{_silences(digest, t)}{_feedback(digest, t)}</section>")


def _feedback(digest: Digest, t: Translator) -> str:
    """The team's verdicts on alerted posts per language, and calibration changes (``digest.feedback``)."""
    if digest.feedback is None or digest.feedback.empty:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in digest.feedback.lines(t))
    return f"<h3>{escape(t._('Model quality from your feedback'))}</h3><ul>{items}</ul>"


def _silences(digest: Digest, t: Translator) -> str:
    """The week's mutes, ended early ones included: alerts nobody received are part of the week's story."""
    if not digest.silences:
        return f'<p class="note">{escape(t._("No silence was in force this week."))}</p>'
    rows = []
    for s in digest.silences:
        ended = (escape(t._("ended early by {who}", who=s.removed_by or "?")) if s.removed_at is not None
                 and s.removed_at <= s.ends_at else "")
        rows.append([escape(s.what), escape(fmt.local_time(s.starts_at, t)), escape(fmt.local_time(s.ends_at, t)),
                     escape(s.created_by), escape(s.reason), ended or "–"])
    return (f"<h3>{escape(t._('Silences this week'))}</h3>"
            + table([t._("Muted"), t._("From"), t._("To"), t._("Set by"), t._("Why"), t._("Removed")], rows,
                    text_cols=(4,)))


def _footer(digest: Digest, t: Translator) -> str:
    models = ", ".join(t._("{model} {version} ({n} mentions)", model=m.model, version=m.version,
                           n=fmt.count(m.mentions, t)) for m in digest.models) or "–"
    generated = (f"<dt>{escape(t._('Generated'))}</dt><dd>{escape(fmt.local_time(digest.generated_at, t))}</dd>"
                 if digest.generated_at else "")
    items = [
        (t._("Sentiment"), escape(t._(SENTIMENT_RULE)) + " " + escape(t._("Scored by: {models}.", models=models))),
        (t._("Time to acknowledge"), escape(t._(
            "From the first notification (or the opening, if acknowledged before any notification went out) to the "
            "acknowledgement, counted like the escalation policy counts its deadline: real time for policies that "
            "page after hours, business time for policies that wait for business hours. The target is the first "
            "level's ack_within. An incident nobody acknowledged counts as over target."))),
        (t._("Time to resolve"), escape(t._(
            "From the opening to the resolution (or the false-positive verdict), in real time."))),
        (t._("Precision"), escape(t._(
            "(reviewed − false positives) ÷ reviewed, per rule, over the incidents opened this week that a person "
            "reviewed: acknowledged, resolved or marked false positive. Incidents that expired or resolved "
            "themselves with nobody looking are counted apart as not reviewed; with fewer than {n} reviewed "
            "incidents no percentage is shown.", n=MIN_REVIEWED))),
        (t._("Privacy"), escape(t._(
            "Authors are shown by handle only with {n} followers or more; everyone else is counted, not named, and "
            "@handles of people inside quoted posts are masked.", n=fmt.count(digest.reach_threshold, t)))),
        (t._("Week"), escape(t._("{label}: {span}, local time {zone}.", label=digest.week.label,
                                 span=fmt.week_span(digest.week, t), zone=digest.week.timezone))),
    ]
    return (f"<footer><h2>{escape(t._('How to read this report'))}</h2><dl>"
            + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in items) + f"{generated}</dl></footer>")


def render_html(digest: Digest, locale: str | None = None) -> str:
    """The complete report, in ``locale`` (default: the digest's): the same digest always gives the same bytes."""
    t = translator(locale or digest.locale, digest.week.timezone)
    colours = charts.source_colours([s for b in digest.brands for s in b.sources])
    title = t._("Reputation digest {week}", week=digest.week.label)
    nav = "".join(f'<a href="#brand-{slug(b.brand)}">{escape(b.brand)}</a>' for b in digest.brands)
    body = "".join(_brand(b, digest, colours, t) for b in digest.brands)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{t.language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>{escape(t._('Reputation digest · week {week}', week=digest.week.label))}</h1>"
        f'<p class="sub">{escape(fmt.week_span(digest.week, t))} · {escape(digest.week.timezone)}</p></header>'
        f'<nav aria-label="{escape(t._("Brands"), quote=True)}">{nav}</nav>'
        f"{_overview(digest, t)}{body}{_footer(digest, t)}"
        "</main></body></html>\n"
    )
