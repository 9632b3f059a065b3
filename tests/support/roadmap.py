"""What the roadmap spreadsheet's tests (tests/experiments/test_csv_*.py) share: rows and
files built from a valid checkout-squad row, the specs a good file holds, generated specs,
reading, importing and exporting in a test's transaction, and `tower` on the small policy
against a database of a test's own.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from tests.support import cli
from tests.support.files import SMALL_POLICY
from tests.support.people import MANAGER as ACTOR
from tower.audit.models import AuditEvent
from tower.experiments.csv_rows import (
    COLUMNS,
    RoadmapFormatError,
    RoadmapRow,
    RowError,
    read_roadmap,
    write_roadmap,
)
from tower.experiments.csv_transfer import ImportReport, export_roadmap, import_roadmap
from tower.experiments.models import Experiment
from tower.experiments.spec import (
    CONFIDENCE_SCALE,
    IMPACT_SCALE,
    ExperimentKind,
    ExperimentSpec,
    ExperimentStatus,
    format_key,
)
from tower.policy import Policy, load_policy

HEADER_LINE = ",".join(COLUMNS) + "\n"
Row = Mapping[str, str]
Numbered = tuple[int, ExperimentSpec, ExperimentStatus]


def row(**cells: str) -> dict[str, str]:
    """A valid checkout-squad row; keyword arguments replace cells."""
    values = {
        "key": "",
        "title": "One-page checkout",
        "team": "checkout-squad",
        "owner": "U0ANNA",
        "kind": "ab_test",
        "surfaces": "web/checkout/payment",
        "audiences": "",
        "exclude_audiences": "",
        "start": "2026-03-02",
        "end": "2026-03-15",
        "traffic": "50",
        "exclusion_group": "",
        "primary_kpi": "conversion_rate",
        "baseline": "0.032",
        "mde": "0.05",
        "hypothesis": "If the checkout fits one page, more visitors pay.",
        "impact": "2",
        "confidence": "0.8",
        "effort_weeks": "1.5",
        "status": "",
    }
    unknown = set(cells) - set(values)
    assert not unknown, f"not a roadmap column: {unknown}"
    values.update(cells)
    return values


def roadmap(*rows: Row, columns: Sequence[str] = COLUMNS, quote_all: bool = False) -> str:
    """The CSV text of `rows` under a header of `columns`, quoted as a spreadsheet would
    (every cell, with `quote_all`)."""
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    )
    writer.writerow(columns)
    for cells in rows:
        writer.writerow([cells.get(column, "") for column in columns])
    return buffer.getvalue()


def read(text: str, policy: Policy) -> list[RoadmapRow]:
    return read_roadmap(io.StringIO(text), policy, "roadmap.csv")


def read_errors(text: str, policy: Policy) -> list[RowError]:
    with pytest.raises(RoadmapFormatError) as caught:
        read(text, policy)
    return caught.value.errors


def import_text(session: Session, text: str, policy: Policy, actor: str = ACTOR) -> ImportReport:
    return import_roadmap(
        session, io.StringIO(text), policy=policy, actor=actor, source="roadmap.csv"
    )


def export_text(session: Session) -> str:
    buffer = io.StringIO()
    export_roadmap(session, buffer)
    return buffer.getvalue()


def experiments(session: Session) -> dict[str, Experiment]:
    found = session.scalars(select(Experiment).order_by(Experiment.number))
    return {experiment.key: experiment for experiment in found}


def counts(session: Session) -> tuple[int, int]:
    """How many rows the experiments and audit_events tables hold."""
    tests = session.scalar(select(func.count()).select_from(Experiment)) or 0
    events = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    return tests, events


def versions(session: Session) -> dict[str, int]:
    return {key: experiment.version for key, experiment in experiments(session).items()}


GOOD_ROWS = (
    row(
        title='Checkout, "one page"',
        surfaces="web/checkout/cart; web/checkout/payment",
        audiences="logged_in;app_users",
        exclude_audiences=" loyalty ",
        exclusion_group="checkout-layout",
    ),
    row(
        key="T-7",
        title="Newsletter subject lines",
        team="ecommerce",
        owner="U0CARLA",
        kind="campaign",
        surfaces="email/promotional/weekly_newsletter",
        start="2026-04-01",
        end="2026-04-30",
        traffic="",
        primary_kpi="",
        baseline="",
        mde="",
        hypothesis="",
        impact="",
        confidence="",
        effort_weeks="",
        status="approved",
    ),
    row(
        title="Homepage hero for anonymous visitors",
        owner="U0TOWERMGR",
        kind="personalization",
        surfaces="web/home",
        audiences="anonymous",
        start="2026-05-04",
        end="2026-05-04",
        traffic="12.5",
        primary_kpi="engagement",
        baseline="0.2",
        impact="0.25",
        confidence="1",
        effort_weeks="3",
        status="submitted",
    ),
)
GOOD_FILE = roadmap(*GOOD_ROWS)

CHECKOUT_SPEC = ExperimentSpec(
    title='Checkout, "one page"',
    team="checkout-squad",
    owner="U0ANNA",
    kind=ExperimentKind.AB_TEST,
    surfaces=("web/checkout/cart", "web/checkout/payment"),
    start=date(2026, 3, 2),
    end=date(2026, 3, 15),
    audiences=("logged_in", "app_users"),
    exclude_audiences=("loyalty",),
    traffic=50.0,
    exclusion_group="checkout-layout",
    primary_kpi="conversion_rate",
    baseline=0.032,
    mde=0.05,
    hypothesis="If the checkout fits one page, more visitors pay.",
    impact=2.0,
    confidence=0.8,
    effort_weeks=1.5,
)
NEWSLETTER_SPEC = ExperimentSpec(
    title="Newsletter subject lines",
    team="ecommerce",
    owner="U0CARLA",
    kind=ExperimentKind.CAMPAIGN,
    surfaces=("email/promotional/weekly_newsletter",),
    start=date(2026, 4, 1),
    end=date(2026, 4, 30),
)
HERO_SPEC = ExperimentSpec(
    title="Homepage hero for anonymous visitors",
    team="checkout-squad",
    owner="U0TOWERMGR",
    kind=ExperimentKind.PERSONALIZATION,
    surfaces=("web/home",),
    start=date(2026, 5, 4),
    end=date(2026, 5, 4),
    audiences=("anonymous",),
    traffic=12.5,
    primary_kpi="engagement",
    baseline=0.2,
    mde=0.05,
    hypothesis="If the checkout fits one page, more visitors pay.",
    impact=0.25,
    confidence=1.0,
    effort_weeks=3.0,
)


# Text a person might type in a spreadsheet cell: any printable character, with the ones
# CSV must quote (commas, quotes, newlines) and the list separator drawn often.
CELL_CHARACTERS = st.one_of(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]),
    st.sampled_from([",", '"', ";", "\n", " ", "'", "é", "—", "😀"]),
)
POLICY = load_policy(SMALL_POLICY)
SURFACES = sorted(POLICY.surface_paths)
SEGMENTS = sorted(POLICY.segment_names)


def trimmed_text(*, min_size: int = 0, max_size: int) -> st.SearchStrategy[str]:
    strategy = st.text(CELL_CHARACTERS, min_size=min_size, max_size=max_size).map(str.strip)
    return strategy.filter(bool) if min_size else strategy


def optional_positive() -> st.SearchStrategy[float | None]:
    return st.none() | st.floats(min_value=0, exclude_min=True, allow_infinity=False)


def lifts_below_a_rate_of_1(baseline: float) -> st.SearchStrategy[float | None]:
    """An optional MDE that keeps baseline * (1 + mde) below 1 (none is left a rounding
    error short of 1)."""
    room = 1 / baseline - 1
    if not room > 0:
        return st.none()
    lifts = st.floats(min_value=0, max_value=room, exclude_min=True)
    return st.none() | lifts.filter(lambda mde: baseline * (1 + mde) < 1)


@st.composite
def specs(draw: st.DrawFn) -> ExperimentSpec:
    team = draw(st.sampled_from(POLICY.teams))
    segments = draw(st.lists(st.sampled_from(SEGMENTS), unique=True, max_size=4))
    split = draw(st.integers(0, len(segments)))
    start = draw(st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)))
    baseline = draw(st.none() | st.floats(0, 1, exclude_min=True, exclude_max=True))
    return ExperimentSpec(
        title=draw(trimmed_text(min_size=1, max_size=200)),
        team=team.key,
        owner=draw(st.sampled_from([*team.members, *POLICY.managers])),
        kind=draw(st.sampled_from(ExperimentKind)),
        surfaces=tuple(draw(st.lists(st.sampled_from(SURFACES), min_size=1, unique=True))),
        start=start,
        end=start + timedelta(days=draw(st.integers(0, 180))),
        audiences=tuple(segments[:split]),
        exclude_audiences=tuple(segments[split:]),
        traffic=draw(st.floats(min_value=0, max_value=100, exclude_min=True)),
        exclusion_group=draw(st.none() | trimmed_text(min_size=1, max_size=64)),
        primary_kpi=draw(st.none() | st.sampled_from(sorted(POLICY.kpis))),
        baseline=baseline,
        mde=draw(optional_positive() if baseline is None else lifts_below_a_rate_of_1(baseline)),
        hypothesis=draw(trimmed_text(max_size=300)),
        impact=draw(st.none() | st.sampled_from(IMPACT_SCALE)),
        confidence=draw(st.none() | st.sampled_from(CONFIDENCE_SCALE)),
        effort_weeks=draw(optional_positive()),
    )


@st.composite
def numbered_specs(draw: st.DrawFn, max_size: int = 8) -> list[Numbered]:
    """Valid rows with distinct keys, in key order (the order export writes them in)."""
    numbers = sorted(draw(st.lists(st.integers(1, 100_000), unique=True, max_size=max_size)))
    return [(n, draw(specs()), draw(st.sampled_from(ExperimentStatus))) for n in numbers]


def written(rows: Sequence[Numbered]) -> str:
    buffer = io.StringIO()
    write_roadmap(buffer, rows)
    return buffer.getvalue()


def hundred_rows(bad_row: int | None = None, first_key: int = 1) -> str:
    """100 rows, the odd ones keyed from `first_key`; row `bad_row` (from 1) has traffic 150."""
    rows = []
    for n in range(1, 101):
        cells = row(title=f"Test number {n}", traffic=str(n))
        if n % 2:
            cells["key"] = format_key(first_key - 1 + n)
        if n == bad_row:
            cells["traffic"] = "150"
        rows.append(cells)
    return roadmap(*rows)


def tower(url: str, *args: str) -> Result:
    """`tower ARGS...` against the database at `url`, with the small policy."""
    return cli.tower(url, *args, policy=SMALL_POLICY)


def database_counts(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return counts(session)
    finally:
        engine.dispose()


def write_file(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding, newline="")
    return path


def audit_actions(url: str) -> list[tuple[str, str]]:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return [(e.actor, e.action) for e in session.scalars(select(AuditEvent))]
    finally:
        engine.dispose()
