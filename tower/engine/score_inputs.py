"""The numbers every scoring model draws on, and the policy's rules for three of them: the
KPI's weight, the clamped lever and the deadline's urgency.

`tower.engine.score` computes them and turns them into a value; `tower.engine.score_factors`
writes the notes that explain them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tower.engine.portfolio import PortfolioItem
from tower.policy import Policy

ASSUMED_IMPACT = 1.0
ASSUMED_CONFIDENCE = 0.5
ASSUMED_EFFORT_WEEKS = 1.0
WSJF_URGENCY_POINTS = 3.0  # what a deadline at hand adds to the cost of delay in wsjf


@dataclass(slots=True)
class ScoreInputs:
    """The numbers every model draws on, and what their notes are written from when read."""

    item: PortfolioItem
    policy: Policy
    today: date
    weekly: float  # people a week who can meet the test
    traffic: float  # its share of them
    days: int  # the window's length
    eligible: float  # people a week in the test: weekly * traffic
    reach: float
    impact: float
    confidence: float
    kpi_weight: float
    lever: float
    urgency: float
    build: float  # weeks
    run: float  # weeks; infinite when nobody is eligible
    arms: int  # the arms the sample is split into
    per_arm: int  # the sample size per arm; 0 when no baseline and MDE size it
    size: float  # build + run


def kpi_weight(kpi: str | None, policy: Policy) -> float:
    """The KPI's weight in the policy; 1 without a KPI, or one the policy does not weigh."""
    weight = policy_weight(kpi, policy)
    return 1.0 if weight is None else weight


def policy_weight(kpi: str | None, policy: Policy) -> float | None:
    """The weight the policy gives the KPI, if it gives one."""
    return None if kpi is None or not policy.kpis else policy.kpis.get(kpi)


def clamp_lever(lever: float, low: float, high: float) -> float:
    """The manager's lever, kept within the policy's [low, high]."""
    return high if lever > high else low if lever < low else lever


def urgency(deadline: date | None, today: date, horizon: int) -> float:
    """1 without a deadline or with one beyond the horizon, rising linearly to 2 at it."""
    if deadline is None:
        return 1.0
    days_left = (deadline - today).days
    if days_left >= horizon:
        return 1.0
    if days_left <= 0:
        return 2.0
    return 1 + (1 - days_left / horizon)


def wsjf_cost_of_delay(i: ScoreInputs) -> float:
    """wsjf's cost of delay: impact * KPI weight * lever, plus points for urgency, plus
    confidence."""
    return i.impact * i.kpi_weight * i.lever + (i.urgency - 1) * WSJF_URGENCY_POINTS + i.confidence
