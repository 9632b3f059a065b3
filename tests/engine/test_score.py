"""The common prioritization score, checked against arithmetic done by hand.

Every example runs on the small policy (tests/data/policy.yaml). Its `web/checkout` page has
300,000 weekly visitors and the root audience `all` is the whole population, so a test on
`web/checkout` for everyone can meet 300,000 people a week; at 50% traffic, 150,000 are in
the test: a reach of 150 (thousands).
"""

from __future__ import annotations

import copy
import json
import math
import pickle
from dataclasses import FrozenInstanceError, replace
from datetime import date, timedelta
from typing import Any

import pytest

from tower.engine.portfolio import Compiler, PortfolioItem
from tower.engine.score import (
    SampleNeed,
    Score,
    ScoringError,
    rank,
    required_sample_size,
    score_item,
)
from tower.engine.score_factors import Factor
from tower.errors import TowerError
from tower.experiments.spec import (
    ExperimentKind,
    ExperimentSpec,
    ExperimentStatus,
    validate_spec,
)
from tower.policy import Policy
from tower.policy.schema import Scoring

TODAY = date(2027, 1, 4)  # a Monday
START = date(2027, 1, 11)
END = date(2027, 1, 24)  # inclusive: a 14-day window, 2 run weeks when nothing sizes it


def spec(**changes: Any) -> ExperimentSpec:
    """A complete checkout test: impact 2, confidence 0.8, 2 build weeks, half the traffic."""
    base = ExperimentSpec(
        title="One-page checkout",
        team="checkout-squad",
        owner="U0ANNA",
        kind=ExperimentKind.AB_TEST,
        surfaces=("web/checkout",),
        start=START,
        end=END,
        traffic=50.0,
        primary_kpi="conversion_rate",
        impact=2.0,
        confidence=0.8,
        effort_weeks=2.0,
    )
    return replace(base, **changes)


def item(
    number: int = 1,
    *,
    lever: float = 1.0,
    deadline: date | None = None,
    **changes: Any,
) -> PortfolioItem:
    return PortfolioItem(
        key=f"T-{number}",
        number=number,
        status=ExperimentStatus.SUBMITTED,
        spec=spec(**changes),
        lever=lever,
        deadline=deadline,
    )


def with_scoring(policy: Policy, **settings: Any) -> Policy:
    return policy.model_copy(update={"scoring": Scoring(**settings)})


def score(compiler: Compiler, portfolio_item: PortfolioItem) -> Score:
    return score_item(portfolio_item, compiler.compile(portfolio_item), compiler, today=TODAY)


@pytest.fixture(scope="module")
def compiler(small_policy: Policy) -> Compiler:
    return Compiler(small_policy)


# --- the sample size -----------------------------------------------------------------------


def test_sample_size_for_a_five_percent_baseline_and_a_ten_percent_lift() -> None:
    # p1 = 0.05, p2 = 0.05 * 1.1 = 0.055, p = (p1 + p2) / 2 = 0.0525
    # z(0.975) = 1.959964, z(0.8) = 0.841621
    # sqrt(2 * 0.0525 * 0.9475) = sqrt(0.0994875) = 0.315416
    # sqrt(0.05 * 0.95 + 0.055 * 0.945) = sqrt(0.0475 + 0.051975) = sqrt(0.099475) = 0.315397
    # (1.959964 * 0.315416 + 0.841621 * 0.315397)^2 = (0.618205 + 0.265444)^2 = 0.883649^2
    #   = 0.780836;  / (0.005)^2 = 0.780836 / 0.000025 = 31,233.4 -> 31,234 per arm
    assert required_sample_size(0.05, 0.1, alpha=0.05, power=0.8) == 31_234


def test_sample_size_matches_a_published_value() -> None:
    # JMP's two-sample proportions example (jmp.com/support/help/13-2/Two_Sample_Proportions):
    # p1 = 0.06, p2 = 0.08, alpha 0.05 two-sided, power 0.8 -> 2,554 per group.
    assert required_sample_size(0.06, 1 / 3, alpha=0.05, power=0.8) == 2_554


def test_a_share_a_rounding_error_short_of_all_never_reaches_the_sample() -> None:
    need = SampleNeed(arms=2, per_arm=1_000, weekly=500.0, window_days=28)
    assert need.days() == 28
    assert need.days(0.5) == 56
    assert need.days(1.0) is None
    # A clash's share comes out of float arithmetic: 0.9999999999999999 is everyone, and
    # so is 1 less a few billionths (counts of a billion people lose that much).
    assert need.days(1 - 1e-16) is None
    assert need.days(1 - 4e-9) is None
    assert need.days(0.999) == 28_000


def test_a_stricter_test_needs_more_people() -> None:
    usual = required_sample_size(0.05, 0.1, alpha=0.05, power=0.8)
    assert required_sample_size(0.05, 0.1, alpha=0.01, power=0.8) > usual
    assert required_sample_size(0.05, 0.1, alpha=0.05, power=0.9) > usual
    assert required_sample_size(0.05, 0.2, alpha=0.05, power=0.8) < usual


@pytest.mark.parametrize(
    ("baseline", "mde"), [(0.0, 0.1), (1.0, 0.1), (0.05, 0.0), (0.05, -0.1), (0.5, 1.0)]
)
def test_sample_size_refuses_inputs_outside_the_test(baseline: float, mde: float) -> None:
    with pytest.raises(ValueError):
        required_sample_size(baseline, mde, alpha=0.05, power=0.8)


# --- the default model -----------------------------------------------------------------------


def test_tower_score_by_hand(compiler: Compiler) -> None:
    # reach 150 (150,000 a week), impact 2, confidence 0.8, conversion_rate weighs 3,
    # lever 1.5, deadline in 14 days of a 28-day horizon: urgency 1 + (1 - 14/28) = 1.5,
    # size 2 build weeks + 14 days / 7 = 4 weeks (no baseline sizes the sample).
    # 150 * 2 * 0.8 * 3 * 1.5 * 1.5 / 4 = 1,620 / 4 = 405
    result = score(compiler, item(lever=1.5, deadline=TODAY + timedelta(days=14)))
    assert result.model == "tower"
    assert result.value == pytest.approx(405.0)
    assert result.confidence == 0.8
    assert [(f.name, f.value) for f in result.factors] == [
        ("reach", pytest.approx(150.0)),
        ("impact", 2.0),
        ("confidence", 0.8),
        ("kpi_weight", 3.0),
        ("lever", 1.5),
        ("urgency", pytest.approx(1.5)),
        ("size", pytest.approx(4.0)),
    ]
    reach = result.factor("reach")
    assert reach.note.startswith("150,000 eligible people a week")
    assert "50% traffic share of the 300,000" in reach.note
    assert "conversion_rate weighs 3" in result.factor("kpi_weight").note


def test_run_weeks_come_from_the_sample_size(compiler: Compiler) -> None:
    # 2 arms * 31,234 people = 62,468 people / 150,000 a week = 0.416453 run weeks;
    # size = 2 + 0.416453 = 2.416453; 150 * 2 * 0.8 * 3 / 2.416453 = 720 / 2.416453 = 297.96
    result = score(compiler, item(baseline=0.05, mde=0.1))
    size = result.factor("size")
    assert size.value == pytest.approx(2 + 62_468 / 150_000)
    assert "2 arms * 31,234 people / 150,000 eligible a week" in size.note
    assert result.value == pytest.approx(720 / (2 + 62_468 / 150_000))


def test_a_multivariate_test_needs_four_arms(compiler: Compiler) -> None:
    # 4 arms * 31,234 = 124,936 people / 150,000 a week = 0.832907 run weeks
    result = score(compiler, item(kind=ExperimentKind.MULTIVARIATE, baseline=0.05, mde=0.1))
    assert result.factor("size").value == pytest.approx(2 + 124_936 / 150_000)
    assert "4 arms" in result.factor("size").note


def test_sample_size_follows_the_policy_alpha_and_power(small_policy: Policy) -> None:
    strict = Compiler(with_scoring(small_policy, alpha=0.01, power=0.9))
    per_arm = required_sample_size(0.05, 0.1, alpha=0.01, power=0.9)
    result = score(strict, item(baseline=0.05, mde=0.1))
    assert result.factor("size").value == pytest.approx(2 + 2 * per_arm / 150_000)


def test_the_audience_narrows_reach(compiler: Compiler) -> None:
    # The population model holds 2,200,000 people under `all` (declared 2,000,000): its
    # children anonymous 1,200,000, logged_in 800,000 and app_users 500,000, less the
    # 300,000 declared in both app_users and logged_in. loyalty is 300,000 of them:
    # 3/22 of checkout's 300,000 visitors, at 100% traffic a reach of 40.9 (thousands).
    assert compiler.graph.segments.population == pytest.approx(2_200_000)
    result = score(compiler, item(audiences=("loyalty",), traffic=100.0))
    assert result.factor("reach").value == pytest.approx(300_000 * 3 / 22 / 1000)


@pytest.mark.parametrize(
    ("days_left", "urgency"),
    [
        (None, 1.0),  # no deadline
        (60, 1.0),  # beyond the 28-day horizon
        (28, 1.0),  # at the horizon: 1 + (1 - 28/28)
        (21, 1.25),  # 1 + (1 - 21/28) = 1.25
        (7, 1.75),  # 1 + (1 - 7/28) = 1.75
        (0, 2.0),  # the deadline is today
        (-5, 2.0),  # past the deadline: still the maximum
    ],
)
def test_urgency_rises_as_the_deadline_nears(
    compiler: Compiler, days_left: int | None, urgency: float
) -> None:
    deadline = None if days_left is None else TODAY + timedelta(days=days_left)
    result = score(compiler, item(deadline=deadline))
    assert result.factor("urgency").value == pytest.approx(urgency)
    # Without urgency the example is 150 * 2 * 0.8 * 3 / 4 = 180.
    assert result.value == pytest.approx(180 * urgency)


def test_urgency_notes_say_where_the_deadline_is(compiler: Compiler) -> None:
    def note(days: int) -> str:
        return score(compiler, item(deadline=TODAY + timedelta(days=days))).factor("urgency").note

    assert "beyond the 28-day horizon" in note(60)
    assert "in 7 days" in note(7)
    assert "passed 5 days ago" in note(-5)


def test_urgency_horizon_comes_from_the_policy(small_policy: Policy) -> None:
    # 7 days left of a 14-day horizon: 1 + (1 - 7/14) = 1.5
    short = Compiler(with_scoring(small_policy, urgency_horizon_days=14))
    result = score(short, item(deadline=TODAY + timedelta(days=7)))
    assert result.factor("urgency").value == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("lever", "used", "clamped"),
    [(5.0, 2.0, "maximum"), (0.1, 0.5, "minimum"), (1.2, 1.2, None), (2.0, 2.0, None)],
)
def test_lever_is_clamped_to_the_policy_range(
    compiler: Compiler, lever: float, used: float, clamped: str | None
) -> None:
    result = score(compiler, item(lever=lever))
    factor = result.factor("lever")
    assert factor.value == used
    assert result.value == pytest.approx(180 * used)
    if clamped is None:
        assert "clamped" not in factor.note
    else:
        assert f"clamped to the policy's {clamped} {used:g}" in factor.note


def test_lever_range_comes_from_the_policy(small_policy: Policy) -> None:
    wide = Compiler(with_scoring(small_policy, lever_max=4.0))
    assert score(wide, item(lever=5.0)).factor("lever").value == 4.0


def test_missing_inputs_take_neutral_assumptions_shown_in_notes(compiler: Compiler) -> None:
    # impact 1, confidence 0.5, effort 1 week, no KPI (weight 1), 2 run weeks from the window:
    # 150 * 1 * 0.5 * 1 * 1 * 1 / (1 + 2) = 75 / 3 = 25
    result = score(
        compiler,
        item(impact=None, confidence=None, effort_weeks=None, primary_kpi=None),
    )
    assert result.value == pytest.approx(25.0)
    assert result.confidence == 0.5
    assert result.factor("impact").note == "not given: assumed 1 (medium)"
    assert result.factor("confidence").note == "not given: assumed 0.5 (least evidence)"
    assert result.factor("kpi_weight").note == "no primary KPI: weight 1"
    size = result.factor("size").note
    assert "effort_weeks not given: assumed 1" in size
    assert "no baseline and mde to size the sample: the window's 14 days / 7" in size


def test_a_baseline_without_mde_falls_back_to_the_window(compiler: Compiler) -> None:
    result = score(compiler, item(baseline=0.05))
    assert result.factor("size").value == pytest.approx(4.0)
    assert "no mde to size the sample" in result.factor("size").note


def test_kpi_without_a_weight_counts_once(compiler: Compiler, small_policy: Policy) -> None:
    unweighted = score(compiler, item(primary_kpi="bounce_rate")).factor("kpi_weight")
    assert unweighted.value == 1.0
    assert "bounce_rate has no weight in the policy" in unweighted.note
    no_kpis = Compiler(small_policy.model_copy(update={"kpis": {}}))
    assert score(no_kpis, item()).factor("kpi_weight").value == 1.0


# --- invalid inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "allowed"),
    [
        ({"impact": 1.5}, "impact", "0.25, 0.5, 1, 2, 3"),
        ({"impact": 0.0}, "impact", "0.25, 0.5, 1, 2, 3"),
        ({"confidence": 0.7}, "confidence", "0.5, 0.8, 1"),
        ({"effort_weeks": 0.0}, "effort_weeks", "positive"),
        ({"effort_weeks": -1.0}, "effort_weeks", "positive"),
        ({"baseline": 0.0}, "baseline", "rate in (0, 1)"),
        ({"baseline": 1.0}, "baseline", "rate in (0, 1)"),
        ({"baseline": 1.5}, "baseline", "rate in (0, 1)"),
        ({"mde": 0.0}, "mde", "positive"),
        ({"mde": -0.1}, "mde", "positive"),
        ({"baseline": 0.6, "mde": 1.0}, "mde", "baseline * (1 + mde) must stay below 1"),
        ({"baseline": 0.5, "mde": 1.0}, "mde", "baseline * (1 + mde) must stay below 1"),
    ],
)
def test_invalid_inputs_are_errors_naming_key_and_field(
    compiler: Compiler, changes: dict[str, Any], field: str, allowed: str
) -> None:
    bad = item(7, **changes)
    with pytest.raises(ScoringError) as raised:
        score(compiler, bad)
    message = str(raised.value)
    assert "T-7" in message
    assert field in message
    assert allowed in message
    assert raised.value.key == "T-7"
    assert raised.value.field == field
    assert isinstance(raised.value, TowerError)
    # The rule is validate_spec's: registration refuses the same input, in the same words.
    refused = validate_spec(bad.spec, compiler.policy)
    assert field in [problem.field for problem in refused if allowed in problem.message]


# --- nobody eligible ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["tower", "rice", "ice", "pie", "wsjf"])
@pytest.mark.parametrize("baseline", [None, 0.05])
def test_a_test_nobody_can_meet_scores_zero(
    small_policy: Policy, model: str, baseline: float | None
) -> None:
    # Loyalty members who are not logged in: loyalty lies inside logged_in, nobody is left.
    nobody = item(audiences=("loyalty",), exclude_audiences=("logged_in",), baseline=baseline)
    scoring = Compiler(with_scoring(small_policy, model=model))
    result = score(scoring, nobody)
    assert result.value == 0.0
    notes = " ".join(factor.note for factor in result.factors)
    assert "nobody eligible" in notes
    assert json.loads(json.dumps(result.as_dict(), allow_nan=False))["value"] == 0.0


def test_nobody_eligible_in_the_default_model(compiler: Compiler) -> None:
    result = score(compiler, item(audiences=("loyalty",), exclude_audiences=("logged_in",)))
    assert result.factor("reach").value == 0.0
    assert result.factor("reach").note.startswith("nobody eligible")
    assert math.isinf(result.factor("size").value)


# --- the other models --------------------------------------------------------------------------

# The hand-built item for every model: reach 150, impact 2, confidence 0.8, KPI weight 3,
# lever 1.5, urgency 1.5 (14 days left of 28), size 2 build + 2 run weeks = 4.
MODEL_VALUES = {
    "tower": 405.0,  # 150 * 2 * 0.8 * 3 * 1.5 * 1.5 / 4 = 1,620 / 4
    "rice": 60.0,  # 150 * 2 * 0.8 / 4 = 240 / 4
    "ice": 0.4,  # 2 * 0.8 * (1 / 4) = 1.6 * 0.25
    "pie": 225.0,  # potential 2 * importance (150 * 3 = 450) * ease 0.25 = 900 * 0.25
    "wsjf": 2.825,  # (2 * 3 * 1.5 + (1.5 - 1) * 3 + 0.8) / 4 = (9 + 1.5 + 0.8) / 4 = 11.3 / 4
}
MODEL_FACTORS = {
    "tower": {
        "reach": 150.0,
        "impact": 2.0,
        "confidence": 0.8,
        "kpi_weight": 3.0,
        "lever": 1.5,
        "urgency": 1.5,
        "size": 4.0,
    },
    "rice": {"reach": 150.0, "impact": 2.0, "confidence": 0.8, "effort": 4.0},
    "ice": {"impact": 2.0, "confidence": 0.8, "ease": 0.25},
    "pie": {"potential": 2.0, "importance": 450.0, "ease": 0.25},
    "wsjf": {"cost_of_delay": 11.3, "job_size": 4.0},
}


@pytest.mark.parametrize("model", sorted(MODEL_VALUES))
def test_each_model_by_hand(small_policy: Policy, model: str) -> None:
    scoring = Compiler(with_scoring(small_policy, model=model))
    result = score(scoring, item(lever=1.5, deadline=TODAY + timedelta(days=14)))
    assert result.model == model
    assert result.value == pytest.approx(MODEL_VALUES[model])
    assert {f.name: f.value for f in result.factors} == pytest.approx(MODEL_FACTORS[model])
    assert all(factor.note for factor in result.factors)


def test_wsjf_shows_assumed_inputs_in_its_cost_of_delay(small_policy: Policy) -> None:
    # impact 1 * KPI weight 3 * lever 1 + (1 - 1) * 3 + confidence 0.5 = 3.5; / 4 = 0.875
    scoring = Compiler(with_scoring(small_policy, model="wsjf"))
    result = score(scoring, item(impact=None, confidence=None))
    assert result.value == pytest.approx(0.875)
    note = result.factor("cost_of_delay").note
    assert "impact not given: assumed 1 (medium)" in note
    assert "confidence not given: assumed 0.5 (least evidence)" in note


def test_pie_importance_explains_reach_and_weight(small_policy: Policy) -> None:
    scoring = Compiler(with_scoring(small_policy, model="pie"))
    note = score(scoring, item()).factor("importance").note
    assert "150,000 eligible people a week" in note
    assert "conversion_rate weighs 3" in note


# --- ranking -----------------------------------------------------------------------------------


def scored(number: int, value: float, confidence: float) -> Score:
    return Score(f"T-{number}", number, "tower", value, confidence, ())


def test_rank_orders_by_value_first() -> None:
    ranked = rank([scored(1, 10.0, 1.0), scored(2, 30.0, 0.5), scored(3, 20.0, 0.8)])
    assert [s.key for s in ranked] == ["T-2", "T-3", "T-1"]


def test_rank_breaks_ties_by_confidence_then_registration() -> None:
    ranked = rank(
        [
            scored(4, 50.0, 0.5),
            scored(3, 50.0, 1.0),
            scored(2, 50.0, 0.5),
            scored(1, 50.0, 0.8),
            scored(5, 70.0, 0.5),
        ]
    )
    # 70 first; then among the 50s: confidence 1.0, 0.8, then 0.5 by number (2 before 4).
    assert [s.key for s in ranked] == ["T-5", "T-3", "T-1", "T-2", "T-4"]


def test_rank_of_scored_items(compiler: Compiler) -> None:
    # Same value, same confidence: the earlier registration (T-3) comes first.
    later, earlier = score(compiler, item(8)), score(compiler, item(3))
    assert later.value == earlier.value
    assert [s.key for s in rank([later, earlier])] == ["T-3", "T-8"]


# --- output ------------------------------------------------------------------------------------


def test_as_dict_is_json_ready(compiler: Compiler) -> None:
    result = score(compiler, item())
    data = json.loads(json.dumps(result.as_dict(), allow_nan=False))
    assert data["key"] == "T-1"
    assert data["model"] == "tower"
    assert data["value"] == pytest.approx(180.0)
    assert data["factors"][0] == {
        "name": "reach",
        "value": pytest.approx(150.0),
        "note": result.factors[0].note,
    }
    assert [f["name"] for f in data["factors"]] == [f.name for f in result.factors]


def test_a_score_behaves_as_a_frozen_record_of_its_fields(compiler: Compiler) -> None:
    # Its factors are written when first read; it still compares, hashes, copies and refuses
    # assignment like a frozen dataclass of key, number, model, value, confidence, factors.
    result = score(compiler, item())
    same = Score("T-1", 1, "tower", result.value, 0.8, result.factors)
    assert result == same
    assert hash(result) == hash(same)
    assert result == score(compiler, item())
    assert result != Score("T-1", 1, "tower", result.value, 0.8, result.factors[:-1])
    assert repr(result) == repr(same)
    assert repr(result).startswith("Score(key='T-1', number=1, model='tower', value=")
    assert pickle.loads(pickle.dumps(result)) == result
    assert copy.copy(result) == result
    with pytest.raises(FrozenInstanceError):
        result.value = 0.0  # type: ignore[misc]


def test_factor_as_dict_turns_infinity_into_null() -> None:
    assert Factor("size", math.inf, "nobody eligible").as_dict()["value"] is None
