"""The HTTP face of the bot: Slack's requests on `POST /slack/events`, `GET /healthz`.

A plain WSGI application: `tower serve` runs it under gunicorn (`bot/server.py`), and the
tests drive the very same endpoint with signed requests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import Engine, text

from bot.edge import malformed
from bot.repeats import Repeats, declared_length, read_body

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

WsgiApp = Callable[["WSGIEnvironment", "StartResponse"], Iterable[bytes]]

# What Slack sends: seconds since the epoch in ASCII digits, and `v0=` with 64 lower-case hex
# digits. Anything else is refused before Bolt parses it (a timestamp `int()` cannot read,
# or reads from other scripts' digits, would otherwise end in an HTTP 500).
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


# Slack's requests stay far below this (a full form is a few kilobytes): a bigger body is
# refused unread.
MAX_BODY = 1024 * 1024


def _discard_body(environ: WSGIEnvironment, chunk: int = 64 * 1024) -> None:
    left = declared_length(environ)
    while left > 0:
        read = environ["wsgi.input"].read(min(chunk, left))
        if not read:
            return
        left -= len(read)


def database_reachable(engine: Engine) -> Callable[[], bool]:
    """A health probe: can the database answer `SELECT 1`?"""

    def probe() -> bool:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    return probe


def create_wsgi(
    app: App,
    healthy: Callable[[], bool],
    repeats: Repeats,
    warm: Callable[[], bool] | None = None,
) -> WsgiApp:
    """Route `/healthz` to the probe and everything else to Bolt (which verifies signatures),
    each form submission acting once (`repeats`). `warm` says whether the portfolio is
    indexed yet: `/healthz` then also says `"index": "warm"` or `"warming"` (still 200: the
    server answers while it warms)."""
    slack = repeats.around(SlackRequestHandler(app, path="/slack/events"))

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") == "GET":
            ok = healthy()
            health = {"ok": ok, "database": "reachable" if ok else "unreachable"}
            if warm is not None:
                health["index"] = "warm" if warm() else "warming"
            body = json.dumps(health)
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [body.encode()]
        if environ.get("REQUEST_METHOD") == "POST":
            if declared_length(environ) > MAX_BODY:
                _discard_body(environ)  # read, not kept: the client then hears the answer
                return _plain(start_response, "413 Content Too Large", "the request is too big")
            # The signature first: a forged or altered body is refused as such, whatever
            # it holds, before anything reads it.
            received = read_body(environ)
            if not (
                _signature_headers_well_formed(environ)
                and repeats.signed_by_slack(environ, received)
            ):
                return _plain(start_response, "401 Unauthorized", "invalid request signature")
            problem = malformed(received, environ.get("CONTENT_TYPE", ""))
            if problem is not None:
                return _plain(
                    start_response, "400 Bad Request", f"Tower cannot read this: {problem}"
                )
        return slack(environ, start_response)

    return application


def _plain(start_response: StartResponse, status: str, text: str) -> Iterable[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [text.encode()]


def _signature_headers_well_formed(environ: WSGIEnvironment) -> bool:
    """Whether the signature headers have the shape Slack gives them (Bolt checks the rest)."""
    timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
    signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
    return bool(_TIMESTAMP.fullmatch(timestamp) and _SIGNATURE.fullmatch(signature))
