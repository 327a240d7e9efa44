"""Backtests: the same rules and grouping as live, counted as a responder would feel them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.detect.backtest import backtest, busiest_day
from monitor.detect.schema import Rule
from tests.conftest import make_mention, scored

T0 = datetime(2026, 11, 19, 17, 0, tzinfo=UTC)


def rules() -> list[Rule]:
    return [
        Rule.model_validate({"name": "burst", "severity": "critical", "when": {"negative_above": 0.5},
                             "frequency": {"count": 3, "within": "1h"}, "realert": "3h"}),
        Rule.model_validate({"name": "reach", "severity": "critical",
                             "when": {"negative_above": 0.5, "reach_at_least": 10000}}),
    ]


def test_a_storm_is_one_alert_and_single_posts_inside_it_are_inhibited() -> None:
    storm = [scored(make_mention(i, at=T0 + timedelta(minutes=5 * i)), 0.9) for i in range(1, 11)]
    storm.append(scored(make_mention(50, at=T0 + timedelta(minutes=52), reach=20000), 0.9))
    result = backtest(rules(), sorted(storm, key=lambda s: s.mention.created_at), grouping_window=timedelta(hours=6))
    burst, reach = result.rules["burst"], result.rules["reach"]
    assert burst.incidents == 1 and burst.signals == 1 and burst.suppressed == 8
    # The storm's incident collected post 50 as it arrived (it matched the burst rule inside realert), so
    # the reach rule's signal on it finds it there already: merged into the storm, no second page.
    assert reach.signals == 1 and reach.incidents == 0 and reach.merged == 1
    assert result.total_incidents == 1


def test_alerts_per_day_and_grouping_window() -> None:
    posts = []
    for day in range(3):
        at = T0 + timedelta(days=day)
        posts.append(scored(make_mention(100 + day, at=at, reach=50000, conversation=str(day)), 0.8))
        # A second post from a high-reach author 7 h later is past the 6 h window: a new alert.
        posts.append(scored(make_mention(200 + day, at=at + timedelta(hours=7), reach=50000), 0.8))
    result = backtest(rules(), sorted(posts, key=lambda s: s.mention.created_at), grouping_window=timedelta(hours=6))
    assert result.rules["reach"].incidents == 6
    assert result.days == 4  # 17:00 + 7 h crosses midnight on the last day
    day, n = busiest_day(result)
    assert n == 2 and day is not None


def test_nothing_fires_on_calm_data() -> None:
    calm = [scored(make_mention(i, at=T0 + timedelta(hours=i)), 0.1) for i in range(50)]
    result = backtest(rules(), calm, grouping_window=timedelta(hours=6))
    assert result.total_incidents == 0 and result.mentions == 50


def test_a_second_rule_on_the_same_post_is_merged_like_live() -> None:
    engagement = Rule.model_validate({"name": "engagement", "severity": "warning",
                                      "when": {"negative_above": 0.5, "engagement_at_least": 500}})
    post = scored(make_mention(1, at=T0, reach=50000, engagement=900), 0.9)
    result = backtest([*rules(), engagement], [post], grouping_window=timedelta(hours=6))
    assert result.rules["reach"].incidents == 1
    assert result.rules["engagement"].signals == 1 and result.rules["engagement"].merged == 1
    assert result.total_incidents == 1
