"""What every reader asks of the pipeline (the CLI, Slack, the App Home, the digest).

`view` answers from the stored read model; asked about another day than the stored scores
count from (`--today`), it analyses the registry in memory instead. Neither writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from sqlalchemy.orm import Session

from tower.engine.analysis import PipelineAnalysis, analyse
from tower.experiments.models import Experiment
from tower.pipeline import reads, records
from tower.pipeline.index import portfolio_items
from tower.pipeline.records import CheckRecord, PipelineRecord, PlacementRecord
from tower.policy import Policy


class PipelineView(Protocol):
    """Ranks, scores and the plan, however they were obtained."""

    notes: list[str]

    def pipeline_rows(self) -> list[PipelineRecord]: ...

    def plan_rows(self) -> list[PlacementRecord]: ...

    def check_row(self, experiment: Experiment) -> CheckRecord: ...

    def ranks(self) -> dict[str, int]: ...


@dataclass
class StoredView:
    """The read model as the last writes and the worker left it."""

    session: Session
    policy: Policy
    notes: list[str] = field(default_factory=list)

    def pipeline_rows(self) -> list[PipelineRecord]:
        kinds = {team.key: team.kind for team in self.policy.teams}
        return reads.pipeline_rows(self.session, self.policy, kinds)

    def plan_rows(self) -> list[PlacementRecord]:
        return reads.plan_rows(self.session)

    def check_row(self, experiment: Experiment) -> CheckRecord:
        return reads.check_row(self.session, experiment)

    def ranks(self) -> dict[str, int]:
        return reads.ranks(self.session)


@dataclass
class AnalysedView:
    """The registry ranked and planned in memory, as of another day."""

    analysis: PipelineAnalysis
    notes: list[str] = field(default_factory=list)

    def pipeline_rows(self) -> list[PipelineRecord]:
        return records.pipeline_records(self.analysis)

    def plan_rows(self) -> list[PlacementRecord]:
        return records.plan_records(self.analysis)

    def check_row(self, experiment: Experiment) -> CheckRecord:
        return records.check_record(self.analysis, experiment.key, experiment.title)

    def ranks(self) -> dict[str, int]:
        return {key: p.rank for key, p in self.analysis.placements.items()}


def view(session: Session, policy: Policy, *, today: date | None = None) -> PipelineView:
    """The pipeline as stored, or analysed in memory as of `today` when that is another day
    than the stored scores count from."""
    standing = reads.standing(session, policy)
    notes = standing.notes()
    if today is not None and today != standing.scored_on:
        analysis = analyse(portfolio_items(session), policy, today=today)
        return AnalysedView(analysis, [n for n in notes if not n.startswith("planned as of")])
    return StoredView(session, policy, notes)
