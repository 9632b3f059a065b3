"""What a Slack request must look like before Bolt parses it: a body Bolt or a listener
cannot read (not JSON, not an object, `actions` that are not a list of objects, a view
without its parts or with answers of the wrong types, a click or a command without its
trigger, an event that is not an object) is refused here with HTTP 400 and a short reason,
never a 5xx. Checked after the signature (`bot/web.py`): a refusal acts on nothing.
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


class _Chosen(_Loose):
    value: str


class _Answer(_Loose):
    """One input's state in a submitted view, as the modal's elements give it."""

    type: str
    value: str | None = None
    selected_option: _Chosen | None = None
    selected_options: list[_Chosen] | None = None
    selected_date: str | None = None


class _ViewParts(_Loose):
    id: str
    type: str
    callback_id: str = ""
    private_metadata: str = ""


class _View(_ViewParts):
    state: dict[str, dict[str, dict[str, Any]]] = {}


class _SubmittedState(_Loose):
    values: dict[str, dict[str, _Answer]] = {}


class _SubmittedView(_ViewParts):
    state: _SubmittedState = _SubmittedState()


# Interactions whose listeners may open a form: Slack sends a trigger id with each.
_TRIGGERED = ("block_actions", "shortcut", "message_action")


class Interaction(_Loose):
    """An interaction payload (a click, a form submission, a menu's question)."""

    type: str
    user: _Someone | None = None
    team: _Someone | None = None
    actions: list[_Action] | None = None
    view: _View | None = None
    trigger_id: str | None = None


class Submission(Interaction):
    """A form submission: its answers have the types its elements give."""

    view: _SubmittedView  # type: ignore[assignment]  # a narrower view than Interaction's


class SlashCommand(_Loose):
    """`/tower ...`: who typed it, and the trigger to open a form with."""

    command: str
    user_id: str
    trigger_id: str
    text: str = ""


class _Event(_Loose):
    type: str
    user: str | _Someone | None = None


class EventEnvelope(_Loose):
    """An Events API request: a URL check, or an event with its parts as objects."""

    type: str
    event: _Event | None = None


def malformed(body: bytes, content_type: str) -> str | None:
    """Why Bolt could not read this request, or None when it can."""
    if "json" in content_type:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return "the body is not JSON"
        if not isinstance(data, dict):
            return "the body is not a JSON object"
        return _wrong(EventEnvelope, data, "event")
    try:
        form = parse_qs(body.decode("utf-8"))
    except UnicodeDecodeError:
        return "the body is not UTF-8 text"
    if "payload" not in form:  # a slash command: one text value a field
        if "command" not in form:
            return None  # neither: Bolt answers it does not know it
        return _wrong(SlashCommand, {name: values[0] for name, values in form.items()}, "command")
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
    kind = payload.get("type")
    if kind in _TRIGGERED and not isinstance(payload.get("trigger_id"), str):
        return "the payload has no trigger_id"
    model = Submission if kind == "view_submission" else Interaction
    return _wrong(model, payload, "payload")


def _wrong(model: type[BaseModel], data: dict[str, Any], what: str) -> str | None:
    """What in `data` does not fit `model`, said in a few words; None when all fits."""
    try:
        model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"the {what}'s {where or 'body'} is wrong: {first['msg']}"
    return None
