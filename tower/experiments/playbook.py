"""The playbook: what recorded results say worked, by surface and primary KPI."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentResult, ExperimentStatus


def playbook(session: Session) -> list[dict[str, Any]]:
    """One entry per (surface, KPI) with recorded results, most winners first."""
    query = select(Experiment).where(Experiment.status == ExperimentStatus.RESULTS_RECORDED)
    groups: dict[tuple[str, str], list[Experiment]] = defaultdict(list)
    for experiment in session.scalars(query.order_by(Experiment.number)):
        for surface in experiment.surfaces:
            groups[(surface, experiment.primary_kpi or "")].append(experiment)
    entries = [_entry(surface, kpi, tests) for (surface, kpi), tests in groups.items()]
    return sorted(entries, key=lambda e: (-e["winners"], e["surface"], e["kpi"]))


def _entry(surface: str, kpi: str, tests: list[Experiment]) -> dict[str, Any]:
    def count(result: ExperimentResult) -> int:
        return sum(1 for t in tests if t.result == result)

    lifts = [t.observed_lift for t in tests if t.result == ExperimentResult.WINNER]
    known = [lift for lift in lifts if lift is not None]
    return {
        "surface": surface,
        "kpi": kpi,
        "tests": len(tests),
        "winners": count(ExperimentResult.WINNER),
        "losers": count(ExperimentResult.LOSER),
        "inconclusive": count(ExperimentResult.INCONCLUSIVE),
        "average_winning_lift": sum(known) / len(known) if known else None,
        "results": [
            {
                "key": t.key,
                "title": t.title,
                "team": t.team,
                "result": t.result.value if t.result else None,
                "observed_lift": t.observed_lift,
                "note": t.result_note or "",
            }
            for t in tests
        ],
    }
