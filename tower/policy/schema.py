"""The shape of a policy file: every section, its fields and its documented default.

Only `surfaces` and `audiences` are required; every other section has a default so a small
company starts with a ten-line file. Checks that relate one section to another (a funnel step
naming a surface, an overlap naming a segment) live in `tower.policy.checks`.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from datetime import date, time
from functools import cached_property
from typing import Annotated, Any, Literal

import holidays
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tower.policy.trees import walk_segments, walk_surfaces

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # Monday 0
TeamKind = Literal["agile", "bau"]
ScoringModel = Literal["tower", "rice", "ice", "pie", "wsjf"]
EscalationStep = Literal["owner", "team_channel", "managers"]
SlaEvent = Literal[
    "submitted",
    "changes_requested",
    "approved",
    "rejected",
    "withdrawn",
    "cancelled",
    "collision_opened",
    "collision_acknowledged",
    "collision_resolved",
    "collision_waived",
    "completed",
    "results_recorded",
]

WORKWEEK: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
TEAM_KINDS: tuple[TeamKind, ...] = ("agile", "bau")
ESCALATION_LADDER: tuple[EscalationStep, ...] = ("owner", "team_channel", "managers")

_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")
_SLACK_CHANNEL = re.compile(r"[CG][A-Z0-9]{2,}")
_NODE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):[0-5][0-9]")


def _slack_user(value: str) -> str:
    if not _SLACK_USER.fullmatch(value):
        raise ValueError(f"{value!r} is not a Slack user ID (they look like U0123ABCD)")
    return value


def _slack_channel(value: str) -> str:
    if not _SLACK_CHANNEL.fullmatch(value):
        raise ValueError(f"{value!r} is not a Slack channel ID (they look like C0123ABCD)")
    return value


def _node_name(value: str) -> str:
    if not _NODE_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid name: use lower-case letters, digits, '-' and '_'"
        )
    return value


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like Europe/London)"
        ) from None
    return value


def _holiday_country(value: str) -> str:
    if value not in holidays.list_supported_countries():
        raise ValueError(f"no holiday calendar for country {value!r} (use ISO codes like GB, FR)")
    return value


SlackUserId = Annotated[str, AfterValidator(_slack_user)]
SlackChannelId = Annotated[str, AfterValidator(_slack_channel)]
NodeName = Annotated[str, AfterValidator(_node_name)]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]


def _clock_time(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError('put times in quotes, like "17:30": YAML reads 17:30 unquoted as a number')
    if isinstance(value, str) and not _CLOCK.fullmatch(value):
        raise ValueError(f'{value!r} is not a time of day like "09:00"')
    return value


def _yaml_boolean_as_text(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError('put the country code in quotes, like "NO": YAML reads it as yes/no')
    return value


HolidayCountry = Annotated[
    str, BeforeValidator(_yaml_boolean_as_text), AfterValidator(_holiday_country)
]
ClockTime = Annotated[time, BeforeValidator(_clock_time)]
Share = Annotated[float, Field(gt=0, le=1)]


def _range_in_order(high_field: str, low_field: str, message: str) -> Any:
    """A section's validator of `high_field`, the upper end of a range whose lower end is
    `low_field` (declared before it, so read first; absent when it failed): below that,
    `message` is the error, with `{high}` and `{low}` filled in."""

    def in_order(high: Any, info: ValidationInfo) -> Any:
        low = info.data.get(low_field)
        if low is not None and high < low:
            raise ValueError(message.format(high=high, low=low))
        return high

    return field_validator(high_field)(in_order)


class Section(BaseModel):
    """Base of every policy section: unknown keys are errors, values never change after load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Calendar(Section):
    """When the business works: SLA clocks only run inside these hours."""

    working_hours: tuple[ClockTime, ClockTime] = (time(9, 0), time(17, 30))
    working_days: list[Weekday] = Field(default_factory=lambda: [*WORKWEEK], min_length=1)
    holidays: HolidayCountry | None = None
    holiday_region: str | None = None  # e.g. ENG within GB: adds the region's bank holidays
    closed: list[date] = Field(default_factory=list)

    @field_validator("holiday_region")
    @classmethod
    def _known_region(cls, region: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("holidays")
        if region is None:
            return None
        if country is None:
            raise ValueError("a holiday_region needs a holidays country")
        regions = holidays.country_holidays(country).subdivisions
        if region not in regions:
            raise ValueError(f"{country} has no region {region!r} (regions: {', '.join(regions)})")
        return region

    @field_validator("working_hours")
    @classmethod
    def _hours_in_order(cls, hours: tuple[time, time]) -> tuple[time, time]:
        opens, closes = hours
        if opens >= closes:
            raise ValueError(f"opening {opens:%H:%M} must come before closing {closes:%H:%M}")
        return hours

    @property
    def hours_per_day(self) -> float:
        """Length of a working day in hours."""
        opens, closes = self.working_hours
        return (closes.hour * 60 + closes.minute - opens.hour * 60 - opens.minute) / 60


class Team(Section):
    """A team that owns tests: an agile squad or a business-as-usual group."""

    key: NodeName
    name: str = Field(min_length=1)
    kind: TeamKind
    channel: SlackChannelId | None = None
    members: list[SlackUserId] = Field(default_factory=list)


class SurfaceNode(Section):
    """A channel, page or slot; a test on a node covers its whole subtree. `send_days`:
    the weekdays a test there may start on (inherited by the subtree; none: every day)."""

    weekly_visitors: int | None = Field(default=None, ge=0)
    send_days: list[Weekday] | None = Field(default=None, min_length=1)
    children: dict[NodeName, SurfaceNode] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _empty_leaf(cls, data: Any) -> Any:
        return {} if data is None else data


class AudienceNode(Section):
    """A customer segment with its weekly reachable size; children are disjoint by default."""

    size: int = Field(ge=0)
    children: dict[NodeName, AudienceNode] = Field(default_factory=dict)


class Overlap(Section):
    """Two non-nested segments that share people: `share` of the smaller one is in both."""

    a: str
    b: str
    share: Share


class ContactCap(Section):
    """At most `max` activities may reach the same people on one channel within `per_days` days."""

    channel: str
    max: int = Field(ge=1)
    per_days: int = Field(ge=1)


class FreezeWindow(Section):
    """Days on which no test may start or run on the given surfaces (all when empty)."""

    name: str = Field(min_length=1)
    start: date
    end: date
    surfaces: list[str] = Field(default_factory=list)
    team_kinds: list[TeamKind] = Field(default_factory=lambda: [*TEAM_KINDS], min_length=1)
    reason: str = ""

    _in_order = _range_in_order("end", "start", "end {high} is before start {low}")


class Protocol(Section):
    """Release-protocol rules a test must pass before it is approved."""

    min_lead_business_days: int = Field(default=2, ge=0)
    min_duration_days: int = Field(default=7, ge=1)
    max_duration_days: int = Field(default=56, ge=1)
    max_concurrent_per_surface: int = Field(default=3, ge=1)
    approvals_required: int = Field(default=1, ge=1)
    allow_self_approval: bool = False

    _durations_in_order = _range_in_order(
        "max_duration_days", "min_duration_days", "{high} is smaller than min_duration_days ({low})"
    )


class SlaPolicy(Section):
    """A response-time promise measured in business time, with warnings and escalations."""

    key: NodeName
    name: str = Field(min_length=1)
    start: SlaEvent
    stop: list[SlaEvent] = Field(min_length=1)
    pause: list[SlaEvent] = Field(default_factory=list)
    resume: list[SlaEvent] = Field(default_factory=list)
    target_business_hours: float | None = Field(default=None, gt=0)
    target_business_days: float | None = Field(default=None, gt=0)
    warn_at: list[Annotated[float, Field(gt=0, lt=1)]] = Field(default_factory=lambda: [0.75])
    escalation: list[EscalationStep] = Field(
        default_factory=lambda: [*ESCALATION_LADDER], min_length=1
    )
    per_team: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> SlaPolicy:
        if (self.target_business_hours is None) == (self.target_business_days is None):
            raise ValueError("give exactly one of target_business_hours and target_business_days")
        return self

    def target_hours(self, calendar: Calendar) -> float:
        """The target in business hours, a business day being the calendar's working day."""
        if self.target_business_hours is not None:
            return self.target_business_hours
        assert self.target_business_days is not None
        return self.target_business_days * calendar.hours_per_day


def default_sla_policies() -> list[SlaPolicy]:
    """The promises every organisation starts with (business day = the calendar's hours)."""
    return [
        SlaPolicy(
            key="review",
            name="Review within 2 business days of submission",
            start="submitted",
            stop=["approved", "rejected", "withdrawn", "cancelled"],
            pause=["changes_requested"],
            resume=["submitted"],
            target_business_days=2,
        ),
        SlaPolicy(
            key="conflict-ack",
            name="Conflict acknowledged within 4 business hours",
            start="collision_opened",
            stop=["collision_acknowledged", "collision_resolved", "collision_waived"],
            target_business_hours=4,
            per_team=True,
        ),
        SlaPolicy(
            key="results",
            name="Results recorded within 5 business days after completion",
            start="completed",
            stop=["results_recorded", "cancelled"],
            target_business_days=5,
        ),
    ]


class Scoring(Section):
    """Which prioritization model ranks the whole portfolio, and its statistical settings."""

    model: ScoringModel = "tower"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    power: float = Field(default=0.8, gt=0, lt=1)
    lever_min: float = Field(default=0.5, gt=0)
    lever_max: float = Field(default=2.0, gt=0)
    urgency_horizon_days: int = Field(default=28, ge=1)

    _lever_range_in_order = _range_in_order(
        "lever_max", "lever_min", "{high:g} is smaller than lever_min ({low:g})"
    )


class Policy(BaseModel):
    """The organisation and its rules, as loaded from one YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName = "UTC"
    calendar: Calendar = Field(default_factory=Calendar)
    managers: list[SlackUserId] = Field(default_factory=list)
    tower_channel: SlackChannelId | None = None
    teams: list[Team] = Field(default_factory=list)
    surfaces: dict[NodeName, SurfaceNode] = Field(min_length=1)
    funnels: dict[NodeName, list[str]] = Field(default_factory=dict)
    audiences: dict[NodeName, AudienceNode] = Field(min_length=1, max_length=1)
    overlaps: list[Overlap] = Field(default_factory=list)
    contact_caps: list[ContactCap] = Field(default_factory=list)
    kpis: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    freeze_windows: list[FreezeWindow] = Field(default_factory=list)
    protocol: Protocol = Field(default_factory=Protocol)
    sla: list[SlaPolicy] = Field(default_factory=default_sla_policies)
    scoring: Scoring = Field(default_factory=Scoring)

    @cached_property
    def surface_paths(self) -> frozenset[str]:
        """Every surface node's slash path (`web/checkout/cart`)."""
        return frozenset(entry.path for entry in walk_surfaces(self.surfaces))

    @cached_property
    def segment_names(self) -> frozenset[str]:
        """Every audience segment's name."""
        return frozenset(entry.name for entry in walk_segments(self.audiences))

    @property
    def root_segment(self) -> str:
        """The segment an empty audience list means: everyone."""
        return next(iter(self.audiences))

    def managers_destination(self) -> list[str]:
        """Where managers are told: the tower channel, else each manager directly."""
        return [self.tower_channel] if self.tower_channel else list(self.managers)

    def send_days(self, path: str) -> frozenset[int] | None:
        """The weekdays (Monday 0) a test on surface `path` may start on: its own
        `send_days` or its nearest ancestor's; None: every day. Found through a map of the
        nodes that set them, made once per surface tree (approvals ask for it)."""
        made = self.__dict__.get("_send_days_by_path")
        if made is None or made[0] is not self.surfaces:
            by_path: dict[str, frozenset[int]] = {}
            stack = [(name, node) for name, node in self.surfaces.items()]
            while stack:
                at, node = stack.pop()
                if node.send_days is not None:
                    by_path[at] = frozenset(WEEKDAYS.index(day) for day in node.send_days)
                stack += [(f"{at}/{name}", child) for name, child in node.children.items()]
            made = self.__dict__["_send_days_by_path"] = (self.surfaces, by_path)
        by_path = made[1]
        parts = path.split("/")
        for depth in range(len(parts), 0, -1):
            found = by_path.get("/".join(parts[:depth]))
            if found is not None:
                return found
        return None

    def allowed_starts(self, paths: Iterable[str]) -> frozenset[int] | None:
        """The weekdays a test on all of `paths` may start on (`shared_send_days`)."""
        return shared_send_days(self.send_days(path) for path in paths)

    def team(self, key: str) -> Team | None:
        """The team with this key, if the policy has one."""
        # Looked up often (every collision names its teams): through a dict made once per
        # list of teams (a copy of the policy with other teams gets its own).
        made = self.__dict__.get("_teams_by_key")
        if made is None or made[0] is not self.teams:
            by_key: dict[str, Team] = {}
            for team in self.teams:
                by_key.setdefault(team.key, team)
            made = self.__dict__["_teams_by_key"] = (self.teams, by_key)
        return made[1].get(key)

    def teams_of(self, user: str) -> list[Team]:
        """The teams this Slack user belongs to."""
        return [team for team in self.teams if user in team.members]

    @cached_property
    def people(self) -> frozenset[str]:
        """Everyone the policy names: the managers and every team's members."""
        return frozenset([*self.managers, *(m for team in self.teams for m in team.members)])

    def is_manager(self, user: str) -> bool:
        """Whether this Slack user is a control-tower manager."""
        return user in self.managers


def shared_send_days(each: Iterable[frozenset[int] | None]) -> frozenset[int] | None:
    """The weekdays every one of `each` allows (None: every day; empty: none)."""
    allowed: frozenset[int] | None = None
    for days in each:
        if days is not None:
            allowed = days if allowed is None else allowed & days
    return allowed
