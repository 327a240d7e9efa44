"""A local Slack for tests: the Web API methods the monitor uses, and Socket Mode.

The real ``slack_sdk`` clients talk to it over HTTP and WebSocket exactly as they
talk to slack.com (``WebClient(base_url=emulator.base_url)``), so the tests cover
the SDK's request encoding, its retry handlers and its Socket Mode client, not a
mock of them. Where Slack is strict, the emulator is strict too, because those are
the mistakes that only show in production: tokens and scopes are checked
(``missing_scope``), ``chat.update`` and ``conversations.history`` take channel ids
only, Block Kit limits are enforced (``invalid_blocks``), message metadata is
returned only with ``include_all_metadata``.

Every call is recorded (method, params, headers, status) for tests to assert on.
Faults on demand: ``fail(method, status=429, retry_after=2)``, ``fail(method,
status=500, times=3)``, ``drop(method)`` (connection closed without an answer),
``refuse(method, "channel_not_found")``; ``after_effect=True`` carries the call out
before failing, like a Slack that posted and then lost its answer. ``garble(method)``
answers 200 with a body that is not JSON (a proxy's page), ``reset(method)`` resets
the connection mid-request, and ``outage()`` / ``restore()`` make every Web API
call answer 503 (and Socket Mode refuse) until Slack is back. Channels know whether
the app is a member and whether they are archived (``add_channel(member=False)``,
``archive``), and refuse posts as Slack does (``not_in_channel``, ``is_archived``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

BOT_TOKEN = "xoxb-0000-emulator-bot-token"
APP_TOKEN = "xapp-1-A0MONITOR1-emulator-app-token"
TEAM_ID = "T0LUMORA01"
APP_ID = "A0MONITOR1"
BOT_USER = "U0MONITOR1"
BOT_ID = "B0MONITOR1"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Bot scopes each method needs ("history" depends on the kind of conversation).
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "conversations.open": ("im:write",),
    "conversations.list": ("channels:read",),
    "users.lookupByEmail": ("users:read.email",),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "auth.test": (),
}
HISTORY_SCOPES = {"public": "channels:history", "private": "groups:history", "im": "im:history"}
DEFAULT_SCOPES = ("chat:write", "im:write", "im:history", "users:read", "users:read.email", "channels:read",
                  "channels:history", "groups:read", "groups:history")


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    status: int = 200
    response: dict[str, Any] | None = None


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any] | None
    thread_ts: str | None = None
    updates: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)  # files shared with it (files.completeUploadExternal)

    def as_api(self, with_metadata: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "subtype": "bot_message", "bot_id": BOT_ID, "user": BOT_USER,
                               "text": self.text, "blocks": self.blocks, "ts": self.ts, "app_id": APP_ID}
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if with_metadata and self.metadata:
            out["metadata"] = self.metadata
        if self.files:  # as Slack lists a message's shared files
            out["files"] = self.files
        return out

    def block_text(self) -> str:
        """Everything a reader sees, flattened: handy for ``in`` assertions."""
        parts: list[str] = [self.text]

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if isinstance(node.get("text"), str):
                    parts.append(node["text"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.blocks)
        return "\n".join(parts)


@dataclass
class Channel:
    id: str
    name: str
    kind: str = "public"  # public | private | im
    user: str | None = None  # the other person of an IM
    messages: list[Message] = field(default_factory=list)
    member: bool = True  # the app has been invited
    archived: bool = False


@dataclass
class Fault:
    status: int = 500
    retry_after: int | None = None
    error: str | None = None  # an ok:false answer with HTTP 200
    drop: bool = False  # close the connection without answering
    reset: bool = False  # reset the connection (RST) without answering
    garbled: bool = False  # HTTP 200 with a body that is not JSON
    after_effect: bool = False  # do the work first, then fail


class SlackEmulator:
    def __init__(self, *, clock: Callable[[], datetime] | None = None, scopes: Iterable[str] = DEFAULT_SCOPES,
                 bot_token: str = BOT_TOKEN, app_token: str = APP_TOKEN) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.scopes = set(scopes)
        self.bot_token = bot_token
        self.app_token = app_token
        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self._calls: list[Call] = []
        self._faults: dict[str, list[Fault]] = {}
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.down = False  # outage(): every call answers 503
        self.uploads: dict[str, dict[str, Any]] = {}  # file id -> name, length, content (None until sent)
        self.latency = 0.0  # seconds before each answer (set it to make sends take as long as real ones)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._http.daemon_threads = True
        self._http_thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                                             name="slack-emulator", daemon=True)
        self.socket_mode = _SocketModeServer(self)

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> SlackEmulator:
        self._http_thread.start()
        self.socket_mode.start()
        return self

    def stop(self) -> None:
        self.socket_mode.stop()
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    # --- setup ------------------------------------------------------------------------------------
    def add_channel(self, name: str, channel_id: str | None = None, *, private: bool = False,
                    member: bool = True) -> str:
        cid = channel_id or f"C{len(self.channels) + 1:08d}"
        self.channels[cid] = Channel(cid, name.lstrip("#"), "private" if private else "public", member=member)
        return cid

    def archive(self, channel: str) -> None:
        self._channel(channel).archived = True

    def outage(self) -> None:
        """Slack is down: every Web API call answers 503 until ``restore()``."""
        self.down = True

    def restore(self) -> None:
        self.down = False

    def garble(self, method: str, *, times: int = 1) -> None:
        self._faults.setdefault(method, []).extend(Fault(status=200, garbled=True) for _ in range(times))

    def reset(self, method: str, *, times: int = 1) -> None:
        self._faults.setdefault(method, []).extend(Fault(reset=True) for _ in range(times))

    def add_user(self, user_id: str, *, email: str | None = None, name: str | None = None) -> None:
        self.users[user_id] = {"id": user_id, "team_id": TEAM_ID, "name": name or user_id.lower(),
                               "profile": {"email": email, "real_name": name or user_id}}

    def fail(self, method: str, *, status: int = 500, times: int = 1, retry_after: int | None = None,
             after_effect: bool = False) -> None:
        self._faults.setdefault(method, []).extend(
            Fault(status=status, retry_after=retry_after, after_effect=after_effect) for _ in range(times))

    def refuse(self, method: str, error: str, *, times: int = 1) -> None:
        self._faults.setdefault(method, []).extend(Fault(status=200, error=error) for _ in range(times))

    def drop(self, method: str, *, times: int = 1, after_effect: bool = False) -> None:
        self._faults.setdefault(method, []).extend(Fault(drop=True, after_effect=after_effect) for _ in range(times))

    # --- inspection -------------------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def ok_calls(self, method: str) -> list[Call]:
        return [c for c in self.calls(method) if c.status == 200 and (c.response or {}).get("ok")]

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages of a channel (id or name), oldest first."""
        return [m for m in self._channel(channel).messages if m.thread_ts in (None, m.ts)]

    def duplicates(self) -> dict[str, int]:
        """Every part of a notification posted more than once, anywhere (channel, thread, DM), by its metadata
        dedupe key (``<notification id>:<part>``): how many times each was posted."""
        with self._lock:
            keys = [((m.metadata or {}).get("event_payload") or {}).get("dedupe")
                    for c in self.channels.values() for m in c.messages]
        counts: dict[str, int] = {}
        for key in keys:
            if key:
                counts[key] = counts.get(key, 0) + 1
        return {key: n for key, n in counts.items() if n > 1}

    def replies(self, channel: str, ts: str) -> list[Message]:
        return [m for m in self._channel(channel).messages if m.thread_ts == ts and m.ts != ts]

    def message(self, channel: str, ts: str) -> Message:
        return next(m for m in self._channel(channel).messages if m.ts == ts)

    def dm_channel_of(self, user_id: str) -> Channel | None:
        return next((c for c in self.channels.values() if c.kind == "im" and c.user == user_id), None)

    def _channel(self, ref: str) -> Channel:
        found = self._resolve(ref)
        if found is None:
            raise KeyError(ref)
        return found

    # --- Socket Mode ------------------------------------------------------------------------------
    def push_interactive(self, payload: Mapping[str, Any]) -> str:
        """Send a ``block_actions`` (or any interactive) payload to the connected app; returns its envelope id."""
        envelope_id = str(uuid.uuid4())
        self.socket_mode.send({"envelope_id": envelope_id, "type": "interactive", "payload": dict(payload),
                               "accepts_response_payload": False})
        return envelope_id

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> bool:
        return self.socket_mode.wait_for_ack(envelope_id, timeout)

    # --- the Web API ------------------------------------------------------------------------------
    def handle(self, method: str, params: dict[str, Any],
               headers: dict[str, str]) -> tuple[int, dict[str, str], bytes] | str | None:
        """One API call: returns (status, headers, body), None to drop the connection, "reset" to reset it."""
        if self.latency:
            time.sleep(self.latency)  # a real Slack answers in a few hundred ms: a send is a window, not an instant
        with self._lock:
            call = Call(method, params, headers)
            self._calls.append(call)
            queue = self._faults.get(method) or []
            fault = queue.pop(0) if queue else (Fault(status=503) if self.down else None)
            if fault is not None and not fault.after_effect:
                return self._fault(call, fault)
            result = self._authorised(method, params, headers) or self._dispatch(method, params)
            if fault is not None:
                return self._fault(call, fault)
            call.response = result
            return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(result).encode()

    def _fault(self, call: Call, fault: Fault) -> tuple[int, dict[str, str], bytes] | str | None:
        if fault.drop or fault.reset:
            call.status = 0
            return "reset" if fault.reset else None
        if fault.garbled:
            call.status = 200
            return 200, {"Content-Type": "text/html"}, b"<html><body>Please log in to the proxy</body></html>"
        call.status = fault.status
        if fault.error:
            call.response = {"ok": False, "error": fault.error}
            return 200, {"Content-Type": "application/json"}, json.dumps(call.response).encode()
        if fault.status == 429:
            call.response = {"ok": False, "error": "ratelimited"}
            return 429, {"Retry-After": str(fault.retry_after if fault.retry_after is not None else 1),
                         "Content-Type": "application/json"}, json.dumps(call.response).encode()
        return fault.status, {"Content-Type": "text/html"}, b"<html><body>Bad Gateway</body></html>"

    def _authorised(self, method: str, params: dict[str, Any], headers: dict[str, str]) -> dict[str, Any] | None:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = auth.removeprefix("Bearer ").strip() or str(params.get("token", ""))
        if not token:
            return {"ok": False, "error": "not_authed"}
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return {"ok": False, "error": "invalid_auth"}
        if method == "apps.connections.open":
            return None
        needed: tuple[str, ...] = METHOD_SCOPES.get(method, ())
        if method in ("conversations.history", "conversations.replies"):
            channel = self._resolve(str(params.get("channel", "")), ids_only=True)
            needed = (HISTORY_SCOPES[channel.kind],) if channel else ()
        missing = [s for s in needed if s not in self.scopes]
        if missing:
            return {"ok": False, "error": "missing_scope", "needed": ",".join(missing),
                    "provided": ",".join(sorted(self.scopes))}
        return None

    def _dispatch(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        handler = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._connections_open,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "conversations.open": self._conversations_open,
            "conversations.list": self._conversations_list,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "users.lookupByEmail": self._lookup_by_email,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        return handler(p)

    def _ts(self) -> str:
        return f"{int(self.clock().timestamp())}.{next(self._seq):06d}"

    def _resolve(self, ref: str, *, ids_only: bool = False) -> Channel | None:
        if ref in self.channels:
            return self.channels[ref]
        if ids_only:
            return None
        name = ref.lstrip("#")
        return next((c for c in self.channels.values() if c.kind != "im" and c.name == name), None)

    # --- files: Slack's upload in three steps (files_upload_v2) ---------------------------------------
    def _get_upload_url(self, p: dict[str, Any]) -> dict[str, Any]:
        """Step 1: a file id and a URL to send the bytes to (on this server)."""
        if not p.get("filename") or not str(p.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._seq):09d}"
        self.uploads[file_id] = {"id": file_id, "name": str(p["filename"]), "length": int(p["length"]),
                                 "content": None}
        host, port = self._http.server_address[:2]
        return {"ok": True, "file_id": file_id, "upload_url": f"http://{host!s}:{port}/upload/{file_id}"}

    def receive_upload(self, file_id: str, body: bytes) -> int:
        """Step 2: the bytes, POSTed to the upload URL; an HTTP status as Slack's file server answers."""
        with self._lock:
            self._calls.append(Call("upload", {"file_id": file_id}, {}))
            queue = self._faults.get("upload") or []
            fault = queue.pop(0) if queue else (Fault(status=503) if self.down else None)
            if fault is not None:
                return fault.status
            entry = self.uploads.get(file_id)
            if entry is None:
                return 404
            entry["content"] = body
            return 200

    def _complete_upload(self, p: dict[str, Any]) -> dict[str, Any]:
        """Step 3: share the uploaded files in a channel (in a thread with ``thread_ts``): a message with them."""
        wanted = _json_field(p.get("files")) or []
        shared = []
        for f in wanted:
            entry = self.uploads.get(str(f.get("id")))
            if entry is None or entry["content"] is None:
                return {"ok": False, "error": "file_not_found"}
            shared.append({**{k: v for k, v in entry.items() if k != "content"}, "title": f.get("title")})
        channel = self._resolve(str(p.get("channel_id", "")), ids_only=True) if p.get("channel_id") else None
        if p.get("channel_id"):
            if channel is None:
                return {"ok": False, "error": "channel_not_found"}
            if not channel.member:
                return {"ok": False, "error": "not_in_channel"}
            channel.messages.append(Message(channel.id, self._ts(), str(p.get("initial_comment") or ""), [], None,
                                            thread_ts=str(p["thread_ts"]) if p.get("thread_ts") else None,
                                            files=shared))
        return {"ok": True, "files": shared}

    def _auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://lumora.slack.com/", "team": "Lumora", "user": "monitor",
                "team_id": TEAM_ID, "user_id": BOT_USER, "bot_id": BOT_ID}

    def _connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.socket_mode.issue_url()}

    def _post_message(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve(str(p.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if channel.archived:
            return {"ok": False, "error": "is_archived"}
        if not channel.member:
            return {"ok": False, "error": "not_in_channel"}
        blocks = _json_field(p.get("blocks")) or []
        if not p.get("text") and not blocks:
            return {"ok": False, "error": "no_text"}
        problems = validate_blocks(blocks)
        if problems:
            return {"ok": False, "error": "invalid_blocks", "errors": problems}
        metadata = _json_field(p.get("metadata"))
        if metadata is not None and not (isinstance(metadata.get("event_type"), str)
                                         and isinstance(metadata.get("event_payload"), dict)):
            return {"ok": False, "error": "invalid_metadata_format"}
        thread_ts = p.get("thread_ts") or None
        if thread_ts and not any(m.ts == thread_ts for m in channel.messages):
            return {"ok": False, "error": "thread_not_found"}
        message = Message(channel.id, self._ts(), str(p.get("text", "")), blocks, metadata, thread_ts)
        channel.messages.append(message)
        return {"ok": True, "channel": channel.id, "ts": message.ts, "message": message.as_api(False)}

    def _update(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve(str(p.get("channel", "")), ids_only=True)  # names are refused, as by Slack
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        message = next((m for m in channel.messages if m.ts == p.get("ts")), None)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        blocks = _json_field(p.get("blocks"))
        if blocks is not None:
            problems = validate_blocks(blocks)
            if problems:
                return {"ok": False, "error": "invalid_blocks", "errors": problems}
            message.blocks = blocks
        if "text" in p:
            message.text = str(p["text"])
        metadata = _json_field(p.get("metadata"))
        if metadata is not None:
            message.metadata = metadata
        message.updates += 1
        return {"ok": True, "channel": channel.id, "ts": message.ts, "text": message.text,
                "message": message.as_api(False)}

    def _post_ephemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve(str(p.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if p.get("user") not in self.users:
            return {"ok": False, "error": "user_not_found"}
        self.ephemerals.append({"channel": channel.id, "user": p["user"], "text": p.get("text", ""),
                                "blocks": _json_field(p.get("blocks")) or []})
        return {"ok": True, "message_ts": self._ts()}

    def _conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(p.get("users", "")).split(",") if u]
        if len(users) != 1 or users[0] not in self.users:
            return {"ok": False, "error": "user_not_found"}
        existing = self.dm_channel_of(users[0])
        if existing is None:
            existing = Channel(f"D{len(self.channels) + 1:08d}", users[0], "im", user=users[0])
            self.channels[existing.id] = existing
        return {"ok": True, "channel": {"id": existing.id}}

    def _conversations_list(self, p: dict[str, Any]) -> dict[str, Any]:
        types = str(p.get("types") or "public_channel").split(",")
        kinds = {"public" for t in types if t == "public_channel"} | {"private" for t in types if
                                                                      t == "private_channel"}
        if "private" in kinds and "groups:read" not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": "groups:read"}
        found = [{"id": c.id, "name": c.name, "is_channel": True, "is_private": c.kind == "private",
                  "is_archived": c.archived, "is_member": c.member} for c in self.channels.values()
                 if c.kind in kinds and not (c.archived and _truthy(p.get("exclude_archived")))
                 and (c.kind == "public" or c.member)]  # a private channel is invisible until the app is invited
        start = int(p.get("cursor") or 0)
        limit = int(p.get("limit") or 100)
        page = found[start:start + limit]
        nxt = str(start + limit) if start + limit < len(found) else ""
        return {"ok": True, "channels": page, "response_metadata": {"next_cursor": nxt}}

    def _history(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve(str(p.get("channel", "")), ids_only=True)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(p.get("oldest") or 0)
        top = [m for m in reversed(channel.messages) if m.thread_ts in (None, m.ts) and float(m.ts) > oldest]
        return self._page(top, p)

    def _replies(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve(str(p.get("channel", "")), ids_only=True)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        parent = next((m for m in channel.messages if m.ts == p.get("ts")), None)
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        oldest = float(p.get("oldest") or 0)
        thread = [parent] + [m for m in channel.messages if m.thread_ts == parent.ts and m.ts != parent.ts
                             and float(m.ts) > oldest]
        return self._page(thread, p)

    def _page(self, messages: list[Message], p: dict[str, Any]) -> dict[str, Any]:
        start = int(p.get("cursor") or 0)
        limit = int(p.get("limit") or 100)
        with_metadata = _truthy(p.get("include_all_metadata"))
        page = messages[start:start + limit]
        more = start + limit < len(messages)
        return {"ok": True, "messages": [m.as_api(with_metadata) for m in page], "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _lookup_by_email(self, p: dict[str, Any]) -> dict[str, Any]:
        email = str(p.get("email", "")).lower()
        for user in self.users.values():
            if (user["profile"].get("email") or "").lower() == email:
                return {"ok": True, "user": user}
        return {"ok": False, "error": "users_not_found"}


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _json_field(value: Any) -> Any:
    """Form-encoded calls send blocks and metadata as JSON strings, JSON calls as values."""
    if isinstance(value, str):
        return json.loads(value) if value else None
    return value


def validate_blocks(blocks: Any) -> list[str]:
    """Slack's Block Kit limits that a layout can break (a subset: the ones we could get wrong)."""
    problems: list[str] = []
    if not isinstance(blocks, list):
        return ["blocks must be a list"]
    if len(blocks) > 50:
        problems.append("more than 50 blocks")
    block_ids: set[str] = set()
    action_ids: set[str] = set()

    def text_ok(obj: Any, limit: int, where: str, kinds: tuple[str, ...] = ("plain_text", "mrkdwn")) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in kinds or not isinstance(obj.get("text"), str):
            problems.append(f"{where}: bad text object")
        elif not obj["text"] or len(obj["text"]) > limit:
            problems.append(f"{where}: text must be 1-{limit} characters")

    def options_ok(element: dict[str, Any], low: int, high: int, where: str) -> None:
        options = element.get("options")
        if not isinstance(options, list) or not low <= len(options) <= high:
            problems.append(f"{where}: needs {low}-{high} options")
            return
        for option in options:
            text_ok(option.get("text"), 75, f"{where} option", ("plain_text",))
            value = option.get("value")
            if not isinstance(value, str) or not 1 <= len(value) <= 150:
                problems.append(f"{where}: option value must be 1-150 characters")

    def element_ok(element: Any, where: str) -> None:
        """An interactive element: a button, a select menu of static options or an overflow menu."""
        kind = element.get("type") if isinstance(element, dict) else None
        if kind == "button":
            text_ok(element.get("text"), 75, f"{where} button", ("plain_text",))
            if len(str(element.get("value", ""))) > 2000:
                problems.append(f"{where}: button value too long")
            if element.get("style") not in (None, "primary", "danger"):
                problems.append(f"{where}: bad button style")
        elif kind == "static_select":
            text_ok(element.get("placeholder"), 150, f"{where} select placeholder", ("plain_text",))
            options_ok(element, 1, 100, f"{where} select")
        elif kind == "overflow":
            options_ok(element, 2, 5, f"{where} overflow")
        else:
            problems.append(f"{where}: unknown element type {kind!r}")
            return
        action_id = element.get("action_id", "")
        if action_id in action_ids or len(action_id) > 255:
            problems.append(f"{where}: duplicate or long action_id {action_id!r}")
        action_ids.add(action_id)

    for i, block in enumerate(blocks):
        action_ids.clear()  # unique "among all other action_ids in the containing block"
        kind = block.get("type")
        if "block_id" in block:
            if block["block_id"] in block_ids:
                problems.append(f"block {i}: duplicate block_id")
            block_ids.add(block["block_id"])
        if kind == "header":
            text_ok(block.get("text"), 150, f"block {i} header", ("plain_text",))
        elif kind == "section":
            if "text" in block:
                text_ok(block["text"], 3000, f"block {i} section")
            elif not block.get("fields"):
                problems.append(f"block {i}: section needs text or fields")
            if "accessory" in block:
                element_ok(block["accessory"], f"block {i} accessory")
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 10:
                problems.append(f"block {i}: context needs 1-10 elements")
            for element in elements:
                text_ok(element, 3000, f"block {i} context")
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 25:
                problems.append(f"block {i}: actions needs 1-25 elements")
            for element in elements:
                element_ok(element, f"block {i}")
        elif kind != "divider":
            problems.append(f"block {i}: unknown type {kind!r}")
    return problems


def _handler_for(emulator: SlackEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            if url.path.startswith("/upload/"):  # a file's bytes, to the URL files.getUploadURLExternal gave
                status = emulator.receive_upload(url.path.removeprefix("/upload/"), raw)
                body = b"OK - " + str(len(raw)).encode() if status == 200 else b"error"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            method = url.path.rstrip("/").rsplit("/", 1)[-1]
            params: dict[str, Any] = dict(parse_qsl(url.query))
            content_type = self.headers.get("Content-Type", "")
            if raw and content_type.startswith("application/json"):
                params.update(json.loads(raw))
            elif raw:
                params.update(parse_qsl(raw.decode()))
            answer = emulator.handle(method, params, dict(self.headers.items()))
            if answer == "reset":  # RST instead of FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            if answer is None:
                self.close_connection = True
                return
            status, headers, body = answer
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _SocketModeServer:
    """Just enough of RFC 6455 for the SDK's built-in Socket Mode client: handshake, text, ping, close."""

    def __init__(self, emulator: SlackEmulator) -> None:
        self.emulator = emulator
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._tickets: set[str] = set()
        self._conns: list[socket.socket] = []
        self._acks: dict[str, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._stopped = False
        self.received: list[dict[str, Any]] = []

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def issue_url(self) -> str:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={APP_ID}"

    def start(self) -> None:
        threading.Thread(target=self._accept, name="slack-emulator-ws", daemon=True).start()

    def stop(self) -> None:
        self._stopped = True
        self._sock.close()
        with self._cond:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def connected(self) -> int:
        with self._cond:
            return len(self._conns)

    def wait_for_connection(self, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._conns), timeout)

    def send(self, message: Mapping[str, Any]) -> None:
        with self._cond:
            if not self._conns:
                raise RuntimeError("no Socket Mode client is connected")
            self._conns[-1].sendall(_frame(json.dumps(message).encode(), 0x1))

    def wait_for_ack(self, envelope_id: str, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: envelope_id in self._acks, timeout)

    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(1024)
                if not chunk:
                    return
                request += chunk
            head = request.split(b"\r\n\r\n", 1)[0].decode()
            path = head.split("\r\n", 1)[0].split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.partition(":") for line in head.split("\r\n")[1:])}
            ticket = dict(parse_qsl(urlsplit(path).query)).get("ticket")
            if ticket not in self._tickets:
                conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
                return
            accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + WS_GUID).encode()).digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            hello = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": APP_ID},
                     "debug_info": {"host": "emulator", "approximate_connection_time": 3600}}
            conn.sendall(_frame(json.dumps(hello).encode(), 0x1))
            with self._cond:
                self._conns.append(conn)
                self._cond.notify_all()
            self._read_frames(conn)
        except OSError:
            pass
        finally:
            with self._cond:
                if conn in self._conns:
                    self._conns.remove(conn)
            conn.close()

    def _read_frames(self, conn: socket.socket) -> None:
        buffer = b""

        def need(n: int) -> bytes:
            nonlocal buffer
            while len(buffer) < n:
                chunk = conn.recv(4096)
                if not chunk:
                    raise ConnectionError("closed")
                buffer += chunk
            out, buffer = buffer[:n], buffer[n:]
            return out

        while True:
            b0, b1 = need(2)
            opcode, masked, length = b0 & 0x0F, b1 & 0x80, b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", need(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", need(8))
            mask = need(4) if masked else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(need(length)))
            if opcode == 0x9:  # ping
                conn.sendall(_frame(data, 0xA))
            elif opcode == 0x8:  # close
                conn.sendall(_frame(data[:2], 0x8))
                return
            elif opcode == 0x1:
                message = json.loads(data)
                with self._cond:
                    self.received.append(message)
                    if "envelope_id" in message:
                        self._acks[message["envelope_id"]] = message
                    self._cond.notify_all()


def _frame(payload: bytes, opcode: int) -> bytes:
    """A server-to-client frame (never masked)."""
    header = bytes([0x80 | opcode])
    n = len(payload)
    if n <= 125:
        header += bytes([n])
    elif n <= 0xFFFF:
        header += bytes([126]) + struct.pack("!H", n)
    else:
        header += bytes([127]) + struct.pack("!Q", n)
    return header + payload


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
