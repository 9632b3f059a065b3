"""What a Slack request must look like before Bolt parses it: a body Bolt cannot read (not
JSON, not an object, `actions` that are not a list of objects, a view without its parts) is
refused here with HTTP 400 and a short reason, never a 5xx. Checked after the signature's
shape (`bot/web.py`) and before Bolt verifies it: a refusal acts on nothing.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, ValidationError

# Parts of a payload Bolt reads as objects whenever they are there (null included).
_OBJECTS = ("user", "team", "channel", "container", "message", "view", "enterprise")


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Someone(_Loose):
    id: str


class _Action(_Loose):
    action_id: str
    value: str | None = None


class _View(_Loose):
    id: str
    type: str
    callback_id: str = ""
    private_metadata: str = ""
    state: dict[str, dict[str, dict[str, Any]]] = {}


class Interaction(_Loose):
    """An interaction payload (a click, a form submission, a menu's question)."""

    type: str
    user: _Someone | None = None
    team: _Someone | None = None
    actions: list[_Action] | None = None
    view: _View | None = None


def malformed(body: bytes, content_type: str) -> str | None:
    """Why Bolt could not read this request, or None when it can."""
    if "json" in content_type:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return "the body is not JSON"
        return None if isinstance(data, dict) else "the body is not a JSON object"
    try:
        form = parse_qs(body.decode("utf-8"))
    except UnicodeDecodeError:
        return "the body is not UTF-8 text"
    if "payload" not in form:
        return None  # a slash command: its fields are text, whatever they say
    try:
        payload = json.loads(form["payload"][0])
    except ValueError:
        return "the payload is not JSON"
    if not isinstance(payload, dict):
        return "the payload is not a JSON object"
    for name in _OBJECTS:
        if name in payload and not isinstance(payload[name], dict):
            return f"the payload's {name} is not an object"
    if "actions" in payload and not (isinstance(payload["actions"], list) and payload["actions"]):
        return "the payload's actions are not a list of actions"
    try:
        Interaction.model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"the payload's {where or 'body'} is wrong: {first['msg']}"
    return None


class FormMemo(_Loose):
    """What Tower's own forms remember in `private_metadata`: the test and the version
    its reader saw (and, for a reason form, the decision asked for)."""

    key: str
    version: int
    action: str | None = None


def form_memo(view: dict[str, Any]) -> FormMemo | None:
    """The memo of one of Tower's forms; None when it is not one (crafted or damaged)."""
    try:
        return FormMemo.model_validate_json(view.get("private_metadata") or "")
    except ValidationError:
        return None
