"""Approval gates: what a test must pass before it is approved, and again before it launches.

Each gate says what to fix when it fails. Who may approve is not a gate but a permission
(see `tower.experiments.permissions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from tower.collisions.details import CollisionDetails
from tower.collisions.kinds import CollisionStatus
from tower.collisions.models import Collision
from tower.context import ServiceContext
from tower.engine.findings import format_day
from tower.engine.kinds import CollisionKind, Severity
from tower.engine.planner import day_names, next_send_day
from tower.experiments.models import Experiment
from tower.experiments.spec import names_outside
from tower.policy.freezes import freeze_of
from tower.policy.trees import paths_nested
from tower.protocol.arbitration import Standings


@dataclass(frozen=True)
class Gate:
    """One gate's verdict and, when it fails, what to do about it."""

    name: str
    passed: bool
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "passed": self.passed, "message": self.message}


def approval_gates(
    experiment: Experiment,
    ctx: ServiceContext,
    collisions: Sequence[Collision],
    standings: Standings,
) -> list[Gate]:
    """Every gate, passed or not, in the order a reviewer reads them. A blocking collision
    fails its gate only for a test that must yield in it (`tower.protocol.arbitration`)."""
    return [
        _in_policy(experiment, ctx),
        _required_fields(experiment),
        _collisions(experiment, ctx, collisions, standings, capacity=False),
        _collisions(experiment, ctx, collisions, standings, capacity=True),
        _freeze(experiment, ctx),
        _send_days(experiment, ctx),
        _lead_time(experiment, ctx),
        _duration(experiment, ctx),
    ]


def failing(gates: Sequence[Gate]) -> list[Gate]:
    return [gate for gate in gates if not gate.passed]


def _in_policy(experiment: Experiment, ctx: ServiceContext) -> Gate:
    missing = names_outside(experiment.spec(), ctx.policy)
    if missing:
        return Gate(
            "policy",
            False,
            f"names {_and(list(missing))}, which the policy no longer has: edit the test "
            f"(`tower edit {experiment.key} --set ...`) or restore them in the policy",
        )
    return Gate("policy", True, "the policy has every surface and segment it names")


def _required_fields(experiment: Experiment) -> Gate:
    missing = []
    if not experiment.hypothesis.strip():
        missing.append("a hypothesis")
    if not experiment.primary_kpi:
        missing.append("a primary KPI")
    if experiment.baseline is None:
        missing.append("the KPI's baseline rate")
    if not experiment.owner:
        missing.append("an owner")
    if missing:
        return Gate("required fields", False, f"add {_and(missing)}")
    return Gate("required fields", True, "hypothesis, primary KPI with baseline, owner, end date")


def _collisions(
    experiment: Experiment,
    ctx: ServiceContext,
    collisions: Sequence[Collision],
    standings: Standings,
    *,
    capacity: bool,
) -> Gate:
    name = "surface capacity" if capacity else "collisions"
    blocking = [
        c
        for c in collisions
        if c.severity == Severity.BLOCKING
        and c.status in (CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED)
        and (c.kind == CollisionKind.CAPACITY) == capacity
        and experiment.key in CollisionDetails.of(c).keys
    ]
    if not blocking:
        passed = "no surface over capacity" if capacity else "no open blocking collision"
        return Gate(name, True, f"{passed} (waived ones allowed)")
    verdicts = standings.verdicts(experiment.key, blocking, ctx.policy)
    yielding = [v.reason() for v in verdicts if v.must_yield]
    if yielding:
        listed = "; ".join(yielding)
        return Gate(name, False, f"{listed}: {standings.way_out} or ask for a waiver")
    held = "; ".join(v.reason() for v in verdicts)
    return Gate(name, True, f"it yields in none: {held}")


def _freeze(experiment: Experiment, ctx: ServiceContext) -> Gate:
    team = ctx.policy.team(experiment.team)
    kind = team.kind if team is not None else "bau"
    start, end = experiment.start, experiment.end
    for window in ctx.policy.freeze_windows:
        hit = freeze_of(window).holds_back(kind, start, end, experiment.surfaces, paths_nested)
        if hit:
            return Gate(
                "freeze windows",
                False,
                f"freeze {window.name!r} ({format_day(window.start)} to {format_day(window.end)}) "
                f"covers {', '.join(hit)} for {kind} teams: start after "
                f"{format_day(window.end)} or run elsewhere",
            )
    return Gate("freeze windows", True, "no freeze window covers its surfaces and days")


def _send_days(experiment: Experiment, ctx: ServiceContext) -> Gate:
    allowed = ctx.policy.allowed_starts(experiment.surfaces)
    if allowed is None:
        return Gate("send days", True, "its surfaces send on any day")
    paths = ", ".join(experiment.surfaces)
    if not allowed:
        return Gate("send days", False, f"{paths} share no send day: run it on fewer surfaces")
    start = experiment.start
    if start.weekday() in allowed:
        return Gate("send days", True, f"starts on {format_day(start)}, a send day")
    after = date.fromordinal(next_send_day(start.toordinal(), allowed))
    earlier = (start - timedelta(days=back) for back in range(1, 7))
    before = next(day for day in earlier if day.weekday() in allowed)
    nearest = before if (start - before) < (after - start) else after
    return Gate(
        "send days",
        False,
        f"{paths} sends only on {day_names(allowed)}: start on {format_day(nearest)}",
    )


def _lead_time(experiment: Experiment, ctx: ServiceContext) -> Gate:
    needed = ctx.policy.protocol.min_lead_business_days
    submitted = (
        ctx.today if experiment.submitted_at is None else ctx.at(experiment.submitted_at).today
    )
    lead = ctx.calendar.count_business_days(submitted, experiment.start)
    if lead >= needed:
        return Gate("lead time", True, f"{lead} business days between submission and start")
    earliest = ctx.calendar.add_business_days(submitted, needed)
    return Gate(
        "lead time",
        False,
        f"starts {lead} business days after submission, the protocol needs {needed}: "
        f"start on {format_day(earliest)} or later",
    )


def _duration(experiment: Experiment, ctx: ServiceContext) -> Gate:
    protocol = ctx.policy.protocol
    days = (experiment.end - experiment.start + timedelta(days=1)).days
    if protocol.min_duration_days <= days <= protocol.max_duration_days:
        return Gate("duration", True, f"{days} days")
    return Gate(
        "duration",
        False,
        f"runs {days} days; the protocol allows {protocol.min_duration_days} to "
        f"{protocol.max_duration_days}",
    )


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
