"""The stable JSON shapes of the pipeline, its plan and its collisions (documented in the
README): what `--format json` prints and what other adapters render."""

from __future__ import annotations

from typing import Any

from tower.collisions.details import CollisionDetails
from tower.collisions.models import Collision
from tower.collisions.refs import CollisionFacts, format_ref
from tower.engine.analysis import PipelineAnalysis
from tower.engine.planner import Placement
from tower.json_text import iso


def pipeline_records(analysis: PipelineAnalysis) -> list[dict[str, Any]]:
    """Ranked tests with score and factors, then the tests that could not be scored."""
    compiler = analysis.compiler
    records = [
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


def placement_record(placement: Placement, title: str) -> dict[str, Any]:
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


def plan_records(analysis: PipelineAnalysis) -> list[dict[str, Any]]:
    """The plan in rank order."""
    titles = {key: fp.item.spec.title for key, fp in analysis.footprints.items()}
    placements = sorted(analysis.placements.values(), key=lambda p: p.rank)
    return [placement_record(p, titles[p.key]) for p in placements]


def check_record(analysis: PipelineAnalysis, key: str, title: str) -> dict[str, Any]:
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


def collision_record(collision: Collision | CollisionFacts) -> dict[str, Any]:
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
