"""Who is notified, in what order and when: one function for the engine and the CLI.

``monitor escalation test`` and the live engine both call ``step_at`` and
``first_delivery``, so a routing assertion kept in CI describes exactly what
production will do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from monitor.escalation.hours import Hours
from monitor.escalation.schema import EscalationConfig, Policy
from monitor.models import Severity


@dataclass(frozen=True, slots=True)
class Step:
    cycle: int
    level: int  # 1-based
    at: dt.datetime
    recipients: tuple[str, ...]  # responder ids
    channel: str | None
    ack_deadline: dt.datetime


def hours_of(config: EscalationConfig) -> Hours:
    return Hours(config.business_hours, config.zone)


def first_delivery(policy: Policy, hours: Hours, now: dt.datetime) -> dt.datetime:
    """Now, or the start of business hours for policies that wait."""
    if policy.after_hours == "page" or hours.is_open(now):
        return now
    return hours.next_open(now)


def deadline(policy: Policy, hours: Hours, sent: dt.datetime, level: int) -> dt.datetime:
    """When level ``level`` (1-based) times out: real time for paging policies, business time otherwise."""
    wait = policy.levels[level - 1].ack_within
    if policy.after_hours == "page":
        return sent + wait
    return hours.add(sent, wait)


def recipients(policy: Policy, hours: Hours, level: int, at: dt.datetime) -> tuple[tuple[str, ...], str | None]:
    spec = policy.levels[level - 1]
    if level == 1 and policy.on_call and not hours.is_open(at):
        return tuple(policy.on_call), spec.channel
    return tuple(spec.notify), spec.channel


def next_step(policy: Policy, cycle: int, level: int) -> tuple[int, int] | None:
    """The (cycle, level) after this one, or None when escalation is exhausted."""
    if level < len(policy.levels):
        return cycle, level + 1
    if cycle < policy.repeat:
        return cycle + 1, 1
    return None


def plan(config: EscalationConfig, severity: Severity, brand: str, rule: str, at: dt.datetime) -> tuple[
        Policy, list[Step]]:
    """The full schedule if nobody acknowledges."""
    policy = config.policy_for(severity, brand, rule)
    hours = hours_of(config)
    steps: list[Step] = []
    when = first_delivery(policy, hours, at)
    position: tuple[int, int] | None = (0, 1)
    while position is not None:
        cycle, level = position
        who, channel = recipients(policy, hours, level, when)
        due = deadline(policy, hours, when, level)
        steps.append(Step(cycle, level, when, who, channel, due))
        when = due
        position = next_step(policy, cycle, level)
    return policy, steps
