"""The Slack version of the digest: key figures and the top incidents in Block Kit.

Building the blocks is a pure function of the digest (tested without Slack);
posting is one small class around an injected ``WebClient``, so a test points
the client at a local HTTP server and production at slack.com. The full
report is a file readers must be able to open from Slack: a link under
``MONITOR_DIGEST_URL`` when the team serves the reports folder, otherwise the
file itself, uploaded into the message's thread. Never a path on the worker.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable
from urllib.parse import quote

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from monitor.text import shorten

from . import format as fmt
from .model import BrandDigest, Digest, IncidentFigures

MAX_BRANDS = 8  # Slack allows 50 blocks per message; beyond this the report has the rest
TOP_INCIDENTS = 5
SEVERITY_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


def mrkdwn_escape(text: str) -> str:
    """Slack's three control characters; everything else is literal in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True, slots=True)
class SlackDigest:
    """A message ready for ``chat.postMessage``: fallback text plus blocks."""

    text: str
    blocks: list[dict[str, Any]]


def _section(text: str, fields: list[str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}
    if fields:
        block["fields"] = [{"type": "mrkdwn", "text": f[:2000]} for f in fields[:10]]
    return block


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def _brand_block(b: BrandDigest) -> dict[str, Any]:
    now, base = b.trend[-1], b.baseline
    weeks = f"{base.weeks}-wk"
    ack_lines = []
    for a in b.ack:
        target = f" (target {fmt.duration(a.target)}, {a.over_target} over)" if a.target is not None else ""
        missing = f", {a.unacknowledged} not acked" if a.unacknowledged else ""
        ack_lines.append(f"{mrkdwn_escape(a.policy)}: median {fmt.duration(a.median)}, worst "
                         f"{fmt.duration(a.worst)}{target}{missing}")
    fields = [
        f"*Mentions*\n{fmt.count(now.volume)} ({fmt.change(now.volume, base.volume)} vs {weeks} avg)",
        f"*Negative share*\n{fmt.percent(now.negative_share, 1)} "
        f"({fmt.points(now.negative_share, base.negative_share)})",
        f"*Incidents*\n{now.incidents} ({b.false_positives} false positive{'s' if b.false_positives != 1 else ''})",
        f"*Escalated to level 2+*\n{len(b.escalations)}",
        "*Time to acknowledge*\n" + ("\n".join(ack_lines) if ack_lines else "no incidents"),
    ]
    return _section(f"*{mrkdwn_escape(b.brand)}*", fields)


def _incident_block(i: IncidentFigures, digest: Digest) -> dict[str, Any]:
    icon = SEVERITY_ICON.get(i.severity.value, ":white_circle:")
    lines = [f"{icon} *#{i.id} {i.severity.value} · {mrkdwn_escape(i.rule)}* ({mrkdwn_escape(i.brand)}, "
             f"{fmt.local_time(i.opened_at, digest.week.zone)})"]
    if i.first_post is not None:
        p = i.first_post
        who = f"@{mrkdwn_escape(p.author)}" if p.author else "an author below the reach threshold"
        link = f" · <{p.url}|open post>" if p.url and "|" not in p.url and ">" not in p.url else ""
        quote = f"> {mrkdwn_escape(shorten(p.text, 140))}" if p.text.strip() else f"_{fmt.TEXT_REMOVED}_"
        lines.append(f"{quote}\n— {who} on {fmt.source_name(p.source)}{link}")
    if i.acknowledged_at is not None:
        verdict = ""
        if i.met_target is not None:
            verdict = " :white_check_mark:" if i.met_target else f" :warning: over {fmt.duration(i.ack_target)}"
        lines.append(f"Acknowledged by {mrkdwn_escape(i.acknowledged_by or '?')} after "
                     f"{fmt.duration(i.time_to_ack)}{verdict}")
    else:
        lines.append("Not acknowledged")
    if i.max_level >= 2:
        lines.append(f"Escalated to level {i.max_level}")
    if i.closed_at is not None:
        state = (i.closed_state.value if i.closed_state else "closed").replace("_", " ")
        note = f": “{mrkdwn_escape(shorten(i.resolution_note, 200))}”" if i.resolution_note else ""
        lines.append(f"{state.capitalize()} after {fmt.duration(i.time_to_resolve)}{note}")
    return _section("\n".join(lines))


def build_message(digest: Digest, report_location: str | None = None) -> SlackDigest:
    """Block Kit for one digest; ``report_location`` is a URL, ``ATTACHED`` (uploaded in the thread) or None.

    Anything else (a local path) is not shown: nobody in Slack can open it.
    """
    week = digest.week
    total = sum(b.volume for b in digest.brands)
    n_incidents = len(digest.incidents)
    text = (f"Reputation digest {week.label}: {total:,} mentions, {n_incidents} incident"
            f"{'s' if n_incidents != 1 else ''}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Reputation digest · {week.label}"[:150]}},
        _context(f"{week.describe()} · {week.timezone}"),
    ]
    for b in digest.brands[:MAX_BRANDS]:
        blocks.append(_brand_block(b))
    if len(digest.brands) > MAX_BRANDS:
        blocks.append(_context(f"…and {len(digest.brands) - MAX_BRANDS} more brands in the full report."))
    top = digest.top_incidents(TOP_INCIDENTS)
    if top:
        blocks.append({"type": "divider"})
        blocks.append(_section(f"*Top incidents* ({len(top)} of {n_incidents})"))
        blocks += [_incident_block(i, digest) for i in top]
    noisy = [r for r in digest.rules if r.false_positives][:5]
    if noisy:
        blocks.append({"type": "divider"})
        lines = [f"• `{mrkdwn_escape(r.rule)}`: {r.false_positives} of {r.reviewed} reviewed incidents false "
                 f"positive, {fmt.not_reviewed(r)} (precision {fmt.precision(r)}, {r.signals} signals)"
                 for r in noisy]
        blocks.append(_section("*Noisy rules to fix*\n" + "\n".join(lines)))
    if digest.silences:
        muted = "; ".join(f"{mrkdwn_escape(s.what)} ({mrkdwn_escape(shorten(s.reason, 60))}, by "
                          f"{mrkdwn_escape(s.created_by)})" for s in digest.silences[:5])
        more = f" and {len(digest.silences) - 5} more" if len(digest.silences) > 5 else ""
        blocks.append(_context(f":mute: Silences in force this week: {muted}{more}"))
    if digest.feedback is not None and not digest.feedback.empty:
        blocks.append(_section("*Model quality from your feedback*\n"
                               + "\n".join(f"• {mrkdwn_escape(line)}" for line in digest.feedback.lines()[:12])))
    if report_location and report_location.startswith(("https://", "http://")) and "|" not in report_location:
        blocks.append(_context(f"Full report (charts, every incident): <{report_location}|{week.label} report>"))
    elif report_location == ATTACHED:
        blocks.append(_context(ATTACHED_LINE))
    return SlackDigest(text=text, blocks=blocks)


ATTACHED = "attached"  # ``build_message``'s location when the report is uploaded next to the message
ATTACHED_LINE = "Full report (charts, every incident): the HTML file in this message's thread"
NOT_ATTACHED_LINE = ("The full report could not be attached to this message; whoever runs the monitor can "
                     "post it again with `monitor digest --post`")


def report_link(base_url: str | None, name: str) -> str | None:
    """``<base_url>/<name>`` where the team serves the reports folder; None without a base URL.

    Never a local path: a path on the worker's machine opens nothing in Slack.
    """
    if not base_url:
        return None
    return f"{base_url.rstrip('/')}/{quote(name)}"


class DigestPoster(Protocol):
    """Where the weekly digest goes: Slack in production, the console without a token, a list in tests."""

    def post(self, message: SlackDigest) -> str | None:
        """Deliver; return a reference (e.g. the Slack ``ts``) or None."""
        ...


class SlackPostError(RuntimeError):
    pass


@runtime_checkable
class ReportUploader(Protocol):
    """A poster that can also put the HTML report next to the message (Slack can; the console cannot)."""

    def upload(self, report: Path, thread_ts: str | None) -> None: ...


class SlackPoster:
    """Posts with an injected ``WebClient`` (``base_url`` points it at a local server in tests)."""

    def __init__(self, client: WebClient, channel: str) -> None:
        self.client = client
        self.channel = channel
        self.channel_id: str | None = None
        self._posted: tuple[str, SlackDigest] | None = None  # the last summary posted (ts, message)

    def upload(self, report: Path, thread_ts: str | None) -> None:
        """The HTML report into the channel (in the summary's thread): ``files_upload_v2``, as Slack requires now.

        ``files_upload_v2`` needs the channel's id; ``post`` keeps the one Slack answered with.
        """
        channel = self.channel_id or self.channel
        try:
            self.client.files_upload_v2(channel=channel, file=str(report), filename=report.name,
                                        title=report.name, thread_ts=thread_ts)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            self._withdraw_promise()
            raise SlackPostError(f"Slack refused the digest report for {self.channel}: {error or exc}") from exc
        except (OSError, SlackRequestError) as exc:  # the upload URL's server failed, or Slack is unreachable
            self._withdraw_promise()
            raise SlackPostError(f"the digest report could not be uploaded to {self.channel}: {exc}") from exc

    def _withdraw_promise(self) -> None:
        """After a failed upload, the posted summary must not point at a file that is not there: its
        "the HTML file in this message's thread" line becomes one saying the report could not be attached."""
        if self._posted is None:
            return
        ts, message = self._posted
        blocks = [b for b in message.blocks if b != _context(ATTACHED_LINE)] + [_context(NOT_ATTACHED_LINE)]
        # If even this fails, the error ``upload`` raises says the report is missing.
        with contextlib.suppress(SlackApiError, SlackRequestError, OSError):
            self.client.chat_update(channel=self.channel_id or self.channel, ts=ts, text=message.text,
                                    blocks=blocks)

    def post(self, message: SlackDigest) -> str | None:
        try:
            response = self.client.chat_postMessage(channel=self.channel, text=message.text, blocks=message.blocks,
                                                    unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            raise SlackPostError(f"Slack refused the digest for {self.channel}: {error or exc}") from exc
        except OSError as exc:  # connection refused, DNS, timeout: urllib raises these
            raise SlackPostError(f"Slack could not be reached: {exc}") from exc
        ts = response.get("ts")
        found = response.get("channel")
        self.channel_id = str(found) if found else None
        self._posted = (str(ts), message) if ts is not None else None
        return str(ts) if ts is not None else None


class ConsolePoster:
    """Prints the message's text version: the digest still reaches someone when Slack is not configured."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def post(self, message: SlackDigest) -> str | None:
        print(to_text(message), file=self.stream)
        return None


def to_text(message: SlackDigest) -> str:
    """A plain-text rendering of the blocks, for the console and logs."""
    out = []
    for block in message.blocks:
        if block["type"] == "header":
            out.append(block["text"]["text"])
        elif block["type"] == "section":
            out.append(block["text"]["text"])
            out += [f["text"].replace("\n", ": ", 1) for f in block.get("fields", [])]
        elif block["type"] == "context":
            out += [e["text"] for e in block["elements"]]
        elif block["type"] == "divider":
            out.append("—" * 40)
    return "\n".join(out).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
