"""A local stand-in for Slack's Web API: records every call, with when it arrived, and answers
like Slack.

Point `WebClient(base_url=fake.url)` (or `SLACK_API_URL`) at it. It can be told to answer
the next calls to a method with HTTP 429 and `Retry-After`, or with HTTP 500. The tests use
it to see what the bot asked Slack; the product benchmark uses the arrival times to see when
the reply a person would see reached Slack.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
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
    status: int
    retry_after: int | None
    remaining: int


def dm_channel(user: str) -> str:
    """The direct-message channel the fake opens for `user` (`conversations.open`)."""
    return "D" + user[1:]


@dataclass
class FakeSlack:
    """The fake server's state; use `start()` / `stop()`."""

    calls: list[Call] = field(default_factory=list)
    failures: dict[str, _Failure] = field(default_factory=dict)
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))
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
        self.failures[method] = _Failure(status, retry_after if status == 429 else None, times)

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

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """What Slack would answer to a successful call."""
        ts = f"1700000000.{next(self._ts):06d}"
        channel = str(args.get("channel", ""))
        answers: dict[str, dict[str, Any]] = {
            "auth.test": {"user_id": "U0TOWERBOT", "bot_id": "B0TOWER", "team_id": "T0TEAM"},
            "chat.postMessage": {
                "channel": channel,
                "ts": ts,
                "message": {"text": args.get("text")},
            },
            "chat.update": {"channel": channel, "ts": args.get("ts"), "text": args.get("text")},
            "chat.postEphemeral": {"message_ts": ts},
            "conversations.open": {"channel": {"id": dm_channel(str(args.get("users", "X")))}},
            "views.open": {"view": {"id": f"V{next(self._ts)}", **_view(args)}},
            "views.update": {"view": {"id": args.get("view_id", "V0"), **_view(args)}},
            "views.publish": {"view": {"id": f"V{next(self._ts)}", **_view(args)}},
        }
        return {"ok": True, **answers.get(method, {})}


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
            if failure is not None:
                self.send_response(failure.status)
                if failure.retry_after is not None:
                    self.send_header("Retry-After", str(failure.retry_after))
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                error = "ratelimited" if failure.status == 429 else "internal_error"
                self.wfile.write(json.dumps({"ok": False, "error": error}).encode())
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(fake.answer(method, args)).encode())

    return Handler
