"""A form submission acts once, however often it arrives.

Slack sends a view submission again when its answer was slow (`X-Slack-Retry-Num`, a new
timestamp and trigger id), and a person's client may send the same one twice. Each copy is
recognised by what it submits, not by its view id alone (clients reuse it): the team, the
user, the view id, its callback id and `private_metadata`, and every value entered. The
first copy acts and its answer is kept (`tower.repeats`, ten minutes, in the database: for
every web process); the others get that answer and change nothing. A copy arriving while
the first is still at work waits for its answer a moment, then closes the form.

Only requests whose signature holds are remembered: a forged one reaches Bolt, which
refuses it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier
from sqlalchemy.orm import Session, sessionmaker

from tower.db import utcnow
from tower.repeats import service as repeats

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    WsgiApp = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]

logger = logging.getLogger("tower.bot")

WAIT_FOR_FIRST = 2.5  # seconds a copy waits for the first one's answer (Slack allows 3)
_POLL = 0.05


def submission_fingerprint(body: bytes) -> str | None:
    """What identifies a view submission's content (None for any other request)."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=False)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, KeyError, IndexError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("type") != "view_submission":
        return None
    view = _object(payload.get("view"))
    content = [
        _id_of(payload.get("team")),
        _id_of(payload.get("user")),
        view.get("id"),
        view.get("callback_id"),
        view.get("private_metadata"),
        _object(view.get("state")).get("values"),
    ]
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id_of(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


class Repeats:
    """Wraps the Slack endpoint so each view submission acts once (see the module)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        signing_secret: str,
        *,
        wait: float = WAIT_FOR_FIRST,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._verifier = SignatureVerifier(signing_secret)
        self._wait = wait
        self._clock = clock

    def around(self, slack: WsgiApp) -> WsgiApp:
        def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            body = read_body(environ)
            fingerprint = self._fingerprint(environ, body)
            if fingerprint is None:
                return slack(environ, start_response)
            with self._sessions.begin() as session:
                first = repeats.claim(session, fingerprint, now=self._clock())
            if not first:
                return self._repeat(fingerprint, environ, start_response)
            status, headers, chunks = _run(slack, environ)
            answer = repeats.Answer(
                int(status.split()[0]), _content_type(headers), b"".join(chunks).decode()
            )
            with self._sessions.begin() as session:
                repeats.record(session, fingerprint, answer)
            start_response(status, headers)
            return chunks

        return application

    def signed_by_slack(self, environ: WSGIEnvironment, body: bytes) -> bool:
        """Whether `body` carries a valid, fresh Slack signature (headers of the right shape:
        `bot/web.py` checks them first)."""
        headers = {
            "x-slack-request-timestamp": environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""),
            "x-slack-signature": environ.get("HTTP_X_SLACK_SIGNATURE", ""),
        }
        return self._verifier.is_valid_request(body, headers)

    def _fingerprint(self, environ: WSGIEnvironment, body: bytes) -> str | None:
        if not self.signed_by_slack(environ, body):
            return None
        return submission_fingerprint(body)

    def _repeat(
        self, fingerprint: str, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """The first copy's answer, once it has one (else, after a moment, an empty one:
        the form closes, and the first copy's work goes on)."""
        retry = environ.get("HTTP_X_SLACK_RETRY_NUM")
        logger.info("a repeated form submission (retry %s): answered as the first", retry)
        deadline = time.monotonic() + self._wait
        while True:
            with self._sessions() as session:
                answer = repeats.answer_to(session, fingerprint)
            if answer is not None or time.monotonic() >= deadline:
                break
            time.sleep(_POLL)
        if answer is None:
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b""]
        status = f"{answer.status} {'OK' if answer.status == 200 else 'Answered'}"
        start_response(status, [("Content-Type", answer.content_type or "text/plain")])
        return [answer.body.encode()]


def declared_length(environ: WSGIEnvironment) -> int:
    """The body's length as the request declares it (0 when it says nothing readable)."""
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def read_body(environ: WSGIEnvironment) -> bytes:
    """The request body, read once and put back for whoever reads it next."""
    length = declared_length(environ)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _run(
    slack: WsgiApp, environ: WSGIEnvironment
) -> tuple[str, list[tuple[str, str]], list[bytes]]:
    """Call the wrapped application, keeping its status, headers and body."""
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, headers
        return lambda data: None

    chunks = list(slack(environ, start_response))
    return seen["status"], seen["headers"], chunks


def _content_type(headers: Iterable[tuple[str, str]]) -> str:
    return next((value for name, value in headers if name.lower() == "content-type"), "")
