"""The release protocol's state machine: which action moves a test from which state where."""

from __future__ import annotations

import enum

from tower.errors import TowerError
from tower.experiments.spec import ExperimentStatus as S


class Action(enum.StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    LAUNCH = "launch"
    COMPLETE = "complete"
    RECORD_RESULT = "record_result"
    CANCEL = "cancel"

    @property
    def verb(self) -> str:
        return self.value.replace("_", " ")


TRANSITIONS: dict[Action, tuple[frozenset[S], S]] = {
    Action.SUBMIT: (frozenset({S.DRAFT, S.CHANGES_REQUESTED}), S.SUBMITTED),
    Action.APPROVE: (frozenset({S.SUBMITTED}), S.APPROVED),
    Action.REQUEST_CHANGES: (frozenset({S.SUBMITTED}), S.CHANGES_REQUESTED),
    Action.REJECT: (frozenset({S.SUBMITTED}), S.REJECTED),
    Action.WITHDRAW: (
        frozenset({S.DRAFT, S.SUBMITTED, S.CHANGES_REQUESTED, S.APPROVED}),
        S.WITHDRAWN,
    ),
    Action.LAUNCH: (frozenset({S.APPROVED}), S.LIVE),
    Action.COMPLETE: (frozenset({S.LIVE}), S.COMPLETED),
    Action.RECORD_RESULT: (frozenset({S.COMPLETED}), S.RESULTS_RECORDED),
    Action.CANCEL: (frozenset({S.APPROVED, S.LIVE}), S.CANCELLED),
}


class IllegalTransition(TowerError):
    """An action the test's current state does not allow."""


def allowed_actions(status: S) -> list[Action]:
    """The actions a test in `status` can take, in lifecycle order."""
    return [action for action, (sources, _) in TRANSITIONS.items() if status in sources]


def next_status(key: str, status: S, action: Action) -> S:
    """Where `action` takes a test in `status`; `IllegalTransition` naming what is allowed."""
    sources, target = TRANSITIONS[action]
    if status in sources:
        return target
    allowed = ", ".join(a.verb for a in allowed_actions(status)) or "nothing: it is final"
    raise IllegalTransition(
        f"{key} is {status.value.replace('_', ' ')}: it cannot {action.verb} (allowed: {allowed})"
    )
