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

Missing inputs take neutral assumptions that the notes show: impact 1 (medium), confidence
0.5 (least evidence), one build week. Invalid inputs raise `ScoringError`, never a silent
number. A test nobody is eligible for can never fill its sample: its run is infinite and it
scores 0 in every model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist

from tower.engine.portfolio import Compiler, Footprint, PortfolioItem
from tower.errors import TowerError
from tower.experiments.spec import CONFIDENCE_SCALE, IMPACT_SCALE, ExperimentKind
from tower.policy import Policy

ASSUMED_IMPACT = 1.0
ASSUMED_CONFIDENCE = 0.5
ASSUMED_EFFORT_WEEKS = 1.0
WSJF_URGENCY_POINTS = 3.0  # what a deadline at hand adds to the cost of delay in wsjf

IMPACT_NAMES = dict(zip(IMPACT_SCALE, ("minimal", "low", "medium", "high", "massive"), strict=True))
CONFIDENCE_NAMES = dict(zip(CONFIDENCE_SCALE, ("least evidence", "medium", "high"), strict=True))
ARMS = {kind: 4 if kind is ExperimentKind.MULTIVARIATE else 2 for kind in ExperimentKind}


@dataclass(frozen=True)
class Factor:
    """One term of a score: its value and how it was obtained."""

    name: str
    value: float
    note: str

    def as_dict(self) -> dict[str, object]:
        """JSON-ready; an infinite value (a run nobody can fill) becomes null."""
        return {"name": self.name, "value": _json_number(self.value), "note": self.note}


@dataclass(frozen=True)
class Score:
    """A test's priority under the portfolio's model, with the factors that make it."""

    key: str
    number: int
    model: str
    value: float
    confidence: float
    factors: tuple[Factor, ...]

    def factor(self, name: str) -> Factor:
        """The factor called `name`; `KeyError` when this model has none."""
        for factor in self.factors:
            if factor.name == name:
                return factor
        raise KeyError(name)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: key, number, model, value, confidence and the factors."""
        return {
            "key": self.key,
            "number": self.number,
            "model": self.model,
            "value": _json_number(self.value),
            "confidence": self.confidence,
            "factors": [factor.as_dict() for factor in self.factors],
        }


class ScoringError(TowerError):
    """A scoring input that no score can be built from: names the test, the field, the fix."""

    def __init__(self, key: str, field: str, problem: str) -> None:
        super().__init__(f"cannot score {key}: {field} {problem}")
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
    normal = NormalDist()
    z_alpha = normal.inv_cdf(1 - alpha / 2)
    z_power = normal.inv_cdf(power)
    pooled = (baseline + target) / 2
    spread = z_alpha * math.sqrt(2 * pooled * (1 - pooled)) + z_power * math.sqrt(
        baseline * (1 - baseline) + target * (1 - target)
    )
    return math.ceil(spread**2 / (target - baseline) ** 2)


@dataclass(frozen=True)
class _Inputs:
    """The factors every model draws on, and which of them were assumed."""

    reach: Factor
    impact: Factor
    confidence: Factor
    kpi_weight: Factor
    lever: Factor
    urgency: Factor
    size: Factor
    assumed: tuple[Factor, ...]


def score_item(
    item: PortfolioItem, footprint: Footprint, compiler: Compiler, *, today: date
) -> Score:
    """The test's score under the policy's model; `ScoringError` if an input is invalid."""
    policy = compiler.policy
    inputs = _inputs(item, footprint, compiler, today)
    model = policy.scoring.model
    value, factors = MODELS[model](inputs)
    return Score(item.key, item.number, model, value, inputs.confidence.value, factors)


def rank(scores: Iterable[Score]) -> list[Score]:
    """Highest score first; ties go to higher confidence, then to earlier registration."""
    return sorted(scores, key=lambda score: (-score.value, -score.confidence, score.number))


def _inputs(item: PortfolioItem, footprint: Footprint, compiler: Compiler, today: date) -> _Inputs:
    _validate(item)
    spec = item.spec
    policy = compiler.policy
    eligible = compiler.eligible_weekly(footprint)
    impact = _impact(spec.impact)
    confidence = _confidence(spec.confidence)
    return _Inputs(
        reach=_reach(eligible, footprint.reach, footprint.traffic),
        impact=impact,
        confidence=confidence,
        kpi_weight=_kpi_weight(spec.primary_kpi, policy),
        lever=_lever(item.lever, policy),
        urgency=_urgency(item.deadline, today, policy.scoring.urgency_horizon_days),
        size=_size(item, footprint, eligible, policy),
        assumed=tuple(
            factor
            for factor, given in ((impact, spec.impact), (confidence, spec.confidence))
            if given is None
        ),
    )


def _validate(item: PortfolioItem) -> None:
    spec, key = item.spec, item.key
    if spec.impact is not None and spec.impact not in IMPACT_SCALE:
        raise ScoringError(
            key, "impact", f"must be one of {_scale(IMPACT_SCALE)}, not {spec.impact:g}"
        )
    if spec.confidence is not None and spec.confidence not in CONFIDENCE_SCALE:
        raise ScoringError(
            key,
            "confidence",
            f"must be one of {_scale(CONFIDENCE_SCALE)}, not {spec.confidence:g}",
        )
    if spec.effort_weeks is not None and not 0 < spec.effort_weeks < math.inf:
        raise ScoringError(
            key, "effort_weeks", f"must be a positive number of weeks, not {spec.effort_weeks:g}"
        )
    if spec.baseline is not None and not 0 < spec.baseline < 1:
        raise ScoringError(
            key, "baseline", f"must be a rate strictly between 0 and 1, not {spec.baseline:g}"
        )
    if spec.mde is not None and not 0 < spec.mde < math.inf:
        raise ScoringError(
            key, "mde", f"must be a positive relative lift (0.1 for +10%), not {spec.mde:g}"
        )
    if spec.baseline is not None and spec.mde is not None and spec.baseline * (1 + spec.mde) >= 1:
        raise ScoringError(
            key,
            "mde",
            f"{spec.mde:g} on a baseline of {spec.baseline:g} aims at a rate of "
            f"{spec.baseline * (1 + spec.mde):g}: baseline * (1 + mde) must stay below 1",
        )
    if not math.isfinite(item.lever):
        raise ScoringError(key, "lever", f"must be a number, not {item.lever}")
    if spec.end < spec.start:
        raise ScoringError(key, "end", f"{spec.end} is before the start {spec.start}")


def _reach(eligible: float, weekly: float, traffic: float) -> Factor:
    if eligible <= 0:
        return Factor("reach", 0.0, f"nobody eligible ({_people(weekly)} can meet the test)")
    note = (
        f"{_people(eligible)} eligible people a week "
        f"({traffic * 100:g}% traffic share of the {_people(weekly)} who can meet the test)"
    )
    return Factor("reach", eligible / 1000, note)


def _impact(given: float | None) -> Factor:
    if given is None:
        note = f"not given: assumed {ASSUMED_IMPACT:g} ({IMPACT_NAMES[ASSUMED_IMPACT]})"
        return Factor("impact", ASSUMED_IMPACT, note)
    return Factor("impact", given, f"given: {given:g} ({IMPACT_NAMES[given]})")


def _confidence(given: float | None) -> Factor:
    if given is None:
        note = f"not given: assumed {ASSUMED_CONFIDENCE:g} ({CONFIDENCE_NAMES[ASSUMED_CONFIDENCE]})"
        return Factor("confidence", ASSUMED_CONFIDENCE, note)
    return Factor("confidence", given, f"given: {given:g} ({CONFIDENCE_NAMES[given]})")


def _kpi_weight(kpi: str | None, policy: Policy) -> Factor:
    if kpi is None:
        return Factor("kpi_weight", 1.0, "no primary KPI: weight 1")
    if not policy.kpis:
        return Factor("kpi_weight", 1.0, f"the policy weighs no KPIs: {kpi} weighs 1")
    weight = policy.kpis.get(kpi)
    if weight is None:
        return Factor("kpi_weight", 1.0, f"{kpi} has no weight in the policy: weight 1")
    return Factor("kpi_weight", weight, f"{kpi} weighs {weight:g} in the policy")


def _lever(lever: float, policy: Policy) -> Factor:
    low, high = policy.scoring.lever_min, policy.scoring.lever_max
    if lever > high:
        return Factor("lever", high, f"set to {lever:g}, clamped to the policy's maximum {high:g}")
    if lever < low:
        return Factor("lever", low, f"set to {lever:g}, clamped to the policy's minimum {low:g}")
    return Factor("lever", lever, f"set to {lever:g} (the policy allows {low:g} to {high:g})")


def _urgency(deadline: date | None, today: date, horizon: int) -> Factor:
    if deadline is None:
        return Factor("urgency", 1.0, "no deadline")
    days_left = (deadline - today).days
    if days_left >= horizon:
        note = f"deadline {deadline} in {days_left} days, beyond the {horizon}-day horizon"
        return Factor("urgency", 1.0, note)
    if days_left <= 0:
        when = "is today" if days_left == 0 else f"passed {-days_left} days ago"
        return Factor("urgency", 2.0, f"deadline {deadline} {when}: the maximum")
    note = f"deadline {deadline} in {days_left} days: 1 + (1 - {days_left}/{horizon})"
    return Factor("urgency", 1 + (1 - days_left / horizon), note)


def _size(item: PortfolioItem, footprint: Footprint, eligible: float, policy: Policy) -> Factor:
    spec = item.spec
    if spec.effort_weeks is None:
        build = ASSUMED_EFFORT_WEEKS
        build_note = f"{_weeks(build, 'build')} (effort_weeks not given: assumed {build:g})"
    else:
        build = spec.effort_weeks
        build_note = _weeks(build, "build")
    if eligible <= 0:
        return Factor(
            "size", math.inf, f"{build_note} + infinite run weeks (nobody eligible to fill it)"
        )
    if spec.baseline is None or spec.mde is None:
        run = footprint.days / 7
        missing = " and ".join(
            name
            for name, value in (("baseline", spec.baseline), ("mde", spec.mde))
            if value is None
        )
        run_note = (
            f"{_weeks(run, 'run')} (no {missing} to size the sample: "
            f"the window's {footprint.days} days / 7)"
        )
    else:
        arms = ARMS[spec.kind]
        per_arm = required_sample_size(
            spec.baseline, spec.mde, alpha=policy.scoring.alpha, power=policy.scoring.power
        )
        run = arms * per_arm / eligible
        run_note = (
            f"{_weeks(run, 'run')} ({arms} arms * {per_arm:,} people "
            f"/ {_people(eligible)} eligible a week)"
        )
    return Factor("size", build + run, f"{build_note} + {run_note}")


# Models: each turns the inputs into (value, the factors that explain it).

Model = Callable[[_Inputs], tuple[float, tuple[Factor, ...]]]


def _tower(i: _Inputs) -> tuple[float, tuple[Factor, ...]]:
    terms = (i.reach, i.impact, i.confidence, i.kpi_weight, i.lever, i.urgency)
    value = math.prod(term.value for term in terms) / i.size.value
    return value, (*terms, i.size)


def _rice(i: _Inputs) -> tuple[float, tuple[Factor, ...]]:
    effort = Factor("effort", i.size.value, i.size.note)
    value = i.reach.value * i.impact.value * i.confidence.value / effort.value
    return value, (i.reach, i.impact, i.confidence, effort)


def _ice(i: _Inputs) -> tuple[float, tuple[Factor, ...]]:
    ease = _ease(i.size)
    return i.impact.value * i.confidence.value * ease.value, (i.impact, i.confidence, ease)


def _pie(i: _Inputs) -> tuple[float, tuple[Factor, ...]]:
    potential = Factor("potential", i.impact.value, f"impact {i.impact.note}")
    importance = Factor(
        "importance",
        i.reach.value * i.kpi_weight.value,
        f"reach {_figure(i.reach.value)} * KPI weight {i.kpi_weight.value:g}: "
        f"{i.reach.note}; {i.kpi_weight.note}",
    )
    ease = _ease(i.size)
    return potential.value * importance.value * ease.value, (potential, importance, ease)


def _wsjf(i: _Inputs) -> tuple[float, tuple[Factor, ...]]:
    cost = (
        i.impact.value * i.kpi_weight.value * i.lever.value
        + (i.urgency.value - 1) * WSJF_URGENCY_POINTS
        + i.confidence.value
    )
    note = (
        f"impact {i.impact.value:g} * KPI weight {i.kpi_weight.value:g} * lever "
        f"{i.lever.value:g} + (urgency {_figure(i.urgency.value)} - 1) * "
        f"{WSJF_URGENCY_POINTS:g} + confidence {i.confidence.value:g}"
    )
    assumptions = "; ".join(f"{factor.name} {factor.note}" for factor in i.assumed)
    cost_of_delay = Factor("cost_of_delay", cost, f"{note}; {assumptions}" if assumptions else note)
    job_size = Factor("job_size", i.size.value, i.size.note)
    return cost / job_size.value, (cost_of_delay, job_size)


def _ease(size: Factor) -> Factor:
    return Factor("ease", 1 / size.value, f"1 / {_figure(size.value)} weeks: {size.note}")


MODELS: dict[str, Model] = {
    "tower": _tower,
    "rice": _rice,
    "ice": _ice,
    "pie": _pie,
    "wsjf": _wsjf,
}


def _scale(values: tuple[float, ...]) -> str:
    return ", ".join(f"{value:g}" for value in values)


def _weeks(weeks: float, what: str) -> str:
    return f"{_figure(weeks)} {what} week{'' if weeks == 1 else 's'}"


def _people(count: float) -> str:
    return f"{round(count):,}"


def _figure(value: float) -> str:
    """A number as people read it: `infinite`, `1,620`, `2.42`, `0.416`."""
    if math.isinf(value):
        return "infinite"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None
