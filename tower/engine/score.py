"""The common prioritization score: one formula for every team, explained factor by factor.

Every model reads the same inputs, each kept as a `Factor` whose note says where its number
came from:

- reach: people per week actually in the test (weekly reach * traffic share), in thousands;
- impact: the RICE class 0.25 minimal, 0.5 low, 1 medium, 2 high, 3 massive;
- confidence: the evidence behind the impact, 0.5 low, 0.8 medium, 1 high;
- kpi_weight: the policy's central weight of the primary KPI (1 without one), so BAU and
  agile KPIs compare;
- lever: the manager's business lever, clamped to the policy's [lever_min, lever_max];
- urgency: 1 without a deadline, rising linearly to 2 over the policy's horizon before it
  (2 at or past the deadline);
- size: build weeks (effort) plus run weeks, the run long enough for every arm (4 for a
  multivariate test, else 2) to reach the two-proportion sample size at the eligible weekly
  traffic; without a baseline and MDE to size the sample, the window's length.

The policy picks one model for the whole portfolio (`scoring.model`):

    tower  reach * impact * confidence * kpi_weight * lever * urgency / size
    rice   reach * impact * confidence / effort          effort = size
    ice    impact * confidence * ease                    ease = 1 / size
    pie    potential * importance * ease                 potential = impact,
                                                         importance = reach * kpi_weight
    wsjf   cost_of_delay / job_size                      job_size = size, cost_of_delay =
           impact * kpi_weight * lever + (urgency - 1) * 3 + confidence

This module holds the numbers: the inputs (`tower.engine.score_inputs`), each model's value,
the sample size that sets the run, and the ranking. The words are in
`tower.engine.score_factors`: a score writes its factors, notes and all, only when they are
first read, since ranking reads only the numbers and the words are most of the cost.

Missing inputs take neutral assumptions that the notes show: impact 1 (medium), confidence
0.5 (least evidence), one build week. Inputs that break `validate_spec`'s rules on them
raise `ScoringError`, never a silent number. A test nobody is eligible for can never fill
its sample: its run is infinite and it scores 0 in every model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from statistics import NormalDist
from typing import Any, TypedDict

from tower.engine.portfolio import Compiler, Footprint, PortfolioItem
from tower.engine.score_factors import (
    Factor,
    ice_factors,
    json_number,
    pie_factors,
    rice_factors,
    tower_factors,
    wsjf_factors,
)
from tower.engine.score_inputs import (
    ASSUMED_CONFIDENCE,
    ASSUMED_EFFORT_WEEKS,
    ASSUMED_IMPACT,
    ScoreInputs,
    clamp_lever,
    kpi_weight,
    urgency,
    wsjf_cost_of_delay,
)
from tower.errors import TowerError
from tower.experiments.spec import ExperimentKind, scoring_problems

ARMS = {kind: 4 if kind is ExperimentKind.MULTIVARIATE else 2 for kind in ExperimentKind}


class _WrittenWhenRead:
    """A score's `factors`: given as a tuple, or as the inputs to write it from when first read.

    Their notes are most of the cost of a score, and ranking reads only its numbers.
    """

    def __get__(self, score: Score | None, owner: type[Score]) -> tuple[Factor, ...]:
        if score is None:
            raise AttributeError("factors")  # no default value
        factors = score._factors
        if isinstance(factors, ScoreInputs):
            factors = MODELS[score.model].factors(factors)
            object.__setattr__(score, "_factors", factors)
        return factors

    def __set__(self, score: Score, factors: tuple[Factor, ...] | ScoreInputs) -> None:
        object.__setattr__(score, "_factors", factors)


class ScoreRecord(TypedDict):
    """A score as JSON shows it (`Score.as_dict`): `tower check`, the stored pipeline."""

    key: str
    number: int
    model: str | None
    value: float | None
    confidence: float | None
    factors: list[Any]


@dataclass(frozen=True)
class Score:
    """A test's priority under the portfolio's model, with the factors that make it.

    `score_item` passes the inputs for `factors`: the factors are written when first read.
    """

    key: str
    number: int
    model: str
    value: float
    confidence: float
    factors: _WrittenWhenRead = _WrittenWhenRead()
    _factors: tuple[Factor, ...] | ScoreInputs = field(init=False, repr=False, compare=False)

    def factor(self, name: str) -> Factor:
        """The factor called `name`; `KeyError` when this model has none."""
        for factor in self.factors:
            if factor.name == name:
                return factor
        raise KeyError(name)

    def as_dict(self) -> ScoreRecord:
        """JSON-ready: key, number, model, value, confidence and the factors."""
        return {
            "key": self.key,
            "number": self.number,
            "model": self.model,
            "value": json_number(self.value),
            "confidence": self.confidence,
            "factors": [factor.as_dict() for factor in self.factors],
        }


class ScoringError(TowerError):
    """A scoring input that no score can be built from: names the test, the field, the fix."""

    def __init__(self, key: str, field: str, problem: str) -> None:
        super().__init__(f"cannot score {key}: {field}: {problem}")
        self.key = key
        self.field = field


def required_sample_size(baseline: float, mde: float, *, alpha: float, power: float) -> int:
    """People per arm for a two-sided two-proportion z-test to detect a relative lift `mde`.

    With p1 = baseline, p2 = baseline * (1 + mde) and p = (p1 + p2) / 2, rounded up:
    n = (z(1 - alpha/2) * sqrt(2p(1 - p)) + z(power) * sqrt(p1(1 - p1) + p2(1 - p2)))^2
        / (p2 - p1)^2. `ValueError` on inputs outside the test's domain.
    """
    target = baseline * (1 + mde)
    if not 0 < baseline < 1:
        raise ValueError(f"the baseline is a rate in (0, 1), not {baseline:g}")
    if not mde > 0 or not target < 1:
        raise ValueError(f"the MDE must be positive with baseline * (1 + MDE) < 1, not {mde:g}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power are in (0, 1), not {alpha:g} and {power:g}")
    z_alpha, z_power = _z_scores(alpha, power)
    pooled = (baseline + target) / 2
    spread = z_alpha * math.sqrt(2 * pooled * (1 - pooled)) + z_power * math.sqrt(
        baseline * (1 - baseline) + target * (1 - target)
    )
    return math.ceil(spread**2 / (target - baseline) ** 2)


# Shares are products and quotients of floats (people counts of a billion lose digits):
# within a millionth of 1, a share is all.
SHARE_EPSILON = 1e-6


@dataclass(frozen=True)
class SampleNeed:
    """What a test needs to reach its MDE: `arms` x `per_arm` people, at `weekly` eligible
    people a week, in a window of `window_days` days."""

    arms: int
    per_arm: int
    weekly: float
    window_days: int

    def days(self, shared: float = 0.0) -> int | None:
        """Days to the sample with a share `shared` of its traffic taken by a clash
        (None when it never gets there: everyone shared, or nobody eligible). A share a
        rounding error short of 1 is everyone: 1 - 1e-16 would be billions of billions of
        days."""
        if shared >= 1 - SHARE_EPSILON or self.weekly <= 0:
            return None
        exact = 7 * self.arms * self.per_arm / (self.weekly * (1 - shared))
        return math.ceil(exact - 1e-9)  # 14.000000001 is 14 days


def sample_need(footprint: Footprint, compiler: Compiler) -> SampleNeed | None:
    """The test's sample model (the score's), or None without a baseline and MDE to size
    it, or with nobody eligible."""
    spec = footprint.item.spec
    weekly = compiler.eligible_weekly(footprint)
    if spec.baseline is None or spec.mde is None or weekly <= 0:
        return None
    scoring = compiler.policy.scoring
    try:
        per_arm = required_sample_size(
            spec.baseline, spec.mde, alpha=scoring.alpha, power=scoring.power
        )
    except ValueError:
        return None
    return SampleNeed(ARMS[spec.kind], per_arm, weekly, footprint.days)


@lru_cache(maxsize=64)
def _z_scores(alpha: float, power: float) -> tuple[float, float]:
    """z(1 - alpha/2) and z(power) of the standard normal: a policy has one pair."""
    normal = NormalDist()
    return normal.inv_cdf(1 - alpha / 2), normal.inv_cdf(power)


def score_item(
    item: PortfolioItem, footprint: Footprint, compiler: Compiler, *, today: date
) -> Score:
    """The test's score under the policy's model; `ScoringError` if an input is invalid.

    The factors and their notes are written when first read (`Score.factors`).
    """
    inputs = _inputs(item, footprint, compiler, today)
    model = compiler.policy.scoring.model
    value = MODELS[model].value(inputs)
    return Score(item.key, item.number, model, value, inputs.confidence, inputs)


def rank_key(value: float, confidence: float, number: int) -> tuple[float, float, int]:
    """Where a score sorts: highest first; ties go to higher confidence, then to earlier
    registration. The one statement of the rule (the read model's SQL window mirrors it)."""
    return (-value, -confidence, number)


def rank(scores: Iterable[Score]) -> list[Score]:
    """Highest score first; ties go to higher confidence, then to earlier registration."""
    return sorted(scores, key=lambda score: rank_key(score.value, score.confidence, score.number))


def _inputs(
    item: PortfolioItem, footprint: Footprint, compiler: Compiler, today: date
) -> ScoreInputs:
    _check_scorable(item)
    spec = item.spec
    policy = compiler.policy
    scoring = policy.scoring
    eligible = compiler.eligible_weekly(footprint)
    build = ASSUMED_EFFORT_WEEKS if spec.effort_weeks is None else spec.effort_weeks
    need = sample_need(footprint, compiler)
    per_arm = 0 if need is None else need.per_arm
    if eligible <= 0:
        run = math.inf
    elif need is None:  # no baseline and MDE to size the sample: the window's length
        run = footprint.days / 7
    else:
        run = need.arms * need.per_arm / need.weekly
    return ScoreInputs(
        item=item,
        policy=policy,
        today=today,
        weekly=footprint.reach,
        traffic=footprint.traffic,
        days=footprint.days,
        eligible=eligible,
        reach=eligible / 1000 if eligible > 0 else 0.0,
        impact=ASSUMED_IMPACT if spec.impact is None else spec.impact,
        confidence=ASSUMED_CONFIDENCE if spec.confidence is None else spec.confidence,
        kpi_weight=kpi_weight(spec.primary_kpi, policy),
        lever=clamp_lever(item.lever, scoring.lever_min, scoring.lever_max),
        urgency=urgency(item.deadline, today, scoring.urgency_horizon_days),
        build=build,
        run=run,
        arms=ARMS[spec.kind],
        per_arm=per_arm,
        size=build + run,
    )


def _check_scorable(item: PortfolioItem) -> None:
    """`ScoringError` on the first rule of `validate_spec` that what a score reads breaks,
    or on a lever that is not a number."""
    problems = scoring_problems(item.spec)
    if problems:
        raise ScoringError(item.key, problems[0].field, problems[0].message)
    if not math.isfinite(item.lever):
        raise ScoringError(item.key, "lever", f"the lever must be a number, not {item.lever}")


# Models: each turns the inputs into a value and, when read, the factors that explain it.


@dataclass(frozen=True)
class Model:
    """A scoring model: its value from the inputs, and the factors that explain it."""

    value: Callable[[ScoreInputs], float]
    factors: Callable[[ScoreInputs], tuple[Factor, ...]]


def _tower_value(i: ScoreInputs) -> float:
    return i.reach * i.impact * i.confidence * i.kpi_weight * i.lever * i.urgency / i.size


def _rice_value(i: ScoreInputs) -> float:
    return i.reach * i.impact * i.confidence / i.size


def _ice_value(i: ScoreInputs) -> float:
    return i.impact * i.confidence * (1 / i.size)


def _pie_value(i: ScoreInputs) -> float:
    return i.impact * (i.reach * i.kpi_weight) * (1 / i.size)


def _wsjf_value(i: ScoreInputs) -> float:
    return wsjf_cost_of_delay(i) / i.size


MODELS: dict[str, Model] = {
    "tower": Model(_tower_value, tower_factors),
    "rice": Model(_rice_value, rice_factors),
    "ice": Model(_ice_value, ice_factors),
    "pie": Model(_pie_value, pie_factors),
    "wsjf": Model(_wsjf_value, wsjf_factors),
}
