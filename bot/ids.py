"""Every action_id, block_id and callback_id the bot uses, in one place."""

from __future__ import annotations

import enum


class ActionId(enum.StrEnum):
    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"
    REJECT = "reject"
    ACKNOWLEDGE = "acknowledge_collision"
    MOVE_TO_FREE_SLOT = "move_to_free_slot"
    ASK_FOR_WAIVER = "ask_for_waiver"
    SHOW_ALL_COLLISIONS = "show_all_collisions"
    OPEN_REGISTER = "open_register"
    SURFACES = "surfaces"
    AUDIENCES = "audiences"
    EXCLUDE_AUDIENCES = "exclude_audiences"


class CallbackId(enum.StrEnum):
    REGISTER = "register_test"
    EDIT = "edit_test"
    DECISION_REASON = "decision_reason"


class BlockId(enum.StrEnum):
    """Input blocks of the register/edit modal: one per field, named like the field."""

    TITLE = "title"
    TEAM = "team"
    KIND = "kind"
    SURFACES = "surfaces"
    AUDIENCES = "audiences"
    EXCLUDE_AUDIENCES = "exclude_audiences"
    START = "start"
    END = "end"
    TRAFFIC = "traffic"
    EXCLUSION_GROUP = "exclusion_group"
    PRIMARY_KPI = "primary_kpi"
    BASELINE = "baseline"
    MDE = "mde"
    HYPOTHESIS = "hypothesis"
    IMPACT = "impact"
    CONFIDENCE = "confidence"
    EFFORT_WEEKS = "effort_weeks"
    REASON = "reason"
