"""The contested slots ahead: where two departments want the same pages, people or days,
who keeps the slot and who yields, and why (what `tower arbitration` shows).

A slot is contested when a blocking collision, open, acknowledged or waived, runs in the
weeks ahead and one of its tests must yield to another (`tower.protocol.arbitration`).
Reads only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.collisions import service as collision_service
from tower.collisions.details import CollisionDetails
from tower.collisions.kinds import CollisionStatus
from tower.collisions.refs import CollisionFacts, format_ref, keys_of, scope_of
from tower.collisions.service import LIVE_STATUSES
from tower.db import batches
from tower.engine.kinds import Severity
from tower.engine.scope import ScopeKind
from tower.errors import TowerError
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus, format_key, parse_key
from tower.pipeline.models import PipelineScore, PlanEntry
from tower.policy import Policy
from tower.protocol.arbitration import Contender, Verdict, contenders, standing, verdict

MAX_WEEKS = 52
FACTORS_SHOWN = 2  # the factors that differ most between who keeps and who yields


class ArbitrationError(TowerError):
    """A request for the arbitration view that cannot be answered: names what was wrong."""


@dataclass(frozen=True)
class Side:
    """One test in a contested slot, as the arbitration weighs it."""

    contender: Contender
    team: str
    team_kind: str
    planned: tuple[date | None, date | None] | None  # the plan's window (None: not planned)
    extra_days_to_mde: int | None  # what sharing costs it, when its MDE sizes a sample

    def as_dict(self) -> dict[str, Any]:
        start, end = self.planned or (None, None)
        return {
            "key": self.contender.key,
            "team": self.team,
            "team_kind": self.team_kind,
            "rank": self.contender.rank,
            "score": self.contender.score,
            "planned_start": None if start is None else start.isoformat(),
            "planned_end": None if end is None else end.isoformat(),
            "extra_days_to_mde": self.extra_days_to_mde,
        }


@dataclass(frozen=True)
class ContestedSlot:
    """A blocking collision ahead and how the score settles it."""

    collision: CollisionFacts
    first_day: date
    last_day: date
    keeps: tuple[Side, ...]
    yields: tuple[Side, ...]
    deciding: str  # "impact 3 vs 0.25, kpi_weight 2 vs 1"

    @property
    def where(self) -> str:
        surfaces = ", ".join(CollisionDetails.of(self.collision).surfaces)
        scope = scope_of(self.collision)
        if scope.kind in (ScopeKind.PAIR, ScopeKind.SURFACE):  # its surfaces say it all
            return surfaces
        return f"{surfaces} ({scope})"

    def as_dict(self) -> dict[str, Any]:
        waived = self.collision.status == CollisionStatus.WAIVED
        return {
            "collision": format_ref(self.collision),
            "kind": self.collision.kind.value,
            "where": self.where,
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "keeps": [side.as_dict() for side in self.keeps],
            "yields": [side.as_dict() for side in self.yields],
            "deciding": self.deciding,
            "waiver": (
                {"by": self.collision.waived_by, "reason": self.collision.waiver_reason}
                if waived
                else None
            ),
        }


def contested_slots(
    session: Session, policy: Policy, *, today: date, weeks: int, team: str | None = None
) -> list[ContestedSlot]:
    """The contested slots running between `today` and `weeks` weeks on (of `team` only,
    when given), soonest first."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise ArbitrationError(f"--weeks must be from 1 to {MAX_WEEKS}, not {weeks}")
    if team is not None and policy.team(team) is None:
        known = ", ".join(t.key for t in policy.teams) or "none"
        raise ArbitrationError(f"unknown team {team!r} (the policy's teams: {known})")
    horizon = today + timedelta(weeks=weeks) - timedelta(days=1)
    ahead = [
        record
        for record in collision_service.stream_collision_rows(
            session, statuses=LIVE_STATUSES, severities=[Severity.BLOCKING]
        )
        if _runs_within(record, today, horizon)
        and (team is None or team in CollisionDetails.of(record).teams)
    ]
    keys = {key for record in ahead for key in keys_of(record)}
    weighed = contenders(session, keys, ranked=True)
    teams, planned, factors = _tests(session, keys)
    found = []
    for record in ahead:
        verdicts = [verdict(record, key, weighed, policy) for key in keys_of(record)]
        slot = _contested(record, verdicts, policy, teams, planned, factors)
        if slot is not None:
            found.append(slot)
    return sorted(found, key=lambda slot: (slot.first_day, slot.collision.id))


def _runs_within(record: CollisionFacts, first: date, last: date) -> bool:
    details = CollisionDetails.of(record)
    start, end = details.first_day, details.last_day
    if start is None or end is None:
        return False
    return start <= last and end >= first


def _contested(
    record: CollisionFacts,
    verdicts: Sequence[Verdict],
    policy: Policy,
    teams: Mapping[str, str],
    planned: Mapping[str, tuple[date | None, date | None]],
    factors: Mapping[str, Mapping[str, float]],
) -> ContestedSlot | None:
    details = CollisionDetails.of(record)
    first_day, last_day = details.first_day, details.last_day
    yielding = [v for v in verdicts if v.must_yield]
    if not yielding or first_day is None or last_day is None:
        return None
    keeping = [v for v in verdicts if not v.must_yield]
    costs = details.days_to_mde or {}

    def side(v: Verdict) -> Side:
        key = v.me.key
        cost = costs.get(key) or {}
        alone, shared = cost.get("alone"), cost.get("shared")
        extra = None if alone is None or shared is None else shared - alone
        team = teams.get(key, "")
        known = policy.team(team)
        return Side(v.me, team, known.kind if known else "", planned.get(key), extra)

    keeps = tuple(sorted((side(v) for v in keeping), key=lambda s: standing(s.contender)))
    yields = tuple(sorted((side(v) for v in yielding), key=lambda s: standing(s.contender)))
    deciding = _deciding(keeps, yields, factors)
    return ContestedSlot(
        record,
        first_day,
        last_day,
        keeps,
        yields,
        deciding,
    )


def _deciding(
    keeps: Sequence[Side], yields: Sequence[Side], factors: Mapping[str, Mapping[str, float]]
) -> str:
    """What separates the last test to keep the slot from the first to yield: live, or
    the factors that differ most between their scores (`impact 3 vs 0.25, kpi_weight 2 vs
    1`)."""
    holding = [side.contender for side in keeps if side.contender.holds]
    if not holding:
        return "the limit: every test here yields to one outside it"
    winner, loser = holding[-1], yields[0].contender
    if winner.status == ExperimentStatus.LIVE:
        return f"{winner.key} is live"
    ours, theirs = factors.get(winner.key, {}), factors.get(loser.key, {})
    apart = sorted(
        (name for name in ours if name in theirs and ours[name] != theirs[name]),
        key=lambda name: -_ratio(ours[name], theirs[name]),
    )
    if loser.score is None:
        return f"{loser.key} cannot be scored"
    if not apart:
        return f"rank {winner.rank} vs {loser.rank}"
    return ", ".join(
        f"{name} {ours[name]:.3g} vs {theirs[name]:.3g}" for name in apart[:FACTORS_SHOWN]
    )


def _ratio(a: float, b: float) -> float:
    low, high = sorted((abs(a), abs(b)))
    return high / low if low > 0 else float("inf")


def _tests(
    session: Session, keys: set[str]
) -> tuple[dict[str, str], dict[str, tuple[date | None, date | None]], dict[str, dict[str, float]]]:
    """Each test's team, planned window and score factors (name → value)."""
    columns = (
        Experiment.number,
        Experiment.team,
        PlanEntry.planned_start,
        PlanEntry.planned_end,
        PipelineScore.detail,
    )
    teams: dict[str, str] = {}
    planned: dict[str, tuple[date | None, date | None]] = {}
    factors: dict[str, dict[str, float]] = {}
    rows = (
        row
        for batch in batches(sorted(parse_key(key) for key in keys))
        for row in session.execute(
            select(*columns)
            .outerjoin(PlanEntry, PlanEntry.experiment_id == Experiment.id)
            .outerjoin(PipelineScore, PipelineScore.experiment_id == Experiment.id)
            .where(Experiment.number.in_(batch))
        )
    )
    for number, team, start, end, detail in rows:
        key = format_key(number)
        teams[key] = team
        planned[key] = (start, end)
        factors[key] = {
            str(f["name"]): float(f["value"])
            for f in (detail or {}).get("factors", [])
            if isinstance(f.get("value"), int | float)
        }
    return teams, planned, factors
