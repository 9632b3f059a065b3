"""What a test is, independent of storage: its kind, states and editable fields, and the
rules those fields must follow under a policy.

Users say "test"; the code says `Experiment` so pytest and `tower/tests` stay unambiguous.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from tower.db_limits import INTEGER_MAX
from tower.policy import Policy
from tower.text import LONG_TEXT_MAX, control_character, too_long

IMPACT_SCALE = (0.25, 0.5, 1.0, 2.0, 3.0)
CONFIDENCE_SCALE = (0.5, 0.8, 1.0)
TITLE_MAX_LENGTH = 200
KEY_MAX_NUMBER = INTEGER_MAX  # the largest number the registry's column holds
EXCLUSION_GROUP_MAX_LENGTH = 64
KPI_MAX_LENGTH = 64
_KEY = re.compile(r"T-([1-9][0-9]*)")


class ExperimentKind(enum.StrEnum):
    AB_TEST = "ab_test"
    MULTIVARIATE = "multivariate"
    PERSONALIZATION = "personalization"
    CAMPAIGN = "campaign"
    RELEASE = "release"


class ExperimentStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    LIVE = "live"
    COMPLETED = "completed"
    RESULTS_RECORDED = "results_recorded"
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"

    @property
    def is_active(self) -> bool:
        """The test still occupies pages, people and days (the engine counts it)."""
        return self in ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        """Nothing is left to do with the test: lists of work in hand leave it out."""
        return self in FINISHED_STATUSES

    @property
    def is_editable(self) -> bool:
        """The test's footprint, window and KPI may still be edited."""
        return self in EDITABLE_STATUSES


# The status groups, one home each (sets for SQL `IN`; a status asks with `is_...`).
# States in which a test still occupies pages, people and days.
ACTIVE_STATUSES = frozenset(
    {
        ExperimentStatus.DRAFT,
        ExperimentStatus.SUBMITTED,
        ExperimentStatus.CHANGES_REQUESTED,
        ExperimentStatus.APPROVED,
        ExperimentStatus.LIVE,
    }
)

# Tests with nothing left to do: lists of what people are working on leave them out.
FINISHED_STATUSES = frozenset(
    {
        ExperimentStatus.RESULTS_RECORDED,
        ExperimentStatus.REJECTED,
        ExperimentStatus.WITHDRAWN,
        ExperimentStatus.CANCELLED,
    }
)

# States in which a test's footprint, window and KPI may still be edited.
EDITABLE_STATUSES = frozenset(
    {
        ExperimentStatus.DRAFT,
        ExperimentStatus.SUBMITTED,
        ExperimentStatus.CHANGES_REQUESTED,
        ExperimentStatus.APPROVED,
    }
)


class ExperimentResult(enum.StrEnum):
    WINNER = "winner"
    LOSER = "loser"
    INCONCLUSIVE = "inconclusive"


def format_key(number: int) -> str:
    """The human key of test number `number`: `T-42`."""
    return f"T-{number}"


def parse_key(key: str) -> int:
    """The number in a human key; `ValueError` with a readable reason if it is not one."""
    match = _KEY.fullmatch(key.strip())
    if match is None:
        raise ValueError(f"{key!r} is not a test key (they look like T-42)")
    if len(match.group(1)) > len(str(KEY_MAX_NUMBER)) or int(match.group(1)) > KEY_MAX_NUMBER:
        raise ValueError(f"{key.strip()!r} is too big a key (the largest is T-{KEY_MAX_NUMBER})")
    return int(match.group(1))


@dataclass(frozen=True)
class ExperimentSpec:
    """Every field a team sets on a test: its footprint, window, KPI and scoring inputs."""

    title: str
    team: str
    owner: str
    kind: ExperimentKind
    surfaces: tuple[str, ...]
    start: date
    end: date
    audiences: tuple[str, ...] = ()
    exclude_audiences: tuple[str, ...] = ()
    traffic: float = 100.0
    exclusion_group: str | None = None
    primary_kpi: str | None = None
    baseline: float | None = None
    mde: float | None = None
    hypothesis: str = ""
    impact: float | None = None
    confidence: float | None = None
    effort_weeks: float | None = None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def as_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (lists, ISO dates, enum values)."""
        data: dict[str, Any] = {}
        for name in self.field_names():
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, date):
                value = value.isoformat()
            elif isinstance(value, enum.Enum):
                value = value.value
            data[name] = value
        return data


# The fields that make a test's footprint, window and KPI (in the roadmap's column order):
# changing any of them after approval voids the approval.
FOOTPRINT_FIELDS = (
    "surfaces",
    "audiences",
    "exclude_audiences",
    "start",
    "end",
    "traffic",
    "exclusion_group",
    "primary_kpi",
    "baseline",
    "mde",
)


@dataclass(frozen=True)
class FieldProblem:
    """A field of a spec that breaks a rule, and what to do about it."""

    field: str
    message: str


@dataclass
class _Problems:
    items: list[FieldProblem] = field(default_factory=list)

    def add(self, name: str, message: str) -> None:
        self.items.append(FieldProblem(name, message))


def validate_spec(spec: ExperimentSpec, policy: Policy) -> list[FieldProblem]:
    """Every rule `spec` breaks under `policy`, field by field (empty when it is valid)."""
    problems = _Problems()
    _check_identity(spec, policy, problems)
    _check_footprint(spec, policy, problems)
    _check_measurement(spec, policy, problems)
    return problems.items


def _check_identity(spec: ExperimentSpec, policy: Policy, problems: _Problems) -> None:
    if not spec.title.strip():
        problems.add("title", "a title is required")
    elif len(spec.title) > TITLE_MAX_LENGTH:
        problems.add("title", too_long("title", TITLE_MAX_LENGTH, len(spec.title)))
    if len(spec.hypothesis) > LONG_TEXT_MAX:
        problems.add("hypothesis", too_long("hypothesis", LONG_TEXT_MAX, len(spec.hypothesis)))
    for name in ("title", "hypothesis", "exclusion_group", "primary_kpi"):
        found = control_character(getattr(spec, name) or "")
        if found is not None:
            problems.add(
                name, f"remove the control character {found} (tabs and line breaks are fine)"
            )
    team = policy.team(spec.team)
    if team is None:
        known = ", ".join(t.key for t in policy.teams) or "none in the policy"
        problems.add("team", f"unknown team {spec.team!r} (teams: {known})")
    elif spec.owner not in team.members and not policy.is_manager(spec.owner):
        problems.add("owner", f"{spec.owner!r} is not a member of team {team.key!r} nor a manager")


def _check_footprint(spec: ExperimentSpec, policy: Policy, problems: _Problems) -> None:
    if not spec.surfaces:
        problems.add("surfaces", "name at least one surface (like web/checkout)")
    for name, values, known, what in (
        ("surfaces", spec.surfaces, policy.surface_paths, "surface"),
        ("audiences", spec.audiences, policy.segment_names, "audience segment"),
        ("exclude_audiences", spec.exclude_audiences, policy.segment_names, "audience segment"),
    ):
        unknown = [value for value in values if value not in known]
        if unknown:
            problems.add(name, f"unknown {what} {', '.join(map(repr, unknown))}")
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            problems.add(name, f"listed twice: {', '.join(repeated)}")
    both = sorted(set(spec.audiences) & set(spec.exclude_audiences))
    if both:
        problems.add("exclude_audiences", f"both targeted and excluded: {', '.join(both)}")
    _check_window(spec, problems)
    if not 0 < spec.traffic <= 100:
        problems.add("traffic", f"traffic is a percent in (0, 100], not {spec.traffic:g}")
    if spec.exclusion_group is not None and len(spec.exclusion_group) > EXCLUSION_GROUP_MAX_LENGTH:
        problems.add(
            "exclusion_group",
            too_long("exclusion group", EXCLUSION_GROUP_MAX_LENGTH, len(spec.exclusion_group)),
        )


def _check_measurement(spec: ExperimentSpec, policy: Policy, problems: _Problems) -> None:
    if spec.primary_kpi is not None and len(spec.primary_kpi) > KPI_MAX_LENGTH:
        problems.add("primary_kpi", too_long("KPI's name", KPI_MAX_LENGTH, len(spec.primary_kpi)))
    elif spec.primary_kpi is not None and policy.kpis and spec.primary_kpi not in policy.kpis:
        problems.add(
            "primary_kpi",
            f"unknown KPI {spec.primary_kpi!r} (KPIs: {', '.join(policy.kpis)})",
        )
    _check_scoring_inputs(spec, problems)


def scoring_problems(spec: ExperimentSpec) -> list[FieldProblem]:
    """The rules of `validate_spec` on what a score reads: the window and the scoring inputs
    (baseline, MDE, impact, confidence, effort). They need no policy, and are cheap enough
    to check on every score."""
    problems = _Problems()
    _check_window(spec, problems)
    _check_scoring_inputs(spec, problems)
    return problems.items


def _check_window(spec: ExperimentSpec, problems: _Problems) -> None:
    if spec.end < spec.start:
        problems.add("end", f"the end {spec.end} is before the start {spec.start}")


def _check_scoring_inputs(spec: ExperimentSpec, problems: _Problems) -> None:
    baseline, mde = spec.baseline, spec.mde
    if baseline is not None and not 0 < baseline < 1:
        problems.add("baseline", f"the baseline is a rate in (0, 1), not {baseline:g}")
    if mde is not None and not 0 < mde < math.inf:
        problems.add("mde", f"the minimum detectable effect must be positive, not {mde:g}")
    elif mde is not None and baseline is not None and 0 < baseline < 1 <= baseline * (1 + mde):
        problems.add(
            "mde",
            f"{mde:g} on a baseline of {baseline:g} aims at a rate of {baseline * (1 + mde):g}: "
            "baseline * (1 + mde) must stay below 1",
        )
    if spec.impact is not None and spec.impact not in IMPACT_SCALE:
        problems.add("impact", f"impact is one of {_scale(IMPACT_SCALE)}, not {spec.impact:g}")
    if spec.confidence is not None and spec.confidence not in CONFIDENCE_SCALE:
        problems.add(
            "confidence",
            f"confidence is one of {_scale(CONFIDENCE_SCALE)}, not {spec.confidence:g}",
        )
    if spec.effort_weeks is not None and not 0 < spec.effort_weeks < math.inf:
        problems.add("effort_weeks", f"effort must be positive, not {spec.effort_weeks:g}")


def _scale(values: tuple[float, ...]) -> str:
    return ", ".join(f"{value:g}" for value in values)


def names_outside(spec: ExperimentSpec, policy: Policy) -> tuple[str, ...]:
    """The surfaces and segments `spec` names that `policy` does not have (the policy was
    edited after the test was registered): until it is edited, or the names restored, the
    test cannot be placed, checked or approved."""
    surfaces, segments = policy.surface_paths, policy.segment_names
    chosen = (*spec.audiences, *spec.exclude_audiences)
    return tuple(
        [path for path in spec.surfaces if path not in surfaces]
        + [name for name in chosen if name not in segments]
    )
