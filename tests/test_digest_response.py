"""The digest's response section on the week of ``test_digest``: times against targets, the chart, the order.

The week (Mon 16 – Sun 22 Nov 2026) holds five incidents with known answers:
#1 critical, resolved after 2 h; #2 critical, a false positive after 1 h; #3
warning, a false positive after 1 h; #4 warning, resolved 13 h 30 min after
it opened; #5 critical, expired with nobody answering.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from monitor.digest.html import render_html
from monitor.digest.model import ResolveFigures
from monitor.escalation import EscalationConfig
from monitor.escalation.schema import DEFAULT_RESOLVE_WITHIN
from monitor.yamlconfig import parse
from tests import test_digest as base
from tests.test_digest import CONFIG, World, digest_of

config, world = base.config, base.world  # the fixtures of the week with known answers

H = timedelta(hours=1)


def test_time_to_resolve_overall_and_per_policy_against_the_default_target(world: World) -> None:
    [lumora] = [b for b in digest_of(world).brands if b.brand == "Lumora"]
    assert lumora.resolve_overall == ResolveFigures(None, DEFAULT_RESOLVE_WITHIN, 5, 4, 1.5 * H, 13.5 * H, 0)
    critical, normal = lumora.resolve
    # Expired unanswered (#5) is not resolved, and not a fast resolution either.
    assert critical == ResolveFigures("critical", DEFAULT_RESOLVE_WITHIN, 3, 2, 1.5 * H, 2 * H, 0)
    assert critical.unresolved == 1
    assert normal == ResolveFigures("normal", DEFAULT_RESOLVE_WITHIN, 2, 2, 7.25 * H, 13.5 * H, 0)


def test_a_policy_target_from_escalation_yaml_judges_each_incident(world: World, tmp_path: Path) -> None:
    path = tmp_path / "escalation.yaml"
    path.write_text(CONFIG.replace("    after_hours: wait\n", "    after_hours: wait\n    resolve_within: 12h\n"),
                    encoding="utf-8")
    stricter = parse(EscalationConfig, path)
    digest = digest_of(World(world.engine, stricter, world.esc, world.ids, world.incidents))
    [lumora] = [b for b in digest.brands if b.brand == "Lumora"]
    critical, normal = lumora.resolve
    assert (normal.target, normal.over_target) == (12 * H, 1)  # #4 took 13 h 30 min
    assert (critical.target, critical.over_target) == (DEFAULT_RESOLVE_WITHIN, 0)
    overall = lumora.resolve_overall
    assert overall is not None and overall.target is None and overall.over_target == 1  # targets differ
    html = render_html(digest)
    assert "over the 12 h target" in html and "within the 24 h target" in html


def test_the_overall_ack_row_comes_first(world: World) -> None:
    [lumora] = [b for b in digest_of(world).brands if b.brand == "Lumora"]
    overall = lumora.ack_overall
    assert overall is not None
    # Acknowledged: #1 after 5 min, #2 after 10 min (from delivery at 14:15), #3 after 40 min, #4 after 50 min.
    assert (overall.incidents, overall.acknowledged, overall.unacknowledged) == (5, 4, 1)
    html = render_html(digest_of(world))
    ack = html[html.index("<h3>Time to acknowledge</h3>"):html.index("<h3>Time to resolve</h3>")]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", ack)
    assert rows[1].startswith('<td data-label="Policy">All policies</td>') and "4 of 5" in rows[1]


def test_incidents_per_day_chart_tells_severities_apart_without_colour(world: World) -> None:
    html = render_html(digest_of(world))
    start = html.index('<figcaption>Incidents per day, by severity')
    fig = html[start:html.index("</figure>", start)]
    assert "<pattern" in fig  # warning is hatched, critical solid: not colour alone
    assert re.search(r'fill="url\(#inc-lumora-p\d\)"', fig)
    segments = re.findall(r'<text class="seg"[^>]*>(\d+)</text>', fig)
    assert segments == ["1"] * 5  # a number inside every segment: Mon, Tue, Wed, Thu, Sat
    assert "Mon 16: 1 (critical 1)" in fig and "Thu 19: 1 (warning 1)" in fig  # the description says it too
    legend = fig[fig.index('<ul class="legend">'):]
    assert "critical" in legend and "warning" in legend and "repeating-linear-gradient" in legend
    assert "info" not in legend  # no info incident: no legend entry


def test_top_incidents_come_first_highest_severity_and_reach(world: World) -> None:
    w = world
    html = render_html(digest_of(w))
    top = html[html.index("<h4>Top incidents</h4>"):]
    top = top[:top.index("</ol>")]
    order = [int(x) for x in re.findall(r'href="#incident-(\d+)"', top)]
    i = w.incidents
    # Critical first, by reach: #1 (@bigvoice, 50,000), #5 (10,000), #2 (100); then warnings #3 (120), #4 (0).
    assert order == [i["i1"], i["i5"], i["i2"], i["i3"], i["i4"]]
    assert "widest reach 50,000 followers" in top and "every author under 10,000 followers" in top
    assert "expired, nobody acknowledged" in top
    assert html.index("<h4>Top incidents</h4>") < html.index('<article class="incident')


def test_every_incident_is_folded_per_day(world: World) -> None:
    html = render_html(digest_of(world))
    days = re.findall(r'<details class="day"><summary>(.*?)</summary>(.*?)</details>', html)
    assert [d[0] for d in days] == [
        "Mon 16 Nov: 1 incident (1 critical)", "Tue 17 Nov: 1 incident (1 critical)",
        "Wed 18 Nov: 1 incident (1 warning)", "Thu 19 Nov: 1 incident (1 warning)",
        "Sat 21 Nov: 1 incident (1 critical)"]
    assert all(body.count('<article class="incident') == 1 for _, body in days)
    assert html.count('<article class="incident') == 5  # every card is inside a day, none outside


def test_resolve_within_defaults_to_a_day_and_is_in_the_shipped_file() -> None:
    from tests.conftest import ROOT

    shipped = parse(EscalationConfig, ROOT / "escalation.yaml")
    assert {p.name: p.resolve_within for p in shipped.policies} == {"critical": 24 * H, "business-hours": 72 * H}
    assert DEFAULT_RESOLVE_WITHIN == 24 * H


def test_count_axes_have_whole_number_ticks() -> None:
    from monitor.digest.charts import count_ticks, nice_ceiling

    assert count_ticks(nice_ceiling(9)) == [0, 2, 4, 6, 8, 10]  # not 2.5 printed as "2"
    assert count_ticks(nice_ceiling(22)) == [0, 5, 10, 15, 20, 25]
    assert count_ticks(nice_ceiling(173_873)) == [0, 50_000, 100_000, 150_000, 200_000]
    assert all(float(t).is_integer() for n in range(1, 2_000) for t in count_ticks(nice_ceiling(n)))
