"""What Slack sends to `POST /slack/events`, built and signed the way Slack does it.

Slash commands, button clicks, modal submissions and events, each as the raw body Slack
posts, plus the signature headers (`v0:{timestamp}:{body}`, HMAC-SHA256 with the signing
secret, as `slack_sdk.signature.SignatureVerifier` checks them) and a small HTTP client that
returns every status instead of raising. The tests and the product benchmark both use them.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

TEAM_ID = "T0TEAM"
APP_ID = "A0TOWER"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
TIMEOUT = 3.0  # seconds: Slack gives up on an acknowledgement after 3 s


def signature_headers(
    body: bytes, *, secret: str, timestamp: int | str | None = None
) -> dict[str, str]:
    """`X-Slack-Request-Timestamp` and `X-Slack-Signature` as Slack computes them (over any
    timestamp text, for requests Slack would never send)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> dict[str, Any]:
        data = json.loads(self.body or b"{}")
        assert isinstance(data, dict), data
        return data


def http(
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> HttpResponse:
    """One HTTP request (POST when there is a body); any status comes back, none raises.

    A connection that fails or an answer slower than `timeout` raises `OSError`.
    """
    request = urllib.request.Request(url, data=body, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpResponse(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return HttpResponse(error.code, error.read(), dict(error.headers))


def command_body(text: str, *, user: str, channel: str, trigger_id: str) -> bytes:
    """A `/tower` slash command, form-encoded like Slack sends it."""
    fields = {
        "token": "deprecated-verification-token",
        "team_id": TEAM_ID,
        "team_domain": "tower-test",
        "channel_id": channel,
        "channel_name": "checkout",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/tower",
        "text": text,
        "api_app_id": APP_ID,
        "response_url": "https://hooks.slack.invalid/commands/T0TEAM/1/x",
        "trigger_id": trigger_id,
    }
    return urlencode(fields).encode()


def interaction_body(payload: Mapping[str, Any]) -> bytes:
    """An interaction (click, submission, option request): form-encoded `payload=<json>`."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def _interaction(kind: str, user: str, trigger_id: str, **fields: Any) -> bytes:
    """An interaction payload of `kind` from `user`: what every one carries, plus `fields`."""
    return interaction_body(
        {
            "type": kind,
            "team": {"id": TEAM_ID, "domain": "tower-test"},
            "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "token": "deprecated-verification-token",
            "trigger_id": trigger_id,
            **fields,
        }
    )


def click_body(
    action_id: str, value: str, *, user: str, channel: str, ts: str, trigger_id: str
) -> bytes:
    """A button click on a message in `channel` (its `ts`), as Slack sends it."""
    button = {
        "type": "button",
        "action_id": action_id,
        "block_id": "actions",
        "value": value,
        "text": {"type": "plain_text", "text": action_id},
        "action_ts": f"{time.time():.6f}",
    }
    return _interaction(
        "block_actions",
        user,
        trigger_id,
        container={"type": "message", "message_ts": ts, "channel_id": channel},
        channel={"id": channel, "name": "tower"},
        message={"type": "message", "ts": ts, "text": "", "user": "U0TOWERBOT"},
        response_url="https://hooks.slack.invalid/actions/T0TEAM/1/x",
        actions=[button],
    )


def submission_body(view: Mapping[str, Any], *, user: str, trigger_id: str) -> bytes:
    """A modal submitted by `user`; `view` carries its state (see `fill_modal`)."""
    submitted = {**view, "team_id": TEAM_ID, "app_id": APP_ID}
    return _interaction("view_submission", user, trigger_id, view=submitted, response_urls=[])


def event_body(event: Mapping[str, Any], *, event_id: str) -> bytes:
    """An Events API callback carrying `event`, JSON-encoded."""
    body = {
        "token": "deprecated-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM_ID, "user_id": "U0TOWERBOT", "is_bot": True}],
        "event": dict(event),
    }
    return json.dumps(body).encode()


def home_opened_event(user: str) -> dict[str, Any]:
    """`app_home_opened` on the Home tab, as Slack sends it when `user` opens it."""
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": "D" + user[1:],
        "tab": "home",
        "event_ts": f"{time.time():.6f}",
    }


# -- a modal, filled in like a person would ----------------------------------------------------


def fill_modal(view: Mapping[str, Any], answers: Mapping[str, Any]) -> dict[str, Any]:
    """The submitted `view` of a modal: `answers` (by block id) put in each block's element.

    Strings go in text inputs, dates (ISO) in date pickers, a string or None in selects, a
    list of strings in multi-selects, numbers as text in number inputs. Blocks not answered
    keep their initial value, as Slack submits them.
    """
    values: dict[str, dict[str, Any]] = {}
    for block in view["blocks"]:
        if block.get("type") != "input":
            continue
        element = block["element"]
        kind = element["type"]
        block_id = block["block_id"]
        answer = answers[block_id] if block_id in answers else _initial(element)
        state: dict[str, Any] = {"type": kind}
        if kind in ("multi_external_select", "multi_static_select"):
            state["selected_options"] = [_chosen(v) for v in answer or []]
        elif kind in ("static_select", "external_select"):
            state["selected_option"] = None if answer in (None, "") else _chosen(str(answer))
        elif kind == "datepicker":
            state["selected_date"] = None if answer in (None, "") else str(answer)
        else:
            state["value"] = None if answer in (None, "") else str(answer)
        values[block_id] = {element["action_id"]: state}
    return {
        "id": "V0MODAL",
        "type": "modal",
        "callback_id": view.get("callback_id", ""),
        "private_metadata": view.get("private_metadata", ""),
        "blocks": view["blocks"],
        "state": {"values": values},
        "hash": "1700000000.abcdef",
    }


def _chosen(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": value}, "value": value}


def _initial(element: Mapping[str, Any]) -> Any:
    if "initial_options" in element:
        return [o["value"] for o in element["initial_options"]]
    if "initial_option" in element:
        return element["initial_option"]["value"]
    return element.get("initial_date") or element.get("initial_value")
