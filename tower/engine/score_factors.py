"""The factors that explain a score: each term's value, and a note in words on where it came
from (given or assumed, clamped, sized from the sample or the window).

A score writes them only when they are first read (`tower.engine.score.Score.factors`):
ranking reads only the numbers, and the words are most of the cost. Factors that depend on a
few categorical inputs only are frozen and shared between tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from tower.engine.score_inputs import (
    ASSUMED_CONFIDENCE,
    ASSUMED_IMPACT,
    WSJF_URGENCY_POINTS,
    ScoreInputs,
    clamp_lever,
    policy_weight,
    urgency,
    wsjf_cost_of_delay,
)
from tower.experiments.spec import CONFIDENCE_SCALE, IMPACT_SCALE

IMPACT_NAMES = dict(zip(IMPACT_SCALE, ("minimal", "low", "medium", "high", "massive"), strict=True))
CONFIDENCE_NAMES = dict(zip(CONFIDENCE_SCALE, ("least evidence", "medium", "high"), strict=True))


@dataclass(frozen=True)
class Factor:
    """One term of a score: its value and how it was obtained."""

    name: str
    value: float
    note: str

    def as_dict(self) -> dict[str, object]:
        """JSON-ready; an infinite value (a run nobody can fill) becomes null."""
        return {"name": self.name, "value": json_number(self.value), "note": self.note}


def json_number(value: float) -> float | None:
    """`value` for JSON: null when it is not finite."""
    return value if math.isfinite(value) else None


# The factors of each model, in the order its formula reads them.


def tower_factors(i: ScoreInputs) -> tuple[Factor, ...]:
    """reach * impact * confidence * kpi_weight * lever * urgency / size."""
    return (
        _reach_factor(i),
        _impact_factor(i),
        _confidence_factor(i),
        _kpi_weight_factor(i),
        _lever_factor(i),
        _urgency_factor(i),
        _size_factor(i),
    )


def rice_factors(i: ScoreInputs) -> tuple[Factor, ...]:
    """reach * impact * confidence / effort, the effort being the size."""
    effort = Factor("effort", i.size, _size_note(i))
    return (
        _reach_factor(i),
        _impact_factor(i),
        _confidence_factor(i),
        effort,
    )


def ice_factors(i: ScoreInputs) -> tuple[Factor, ...]:
    """impact * confidence * ease, the ease being 1 / size."""
    return (
        _impact_factor(i),
        _confidence_factor(i),
        _ease_factor(i),
    )


def pie_factors(i: ScoreInputs) -> tuple[Factor, ...]:
    """potential (impact) * importance (reach * KPI weight) * ease (1 / size)."""
    potential = Factor("potential", i.impact, f"impact {_impact_factor(i).note}")
    importance = Factor(
        "importance",
        i.reach * i.kpi_weight,
        f"reach {_figure(i.reach)} * KPI weight {i.kpi_weight:g}: "
        f"{_reach_factor(i).note}; {_kpi_weight_factor(i).note}",
    )
    return (potential, importance, _ease_factor(i))


def wsjf_factors(i: ScoreInputs) -> tuple[Factor, ...]:
    """cost of delay / job size, the job size being the size."""
    note = (
        f"impact {i.impact:g} * KPI weight {i.kpi_weight:g} * lever "
        f"{i.lever:g} + (urgency {_figure(i.urgency)} - 1) * "
        f"{WSJF_URGENCY_POINTS:g} + confidence {i.confidence:g}"
    )
    spec = i.item.spec
    assumed = [
        _scale_factor_of(name, given)
        for name, given in (("impact", spec.impact), ("confidence", spec.confidence))
        if given is None
    ]
    assumptions = "; ".join(f"{factor.name} {factor.note}" for factor in assumed)
    cost_of_delay = Factor(
        "cost_of_delay", wsjf_cost_of_delay(i), f"{note}; {assumptions}" if assumptions else note
    )
    return (cost_of_delay, Factor("job_size", i.size, _size_note(i)))


# The seven input factors, and the ease that some models read instead of the size.


def _reach_factor(i: ScoreInputs) -> Factor:
    if i.eligible <= 0:
        return Factor("reach", i.reach, f"nobody eligible ({_people(i.weekly)} can meet the test)")
    note = (
        f"{_people(i.eligible)} eligible people a week "
        f"({i.traffic * 100:g}% traffic share of the {_people(i.weekly)} who can meet the test)"
    )
    return Factor("reach", i.reach, note)


def _impact_factor(i: ScoreInputs) -> Factor:
    return _scale_factor_of("impact", i.item.spec.impact)


def _confidence_factor(i: ScoreInputs) -> Factor:
    return _scale_factor_of("confidence", i.item.spec.confidence)


# The inputs a team picks from a scale: the value assumed when not given, and the scale's
# names for its values.
_SCALES = {
    "impact": (ASSUMED_IMPACT, IMPACT_NAMES),
    "confidence": (ASSUMED_CONFIDENCE, CONFIDENCE_NAMES),
}


@lru_cache(maxsize=128, typed=True)
def _scale_factor_of(name: str, given: float | None) -> Factor:
    """The factor of scale input `name` (`_SCALES`): the value given, or the one assumed."""
    assumed, names = _SCALES[name]
    if given is None:
        return Factor(name, assumed, f"not given: assumed {assumed:g} ({names[assumed]})")
    return Factor(name, given, f"given: {given:g} ({names[given]})")


def _kpi_weight_factor(i: ScoreInputs) -> Factor:
    kpi, policy = i.item.spec.primary_kpi, i.policy
    return _kpi_weight_factor_of(kpi, bool(policy.kpis), policy_weight(kpi, policy))


@lru_cache(maxsize=256, typed=True)
def _kpi_weight_factor_of(kpi: str | None, weighs_kpis: bool, weight: float | None) -> Factor:
    if kpi is None:
        return Factor("kpi_weight", 1.0, "no primary KPI: weight 1")
    if not weighs_kpis:
        return Factor("kpi_weight", 1.0, f"the policy weighs no KPIs: {kpi} weighs 1")
    if weight is None:
        return Factor("kpi_weight", 1.0, f"{kpi} has no weight in the policy: weight 1")
    return Factor("kpi_weight", weight, f"{kpi} weighs {weight:g} in the policy")


def _lever_factor(i: ScoreInputs) -> Factor:
    scoring = i.policy.scoring
    return _lever_factor_of(i.item.lever, scoring.lever_min, scoring.lever_max)


@lru_cache(maxsize=256, typed=True)
def _lever_factor_of(lever: float, low: float, high: float) -> Factor:
    if lever > high:
        note = f"set to {lever:g}, clamped to the policy's maximum {high:g}"
    elif lever < low:
        note = f"set to {lever:g}, clamped to the policy's minimum {low:g}"
    else:
        note = f"set to {lever:g} (the policy allows {low:g} to {high:g})"
    return Factor("lever", clamp_lever(lever, low, high), note)


def _urgency_factor(i: ScoreInputs) -> Factor:
    return _urgency_factor_of(i.item.deadline, i.today, i.policy.scoring.urgency_horizon_days)


@lru_cache(maxsize=1024)
def _urgency_factor_of(deadline: date | None, today: date, horizon: int) -> Factor:
    value = urgency(deadline, today, horizon)
    if deadline is None:
        return Factor("urgency", value, "no deadline")
    days_left = (deadline - today).days
    if days_left >= horizon:
        note = f"deadline {deadline} in {days_left} days, beyond the {horizon}-day horizon"
    elif days_left <= 0:
        when = "is today" if days_left == 0 else f"passed {-days_left} days ago"
        note = f"deadline {deadline} {when}: the maximum"
    else:
        note = f"deadline {deadline} in {days_left} days: 1 + (1 - {days_left}/{horizon})"
    return Factor("urgency", value, note)


def _size_factor(i: ScoreInputs) -> Factor:
    return Factor("size", i.size, _size_note(i))


def _ease_factor(i: ScoreInputs) -> Factor:
    return Factor("ease", 1 / i.size, f"1 / {_figure(i.size)} weeks: {_size_note(i)}")


def _size_note(i: ScoreInputs) -> str:
    spec = i.item.spec
    build_note = _weeks(i.build, "build")
    if spec.effort_weeks is None:
        build_note += f" (effort_weeks not given: assumed {i.build:g})"
    if i.eligible <= 0:
        return f"{build_note} + infinite run weeks (nobody eligible to fill it)"
    if spec.baseline is None or spec.mde is None:
        missing = " and ".join(
            name
            for name, value in (("baseline", spec.baseline), ("mde", spec.mde))
            if value is None
        )
        run_note = (
            f"{_weeks(i.run, 'run')} (no {missing} to size the sample: "
            f"the window's {i.days} days / 7)"
        )
    else:
        run_note = (
            f"{_weeks(i.run, 'run')} ({i.arms} arms * {i.per_arm:,} people "
            f"/ {_people(i.eligible)} eligible a week)"
        )
    return f"{build_note} + {run_note}"


def _weeks(weeks: float, what: str) -> str:
    return f"{_figure(weeks)} {what} week{'' if weeks == 1 else 's'}"


def _people(count: float) -> str:
    return f"{round(count):,}"


def _figure(value: float) -> str:
    """A number as people read it: `infinite`, `1,620`, `2.42`, `0.416`."""
    if math.isinf(value):
        return "infinite"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
