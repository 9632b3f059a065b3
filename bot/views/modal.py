"""The register/edit modal: its blocks, and reading a submission back into field texts.

Every input block's `block_id` is the name of the test field it edits, so an error Tower
reports on a field lands inline on that block (`response_action: errors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DatePickerElement,
    ExternalDataMultiSelectElement,
    ExternalDataSelectElement,
    InputBlock,
    InputInteractiveElement,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.ids import ActionId, BlockId, CallbackId
from bot.views.fitting import truncate
from bot.views.memos import EditMemo, ReasonMemo
from tower.experiments.spec import CONFIDENCE_SCALE, IMPACT_SCALE, ExperimentKind, ExperimentSpec
from tower.policy import Policy

# The most a plain-text input holds, pre-filled or typed (Slack's limit; slack_sdk's
# element states none).
TEXT_INPUT_LIMIT = 3000


def _text(text: str, limit: int) -> PlainTextObject:
    return PlainTextObject(text=truncate(text, limit))


def option(label: str, value: str) -> Option:
    """One choice of a select, its label cut to Slack's limit."""
    return Option(label=truncate(label, Option.label_max_length), value=value)


def _input(
    block: BlockId,
    label: str,
    element: InputInteractiveElement,
    *,
    optional: bool = False,
    hint: str = "",
) -> InputBlock:
    element.action_id = block.value
    return InputBlock(
        block_id=block.value,
        label=_text(label, InputBlock.label_max_length),
        element=element,
        optional=optional,
        hint=_text(hint, InputBlock.hint_max_length) if hint else None,
    )


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(value)


def _static(options: list[tuple[str, str]], initial: str | None) -> StaticSelectElement:
    chosen = [option(label, value) for label, value in options if value == initial]
    return StaticSelectElement(
        options=[option(label, value) for label, value in options],
        initial_option=chosen[0] if chosen else None,
    )


def _picker(
    options: list[tuple[str, str]], initial: str | None
) -> StaticSelectElement | ExternalDataSelectElement:
    """A select of `options` (label, value); past Slack's 100 options, a searchable one
    whose options `bot/listeners/options.py` serves."""
    if len(options) <= StaticSelectElement.options_max_length:
        return _static(options, initial)
    chosen = None
    if initial:
        label = next((label for label, value in options if value == initial), initial)
        chosen = option(label, initial)
    return ExternalDataSelectElement(min_query_length=0, initial_option=chosen)


def _scale(block: BlockId, label: str, scale: Sequence[float], chosen: float | None) -> Block:
    """An optional select of one value of a score's scale (impact, confidence)."""
    options = [(f"{value:g}", f"{value:g}") for value in scale]
    return _input(
        block, label, _static(options, _number(chosen) if chosen else None), optional=True
    )


def _team_picker(
    policy: Policy, teams: list[str], chosen: str | None
) -> StaticSelectElement | ExternalDataSelectElement:
    """A select of the teams the person may register for."""
    initial = chosen or (teams[0] if len(teams) == 1 else None)
    return _picker([(_team_name(policy, t), t) for t in teams], initial)


def _team_name(policy: Policy, key: str) -> str:
    team = policy.team(key)
    return key if team is None else team.name


def _external(initial: tuple[str, ...]) -> ExternalDataMultiSelectElement:
    return ExternalDataMultiSelectElement(
        min_query_length=0,
        initial_options=[option(value, value) for value in initial] or None,
    )


def _plain(
    initial: str, *, multiline: bool = False, max_length: int | None = None
) -> PlainTextInputElement:
    return PlainTextInputElement(
        multiline=multiline, initial_value=initial or None, max_length=max_length
    )


def _decimal(initial: float | None) -> NumberInputElement:
    return NumberInputElement(
        is_decimal_allowed=True, initial_value=None if initial is None else _number(initial)
    )


def _date(initial: str) -> DatePickerElement:
    return DatePickerElement(initial_date=initial or None)


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
    memo = ""
    if editing and key is not None and version is not None:
        memo = EditMemo(key=key, version=version).dump()
    return _modal(
        CallbackId.EDIT if editing else CallbackId.REGISTER,
        f"Edit {key}" if editing else "Register a test",
        blocks,
        submit="Save" if editing else "Register",
        memo=memo,
    )


def reason_modal(action: str, key: str, version: int, where: dict[str, str]) -> dict[str, Any]:
    """Ask a manager why they reject or request changes."""
    verb = "Reject" if action == ActionId.REJECT else "Request changes to"
    reason = _input(BlockId.REASON, "Reason (the owner sees it)", _plain("", multiline=True))
    return _modal(
        CallbackId.DECISION_REASON,
        f"{verb} {key}",
        [reason],
        submit="Send",
        memo=ReasonMemo.model_validate(
            {"action": str(action), "key": key, "version": version, **where}
        ).dump(),
    )


def list_modal(title: str, lines: list[str]) -> dict[str, Any]:
    """A read-only modal listing `lines` (already mrkdwn), within Slack's 100 blocks."""
    room = SectionBlock.text_max_length
    sections: list[str] = []
    for line in lines:
        if sections and len(sections[-1]) + 1 + len(line) <= room:
            sections[-1] += "\n" + line
        else:
            sections.append(truncate(line, room))
    most = View.blocks_max_length
    if len(sections) > most:
        sections = [*sections[: most - 1], "…and more: `tower conflicts --all`"]
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=text))
        for text in sections or ["Nothing to show."]
    ]
    return _modal(None, title, blocks, close="Close")


def _modal(
    callback: CallbackId | None,
    title: str,
    blocks: Sequence[Block],
    *,
    submit: str | None = None,
    close: str = "Cancel",
    memo: str = "",
) -> dict[str, Any]:
    """A modal view as Slack takes it (slack_sdk checks it against Slack's limits)."""
    view = View(
        type="modal",
        callback_id=None if callback is None else callback.value,
        title=_text(title, View.title_max_length),
        submit=None if submit is None else _text(submit, View.submit_max_length),
        close=_text(close, View.close_max_length),
        private_metadata=memo or None,
        blocks=list(blocks),
    )
    # Always there, as Slack gives it back ("" for a form that remembers nothing).
    return {**view.to_dict(), "private_metadata": memo}


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
    return ContextBlock(elements=[MarkdownTextObject(text=note)])


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
