"""The stable JSON shapes of the pipeline, its plan and its collisions (documented in the
README): what `--format json` prints and what other adapters render.

Each shape is a `TypedDict`: a record is the JSON object itself, its keys in the order
printed, so there is one serialisation (`json.dumps`) whether the record was analysed in
memory (here) or read from the stored plan (`tower.pipeline.reads`). `as_json` hands one to
code that takes a plain dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from tower.collisions.details import CollisionDetails, ListedDetails
from tower.collisions.models import Collision
from tower.collisions.refs import CollisionFacts, format_ref
from tower.engine.analysis import PipelineAnalysis
from tower.engine.planner import Placement
from tower.engine.score import ScoreRecord
from tower.json_text import iso


class PipelineRecord(TypedDict):
    """One test of `tower pipeline`: ranked with its score and factors, or its problem."""

    rank: int | None
    key: str
    title: str
    team: str
    team_kind: str
    status: str
    score: float | None
    model: str | None
    factors: list[Any]
    problem: str | None


class PlacementRecord(TypedDict):
    """One test of `tower plan`: requested and planned windows, deadline, why it moved."""

    rank: int | None
    key: str
    title: str
    requested_start: str
    requested_end: str
    planned_start: str | None
    planned_end: str | None
    moved_days: int
    deadline: str | None
    misses_deadline: bool
    explanation: str


class CollisionRecord(ListedDetails):
    """One collision with everything a person needs to act on it: after its reference,
    kind, severity, status and flag come the details a listing shows (`ListedDetails`)."""

    id: str
    kind: str
    severity: str
    status: str
    agile_vs_bau: bool
    explanation: str
    days_to_mde: Mapping[str, Any] | None
    mde_cost: str | None
    fixes: list[str]
    acknowledged_by: str | None
    waived_by: str | None
    waiver_reason: str | None


class _Checked(TypedDict):
    key: str
    title: str
    rank: int | None
    score: ScoreRecord | None
    problem: str | None
    placement: PlacementRecord | None


class CheckRecord(_Checked, total=False):
    """One test of `tower check`: rank, score, problem and placement; its collisions are
    added apart, by the reader that lists them."""

    collisions: list[CollisionRecord]


def as_json(record: Mapping[str, object]) -> dict[str, Any]:
    """A record as a plain dict, for code that takes any JSON object."""
    return dict(record)


def pipeline_records(analysis: PipelineAnalysis) -> list[PipelineRecord]:
    """Ranked tests with score and factors, then the tests that could not be scored."""
    compiler = analysis.compiler
    records: list[PipelineRecord] = [
        {
            "rank": test.rank,
            "key": test.item.key,
            "title": test.item.spec.title,
            "team": test.item.spec.team,
            "team_kind": compiler.team_kind(test.item.spec.team),
            "status": test.item.status.value,
            "score": test.score.as_dict()["value"],
            "model": test.score.model,
            "factors": [factor.as_dict() for factor in test.score.factors],
            "problem": None,
        }
        for test in analysis.ranked
    ]
    records += [
        {
            "rank": None,
            "key": entry.item.key,
            "title": entry.item.spec.title,
            "team": entry.item.spec.team,
            "team_kind": compiler.team_kind(entry.item.spec.team),
            "status": entry.item.status.value,
            "score": None,
            "model": compiler.policy.scoring.model,
            "factors": [],
            "problem": entry.problem,
        }
        for entry in analysis.unscored
    ]
    return records


def placement_record(placement: Placement, title: str) -> PlacementRecord:
    """Requested and planned window of one test, and why they differ."""
    return {
        "rank": placement.rank,
        "key": placement.key,
        "title": title,
        "requested_start": placement.requested_start.isoformat(),
        "requested_end": placement.requested_end.isoformat(),
        "planned_start": iso(placement.planned_start),
        "planned_end": iso(placement.planned_end),
        "moved_days": placement.moved_days,
        "deadline": iso(placement.deadline),
        "misses_deadline": placement.misses_deadline,
        "explanation": placement.explanation,
    }


def plan_records(analysis: PipelineAnalysis) -> list[PlacementRecord]:
    """The plan in rank order."""
    titles = {key: fp.item.spec.title for key, fp in analysis.footprints.items()}
    placements = sorted(analysis.placements.values(), key=lambda p: p.rank)
    return [placement_record(p, titles[p.key]) for p in placements]


def check_record(analysis: PipelineAnalysis, key: str, title: str) -> CheckRecord:
    """One test's rank, score, planned slot and scoring problem (collisions come separately)."""
    ranked = next((t for t in analysis.ranked if t.item.key == key), None)
    unscored = next((u for u in analysis.unscored if u.item.key == key), None)
    placement = analysis.placements.get(key)
    return {
        "key": key,
        "title": title,
        "rank": None if ranked is None else ranked.rank,
        "score": None if ranked is None else ranked.score.as_dict(),
        "problem": None if unscored is None else unscored.problem,
        "placement": None if placement is None else placement_record(placement, title),
    }


def collision_record(collision: Collision | CollisionFacts) -> CollisionRecord:
    """One collision record with everything a person needs to act on it."""
    details = CollisionDetails.of(collision)
    return {
        "id": format_ref(collision),
        "kind": collision.kind.value,
        "severity": collision.severity.value,
        "status": collision.status.value,
        "agile_vs_bau": collision.agile_vs_bau,
        **details.listed(),
        "explanation": collision.explanation,
        "days_to_mde": details.days_to_mde,
        "mde_cost": details.mde_cost,
        "fixes": list(details.fixes),
        "acknowledged_by": collision.acknowledged_by,
        "waived_by": collision.waived_by,
        "waiver_reason": collision.waiver_reason,
    }
