"""What the load sends: the mix of Slack requests, each built as Slack would send it.

Mostly `/tower list`, `/tower show T-n` and App Home openings; some `/tower queue`,
`/tower conflicts`, `/tower plan`, register submissions and *Acknowledge* clicks. The kinds
come in a fixed cycle of 17 (`CYCLE`), the rare ones early, so a short run sends every kind;
who sends them and on what is drawn from a seeded random stream.

A register submission is the modal the registrant opened with `/tower register` (before the
load), filled in with a fresh synthetic test (`tower.bench.synthetic.portfolio.fresh_tests`)
under a title no other test has. An *Acknowledge* click names an open collision nobody has
clicked yet, as the button of its alert does (`C-n:T-m`): first the open blocking collisions
`tower conflicts` listed before the load, then those the server announced to the fake Slack
during the run, clicked by a member of a team involved (a manager on the tower channel).
When none is left, the click is not sent and counts as skipped.
"""

from __future__ import annotations

import enum
import itertools
import json
import random
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.ids import ActionId, BlockId
from bot.product_bench.fake_slack import Call, FakeSlack
from bot.product_bench.slack_requests import (
    FORM,
    JSON,
    TEAM_ID,
    click_body,
    command_body,
    event_body,
    fill_modal,
    home_opened_event,
    submission_body,
)
from bot.views.buttons import CollisionButton, NotOurs
from tower.experiments.spec import ExperimentSpec


class Kind(enum.StrEnum):
    LIST = "list"
    SHOW = "show"
    HOME = "home"
    QUEUE = "queue"
    CONFLICTS = "conflicts"
    PLAN = "plan"
    REGISTER = "register"
    ACKNOWLEDGE = "acknowledge"


READS = (Kind.LIST, Kind.SHOW, Kind.HOME, Kind.QUEUE, Kind.CONFLICTS, Kind.PLAN)
CLICKS = (Kind.ACKNOWLEDGE,)
COMMANDS = (Kind.LIST, Kind.SHOW, Kind.QUEUE, Kind.CONFLICTS, Kind.PLAN)
CYCLE = (
    *(Kind.LIST, Kind.SHOW, Kind.HOME, Kind.REGISTER),
    *(Kind.LIST, Kind.SHOW, Kind.HOME, Kind.ACKNOWLEDGE),
    *(Kind.LIST, Kind.SHOW, Kind.HOME, Kind.QUEUE),
    *(Kind.CONFLICTS, Kind.LIST, Kind.SHOW, Kind.HOME, Kind.PLAN),
)
# The text of the acknowledgement a slash command answers with, when it works.
COMMAND_TEXT = {
    Kind.LIST: ("list", "Your tests"),
    Kind.QUEUE: ("queue", "The ranked pipeline"),
    Kind.CONFLICTS: ("conflicts", "Conflicts"),
    Kind.PLAN: ("plan", "The plan"),
}
ACKNOWLEDGED = "You acknowledged"


def kinds_in(count: int) -> list[Kind]:
    """The kinds of the first `count` requests of a run."""
    return list(itertools.islice(itertools.cycle(CYCLE), count))


@dataclass(frozen=True)
class Request:
    """One request and what tells its answer apart: the reply's text for a slash command,
    the title for a registration, the collision for a click; the user it is for."""

    kind: Kind
    body: bytes
    content_type: str
    user: str
    expect: str
    channel: str = ""


@dataclass(frozen=True)
class People:
    """Who is who in the synthetic policy: teams, their members and channels, managers."""

    members: Mapping[str, Sequence[str]]  # team key -> members
    channels: Mapping[str, str]  # team key -> channel
    managers: Sequence[str]
    tower_channel: str

    @classmethod
    def of(cls, policy: Mapping[str, Any]) -> People:
        teams = policy["teams"]
        return cls(
            members={t["key"]: list(t["members"]) for t in teams},
            channels={t["key"]: t["channel"] for t in teams},
            managers=list(policy["managers"]),
            tower_channel=str(policy["tower_channel"]),
        )

    @property
    def everyone(self) -> list[str]:
        return sorted({m for members in self.members.values() for m in members})

    def team_of_channel(self, channel: str) -> str | None:
        return next((team for team, c in self.channels.items() if c == channel), None)


def register_answers(spec: ExperimentSpec, title: str) -> dict[str, Any]:
    """The register modal filled in with `spec`, under `title`."""

    def number(value: float | None) -> str:
        return "" if value is None else f"{value:g}"

    return {
        BlockId.TITLE.value: title,
        BlockId.TEAM.value: spec.team,
        BlockId.KIND.value: spec.kind.value,
        BlockId.SURFACES.value: list(spec.surfaces),
        BlockId.AUDIENCES.value: list(spec.audiences),
        BlockId.EXCLUDE_AUDIENCES.value: list(spec.exclude_audiences),
        BlockId.START.value: spec.start.isoformat(),
        BlockId.END.value: spec.end.isoformat(),
        BlockId.TRAFFIC.value: number(spec.traffic),
        BlockId.EXCLUSION_GROUP.value: spec.exclusion_group or "",
        BlockId.PRIMARY_KPI.value: spec.primary_kpi or "",
        BlockId.BASELINE.value: number(spec.baseline),
        BlockId.MDE.value: number(spec.mde),
        BlockId.HYPOTHESIS.value: spec.hypothesis,
        BlockId.IMPACT.value: number(spec.impact),
        BlockId.CONFIDENCE.value: number(spec.confidence),
        BlockId.EFFORT_WEEKS.value: number(spec.effort_weeks),
    }


@dataclass(frozen=True)
class Registration:
    """A register modal as its owner opened it, and the test they will fill it in with."""

    owner: str
    view: Mapping[str, Any]
    spec: ExperimentSpec
    title: str


@dataclass(frozen=True)
class OpenCollision:
    """A collision to acknowledge, who clicks and where (the alert's channel)."""

    ref: str
    first_key: str | None
    clicker: str
    channel: str
    ts: str = "1700000000.000001"


@dataclass
class CollisionPool:
    """Open collisions nobody has clicked yet: those listed before the load, then those the
    server announces to the fake Slack, oldest first."""

    people: People
    rng: random.Random
    fake: FakeSlack
    waiting: deque[OpenCollision] = field(default_factory=deque)
    seen: set[str] = field(default_factory=set)
    _read_calls: int = 0

    def add_listed(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Records of `tower conflicts --format json` still open."""
        for record in records:
            if record.get("status") != "open" or str(record["id"]).upper() in self.seen:
                continue
            keys, teams = record.get("keys") or [], record.get("teams") or []
            team = teams[0] if teams else None
            clicker, channel = self._clicker(team)
            self._add(OpenCollision(record["id"], keys[0] if keys else None, clicker, channel))

    def take(self) -> OpenCollision | None:
        if not self.waiting:
            self._read_alerts()
        return self.waiting.popleft() if self.waiting else None

    def _add(self, collision: OpenCollision) -> None:
        self.seen.add(collision.ref.upper())
        self.waiting.append(collision)

    def _clicker(self, team: str | None) -> tuple[str, str]:
        """A member of `team` and its channel; a manager on the tower channel without one."""
        if team is None or team not in self.people.members:
            return self.rng.choice(list(self.people.managers)), self.people.tower_channel
        return self.rng.choice(list(self.people.members[team])), self.people.channels[team]

    def _read_alerts(self) -> None:
        calls = self.fake.calls_since(self._read_calls)
        self._read_calls += len(calls)
        for call in calls:
            if call.method == "chat.postMessage":
                self._add_alerted(call)

    def _add_alerted(self, call: Call) -> None:
        channel = str(call.args.get("channel", ""))
        for value in _acknowledge_values(call):
            try:
                button = CollisionButton.parse(value)
            except NotOurs:
                continue
            ref, key = button.ref, button.key
            if ref.upper() in self.seen:
                continue
            team = self.people.team_of_channel(channel)
            clicker, _ = self._clicker(team)
            self._add(OpenCollision(ref, key, clicker, channel))


def _acknowledge_values(call: Call) -> list[str]:
    blocks = call.args.get("blocks") or []
    parsed = json.loads(blocks) if isinstance(blocks, str) else blocks
    return [
        str(element.get("value", ""))
        for block in parsed
        if isinstance(block, dict) and block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("action_id") == ActionId.ACKNOWLEDGE.value
    ]


@dataclass
class Traffic:
    """Builds the next request of each kind (one thread builds, many send)."""

    people: People
    tests: int
    rng: random.Random
    registrations: deque[Registration]
    collisions: CollisionPool
    last_registration: Registration | None = None
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def trigger_id(self) -> str:
        return f"{next(self._counter)}.{TEAM_ID}.trigger"

    def any_member(self) -> tuple[str, str]:
        """A random team member (a manager one time in ten) and a channel of theirs."""
        if self.rng.random() < 0.1:
            return self.rng.choice(list(self.people.managers)), self.people.tower_channel
        team = self.rng.choice(sorted(self.people.members))
        return self.rng.choice(list(self.people.members[team])), self.people.channels[team]

    def build(self, kind: Kind) -> Request | None:
        """The next request of `kind`, or None when there is nothing left to send."""
        if kind == Kind.REGISTER:
            return self.register()
        if kind == Kind.ACKNOWLEDGE:
            return self.acknowledge()
        user, channel = self.any_member()
        if kind == Kind.HOME:
            body = event_body(home_opened_event(user), event_id=f"Ev{next(self._counter):08d}")
            return Request(kind, body, JSON, user, "views.publish")
        if kind == Kind.SHOW:
            key = f"T-{self.rng.randint(1, self.tests)}"
            return self.command(kind, f"show {key}", key, user, channel)
        text, expect = COMMAND_TEXT[kind]
        return self.command(kind, text, expect, user, channel)

    def command(self, kind: Kind, text: str, expect: str, user: str, channel: str) -> Request:
        body = command_body(text, user=user, channel=channel, trigger_id=self.trigger_id())
        return Request(kind, body, FORM, user, expect, channel)

    def register(self) -> Request | None:
        if not self.registrations:
            return None
        registration = self.last_registration = self.registrations.popleft()
        view = fill_modal(
            registration.view, register_answers(registration.spec, registration.title)
        )
        body = submission_body(view, user=registration.owner, trigger_id=self.trigger_id())
        return Request(Kind.REGISTER, body, FORM, registration.owner, registration.title)

    def acknowledge(self) -> Request | None:
        collision = self.collisions.take()
        if collision is None:
            return None
        body = click_body(
            ActionId.ACKNOWLEDGE.value,
            CollisionButton(ref=collision.ref, key=collision.first_key).value,
            user=collision.clicker,
            channel=collision.channel,
            ts=collision.ts,
            trigger_id=self.trigger_id(),
        )
        return Request(
            Kind.ACKNOWLEDGE, body, FORM, collision.clicker, collision.ref, collision.channel
        )
