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
import logging
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable
from urllib.parse import quote

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from monitor.i18n import Translator, translator
from monitor.notify.base import DeliveryError
from monitor.text import shorten

from . import format as fmt
from .model import BrandDigest, Digest, IncidentFigures

MAX_BRANDS = 8  # Slack allows 50 blocks per message; beyond this the report has the rest
TOP_INCIDENTS = 5
SEVERITY_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


def mrkdwn_escape(text: str) -> str:
    """Slack's three control characters; everything else is literal in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SlackDigest:
    """A message ready for ``chat.postMessage``: fallback text plus blocks."""

    text: str
    blocks: list[dict[str, Any]]
    # With the report attached: the line that replaces the promise of a file if the upload fails, in the
    # digest's language (the poster that withdraws the promise does not know the language).
    if_not_attached: dict[str, Any] | None = None
    # The week it reports ("2026-W47"), carried as message metadata: a worker that repeats the weekly run
    # (the one before it was killed between posting and recording) finds the summary instead of posting again.
    week: str | None = None


def _section(text: str, fields: list[str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}
    if fields:
        block["fields"] = [{"type": "mrkdwn", "text": f[:2000]} for f in fields[:10]]
    return block


def _context(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def _brand_block(b: BrandDigest, t: Translator) -> dict[str, Any]:
    now, base = b.trend[-1], b.baseline
    ack_lines = []
    for a in b.ack:
        values = {"policy": mrkdwn_escape(a.policy), "median": fmt.duration(a.median, t),
                  "worst": fmt.duration(a.worst, t)}
        line = t._("{policy}: median {median}, worst {worst}", **values)
        if a.target is not None:
            line += " " + t.ngettext("(target {target}: {n} over)", "(target {target}: {n} over)", a.over_target,
                                     target=fmt.duration(a.target, t))
        if a.unacknowledged:
            line += ", " + t.ngettext("{n} never acknowledged (counted as over)",
                                      "{n} never acknowledged (counted as over)", a.unacknowledged)
        ack_lines.append(line)
    fields = [
        f"*{t._('Mentions')}*\n{fmt.count(now.volume, t)}: {fmt.versus_usual(now.volume, base.volume, base.weeks, t)}",
        f"*{t._('Negative share')}*\n{fmt.percent(now.negative_share, t, 1)} "
        f"({fmt.points(now.negative_share, base.negative_share, t)})",
        f"*{t._('Incidents')}*\n{t.number(now.incidents)} ("
        + t.ngettext("{n} false positive", "{n} false positives", b.false_positives) + ")",
        f"*{t._('Escalated to level 2+')}*\n{t.number(len(b.escalations))}",
        f"*{t._('Time to acknowledge')}*\n" + ("\n".join(ack_lines) if ack_lines else t._("no incidents")),
    ]
    return _section(f"*{mrkdwn_escape(b.brand)}*", fields)


def _incident_block(i: IncidentFigures, t: Translator) -> dict[str, Any]:
    icon = SEVERITY_ICON.get(i.severity.value, ":white_circle:")
    lines = [f"{icon} *#{i.id} {fmt.severity(i.severity.value, t)} · {mrkdwn_escape(i.rule)}* "
             f"({mrkdwn_escape(i.brand)}, {fmt.local_time(i.opened_at, t)})"]
    if i.first_post is not None:
        p = i.first_post
        who = f"@{mrkdwn_escape(p.author)}" if p.author else t._("an author below the reach threshold")
        link = (f" · <{p.url}|{t._('open post')}>" if p.url and "|" not in p.url and ">" not in p.url else "")
        quote = (f"> {mrkdwn_escape(shorten(p.text, 140))}" if p.text.strip()
                 else f"_{t._(fmt.TEXT_REMOVED)}_")
        lines.append(f"{quote}\n— " + t._("{who} on {source}", who=who, source=fmt.source_name(p.source)) + link)
    if i.acknowledged_at is not None:
        verdict = ""
        if i.met_target is not None:
            verdict = " :white_check_mark:" if i.met_target else " :warning: " + t._(
                "over {target}", target=fmt.duration(i.ack_target, t))
        lines.append(t._("Acknowledged by {who} after {time}", who=mrkdwn_escape(i.acknowledged_by or "?"),
                         time=fmt.duration(i.time_to_ack, t)) + verdict)
    else:
        lines.append(t._("Never acknowledged") + (" :warning: " + t._("over {target}", target=fmt.duration(
            i.ack_target, t)) if i.ack_target is not None else ""))
    if i.max_level >= 2:
        lines.append(t._("Escalated to level {level}", level=i.max_level))
    if i.closed_at is not None:
        state = fmt.state(i.closed_state.value if i.closed_state else "closed", t)
        words = i.resolution_words(t)
        note = f": “{mrkdwn_escape(shorten(words, 200))}”" if words else ""
        lines.append(t._("{state} after {time}", state=state[:1].upper() + state[1:],
                         time=fmt.duration(i.time_to_resolve, t)) + note)
    return _section("\n".join(lines))


def build_message(digest: Digest, report_location: str | None = None, locale: str | None = None) -> SlackDigest:
    """Block Kit for one digest; ``report_location`` is a URL, ``ATTACHED`` (uploaded in the thread) or None.

    Anything else (a local path) is not shown: nobody in Slack can open it. In ``locale`` (default: the
    digest's own).
    """
    t = translator(locale or digest.locale, digest.week.timezone)
    week = digest.week
    total = sum(b.volume for b in digest.brands)
    n_incidents = len(digest.incidents)
    text = t.ngettext("Reputation digest {week}: {mentions} mentions, {n} incident",
                      "Reputation digest {week}: {mentions} mentions, {n} incidents", n_incidents,
                      week=week.label, mentions=t.number(total))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text",
                                    "text": t._("Reputation digest · {week}", week=week.label)[:150]}},
        _context(f"{fmt.week_span(week, t)} · {week.timezone}"),
    ]
    for b in digest.brands[:MAX_BRANDS]:
        blocks.append(_brand_block(b, t))
    if len(digest.brands) > MAX_BRANDS:
        blocks.append(_context(t._("…and {n} more brands in the full report.", n=len(digest.brands) - MAX_BRANDS)))
    top = digest.top_incidents(TOP_INCIDENTS)
    if top:
        blocks.append({"type": "divider"})
        blocks.append(_section("*" + t._("Top incidents") + "* " + t._("({shown} of {total})", shown=len(top),
                                                                         total=n_incidents)))
        blocks += [_incident_block(i, t) for i in top]
    noisy = [r for r in digest.rules if r.false_positives][:5]
    if noisy:
        blocks.append({"type": "divider"})
        lines = ["• " + t._("{rule}: {fp} of {reviewed} reviewed incidents false positive, {unreviewed} (precision "
                            "{precision}, {signals} signals)", rule=f"`{mrkdwn_escape(r.rule)}`",
                            fp=r.false_positives, reviewed=r.reviewed, unreviewed=fmt.not_reviewed(r, t),
                            precision=fmt.precision(r, t), signals=r.signals)
                 for r in noisy]
        blocks.append(_section(f"*{t._('Noisy rules to fix')}*\n" + "\n".join(lines)))
    if digest.silences:
        muted = "; ".join(t._("{what} ({reason}, by {who})", what=mrkdwn_escape(s.what),
                              reason=mrkdwn_escape(shorten(s.reason, 60)), who=mrkdwn_escape(s.created_by))
                          for s in digest.silences[:5])
        more = " " + t._("and {n} more", n=len(digest.silences) - 5) if len(digest.silences) > 5 else ""
        blocks.append(_context(":mute: " + t._("Silences in force this week: {list}", list=muted) + more))
    if digest.feedback is not None and not digest.feedback.empty:
        blocks.append(_section(f"*{t._('Model quality from your feedback')}*\n"
                               + "\n".join(f"• {mrkdwn_escape(line)}" for line in digest.feedback.lines(t)[:12])))
    if report_location and report_location.startswith(("https://", "http://")) and "|" not in report_location:
        blocks.append(_context(t._("Full report (charts, every incident): {link}",
                                   link=f"<{report_location}|{t._('{week} report', week=week.label)}>")))
    elif report_location == ATTACHED:
        blocks.append(_context(t._("Full report (charts, every incident): the HTML file in this message's thread"),
                               block_id=ATTACHED_BLOCK))
        not_attached = _context(t._("The full report could not be attached to this message; whoever runs the "
                                    "monitor can post it again with {command}", command="`monitor digest --post`"))
        return SlackDigest(text=text, blocks=blocks, if_not_attached=not_attached, week=week.label)
    return SlackDigest(text=text, blocks=blocks, week=week.label)


ATTACHED = "attached"  # ``build_message``'s location when the report is uploaded next to the message
DIGEST_EVENT = "monitor_digest"  # the summary's metadata event type (its payload names the week)
ATTACHED_BLOCK = "report-attached"  # the block_id of the line promising the file (withdrawn if the upload fails)


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
    """Posts with an injected ``WebClient`` (``base_url`` points it at a local server in tests).

    ``once_per_week``: the worker's weekly run looks in the channel for the summary of the same week
    (its metadata) before posting, and reuses it: a worker killed between posting and recording the
    period makes the next one find the summary, not post it twice. ``monitor digest --post`` posts anew
    (it is how a person posts a report again).
    """

    def __init__(self, client: WebClient, channel: str, *, once_per_week: bool = False) -> None:
        self.client = client
        self.channel = channel
        self.once_per_week = once_per_week
        self.channel_id: str | None = None
        self.found_earlier = False  # the last ``post`` found the summary an earlier run had posted
        self.file_in_thread = False  # ...and its thread already holds the report
        self._posted: tuple[str, SlackDigest] | None = None  # the last summary posted (ts, message)
        self._ids: dict[str, str] = {}
        self._ids_lock = threading.Lock()

    def upload(self, report: Path, thread_ts: str | None) -> None:
        """The HTML report into the channel (in the summary's thread): ``files_upload_v2``, as Slack requires now.

        ``files_upload_v2`` needs the channel's id; ``post`` keeps the one Slack answered with. Nothing to
        do when ``post`` found this week's summary with the report already in its thread (an earlier run).
        """
        if self.found_earlier and self.file_in_thread:
            return
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
        if self.found_earlier and self._posted is not None:
            # The summary an earlier run posted may have had its promise withdrawn (its upload failed): the
            # file is there now, so the summary says so again. A failure here leaves a summary that says less.
            ts, message = self._posted
            with contextlib.suppress(SlackApiError, SlackRequestError, OSError):
                self.client.chat_update(channel=self.channel_id or self.channel, ts=ts, text=message.text,
                                        blocks=message.blocks)

    def _withdraw_promise(self) -> None:
        """After a failed upload, the posted summary must not point at a file that is not there: its
        "the HTML file in this message's thread" line becomes one saying the report could not be attached."""
        if self._posted is None:
            return
        ts, message = self._posted
        blocks = [b for b in message.blocks if b.get("block_id") != ATTACHED_BLOCK]
        if message.if_not_attached is not None:
            blocks.append(message.if_not_attached)
        # If even this fails, the error ``upload`` raises says the report is missing.
        with contextlib.suppress(SlackApiError, SlackRequestError, OSError):
            self.client.chat_update(channel=self.channel_id or self.channel, ts=ts, text=message.text,
                                    blocks=blocks)

    def _earlier(self, week: str) -> str | None:
        """The ts of this week's summary if an earlier run posted it (the newest 200 messages are enough:
        the run that posted it was at most a few minutes ago); notes whether its thread has the file."""
        from monitor.notify.slack.directory import channel_id

        try:
            self.channel_id = channel_id(self.client, self.channel, self._ids, self._ids_lock)
            page = self.client.conversations_history(channel=self.channel_id, limit=200, include_all_metadata=True)
            for found in page.get("messages") or []:
                meta = found.get("metadata") or {}
                if meta.get("event_type") == DIGEST_EVENT and (meta.get("event_payload") or {}).get("week") == week:
                    ts = str(found["ts"])
                    thread = self.client.conversations_replies(channel=self.channel_id, ts=ts, limit=200)
                    self.file_in_thread = any(m.get("files") for m in thread.get("messages") or [])
                    return ts
        except (SlackApiError, SlackRequestError, OSError, DeliveryError) as exc:
            raise SlackPostError(f"could not look for this week's digest in {self.channel} before posting: "
                                 f"{exc}") from exc
        return None

    def post(self, message: SlackDigest) -> str | None:
        self.found_earlier = self.file_in_thread = False
        if self.once_per_week and message.week:
            earlier = self._earlier(message.week)
            if earlier is not None:
                self.found_earlier = True
                self._posted = (earlier, message)
                log.info("weekly digest %s: already posted by an earlier run (ts %s); not posting again",
                         message.week, earlier)
                return earlier
        metadata = {"event_type": DIGEST_EVENT, "event_payload": {"week": message.week}} if message.week else None
        try:
            response = self.client.chat_postMessage(channel=self.channel, text=message.text, blocks=message.blocks,
                                                    metadata=metadata, unfurl_links=False, unfurl_media=False)
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


# Slack's mrkdwn as a terminal shows it: links as "label (url)", emoji as a word or nothing, no markers.
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)\|([^>]+)>")
_BARE_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)>")
_EMOJI = re.compile(r":[a-z0-9_+-]+:")
_EMOJI_WORDS = {":red_circle:": "●", ":large_orange_circle:": "●", ":large_blue_circle:": "●",
                ":white_circle:": "○", ":white_check_mark:": "✓", ":warning:": "⚠", ":mute:": ""}
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")
_CODE = re.compile(r"`([^`\n]+)`")


def plain(mrkdwn: str) -> str:
    """One mrkdwn text as plain text: what ``monitor digest`` prints in a terminal."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", mrkdwn)
    text = _BARE_LINK.sub(r"\1", text)
    text = _EMOJI.sub(lambda m: _EMOJI_WORDS.get(m.group(0), ""), text)
    text = _CODE.sub(r"\1", _ITALIC.sub(r"\1", _BOLD.sub(r"\1", text)))
    text = re.sub(r"^> ", "  “", text, flags=re.MULTILINE)
    text = "\n".join(line.rstrip() + ("”" if line.startswith("  “") else "") for line in text.split("\n"))
    return re.sub(r"  +", " ", text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def to_text(message: SlackDigest) -> str:
    """A plain-text rendering of the blocks, for the console and logs: no Slack markup left."""
    out = []
    for block in message.blocks:
        if block["type"] == "header":
            title = block["text"]["text"]
            out += [title, "=" * len(title)]
        elif block["type"] == "section":
            out.append(plain(block["text"]["text"]))
            out += ["  " + plain(f["text"]).replace("\n", ": ", 1).replace("\n", "\n    ")
                    for f in block.get("fields", [])]
        elif block["type"] == "context":
            out += [plain(e["text"]) for e in block["elements"]]
        elif block["type"] == "divider":
            out.append("—" * 40)
    return "\n".join(out)
