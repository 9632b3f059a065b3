"""Who hears about an SLA clock, and in what words.

A clock is about a test (`T-42`) or a collision (`C-7`, or `C-7:team-key` when each involved
team has its own clock). Each step of a policy's escalation ladder names a kind of recipient:

- `owner`: the test's owner (a Slack user); for a collision, the owners of the tests in it
  (of that team's tests only, for a per-team clock);
- `team_channel`: the owning team's Slack channel (every involved team's, for a collision
  clock that is not per team); a team without a channel is skipped;
- `managers`: the policy's tower channel if it has one, else each manager directly.

Messages are plain and quantified: what is due, how many business hours are left or overdue,
and when it is or was due on the calendar's wall clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from tower.collisions.details import CollisionDetails
from tower.collisions.models import Collision
from tower.experiments.models import Experiment
from tower.messages import Message, Person, Typed
from tower.policy import Policy
from tower.policy.schema import EscalationStep, SlaPolicy

STEP_NAMES: dict[EscalationStep, str] = {
    "owner": "the owner",
    "team_channel": "the team channel",
    "managers": "the managers",
}
# How the default promises read in a sentence, before their subject; any other policy
# falls back to its name.
_ACTIVITIES = {
    "review": "Review of ",
    "conflict-ack": "Acknowledgement of ",
    "results": "Recording the results of ",
}
# A collision's reference lists this many tests, then says how many more there are.
LISTED_TESTS = 3


@dataclass(frozen=True)
class Party:
    """Someone answerable for a clock: a test's owner and the team that owns the test."""

    owner: str
    team: str


@dataclass(frozen=True)
class ClockSubject:
    """What a clock is about, in words, and who answers for it."""

    label: Message
    parties: tuple[Party, ...]


def experiment_subject(experiment: Experiment) -> ClockSubject:
    """A test: `T-42 'Sticky basket'`, answered for by its owner and team."""
    return ClockSubject(
        label=_titled(experiment),
        parties=(Party(owner=experiment.owner, team=experiment.team),),
    )


def collision_subject(
    collision: Collision, policy: Policy, *, team: str | None = None
) -> ClockSubject:
    """A collision, for every team in it or (per-team clock) for one team only."""
    tests = sorted(collision.experiments, key=lambda experiment: experiment.number)
    if tests:
        shown: list[Message | str] = [_titled(test) for test in tests[:LISTED_TESTS]]
        hidden = len(tests) - len(shown)
    else:  # the tests are gone: fall back to the keys recorded with the collision
        keys = list(CollisionDetails.of(collision).keys)
        shown, hidden = list(keys[:LISTED_TESTS]), max(len(keys) - LISTED_TESTS, 0)
    between = Message.of(" vs ").join(shown) + (f" and {hidden} more" if hidden else "")
    label = Message.of(f"conflict C-{collision.id}")
    if between.parts:
        label = Message.of(label, " (", between, ")")
    if team is not None:
        known = policy.team(team)
        label += f" by {known.name if known is not None else team}"
    parties = tuple(
        Party(owner=test.owner, team=test.team)
        for test in tests
        if team is None or test.team == team
    )
    return ClockSubject(label=label, parties=parties)


def _titled(experiment: Experiment) -> Message:
    """`T-42 'Sticky basket'`: the key, and the title as its owner typed it."""
    return Message.of(f"{experiment.key} '", Typed(experiment.title), "'")


def recipients(step: EscalationStep, policy: Policy, subject: ClockSubject) -> list[str]:
    """The Slack users or channels a ladder step reaches (empty when it reaches nobody)."""
    if step == "owner":
        return _unique(party.owner for party in subject.parties)
    if step == "team_channel":
        teams = (policy.team(party.team) for party in subject.parties)
        return _unique(team.channel for team in teams if team is not None and team.channel)
    if policy.tower_channel:
        return [policy.tower_channel]
    return _unique(policy.managers)


def warning_text(
    sla: SlaPolicy,
    subject: ClockSubject,
    *,
    threshold: float,
    hours_left: float,
    due_at: datetime,
    target_hours: float,
    zone: ZoneInfo,
) -> Message:
    """A reminder that a share of the target has gone."""
    gone = (
        f"{threshold:.0%} of the {_hours(target_hours)} allowed have gone"
        if hours_left > 0
        else f"this {threshold:.0%} reminder is late: all {_hours(target_hours)} have gone"
    )
    return Message.of(_activity(sla, subject), f" {_due_phrase(hours_left, due_at, zone)}: {gone}.")


def breach_text(
    sla: SlaPolicy,
    subject: ClockSubject,
    *,
    hours_left: float,
    due_at: datetime,
    target_hours: float,
    zone: ZoneInfo,
) -> Message:
    """The notice that the promise is broken."""
    return Message.of(
        _activity(sla, subject),
        f" {_due_phrase(hours_left, due_at, zone)}: ",
        f"the target was {_hours(target_hours)} ({sla.name}).",
        _owners(subject),
    )


def escalation_text(
    sla: SlaPolicy,
    subject: ClockSubject,
    *,
    step: EscalationStep,
    number: int,
    ladder: Sequence[EscalationStep],
    hours_left: float,
    due_at: datetime,
    zone: ZoneInfo,
) -> Message:
    """An escalation to ladder step `number` (counted from 0, the breach notice's step)."""
    return Message.of(
        f"Escalated to {STEP_NAMES[step]} (step {number + 1} of {len(ladder)}): ",
        _activity(sla, subject),
        f" {_due_phrase(hours_left, due_at, zone)}.",
        _owners(subject),
    )


def format_moment(moment: datetime, zone: ZoneInfo) -> str:
    """A wall-clock time people read at a glance: `Tue 24 Nov 15:30 Europe/London`."""
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %H:%M} {zone.key}"


def _activity(sla: SlaPolicy, subject: ClockSubject) -> Message:
    activity = _ACTIVITIES.get(sla.key)
    if activity is None:
        return Message.of(subject.label, f" ({sla.name})")
    return Message.of(activity, subject.label)


def _due_phrase(hours_left: float, due_at: datetime, zone: ZoneInfo) -> str:
    when = format_moment(due_at, zone)
    if hours_left > 0:
        return f"is due in {_hours(hours_left)} ({when})"
    overdue = -hours_left
    if round(overdue, 1) == 0:
        return f"is now overdue (it was due {when})"
    return f"is {_hours(overdue)} overdue (it was due {when})"


def _hours(hours: float) -> str:
    return f"{hours:.1f} business hours"


def _owners(subject: ClockSubject) -> Message:
    owners = _unique(party.owner for party in subject.parties)
    if not owners:
        return Message()
    return Message.of(" Owner: ", Message.of(", ").join(Person(owner) for owner in owners), ".")


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
