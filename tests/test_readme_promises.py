"""Every README sentence that promises behaviour in "Setting up Slack", "When Slack fails" and "Running several
workers" is held by a test, and that test's docstring names the sentence (issue 28).

``PROMISES`` is the map: (section, the sentence or its promising clause, the tests that hold it). This test fails
when a listed sentence is no longer in its README section (it was reworded or removed: update the map and the
tests' docstrings), when a listed test is gone, or when its docstring does not quote the sentence.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

SLACK = "Setting up Slack"
FAILS = "When Slack fails"
WORKERS = "Running several workers"
PROMISES: list[tuple[str, str, list[str]]] = [
    (SLACK, "It asks for `chat:write`",
     ["test_slack::test_the_manifest_grants_what_the_code_uses"]),
    (SLACK, "Without it alerts still arrive, but the buttons do nothing, and `/healthz` says so",
     ["test_delivery_checks::test_no_app_token_shows_the_buttons_offline_and_an_xoxb_app_token_is_a_config_error_not_a_503"]),
    (SLACK, "A bot token (`xoxb-…`) in `SLACK_APP_TOKEN` is named as a configuration error at start",
     ["test_delivery_checks::test_no_app_token_shows_the_buttons_offline_and_an_xoxb_app_token_is_a_config_error_not_a_503"]),
    (SLACK, "private channels must be joined this way before the app can read them",
     ["test_delivery_checks::test_every_channel_is_checked_with_or_without_hash"]),
    (SLACK, "`MONITOR_SLACK_CHANNEL` is the default for levels that name only people, and where the weekly"
            " digest is posted",
     ["test_slack::test_factory_picks_slack_only_with_a_token",
      "test_digest_post::test_digest_post_goes_to_monitor_slack_channel_with_the_report_uploaded_in_its_thread"]),
    (SLACK, "People are given by `slack:` user id or by `email:` (looked up with `users.lookupByEmail`, "
            "cached)",
     ["test_slack::test_directory_caches_lookups_and_ignores_other_buttons"]),
    (SLACK, "Each incident is **one channel message**, kept current with `chat.update`",
     ["test_slack::test_one_message_per_incident_threads_and_updates"]),
    (SLACK, "Only responders of the incident's policy may press the buttons; others get a private refusal",
     ["test_slack::test_a_click_by_someone_outside_the_policy_is_refused"]),
    (SLACK, "The card's *Snooze for…* menu offers the same lengths as the console (30 minutes, 1, 2, 4, 8 or 24 "
            "hours); the incident is snoozed for the length chosen and the audit log says which",
     ["test_slack::test_snooze_for_four_hours_from_the_cards_menu_over_socket_mode",
      "test_console_incidents::test_snooze_for_the_chosen_length"]),
    (SLACK, "A menu value naming any other length is refused and audited",
     ["test_slack::test_a_forged_snooze_value_is_refused_and_audited"]),
    (SLACK, "so an alert is posted once even if the worker died between Slack's answer and recording it",
     ["test_slack::test_a_crash_before_the_ts_is_recorded_does_not_send_twice"]),
    (SLACK, "A 429 asking for up to 2 s is waited out; a longer `Retry-After` defers the notification in "
            "the outbox rather than stalling the worker",
     ["test_slack::test_rate_limits_and_server_errors_are_survived",
      "test_delivery::test_retry_after_25_s_three_times_never_stalls_the_alerting_thread"]),
    (SLACK, "an outage of any length ends with every alert delivered once",
     ["test_slack::test_an_outage_of_any_length_ends_with_each_alert_delivered_once"]),
    (SLACK, "Without `SLACK_BOT_TOKEN`, alerts are printed to the console with the same content",
     ["test_slack::test_console_and_slack_render_the_same_parts",
      "test_slack::test_factory_picks_slack_only_with_a_token"]),
    (SLACK, "`monitor check --slack` runs the checks the worker runs at start",
     ["test_delivery_checks::test_monitor_check_slack"]),
    (SLACK, "`monitor demo` delivers to Slack too when `SLACK_BOT_TOKEN` is set",
     ["test_demo_slack::test_monitor_demo_with_a_bot_token_posts_its_alerts_to_slack"]),
    (FAILS, "Each refused alert is kept as *blocked*",
     ["test_delivery::test_a_wrong_token_blocks_every_alert_until_fixed_then_each_goes_once"]),
    (FAILS, "`monitor outbox` lists them",
     ["test_delivery::test_monitor_outbox_lists_what_is_blocked_and_what_to_do"]),
    (FAILS, "`/healthz` is not OK and says why, `monitor_delivery_ok` is 0",
     ["test_delivery_checks::test_healthz_is_not_ok_while_delivery_is_broken"]),
    (FAILS, "People called by direct message still get theirs when only the channel is the problem",
     ["test_delivery::test_a_channel_problem_blocks_the_alert_and_the_slow_retry_delivers_it_once_fixed"]),
    (FAILS, "A refused level call does not hold the incident's next level: level 2 is still called",
     ["test_delivery::test_a_wrong_level_1_channel_still_lets_level_2_be_called_and_a_reload_delivers_the_card_once"]),
    (FAILS, "correct the file and run `monitor reload` (no restart): the blocked card goes out once, to "
            "the channel the file names now",
     ["test_delivery::test_a_wrong_level_1_channel_still_lets_level_2_be_called_and_a_reload_delivers_the_card_once"]),
    (FAILS, "while Slack is down the worker backs off (5 s, doubling up to a minute)",
     ["test_delivery::test_during_an_outage_the_outbox_backs_off_and_uses_slack_within_a_minute_of_its_return"]),
    (FAILS, "is OK again as soon as Slack answers and everything waiting is delivered",
     ["test_delivery_checks::test_slack_unreachable_clears_as_soon_as_a_delivery_succeeds"]),
    (FAILS, "we wait that long (at most 15 minutes) without holding up the rest of the worker",
     ["test_delivery::test_a_long_retry_after_defers_the_outbox_instead_of_sleeping",
      "test_delivery::test_retry_after_25_s_three_times_never_stalls_the_alerting_thread"]),
    (FAILS, "send the same alert by e-mail to the level's people (their `email:`) when Slack has not "
            "delivered it for that long",
     ["test_delivery_email::test_slack_down_30_minutes_while_an_incident_escalates_then_acknowledged_in_slack"]),
    (FAILS, "If the mail server refuses the login or is down, the log says so in one line and the alert "
            "stays queued for both paths",
     ["test_delivery_email::test_an_smtp_server_refusing_login_or_down_loses_nothing"]),
    (FAILS, "the worker keeps reconnecting with growing waits",
     ["test_delivery_checks::test_socket_mode_that_cannot_connect_is_retried_and_never_fatal"]),
    (FAILS, "A message overtaken while it waited is not sent but recorded as *superseded*",
     ["test_delivery::test_catch_up_after_an_outage_does_not_replay_history"]),
    (FAILS, "If level 1's window has already passed, both levels are called together",
     ["test_delivery::test_after_an_outage_a_missed_level_1_is_called_together_with_level_2"]),
    (FAILS, "level 1 is still called first when delivery works again, and level 2 only when level 1's "
            "window ends",
     ["test_delivery::test_a_missed_level_1_within_its_window_is_called_alone"]),
    (FAILS, "A `wait` policy sends no reminder outside business hours",
     ["test_delivery::test_reminders_follow_the_policy_hours"]),
    (FAILS, "nothing is lost, nothing goes twice to Slack, and nothing overtaken meanwhile is sent",
     ["test_delivery_crash::test_kill_9_during_the_outage_and_during_the_catch_up_loses_doubles_and_replays_nothing"]),
    (WORKERS, "a second `monitor run` on the same SQLite file is refused at start with one line",
     ["test_cluster_worker::test_a_second_worker_on_one_sqlite_store_is_refused"]),
    (WORKERS, "each source is polled by one live worker at a time, and when a worker dies another takes its "
            "work over by itself",
     ["test_cluster_worker::test_a_dead_workers_source_is_polled_again_within_two_intervals_from_its_cursor"]),
    (WORKERS, "The workers split the sources evenly: with 3 workers and 6 sources, each polls 2",
     ["test_cluster_worker::test_three_workers_share_six_sources_two_each_even_when_one_started_first"]),
    (WORKERS, "the first worker to claim it runs it and marks it finished; the others skip it",
     ["test_cluster_worker::test_once_per_period_jobs_run_once_across_workers"]),
    (WORKERS, "if the claimer dies before finishing, another worker's catch-up check",
     ["test_cluster_worker::test_a_digest_whose_worker_died_mid_run_is_posted_by_another_at_the_next_catch_up"]),
    (WORKERS, "so its sources are polled again **within about one lease and a third**",
     ["test_cluster_worker::test_a_dead_workers_source_is_polled_again_within_two_intervals_from_its_cursor"]),
    (WORKERS, "a worker frozen longer than its lease (a GC or VM pause, SIGSTOP) posts nothing twice when it"
            " wakes up",
     ["test_cluster_stall::test_workers_frozen_past_their_lease_during_delivery_post_nothing_twice"]),
    (WORKERS, "A worker stopped cleanly (SIGTERM) releases its leases at once",
     ["test_cluster_worker::test_a_dead_workers_source_is_polled_again_within_two_intervals_from_its_cursor"]),
    (WORKERS, "two workers asking at the same instant never both get it",
     ["test_cluster_store::test_many_workers_racing_for_one_lease_one_wins"]),
    (WORKERS, "A button click racing an escalation tick, on one worker or two, is applied one after the "
            "other",
     ["test_shared_store::test_a_click_racing_a_tick_on_another_worker_ends_in_one_state"]),
    (WORKERS, "two workers share a backlog instead of scoring it twice",
     ["test_shared_store::test_two_pipelines_share_a_backlog_and_score_and_detect_each_mention_once"]),
    (WORKERS, "A batch claimed by a worker that died is taken again",
     ["test_shared_store::test_a_scoring_claim_of_a_dead_worker_lapses"]),
    (WORKERS, "Each one is claimed (a conditional UPDATE) before it is sent, so exactly one worker sends it",
     ["test_shared_store::test_two_delivery_loops_send_each_notification_once"]),
    (WORKERS, "kills a random worker with SIGKILL every 1.5–3 s (20 times) and starts a new one in its place",
     ["test_cluster_kill::test_three_workers_killed_at_random_store_score_and_notify_everything_once"]),
    (WORKERS, "so one worker migrates and the others wait, then find the schema current",
     ["test_cluster_migrate::test_two_processes_migrating_at_once"]),
    (WORKERS, "a worker killed during the very first start leaves an empty store or a complete revision, and"
            " the next start opens it",
     ["test_migration_kill::test_sqlite_store_killed_during_its_first_migration_always_opens",
      "test_migration_kill::test_postgres_store_killed_during_its_first_migration_always_opens"]),
    (WORKERS, "judging each by the lease length it recorded itself (not the caller's settings), names the "
            "sources nobody polls now",
     ["test_cluster_worker::test_monitor_workers_lists_live_workers_and_their_leases",
      "test_cluster_worker::test_monitor_workers_judges_liveness_by_the_lease_each_worker_recorded"]),
    (WORKERS, "each worker's `/healthz` has a `worker` object",
     ["test_cluster_worker::test_healthz_and_metrics_show_this_worker_and_its_leases"]),
    (WORKERS, "every job fails with one log line and runs again at its next interval",
     ["test_cluster_worker::test_period_jobs_and_the_reload_log_one_line_while_the_store_is_down"]),
    (WORKERS, "each worker stops acting on a lease at the expiry it last wrote",
     ["test_cluster_worker::test_healthz_and_metrics_show_this_worker_and_its_leases"]),
]

def _words(text: str) -> str:
    return " ".join(text.split())


def _section(name: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(f"\n## {name}\n")
    end = readme.find("\n## ", start + 4)
    return _words(readme[start:end if end != -1 else None])


def _docstring(module: str, name: str) -> str | None:
    tree = ast.parse((ROOT / "tests" / f"{module}.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_docstring(node) or ""
    return None


@pytest.mark.parametrize(("section", "sentence", "tests"), PROMISES, ids=[p[1][:60] for p in PROMISES])
def test_each_promise_of_the_readme_is_held_by_a_test_that_names_it(section: str, sentence: str,
                                                                   tests: list[str]) -> None:
    assert _words(sentence) in _section(section), f"no longer in README section {section!r}: {sentence!r}"
    for test in tests:
        module, name = test.split("::")
        doc = _docstring(module, name)
        assert doc is not None, f"tests/{module}.py has no test {name}"
        assert _words(f'README "{section}": "{sentence}"') in _words(doc), f"{test}'s docstring does not name it"


def test_the_sections_are_there() -> None:
    for name in (SLACK, FAILS, WORKERS):
        assert len(_section(name)) > 500
    assert Path(ROOT / "README.md").exists()
