"""Tests built the same way across the suite: a valid checkout-squad test under the small
policy (tests/data/policy.yaml), changed only where a test says so; the services' clock of
the small policy's story (Monday 2 March 2026) and tests registered on it; a roadmap of
tests on the retail demo's home-page hero."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tests.support.cli import succeeded, tower
from tests.support.files import RETAIL_POLICY, RETAIL_PORTFOLIO
from tower.context import ServiceContext
from tower.experiments import service as experiment_service
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentKind, ExperimentSpec
from tower.experiments.spec import ExperimentStatus as S
from tower.policy import Policy


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


# The services' clock in the small policy's story: Monday 2 March 2026, 10:00 in London
# (GMT, so 10:00 UTC too); a test runs from Monday 16 to Sunday 29 March 2026.
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
START = date(2026, 3, 16)  # a Monday
END = date(2026, 3, 29)  # a Sunday


def utc(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    """A moment in 2026 (London is on GMT until 29 March, so this is London time too)."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def at(policy: Policy, moment: datetime = NOW) -> ServiceContext:
    return ServiceContext.create(policy, moment)


def spec(**changes: Any) -> ExperimentSpec:
    """`cart_test` from START to END, changed where `changes` say."""
    return cart_test(**{"start": START, "end": END, **changes})


def register(session: Session, status: S = S.DRAFT, number: int = 1, **changes: Any) -> Experiment:
    """T-`number`, a `spec(**changes)` in `status`, created by its owner."""
    made = spec(**changes)
    return experiment_service.create(
        session, number=number, spec=made, status=status, actor=made.owner
    )


def register_in(factory: sessionmaker[Session], status: S, number: int = 1, **changes: Any) -> None:
    """`register`, in a transaction of its own from `factory`."""
    with factory.begin() as session:
        register(session, status, number, **changes)


# Three tests for the retail home page's hero, highest-ranked first once imported: the
# draft (impact 3), then the image (2), then the video (1).
HERO_TESTS: list[dict[str, Any]] = [
    {"key": "T-1", "title": "Hero: one big image", "impact": "2", "status": "submitted"},
    {"key": "T-2", "title": "Hero: a video", "impact": "1", "status": "submitted"},
    {"key": "T-3", "title": "Hero: a carousel", "impact": "3", "status": "draft"},
]


def import_hero_tests(url: str, folder: Path, start: date, rows: list[dict[str, Any]]) -> None:
    """`tower init`, then `tower import` of checkout-squad tests on the retail home page's
    hero (`rows`, e.g. from HERO_TESTS), all over the same two weeks from `start` unless a
    row says otherwise."""
    common = {"team": "checkout-squad", "surfaces": "web/home/hero"}
    import_tests(url, folder / "hero.csv", start, [{**common, **row} for row in rows])


def import_tests(
    url: str,
    path: Path,
    start: date,
    rows: list[dict[str, Any]],
    *,
    policy: Path = RETAIL_POLICY,
) -> None:
    """`tower init`, then `tower import` of `rows` written as the CSV `path`: each a
    submitted A/B test T-n (n its place) of U0ANNA's, for everyone at full traffic, over
    the two weeks from `start`, unless the row says otherwise (its team and surfaces
    given)."""
    common = {
        "status": "submitted",
        "owner": "U0ANNA",
        "kind": "ab_test",
        "audiences": "",
        "exclude_audiences": "",
        "start": start.isoformat(),
        "end": (start + timedelta(days=13)).isoformat(),
        "traffic": "100",
        "exclusion_group": "",
        "primary_kpi": "conversion_rate",
        "baseline": "0.05",
        "mde": "0.05",
        "hypothesis": "A clearer page gets more people shopping.",
        "impact": "1",
        "confidence": "0.8",
        "effort_weeks": "1",
    }
    header = next(csv.reader(RETAIL_PORTFOLIO.open(encoding="utf-8")))
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, header)
        writer.writeheader()
        for number, row in enumerate(rows, start=1):
            writer.writerow({"key": f"T-{number}", **common, **row})
    succeeded(tower(url, "init", policy=policy))
    succeeded(tower(url, "import", str(path), policy=policy))
