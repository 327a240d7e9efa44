"""What an alert says, independent of where it is shown.

The console notifier and (later) Slack's Block Kit both render from these
plain parts, so the two can never disagree on the content of an alert.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from typing import Any
from zoneinfo import ZoneInfo

SOURCE_NAMES = {"x": "X", "reddit": "Reddit", "news": "News", "rss": "News feed"}
TITLES = {
    "alert": "NEW INCIDENT",
    "escalation": "ESCALATED",
    "joined": "MORE POSTS",
    "acknowledged": "ACKNOWLEDGED",
    "reminder": "REMINDER",
    "resolved": "RESOLVED",
    "false_positive": "FALSE POSITIVE",
    "expired": "EXPIRED",
}


def shorten(text: str, width: int = 280) -> str:
    return textwrap.shorten(" ".join(text.split()), width=width, placeholder=" …")


def local_time(iso: str, zone: str) -> str:
    return dt.datetime.fromisoformat(iso).astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M")


def headline(kind: str, p: dict[str, Any]) -> str:
    title = TITLES.get(kind, kind.upper())
    return f"[{title}] #{p['incident_id']} {p['severity'].upper()} · {p['brand']} · rule {p['rule']}"


def post_lines(m: dict[str, Any], zone: str) -> list[str]:
    who = f"@{m['author']}" if m.get("author") else "unknown author"
    score = f"negative {m['negative']:.0%}" if m.get("negative") is not None else "not scored"
    return [
        f"“{shorten(m['text'])}”",
        f"{who} · {m['reach']:,} followers · {SOURCE_NAMES.get(m['source'], m['source'])} · "
        f"{(m.get('language') or '?')} · {score} · {local_time(m['created_at'], zone)}",
        f"{m.get('url') or '(no link)'}",
    ]


def lines(kind: str, p: dict[str, Any]) -> list[str]:
    zone = p.get("timezone", "UTC")
    out = [headline(kind, p), f"Why: {p['reason']}"]
    if kind in ("alert", "escalation", "reminder"):
        names = ", ".join(r["name"] for r in p.get("recipients", [])) or "(channel only)"
        out.append(f"Level {p.get('level', 1)} → {names}")
        if p.get("ack_deadline"):
            out.append(f"Acknowledge before {local_time(p['ack_deadline'], zone)} or the next level is called")
    if kind in ("acknowledged", "resolved", "false_positive") and p.get("actor"):
        out.append(f"By: {p['actor']}" + (f" — {p['note']}" if p.get("note") else ""))
    posts = p.get("new_mentions") or p.get("top_mentions") or []
    if posts:
        out.append(f"Posts ({p.get('mention_count', len(posts))} in this incident):")
        for m in posts[:3]:
            out.extend("  " + line for line in post_lines(m, zone))
    g = p.get("guideline")
    if g and kind in ("alert", "escalation"):
        out.append(f"Holding statement: {g['holding_statement']}")
        out.append(f"Who may answer: {g['who_may_answer']}")
        if g.get("never_say"):
            out.append("Never say: " + "; ".join(g["never_say"]))
    return out
