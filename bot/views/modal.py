"""The register/edit modal: its blocks, and reading a submission back into field texts.

Every input block's `block_id` is the name of the test field it edits, so an error Tower
reports on a field lands inline on that block (`response_action: errors`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.ids import ActionId, BlockId, CallbackId
from tower.experiments.spec import CONFIDENCE_SCALE, IMPACT_SCALE, ExperimentKind, ExperimentSpec
from tower.policy import Policy

Block = dict[str, Any]
MAX_TITLE = 150


def _text(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:MAX_TITLE]}


OPTION_TEXT_LIMIT = 75
TEXT_INPUT_LIMIT = 3000  # the most a plain-text input holds, pre-filled or typed
STATIC_OPTIONS_LIMIT = 100


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": label[:OPTION_TEXT_LIMIT]}, "value": value}


def _input(
    block: BlockId, label: str, element: dict[str, Any], *, optional: bool = False, hint: str = ""
) -> Block:
    result: Block = {
        "type": "input",
        "block_id": block.value,
        "label": _text(label),
        "element": {"action_id": block.value, **element},
        "optional": optional,
    }
    if hint:
        result["hint"] = _text(hint)
    return result


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(value)


def _static(options: list[tuple[str, str]], initial: str | None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "static_select",
        "options": [_option(label, value) for label, value in options],
    }
    chosen = [_option(label, value) for label, value in options if value == initial]
    if chosen:
        element["initial_option"] = chosen[0]
    return element


def _picker(options: list[tuple[str, str]], initial: str | None) -> dict[str, Any]:
    """A select of `options` (label, value); past Slack's 100 options, a searchable one
    whose options `bot/listeners/options.py` serves."""
    if len(options) <= STATIC_OPTIONS_LIMIT:
        return _static(options, initial)
    element: dict[str, Any] = {"type": "external_select", "min_query_length": 0}
    if initial:
        label = next((label for label, value in options if value == initial), initial)
        element["initial_option"] = _option(label, initial)
    return element


def _scale(block: BlockId, label: str, scale: Sequence[float], chosen: float | None) -> Block:
    """An optional select of one value of a score's scale (impact, confidence)."""
    options = [(f"{value:g}", f"{value:g}") for value in scale]
    return _input(
        block, label, _static(options, _number(chosen) if chosen else None), optional=True
    )


def _team_picker(policy: Policy, teams: list[str], chosen: str | None) -> dict[str, Any]:
    """A select of the teams the person may register for."""
    initial = chosen or (teams[0] if len(teams) == 1 else None)
    return _picker([(_team_name(policy, t), t) for t in teams], initial)


def _team_name(policy: Policy, key: str) -> str:
    team = policy.team(key)
    return key if team is None else team.name


def _external(initial: tuple[str, ...]) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "multi_external_select", "min_query_length": 0}
    if initial:
        element["initial_options"] = [_option(value, value) for value in initial]
    return element


def _plain(
    initial: str, *, multiline: bool = False, max_length: int | None = None
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline}
    if initial:
        element["initial_value"] = initial
    if max_length:
        element["max_length"] = max_length
    return element


def _decimal(initial: float | None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "number_input", "is_decimal_allowed": True}
    if initial is not None:
        element["initial_value"] = _number(initial)
    return element


def _date(initial: str) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "datepicker"}
    if initial:
        element["initial_date"] = initial
    return element


def test_modal(
    policy: Policy,
    teams: list[str],
    *,
    spec: ExperimentSpec | None = None,
    key: str | None = None,
    version: int | None = None,
) -> dict[str, Any]:
    """The modal to register a test (no `spec`) or edit test `key` at `version`."""
    kpis = list(policy.kpis)
    blocks: list[Block] = [
        _input(BlockId.TITLE, "Title", _plain(spec.title if spec else "", max_length=200)),
        _input(
            BlockId.TEAM,
            "Team",
            _team_picker(policy, teams, spec.team if spec else None),
        ),
        _input(
            BlockId.KIND,
            "Kind",
            _static(
                [(k.value.replace("_", " "), k.value) for k in ExperimentKind],
                spec.kind.value if spec else ExperimentKind.AB_TEST.value,
            ),
        ),
        _input(
            BlockId.SURFACES,
            "Surfaces (pages, slots, channels)",
            _external(spec.surfaces if spec else ()),
        ),
        _input(
            BlockId.AUDIENCES,
            "Audiences (empty: everyone)",
            _external(spec.audiences if spec else ()),
            optional=True,
        ),
        _input(
            BlockId.EXCLUDE_AUDIENCES,
            "Excluded audiences",
            _external(spec.exclude_audiences if spec else ()),
            optional=True,
        ),
        _input(BlockId.START, "Start date", _date(spec.start.isoformat() if spec else "")),
        _input(
            BlockId.END, "End date (last day it runs)", _date(spec.end.isoformat() if spec else "")
        ),
        _input(
            BlockId.TRAFFIC,
            "Traffic (% of the eligible audience)",
            _decimal(spec.traffic if spec else 100.0),
        ),
        _input(
            BlockId.EXCLUSION_GROUP,
            "Exclusion group",
            _plain(spec.exclusion_group or "" if spec else "", max_length=64),
            optional=True,
            hint="Tests in one group split traffic on purpose and never collide",
        ),
        _input(
            BlockId.PRIMARY_KPI,
            "Primary KPI",
            _picker([(k, k) for k in kpis], spec.primary_kpi if spec else None)
            if kpis
            else _plain(spec.primary_kpi or "" if spec else ""),
            optional=True,
        ),
        _input(
            BlockId.BASELINE,
            "Baseline rate of the KPI (0 to 1)",
            _decimal(spec.baseline if spec else None),
            optional=True,
        ),
        _input(
            BlockId.MDE,
            "Minimum detectable effect (relative, 0.05 = 5%)",
            _decimal(spec.mde if spec else None),
            optional=True,
        ),
        _hypothesis(spec, key),
        _scale(BlockId.IMPACT, "Impact", IMPACT_SCALE, spec.impact if spec else None),
        _scale(
            BlockId.CONFIDENCE, "Confidence", CONFIDENCE_SCALE, spec.confidence if spec else None
        ),
        _input(
            BlockId.EFFORT_WEEKS,
            "Build effort (weeks)",
            _decimal(spec.effort_weeks if spec else None),
            optional=True,
        ),
    ]
    editing = spec is not None and key is not None
    return {
        "type": "modal",
        "callback_id": (CallbackId.EDIT if editing else CallbackId.REGISTER).value,
        "title": _text(f"Edit {key}" if editing else "Register a test"),
        "submit": _text("Save" if editing else "Register"),
        "close": _text("Cancel"),
        "private_metadata": json.dumps({"key": key, "version": version}) if editing else "",
        "blocks": blocks,
    }


MODAL_BLOCKS = 100
MODAL_SECTION_TEXT = 3000


def reason_modal(action: str, key: str, version: int, where: dict[str, str]) -> dict[str, Any]:
    """Ask a manager why they reject or request changes."""
    verb = "Reject" if action == ActionId.REJECT else "Request changes to"
    return {
        "type": "modal",
        "callback_id": CallbackId.DECISION_REASON.value,
        "title": _text(f"{verb} {key}"[:24]),
        "submit": _text("Send"),
        "close": _text("Cancel"),
        "private_metadata": json.dumps({"action": action, "key": key, "version": version, **where}),
        "blocks": [
            _input(BlockId.REASON, "Reason (the owner sees it)", _plain("", multiline=True))
        ],
    }


def list_modal(title: str, lines: list[str]) -> dict[str, Any]:
    """A read-only modal listing `lines` (already mrkdwn), within Slack's 100 blocks."""
    sections: list[str] = []
    for line in lines:
        if sections and len(sections[-1]) + 1 + len(line) <= MODAL_SECTION_TEXT:
            sections[-1] += "\n" + line
        else:
            sections.append(line[:MODAL_SECTION_TEXT])
    if len(sections) > MODAL_BLOCKS:
        sections = [*sections[: MODAL_BLOCKS - 1], "…and more: `tower conflicts --all`"]
    return {
        "type": "modal",
        "title": _text(title[:24]),
        "close": _text("Close"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}} for text in sections
        ]
        or [{"type": "section", "text": {"type": "mrkdwn", "text": "Nothing to show."}}],
    }


def _hypothesis(spec: ExperimentSpec | None, key: str | None) -> Block:
    """The hypothesis input; or, for one longer than a Slack input holds (the CLI and CSV
    take up to 50,000 characters), a note that it stays as it is and how to change it:
    pre-filling a cut copy would cut it on save."""
    typed = spec.hypothesis if spec else ""
    if len(typed) <= TEXT_INPUT_LIMIT:
        return _input(
            BlockId.HYPOTHESIS,
            "Hypothesis",
            _plain(typed, multiline=True, max_length=TEXT_INPUT_LIMIT),
            optional=True,
            hint="If we ..., then ..., because ...",
        )
    note = (
        f"*Hypothesis*: {len(typed):,} characters, more than a Slack form holds. It stays "
        f"as it is; change it with `tower edit {key} --set hypothesis=...`."
    )
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}


def submitted_texts(view: dict[str, Any]) -> dict[str, str]:
    """The modal's values as the roadmap CSV writes them (lists joined by `;`)."""
    texts: dict[str, str] = {}
    for block_id, actions in view.get("state", {}).get("values", {}).items():
        for element in actions.values():
            texts[block_id] = _element_text(element)
    return texts


def _element_text(element: dict[str, Any]) -> str:
    kind = element.get("type")
    if kind in ("multi_external_select", "multi_static_select"):
        return ";".join(o["value"] for o in element.get("selected_options") or [])
    if kind in ("static_select", "external_select"):
        option = element.get("selected_option")
        return "" if not option else str(option["value"])
    if kind == "datepicker":
        return str(element.get("selected_date") or "")
    return str(element.get("value") or "")
