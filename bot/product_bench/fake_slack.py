"""A local stand-in for Slack's Web API: records every call, with when it arrived, and answers
like Slack.

Point `WebClient(base_url=fake.url)` (or `SLACK_API_URL`) at it. It keeps what was posted
in each channel (`chat.postMessage`, `chat.update`) with the messages' metadata, and serves
it back through `conversations.history` and `conversations.replies`, newest first, paged
with cursors, stamped with real times. It can be told to answer the next calls to a method
with HTTP 429 and `Retry-After`, or with HTTP 500 (`fail`). The tests use it to see what the
bot asked Slack; the product benchmark uses the arrival times to see when the reply a person
would see reached Slack.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Call:
    """One Web API call: the method, its arguments (form or JSON body, merged), the token,
    and when it arrived (`time.monotonic()` in this process)."""

    method: str
    args: dict[str, Any]
    token: str
    at: float = 0.0


@dataclass
class _Failure:
    """How the next `remaining` calls to a method go wrong: an error answer (`status`,
    `error`; `html`: a proxy's HTML page instead of JSON), or the connection dropped before
    acting or after it (`drop`), or an answer held back `stall` seconds after acting (past
    a client's timeout)."""

    status: int
    retry_after: int | None
    remaining: int
    drop: str | None = None  # "before" or "after" acting
    stall: float = 0.0
    error: str = "internal_error"
    html: bool = False


# Every way Slack fails, as the chaos mode draws them: (name, the failure).
FAULTS: tuple[tuple[str, _Failure], ...] = (
    ("http_500", _Failure(500, None, 1)),
    ("html_503", _Failure(503, None, 1, html=True)),
    ("http_429", _Failure(429, 1, 1, error="ratelimited")),
    ("ok_false_ratelimited", _Failure(200, None, 1, error="ratelimited")),
    ("ok_false_internal_error", _Failure(200, None, 1, error="internal_error")),
    ("dropped_before_acting", _Failure(200, None, 1, drop="before")),
    ("dropped_after_acting", _Failure(200, None, 1, drop="after")),
    ("answered_too_late", _Failure(200, None, 1, stall=-1.0)),  # the chaos mode's stall
)
MESSAGE_NOT_FOUND = ("message_not_found", _Failure(200, None, 1, error="message_not_found"))
CHAOS_METHODS = frozenset(
    {
        "chat.postMessage",
        "chat.update",
        "conversations.open",
        "conversations.history",
        "conversations.replies",
    }
)


@dataclass
class _Chaos:
    """Seeded faults: each call to a method of `CHAOS_METHODS` fails with probability
    `rate`, in a way drawn from `FAULTS` (and `message_not_found` for updates)."""

    rate: float
    random: random.Random
    stall: float  # seconds an answer is held back: more than the client's timeout

    def draw(self, method: str) -> tuple[str, _Failure] | None:
        if method not in CHAOS_METHODS or self.random.random() >= self.rate:
            return None
        choices = FAULTS + ((MESSAGE_NOT_FOUND,) if method == "chat.update" else ())
        name, failure = self.random.choice(choices)
        if failure.stall:
            failure = _Failure(200, None, 1, stall=self.stall)
        return name, failure


def dm_channel(user: str) -> str:
    """The direct-message channel the fake opens for `user` (`conversations.open`)."""
    return "D" + user[1:]


@dataclass
class Posted:
    """A message in a channel: its `ts`, text, metadata and the thread it answers, if any."""

    channel: str
    ts: str
    text: str
    metadata: dict[str, Any] | None
    thread_ts: str | None = None

    def as_slack(self, with_metadata: bool) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        if self.thread_ts:
            message["thread_ts"] = self.thread_ts
        if with_metadata and self.metadata:
            message["metadata"] = self.metadata
        return message


@dataclass
class FakeSlack:
    """The fake server's state; use `start()` / `stop()`."""

    calls: list[Call] = field(default_factory=list)
    failures: dict[str, _Failure] = field(default_factory=dict)
    posted: list[Posted] = field(default_factory=list)  # every message, oldest first
    faults: Counter[str] = field(default_factory=Counter)  # the chaos mode's, by kind
    _chaos: _Chaos | None = None
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _last_ts: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    def fail(
        self, method: str, *, status: int = 429, retry_after: int | None = 1, times: int = 1
    ) -> None:
        """Answer the next `times` calls to `method` with `status` (429 carries Retry-After)."""
        error = "ratelimited" if status == 429 else "internal_error"
        self.failures[method] = _Failure(
            status, retry_after if status == 429 else None, times, error=error
        )

    def chaos(self, rate: float, *, seed: int, stall: float) -> None:
        """From now on fail about `rate` of the calls that post, update, open or read
        history, every way Slack fails (seeded: the same seed, the same faults for the same
        calls); `stall`: how late a late answer comes. A rate of 0 ends it."""
        self._chaos = _Chaos(rate, random.Random(seed), stall) if rate > 0 else None

    def drop(self, method: str, *, acting: bool, times: int = 1) -> None:
        """Close the connection of the next `times` calls to `method` without an answer,
        after doing what they ask (`acting`) or before."""
        drop = "after" if acting else "before"
        self.failures[method] = _Failure(200, None, times, drop=drop)

    def stall(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Do what the next `times` calls to `method` ask, then answer `seconds` late."""
        self.failures[method] = _Failure(200, None, times, stall=seconds)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def calls_since(self, index: int) -> list[Call]:
        """The calls after the first `index` ones, in arrival order."""
        with self._lock:
            return self.calls[index:]

    def start(self) -> FakeSlack:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def messages_in(self, channel: str) -> list[Posted]:
        """What `channel` holds, threads included, oldest first."""
        with self._lock:
            return [message for message in self.posted if message.channel == channel]

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """What Slack would answer to a successful call (and its effect on the channels)."""
        channel = str(args.get("channel", ""))
        if method == "chat.postMessage":
            return {"ok": True, **self._post(channel, args)}
        if method == "chat.update":
            return self._update(channel, args)
        if method in ("conversations.history", "conversations.replies"):
            return {"ok": True, **self._history(method, channel, args)}
        ts = self._next_ts()
        answers: dict[str, dict[str, Any]] = {
            "auth.test": {"user_id": "U0TOWERBOT", "bot_id": "B0TOWER", "team_id": "T0TEAM"},
            "chat.postEphemeral": {"message_ts": ts},
            "conversations.open": {"channel": {"id": dm_channel(str(args.get("users", "X")))}},
            "views.open": {"view": {"id": f"V{next(self._ts)}", **_view(args)}},
            "views.update": {"view": {"id": args.get("view_id", "V0"), **_view(args)}},
            "views.publish": {"view": {"id": f"V{next(self._ts)}", **_view(args)}},
        }
        return {"ok": True, **answers.get(method, {})}

    def _next_ts(self) -> str:
        """A message timestamp as Slack makes them: the real time, in microseconds, each
        later than the one before."""
        with self._lock:
            self._last_ts = max(time.time(), self._last_ts + 0.000001)
            return f"{self._last_ts:.6f}"

    def _post(self, channel: str, args: dict[str, Any]) -> dict[str, Any]:
        metadata = _json_object(args.get("metadata"))
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        posted = Posted(channel, self._next_ts(), str(args.get("text", "")), metadata, thread_ts)
        with self._lock:
            self.posted.append(posted)
        return {"channel": channel, "ts": posted.ts, "message": {"text": posted.text}}

    def _update(self, channel: str, args: dict[str, Any]) -> dict[str, Any]:
        ts = str(args.get("ts"))
        with self._lock:
            found = [m for m in self.posted if m.channel == channel and m.ts == ts]
            if not found and any(m.channel == channel for m in self.posted):
                return {"ok": False, "error": "message_not_found"}
            for message in found:
                message.text = str(args.get("text", ""))
        return {"ok": True, "channel": channel, "ts": ts, "text": args.get("text")}

    def _history(self, method: str, channel: str, args: dict[str, Any]) -> dict[str, Any]:
        """A page of a channel's top-level messages or of one thread, newest first."""
        oldest = float(args.get("oldest") or 0)
        thread = str(args.get("ts")) if method == "conversations.replies" else None
        with self._lock:
            held = [
                m
                for m in self.posted
                if m.channel == channel
                and float(m.ts) >= oldest
                and (
                    m.thread_ts is None or m.thread_ts == m.ts
                    if thread is None
                    else m.ts == thread or m.thread_ts == thread
                )
            ]
        held.reverse()
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        page = held[start : start + limit]
        more = start + limit < len(held)
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        return {
            "messages": [m.as_slack(with_metadata) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }


def _json_object(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        value = json.loads(value) if value else None
    return dict(value) if isinstance(value, dict) else None


def _view(args: dict[str, Any]) -> dict[str, Any]:
    view = args.get("view", {})
    return json.loads(view) if isinstance(view, str) else dict(view)


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            arrived = time.monotonic()
            method = self.path.rsplit("/", 1)[-1]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            if "json" in (self.headers.get("Content-Type") or ""):
                args: dict[str, Any] = json.loads(body or "{}")
            else:
                args = {k: v[0] for k, v in parse_qs(body).items()}
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            with fake._lock:
                fake.calls.append(Call(method, args, token, arrived))
                failure = fake.failures.get(method)
                if failure is not None and failure.remaining > 0:
                    failure.remaining -= 1
                else:
                    failure = None
                    drawn = None if fake._chaos is None else fake._chaos.draw(method)
                    if drawn is not None:
                        fake.faults[drawn[0]] += 1
                        failure = drawn[1]
            if failure is not None and failure.drop == "before":
                self.close_connection = True
                return
            answer: dict[str, Any] | None = None
            if failure is not None and (failure.drop == "after" or failure.stall):
                answer = fake.answer(method, args)  # done: only the answer goes astray
                if failure.drop == "after":
                    self.close_connection = True
                    return
                time.sleep(failure.stall)
                failure = None
            if failure is not None:
                self.send_response(failure.status)
                if failure.retry_after is not None:
                    self.send_header("Retry-After", str(failure.retry_after))
                if failure.html:
                    self.send_header("Content-Type", "text/html")
                    self.end_headers()
                    self.wfile.write(b"<html><body><h1>503 Service Unavailable</h1></body></html>")
                    return
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"ok": False, "error": failure.error}).encode())
                return
            if answer is None:
                answer = fake.answer(method, args)
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(answer).encode())
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting: what it asked for is done all the same

    return Handler
