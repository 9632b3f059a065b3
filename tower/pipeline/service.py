"""Load the registry into the engine and keep collision records in step with it."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.collisions import service as collision_service
from tower.collisions.service import SyncReport
from tower.engine.analysis import PipelineAnalysis, analyse
from tower.engine.portfolio import PortfolioItem
from tower.experiments.models import Experiment
from tower.policy import Policy


def portfolio_items(session: Session) -> list[PortfolioItem]:
    """Every registered test as the engine's plain input, in key order."""
    experiments = session.scalars(select(Experiment).order_by(Experiment.number))
    return [
        PortfolioItem(
            key=experiment.key,
            number=experiment.number,
            status=experiment.status,
            spec=experiment.spec(),
            lever=experiment.lever,
            deadline=experiment.deadline,
        )
        for experiment in experiments
    ]


def recheck(
    session: Session, policy: Policy, *, today: date
) -> tuple[PipelineAnalysis, SyncReport]:
    """Rank, check and plan the registry, and bring the collision records up to date.

    Every change to a test is followed by a re-check: new clashes open, known ones keep
    their acknowledgements and waivers, and those that no longer hold are resolved.
    """
    analysis = analyse(portfolio_items(session), policy, today=today)
    return analysis, collision_service.sync(session, analysis)
