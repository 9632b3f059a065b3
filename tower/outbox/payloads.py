"""What a notification's payload holds, kind by kind, and the earlier message it follows.

The payload is stored as JSON in `outbox_messages.payload`: what a channel needs besides
the text (a test's key for its buttons, a collision's reference) and what a later message
looks for to replace this one or answer in its thread. Each model here serialises
(`to_json`) to exactly the JSON stored before payloads were typed, keys in the same order,
so a row queued by an older version and one queued now read alike.

Reading is lenient: a stored payload is parsed when it is read (`read`, `payload_of`,
`follow_ups`), keys a model does not name are ignored, and a payload that does not fit
reads as None rather than failing a delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidationError, model_validator

from tower.outbox.kinds import NotificationKind

# A moment as stored: ISO 8601 with its offset, as `datetime.isoformat` writes it.
Moment = Annotated[datetime, PlainSerializer(lambda moment: moment.isoformat(), return_type=str)]
# A kind as stored: one this version knows, or the string an older version wrote.
StoredKind = NotificationKind | str


class Payload(BaseModel):
    """A notification's payload. Optional fields left None are not stored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_json(self) -> dict[str, Any]:
        """The payload as stored, keys in the order the fields are declared."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def read(cls, stored: Mapping[str, Any] | None) -> Self | None:
        """The payload a row holds; None when it does not fit this model."""
        try:
            return cls.model_validate(stored or {})
        except ValidationError:
            return None


class ExperimentRef(Payload):
    """About a test: its key (`registered`, `launch_blocked`, `approval_decided`)."""

    key: str


class VersionRef(ExperimentRef):
    """About one version of a test: the approval request, the decision, a status move."""

    version: int


class DeadlineMissed(ExperimentRef):
    """The plan cannot fit the test before its deadline."""

    deadline: date


class SlotsGiven(Payload):
    """The contested slots the plan gives to another team's test, by decision id."""

    decisions: list[str]


class CollisionRef(Payload):
    """About one collision: its reference (also as a list, as a summary names several, so
    one lookup finds either) and its tests' keys (rows of older versions may lack the
    list or the keys: they read as empty)."""

    collision: str
    collisions: list[str] = []
    keys: list[str] = []

    @classmethod
    def of(cls, ref: str, keys: list[str]) -> CollisionRef:
        return cls(collision=ref, collisions=[ref], keys=keys)


class UrgentCollision(Payload):
    """One collision a summary shows with its actions."""

    collision: str
    keys: list[str] = []
    line: str = ""


class CollisionsSummary(Payload):
    """A channel's summary of a batch: the collisions opened and resolved, and the most
    urgent ones shown with their actions."""

    collisions: list[str] = []
    resolved: list[str] = []
    urgent: list[UrgentCollision] = []


class SlaNotice(Payload):
    """A warning, breach notice or escalation of one SLA clock. A warning names its
    threshold, an escalation its ladder step and number; `merged_into` is the message that
    delivered it with others to the same recipient (`sla_notices`)."""

    clock_id: int
    policy: str
    subject: str
    cycle: int
    due_at: Moment
    threshold: float | None = None
    step: str | None = None
    number: int | None = None
    merged_into: int | None = None


class MergedNotices(Payload):
    """Several SLA notices to one recipient, delivered as one message."""

    notices: list[int]
    kinds: list[StoredKind]


class Digest(Payload):
    """The weekly digest: its ISO week, `2026-W10`."""

    week: str


# The payload model of each kind that has one.
PAYLOADS: dict[NotificationKind, type[Payload]] = {
    NotificationKind.REGISTERED: ExperimentRef,
    NotificationKind.APPROVAL_REQUESTED: VersionRef,
    NotificationKind.APPROVAL_DECIDED: ExperimentRef,
    NotificationKind.APPROVAL_VOIDED: VersionRef,
    NotificationKind.DECISION: VersionRef,
    NotificationKind.LAUNCH_BLOCKED: ExperimentRef,
    NotificationKind.STATUS_LIVE: VersionRef,
    NotificationKind.STATUS_CANCELLED: VersionRef,
    NotificationKind.RESULTS_REQUESTED: VersionRef,
    NotificationKind.DEADLINE_MISSED: DeadlineMissed,
    NotificationKind.SLOT_GIVEN: SlotsGiven,
    NotificationKind.COLLISION_OPENED: CollisionRef,
    NotificationKind.COLLISIONS_SUMMARY: CollisionsSummary,
    NotificationKind.COLLISION_RESOLVED: CollisionRef,
    NotificationKind.COLLISION_ACKNOWLEDGED: CollisionRef,
    NotificationKind.COLLISION_WAIVED: CollisionRef,
    NotificationKind.WAIVER_REQUESTED: CollisionRef,
    NotificationKind.SLA_WARNING: SlaNotice,
    NotificationKind.SLA_BREACH: SlaNotice,
    NotificationKind.SLA_ESCALATION: SlaNotice,
    NotificationKind.SLA_NOTICES: MergedNotices,
    NotificationKind.DIGEST: Digest,
}


def payload_of(kind: str, stored: Mapping[str, Any] | None) -> Payload | None:
    """A stored payload parsed by the model of its kind; None for a kind without one (or
    unknown to this version), or a payload that does not fit it."""
    known = NotificationKind.read(kind)
    model = None if known is None else PAYLOADS.get(known)
    return None if model is None else model.read(stored)


class Earlier(BaseModel):
    """A reference to an earlier message: the latest one sent to the same recipient of
    `kind` (or of any of `kinds`) whose payload holds the other values given, e.g.
    `Replace(kind=APPROVAL_REQUESTED, key="T-4")`. A payload list holds a value when it
    contains it: `Thread(kinds=[...], collisions="C-4")` finds a summary naming C-4 among
    others. Stored as `{"kind": ..., **match}` (or `{"kinds": [...], **match}`)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    kind: StoredKind | None = None
    kinds: list[StoredKind] | None = None

    @model_validator(mode="after")
    def _names_a_kind(self) -> Self:
        if not self.kinds_wanted:
            raise ValueError("a reference names the kind of the earlier message")
        return self

    @property
    def kinds_wanted(self) -> list[str]:
        """The kinds the earlier message may be of."""
        return [str(kind) for kind in (self.kinds or ([self.kind] if self.kind else []))]

    @property
    def match(self) -> dict[str, Any]:
        """The payload values the earlier message holds."""
        return dict(self.model_extra or {})

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class Thread(Earlier):
    """Answer in the earlier message's thread (`thread_of`)."""

    def references(self) -> dict[str, Any]:
        return {"thread_of": self.to_json()}


class Replace(Earlier):
    """Update the earlier message in place (`replaces`). `otherwise`: when there is none to
    replace, answer in this one's thread."""

    otherwise: Thread | None = Field(default=None, exclude=True)

    def references(self) -> dict[str, Any]:
        """The payload entries naming the earlier messages."""
        found = {"replaces": self.to_json()}
        return found | ({} if self.otherwise is None else self.otherwise.references())


Follows = Replace | Thread


def follow_ups(stored: Mapping[str, Any] | None) -> tuple[Replace | None, Thread | None]:
    """The earlier messages a stored payload names: the one it replaces, the one in whose
    thread it answers (None when it names none, or a reference that does not fit)."""
    payload = stored or {}
    return _reference(Replace, payload.get("replaces")), _reference(
        Thread, payload.get("thread_of")
    )


E = TypeVar("E", bound=Earlier)


def _reference(model: type[E], stored: Any) -> E | None:
    if not isinstance(stored, Mapping):
        return None
    try:
        return model.model_validate(stored)
    except ValidationError:
        return None
