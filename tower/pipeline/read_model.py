"""Writing the read model: scores as tests change, the plan and everything after a resync.

Each writer touches only rows that differ, so an unchanged portfolio writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import delete, event, func, insert, select, update
from sqlalchemy.orm import Session

from tower.db import BATCH, batches, upsert
from tower.engine.analysis import PipelineAnalysis
from tower.engine.planner import Placement
from tower.engine.score import Score, ScoringError
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus
from tower.pipeline.index import PortfolioIndex
from tower.pipeline.models import PipelineScore, PlanEntry

_INDEXES = "tower.warm_indexes"  # session.info: indexes this transaction changed


def forget_on_rollback(session: Session, index: PortfolioIndex) -> None:
    """If this transaction rolls back, `index` holds changes that never happened."""
    session.info.setdefault(_INDEXES, set()).add(index)


@event.listens_for(Session, "after_rollback")
@event.listens_for(Session, "after_soft_rollback")
def _forget_indexes(session: Session, *_: Any) -> None:
    for index in session.info.pop(_INDEXES, ()):
        index.forget()


@event.listens_for(Session, "after_commit")
def _keep_indexes(session: Session) -> None:
    # Committing a savepoint fires this too: the transaction may still roll back.
    if not session.in_nested_transaction():
        session.info.pop(_INDEXES, None)


def score_values(score: Score | ScoringError | str) -> dict[str, Any]:
    """The stored columns of one score, or of why it cannot be scored (value None)."""
    if not isinstance(score, Score):
        return {"value": None, "confidence": None, "problem": str(score), "detail": {}}
    return {
        "value": score.value,
        "confidence": score.confidence,
        "problem": None,
        "detail": {"model": score.model, "factors": [f.as_dict() for f in score.factors]},
    }


def store_scores(
    session: Session, index: PortfolioIndex, experiments: Iterable[Experiment]
) -> None:
    """The current scores of `experiments`; tests that left the pipeline lose theirs.
    Rows the session holds are written through it; the others in one statement per batch,
    whether or not they exist (an import scores thousands)."""
    written: list[dict[str, Any]] = []
    gone: list[int] = []
    for experiment in experiments:
        score = index.scores.get(experiment.key)
        values = None if score is None else score_values(score)
        held = session.identity_map.get(session.identity_key(PipelineScore, experiment.id))
        if held is not None:
            if values is None:
                session.delete(held)
            else:
                _update(held, values)
        elif values is None:
            gone.append(experiment.id)
        else:
            written.append({"experiment_id": experiment.id, **values})
    for batch in batches(gone):
        session.execute(delete(PipelineScore).where(PipelineScore.experiment_id.in_(batch)))
    if written:
        columns = written[0].keys()
        session.execute(upsert(session, PipelineScore, ["experiment_id"], columns), written)


def fill_missing_scores(session: Session, index: PortfolioIndex) -> None:
    """Score every active test the read model lacks (tests written before it existed, or
    behind its back): the ranks it shows then cover the whole pipeline."""
    stored = session.scalar(select(func.count()).select_from(PipelineScore)) or 0
    if stored == len(index.scores):
        return
    have = set(session.scalars(select(PipelineScore.experiment_id)))
    numbers = {footprint.item.number for footprint in index.footprints.values()}
    query = select(Experiment).where(Experiment.number.in_(list(numbers)))
    store_scores(session, index, [e for e in session.scalars(query) if e.id not in have])


def store_analysis(session: Session, analysis: PipelineAnalysis) -> int:
    """Every active test's score and the plan, from a full analysis; returns rows written."""
    rows = {
        number: (id_, version)
        for number, id_, version in session.execute(
            select(Experiment.number, Experiment.id, Experiment.version)
        )
    }
    scores: dict[int, Score | str] = {}
    for test in analysis.ranked:
        scores[rows[test.item.number][0]] = test.score
    for entry in analysis.unscored:
        scores[rows[entry.item.number][0]] = entry.problem
    written = _replace_rows(session, PipelineScore, scores, score_values)
    plan: dict[int, tuple[Placement, int, bool]] = {}
    for key, placement in analysis.placements.items():
        item = analysis.footprints[key].item
        id_, version = rows[item.number]
        plan[id_] = (placement, version, item.status == ExperimentStatus.LIVE)
    return written + _replace_rows(session, PlanEntry, plan, _plan_values)


def _plan_values(planned: tuple[Placement, int, bool]) -> dict[str, Any]:
    """The stored columns of one test's place in the plan (with its row's version)."""
    placement, version, live = planned
    return {
        "rank": placement.rank,
        "planned_start": placement.planned_start,
        "planned_end": placement.planned_end,
        "explanation": placement.explanation,
        "row_version": version,
        "live": live,
        "misses_deadline": placement.misses_deadline,
    }


_Row = TypeVar("_Row", PipelineScore, PlanEntry)
_Source = TypeVar("_Source")


def _replace_rows(
    session: Session,
    model: type[_Row],
    wanted: Mapping[int, _Source],
    values_of: Callable[[_Source], dict[str, Any]],
) -> int:
    """Make `model`'s rows equal `values_of` each of `wanted` (by experiment id): returns
    how many rows were added, changed or removed. Read as rows and written 500 at a time,
    each row's values worked out as it is compared (a resync compares 10,000 of each);
    objects of `model` the session holds are expired after."""
    session.flush()
    key = model.experiment_id
    existing = {
        row.experiment_id: row._mapping for row in session.execute(select(*model.__table__.columns))
    }
    leaving = [experiment_id for experiment_id in existing if experiment_id not in wanted]
    for batch in batches(leaving):
        session.execute(delete(model).where(key.in_(batch)))
    written = len(leaving)
    added: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    pending = ((added, insert(model)), (changed, update(model)))
    for experiment_id, source in wanted.items():
        values = values_of(source)
        current = existing.get(experiment_id)
        if current is None:
            added.append({"experiment_id": experiment_id, **values})
        elif any(current[name] != value for name, value in values.items()):
            changed.append({"experiment_id": experiment_id, **values})
        for rows, statement in pending:
            if len(rows) >= BATCH:
                session.execute(statement, rows)
                written += len(rows)
                rows.clear()
    for rows, statement in pending:
        if rows:
            session.execute(statement, rows)
            written += len(rows)
    for held in [obj for obj in session.identity_map.values() if isinstance(obj, model)]:
        session.expire(held)
    return written


def _update(row: object, values: Mapping[str, Any]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed
