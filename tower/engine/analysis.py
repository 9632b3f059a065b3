"""One pass over a portfolio: rank it, find its collisions, plan it, suggest fixes.

Everything a listing shows comes from here, so the pipeline, the conflicts and the plan
always agree with each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from tower.engine.detector import CollisionEngine
from tower.engine.findings import Finding
from tower.engine.fixes import suggest_fixes
from tower.engine.planner import Placement, Planner
from tower.engine.portfolio import Compiler, Footprint, PortfolioItem
from tower.engine.score import Score, ScoringError, rank, score_item
from tower.experiments.spec import names_outside
from tower.policy import Policy


@dataclass(frozen=True)
class RankedTest:
    """A test in the ranked pipeline, with its score and factors."""

    rank: int
    item: PortfolioItem
    score: Score


@dataclass(frozen=True)
class Unscored:
    """A test whose inputs cannot be scored; it is planned after every ranked test."""

    item: PortfolioItem
    problem: str


@dataclass
class PipelineAnalysis:
    """The ranked pipeline, its collisions with fixes, and the plan."""

    compiler: Compiler
    ranked: list[RankedTest]
    unscored: list[Unscored]
    footprints: dict[str, Footprint]
    findings: list[Finding]
    placements: dict[str, Placement]
    fixes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Active tests naming surfaces or segments the policy no longer has, with those names:
    # left out of the ranking, the checks and the plan until edited.
    outside: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def rank_of(self, key: str) -> int | None:
        placement = self.placements.get(key)
        return None if placement is None else placement.rank


def analyse(
    items: Sequence[PortfolioItem],
    policy: Policy,
    *,
    today: date,
    compiler: Compiler | None = None,
) -> PipelineAnalysis:
    """Rank, check and plan every test that still occupies the pipeline."""
    compiler = compiler or Compiler(policy)
    footprints = {f.key: f for f in compiler.compile_active(items)}
    scores, unscored = [], []
    for footprint in footprints.values():
        try:
            scores.append(score_item(footprint.item, footprint, compiler, today=today))
        except ScoringError as error:
            unscored.append(Unscored(footprint.item, str(error)))
    ranked = [
        RankedTest(position, footprints[score.key].item, score)
        for position, score in enumerate(rank(scores), start=1)
    ]
    order = [footprints[test.item.key] for test in ranked]
    order += [footprints[entry.item.key] for entry in unscored]
    placements = {p.key: p for p in Planner(compiler).plan(order)}
    findings = CollisionEngine(compiler, footprints.values()).scan()
    ranks = {key: placement.rank for key, placement in placements.items()}
    fixes = {
        finding.fingerprint: suggest_fixes(
            finding,
            ranks=ranks,
            placements=placements,
            footprints=footprints,
            segments=compiler.graph.segments,
        )
        for finding in findings
    }
    outside = {
        item.key: names
        for item in items
        if item.status.is_active and (names := names_outside(item.spec, policy))
    }
    return PipelineAnalysis(
        compiler, ranked, unscored, footprints, findings, placements, fixes, outside
    )
