"""Tests built the same way across the suite: a valid checkout-squad test under the small
policy (tests/data/policy.yaml), changed only where a test says so."""

from __future__ import annotations

from datetime import date
from typing import Any

from tower.experiments.spec import ExperimentKind, ExperimentSpec


def cart_test(*, start: date, end: date, **changes: Any) -> ExperimentSpec:
    """U0ANNA's A/B test on web/checkout/cart from `start` to `end`, ready to submit."""
    values: dict[str, Any] = {
        "title": "Sticky basket",
        "team": "checkout-squad",
        "owner": "U0ANNA",
        "kind": ExperimentKind.AB_TEST,
        "surfaces": ("web/checkout/cart",),
        "start": start,
        "end": end,
        "primary_kpi": "conversion_rate",
        "baseline": 0.03,
        "mde": 0.05,
        "hypothesis": "A basket that stays in view converts more visitors.",
    }
    values.update(changes)
    return ExperimentSpec(**values)
