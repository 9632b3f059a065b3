"""The roadmap spreadsheet: reading and writing rows, importing and exporting the registry.

A file imports all or nothing, importing it again changes nothing, and what Tower exports
imports back to the very same registry (and the very same bytes).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from tests.support.cli import failed
from tests.support.files import SMALL_POLICY
from tests.support.people import MANAGER as ACTOR
from tower.audit.models import AuditEvent
from tower.audit.service import events_for
from tower.cli import main
from tower.context import ServiceContext
from tower.experiments import service as experiment_service
from tower.experiments.csv_rows import (
    COLUMNS,
    RoadmapFormatError,
    RoadmapRow,
    RowError,
    format_number,
    read_fields,
    read_roadmap,
    write_roadmap,
)
from tower.experiments.csv_transfer import ImportReport, export_roadmap, import_roadmap
from tower.experiments.models import Experiment
from tower.experiments.service import NoKeyLeft
from tower.experiments.spec import (
    CONFIDENCE_SCALE,
    IMPACT_SCALE,
    ExperimentKind,
    ExperimentSpec,
    ExperimentStatus,
    format_key,
    validate_spec,
)
from tower.policy import Policy, load_policy
from tower.protocol import edits

HEADER_LINE = ",".join(COLUMNS) + "\n"
Row = Mapping[str, str]
Numbered = tuple[int, ExperimentSpec, ExperimentStatus]

# --------------------------------------------------------------------------- helpers


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


# --------------------------------------------------------------------------- reading rows


def test_a_good_file_reads_every_field(small_policy: Policy) -> None:
    rows = read(GOOD_FILE, small_policy)

    assert [(r.line, r.number, r.status) for r in rows] == [
        (2, None, ExperimentStatus.DRAFT),
        (3, 7, ExperimentStatus.APPROVED),
        (4, None, ExperimentStatus.SUBMITTED),
    ]
    assert [r.spec for r in rows] == [CHECKOUT_SPEC, NEWSLETTER_SPEC, HERO_SPEC]


def test_empty_optional_cells_mean_defaults(small_policy: Policy) -> None:
    (newsletter,) = read(roadmap(GOOD_ROWS[1]), small_policy)

    assert newsletter.spec.audiences == ()  # everyone
    assert newsletter.spec.exclude_audiences == ()
    assert newsletter.spec.traffic == 100.0
    assert newsletter.spec.exclusion_group is None
    assert newsletter.spec.primary_kpi is None
    assert newsletter.spec.baseline is None
    assert newsletter.spec.impact is None
    assert newsletter.spec.hypothesis == ""


def test_columns_may_come_in_any_order(small_policy: Policy) -> None:
    shuffled = list(reversed(COLUMNS))

    rows = read(roadmap(*GOOD_ROWS, columns=shuffled), small_policy)

    assert [r.spec for r in rows] == [CHECKOUT_SPEC, NEWSLETTER_SPEC, HERO_SPEC]


def test_blank_lines_are_skipped_and_line_numbers_stay_true(small_policy: Policy) -> None:
    lines = GOOD_FILE.splitlines(keepends=True)
    text = "".join([lines[0], "\n", lines[1], ",,, ,\n", lines[2], "\n", "\n", lines[3]])

    rows = read(text, small_policy)

    assert [r.line for r in rows] == [3, 5, 8]


def test_a_header_only_file_has_no_rows(small_policy: Policy) -> None:
    assert read(HEADER_LINE, small_policy) == []


BAD_CELLS = [
    pytest.param({"start": "2026-02-30"}, "start", "'2026-02-30' is not a date", id="no-such-day"),
    pytest.param({"end": "15/03/2026"}, "end", "'15/03/2026' is not a date", id="date-not-iso"),
    pytest.param({"start": "2026-3-2"}, "start", "'2026-3-2' is not a date", id="date-unpadded"),
    pytest.param({"start": ""}, "start", "a value is required", id="no-start"),
    pytest.param(
        {"start": "2026-03-20", "end": "2026-03-19"}, "end", "before the start", id="end<start"
    ),
    pytest.param({"team": "growth"}, "team", "unknown team 'growth'", id="unknown-team"),
    pytest.param({"team": ""}, "team", "a value is required", id="no-team"),
    pytest.param(
        {"owner": "U0CARLA"},
        "owner",
        "'U0CARLA' is not a member of team 'checkout-squad'",
        id="owner-not-member",
    ),
    pytest.param({"owner": ""}, "owner", "a value is required", id="no-owner"),
    pytest.param(
        {"surfaces": "web/checkout/basket"},
        "surfaces",
        "unknown surface 'web/checkout/basket'",
        id="unknown-surface",
    ),
    pytest.param({"surfaces": ""}, "surfaces", "at least one surface", id="no-surface"),
    pytest.param(
        {"surfaces": "web/home;web/home"}, "surfaces", "listed twice: web/home", id="surface-twice"
    ),
    pytest.param(
        {"audiences": "logged_in;vip"},
        "audiences",
        "unknown audience segment 'vip'",
        id="unknown-segment",
    ),
    pytest.param(
        {"exclude_audiences": "gold"},
        "exclude_audiences",
        "unknown audience segment 'gold'",
        id="unknown-excluded-segment",
    ),
    pytest.param(
        {"audiences": "loyalty", "exclude_audiences": "loyalty"},
        "exclude_audiences",
        "both targeted and excluded: loyalty",
        id="targeted-and-excluded",
    ),
    pytest.param({"traffic": "0"}, "traffic", "not 0", id="traffic-0"),
    pytest.param({"traffic": "150"}, "traffic", "not 150", id="traffic-150"),
    pytest.param({"traffic": "-5"}, "traffic", "not -5", id="traffic-negative"),
    pytest.param({"traffic": "abc"}, "traffic", "'abc' is not a number", id="traffic-abc"),
    pytest.param({"traffic": "50%"}, "traffic", "'50%' is not a number", id="traffic-percent"),
    pytest.param({"traffic": "nan"}, "traffic", "'nan' is not a number", id="traffic-nan"),
    pytest.param({"baseline": "0"}, "baseline", "rate in (0, 1), not 0", id="baseline-0"),
    pytest.param({"baseline": "1"}, "baseline", "rate in (0, 1), not 1", id="baseline-1"),
    pytest.param({"mde": "0"}, "mde", "must be positive, not 0", id="mde-0"),
    pytest.param(
        {"baseline": "0.6", "mde": "1"},
        "mde",
        "aims at a rate of 1.2: baseline * (1 + mde) must stay below 1",
        id="mde-past-a-rate-of-1",
    ),
    pytest.param({"impact": "4"}, "impact", "one of 0.25, 0.5, 1, 2, 3, not 4", id="impact-4"),
    pytest.param(
        {"confidence": "0.7"}, "confidence", "one of 0.5, 0.8, 1, not 0.7", id="confidence-0.7"
    ),
    pytest.param({"effort_weeks": "0"}, "effort_weeks", "positive, not 0", id="effort-0"),
    pytest.param({"kind": "ab-test"}, "kind", "'ab-test' is not one of ab_test", id="bad-kind"),
    pytest.param({"kind": ""}, "kind", "a value is required", id="no-kind"),
    pytest.param({"status": "done"}, "status", "'done' is not one of draft", id="bad-status"),
    pytest.param({"key": "T-0"}, "key", "'T-0' is not a test key", id="key-T-0"),
    pytest.param({"key": "T-01"}, "key", "'T-01' is not a test key", id="key-leading-zero"),
    pytest.param({"key": "X-3"}, "key", "'X-3' is not a test key", id="key-wrong-prefix"),
    pytest.param({"key": "42"}, "key", "'42' is not a test key", id="key-bare-number"),
    pytest.param({"key": "T-4a"}, "key", "'T-4a' is not a test key", id="key-trailing"),
    pytest.param({"title": "  "}, "title", "a value is required", id="no-title"),
    pytest.param(
        {"title": "x" * 201},
        "title",
        "keep the title to at most 200 characters (it has 201)",
        id="title-too-long",
    ),
    pytest.param(
        {"title": "Bell\x07 title"},
        "title",
        "remove the control character U+0007 (tabs and line breaks are fine)",
        id="title-control-character",
    ),
    pytest.param(
        {"hypothesis": "If\x01 then"},
        "hypothesis",
        "remove the control character U+0001",
        id="hypothesis-control-character",
    ),
    pytest.param(
        {"primary_kpi": "clicks"}, "primary_kpi", "unknown KPI 'clicks'", id="unknown-kpi"
    ),
    pytest.param(
        {"exclusion_group": "g" * 65}, "exclusion_group", "to at most 64", id="group-too-long"
    ),
]


@pytest.mark.parametrize(("cells", "column", "reason"), BAD_CELLS)
def test_a_bad_cell_is_reported_with_line_column_and_reason(
    small_policy: Policy, cells: dict[str, str], column: str, reason: str
) -> None:
    text = roadmap(
        row(title="Fine before"), row(**{"title": "The bad one", **cells}), row(title="Fine after")
    )

    with pytest.raises(RoadmapFormatError) as caught:
        read(text, small_policy)

    assert [(e.line, e.column) for e in caught.value.errors] == [(3, column)]
    assert reason in caught.value.errors[0].message
    message = str(caught.value)
    assert message.startswith("roadmap.csv: 1 problem; nothing was imported")
    assert f"line 3, column {column}: " in message


def test_bad_rows_anywhere_in_the_file_are_all_reported_in_line_order(
    small_policy: Policy,
) -> None:
    text = roadmap(
        row(title="A", traffic="abc"),
        row(title="B"),
        row(title="C", team="growth"),
        row(title="D", start="tomorrow", kind="test"),
    )

    errors = read_errors(text, small_policy)

    assert [(e.line, e.column) for e in errors] == [
        (2, "traffic"),
        (4, "team"),
        (5, "kind"),
        (5, "start"),
    ]


def test_every_bad_cell_of_one_row_is_reported_at_once(small_policy: Policy) -> None:
    text = roadmap(row(traffic="abc", team="growth", surfaces="web/nowhere"))

    errors = read_errors(text, small_policy)

    assert {(e.line, e.column) for e in errors} == {(2, "traffic"), (2, "team"), (2, "surfaces")}


@pytest.mark.parametrize(
    ("extra", "cells"),
    [pytest.param(["surplus"], 21, id="too-many"), pytest.param(None, 19, id="too-few")],
)
def test_a_row_with_the_wrong_number_of_cells_is_reported(
    small_policy: Policy, extra: list[str] | None, cells: int
) -> None:
    good = roadmap(row(title="First")).splitlines()[1]
    values = next(csv.reader([good]))
    values = values + extra if extra else values[:-1]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)

    errors = read_errors(HEADER_LINE + good + "\n" + buffer.getvalue(), small_policy)

    assert errors == [
        RowError(3, "row", f"the row has {cells} cells but the header has 20 columns")
    ]


def test_missing_and_unknown_header_columns_are_reported_on_line_1(
    small_policy: Policy,
) -> None:
    columns = [c for c in COLUMNS if c not in ("traffic", "owner")] + ["priority"]

    errors = read_errors(roadmap(row(), columns=columns), small_policy)

    assert errors == [
        RowError(1, "header", "missing columns: owner, traffic"),
        RowError(1, "header", "unknown columns: priority"),
    ]


def test_a_column_given_twice_is_reported(small_policy: Policy) -> None:
    errors = read_errors(roadmap(row(), columns=[*COLUMNS, "title"]), small_policy)

    assert errors == [RowError(1, "header", "columns given twice: title")]


def test_an_empty_file_is_reported(small_policy: Policy) -> None:
    assert read_errors("", small_policy) == [RowError(1, "header", "the file is empty")]


def test_quoted_newlines_keep_later_line_numbers_true(small_policy: Policy) -> None:
    text = roadmap(
        row(title="Two\nline title", hypothesis="If this\nthen\nthat."),  # lines 2-5
        row(title="Plain"),  # line 6
        row(title="Bad", traffic="abc"),  # line 7
        row(title="Also\r\nmultiline", confidence="0.7"),  # lines 8-9
        row(title="Bad again", impact="4"),  # line 10
    )

    errors = read_errors(text, small_policy)

    assert [(e.line, e.column) for e in errors] == [
        (7, "traffic"),
        (8, "confidence"),
        (10, "impact"),
    ]


def test_quoted_newlines_are_read_into_the_cell(small_policy: Policy) -> None:
    text = roadmap(row(title="Two\nline title"), row(title="Next"))

    first, second = read(text, small_policy)

    assert first.spec.title == "Two\nline title"
    assert (first.line, second.line) == (2, 4)


def test_a_key_given_twice_in_one_file_is_reported_on_the_second_line(
    small_policy: Policy,
) -> None:
    text = roadmap(row(key="T-5", title="A"), row(key="T-6", title="B"), row(key="T-5", title="C"))

    errors = read_errors(text, small_policy)

    assert errors == [RowError(4, "key", "T-5 is already used on line 2")]


def test_two_keyless_rows_of_one_team_with_one_title_are_reported(small_policy: Policy) -> None:
    text = roadmap(row(title="Same"), row(title="Same", team="ecommerce", owner="U0CARLA"))
    assert len(read(text, small_policy)) == 2  # other team: fine

    errors = read_errors(roadmap(row(title="Same"), row(title="Same", traffic="10")), small_policy)

    assert [(e.line, e.column) for e in errors] == [(3, "title")]
    assert "same team and title as line 2" in errors[0].message


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (50.0, "50"),
        (0.032, "0.032"),
        (1.0, "1"),
        (100.0, "100"),
        (12.5, "12.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (None, ""),
    ],
)
def test_format_number_writes_short_text(value: float | None, text: str) -> None:
    assert format_number(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_number_reads_back_exactly(value: float) -> None:
    assert float(format_number(value)) == value


# --------------------------------------------------------------------------- writing rows


def test_write_roadmap_writes_the_documented_format() -> None:
    buffer = io.StringIO()

    write_roadmap(
        buffer,
        [
            (8, CHECKOUT_SPEC, ExperimentStatus.DRAFT),
            (7, NEWSLETTER_SPEC, ExperimentStatus.APPROVED),
        ],
    )

    assert buffer.getvalue() == (
        HEADER_LINE + 'T-8,"Checkout, ""one page""",checkout-squad,U0ANNA,ab_test,'
        "web/checkout/cart;web/checkout/payment,logged_in;app_users,loyalty,"
        "2026-03-02,2026-03-15,50,checkout-layout,conversion_rate,0.032,0.05,"
        '"If the checkout fits one page, more visitors pay.",2,0.8,1.5,draft\n'
        "T-7,Newsletter subject lines,ecommerce,U0CARLA,campaign,"
        "email/promotional/weekly_newsletter,,,2026-04-01,2026-04-30,100,,,,,,,,,approved\n"
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


@settings(max_examples=200, deadline=None)
@given(numbered_specs())
def test_written_rows_read_back_to_the_same_specs(rows: list[Numbered]) -> None:
    for _, spec, _ in rows:
        assert validate_problems(spec) == []  # the strategy draws valid tests only
    text = written(rows)

    read_back = read_roadmap(io.StringIO(text), POLICY)

    assert [(r.number, r.spec, r.status) for r in read_back] == rows
    # Each row starts on the line after the previous one ended, quoted newlines included.
    expected_line = 2
    for one, read_row in zip(rows, read_back, strict=True):
        assert read_row.line == expected_line
        expected_line += written([one]).count("\n") - 1


def validate_problems(spec: ExperimentSpec) -> list[str]:
    return [f"{p.field}: {p.message}" for p in validate_spec(spec, POLICY)]


@settings(max_examples=100, deadline=None)
@given(numbered_specs(), st.data())
def test_a_keyless_file_reads_back_the_same_specs(
    rows: list[Numbered], data: st.DataObject
) -> None:
    # Keys and status are optional: blank them in a written file and the specs still match.
    parsed = list(csv.reader(io.StringIO(written(rows))))
    blank_status = data.draw(st.booleans())
    for cells in parsed[1:]:
        cells[0] = ""
        if blank_status:
            cells[-1] = ""
    seen: set[tuple[str, str]] = set()
    unique: list[list[str]] = []
    for cells in parsed[1:]:
        if (cells[2], cells[1]) not in seen:  # team and title identify a keyless row
            seen.add((cells[2], cells[1]))
            unique.append(cells)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([parsed[0], *unique])

    read_back = read_roadmap(io.StringIO(buffer.getvalue()), POLICY)

    assert all(r.number is None for r in read_back)
    by_identity: dict[tuple[str, str], tuple[ExperimentSpec, ExperimentStatus]] = {}
    for _, spec, status in rows:
        by_identity.setdefault((spec.team, spec.title), (spec, status))
    for r in read_back:
        spec, status = by_identity[(r.spec.team, r.spec.title)]
        assert r.spec == spec
        assert r.status == (ExperimentStatus.DRAFT if blank_status else status)


# --------------------------------------------------------------------------- importing


def test_a_good_file_creates_its_tests(session: Session, small_policy: Policy) -> None:
    report = import_text(session, GOOD_FILE, small_policy)

    # T-7 is named in the file, so the keyless rows take the next free keys after it.
    assert report.created == ["T-8", "T-7", "T-9"]
    assert (report.updated, report.unchanged) == ([], [])
    stored = experiments(session)
    assert list(stored) == ["T-7", "T-8", "T-9"]
    assert stored["T-8"].spec() == CHECKOUT_SPEC
    assert stored["T-7"].spec() == NEWSLETTER_SPEC
    assert stored["T-9"].spec() == HERO_SPEC
    assert [e.status for e in stored.values()] == [
        ExperimentStatus.APPROVED,
        ExperimentStatus.DRAFT,
        ExperimentStatus.SUBMITTED,
    ]
    assert stored["T-8"].surfaces == ["web/checkout/cart", "web/checkout/payment"]
    assert stored["T-7"].audiences == []  # everyone
    assert stored["T-7"].exclude_audiences == []
    assert all(e.version == 1 and e.created_by == ACTOR for e in stored.values())


def test_import_records_one_audit_event_per_created_test(
    session: Session, small_policy: Policy
) -> None:
    import_text(session, GOOD_FILE, small_policy)

    (event,) = events_for(session, experiments(session)["T-8"].id)
    assert (event.actor, event.action, event.before) == (ACTOR, "imported", None)
    assert event.after is not None
    assert event.after["title"] == 'Checkout, "one page"'
    assert event.after["status"] == "draft"
    assert event.after["audiences"] == ["logged_in", "app_users"]
    assert counts(session) == (3, 3)


def test_committed_import_is_stored(session: Session, small_policy: Policy) -> None:
    import_text(session, GOOD_FILE, small_policy)
    session.commit()
    session.expunge_all()

    assert experiments(session)["T-7"].spec() == NEWSLETTER_SPEC


def test_keyless_rows_get_keys_after_the_highest_existing_one(
    session: Session, small_policy: Policy
) -> None:
    import_text(session, roadmap(row(key="T-12", title="Old")), small_policy)

    report = import_text(
        session,
        roadmap(row(title="New A"), row(key="T-5", title="Named"), row(title="New B")),
        small_policy,
    )

    assert report.created == ["T-13", "T-5", "T-14"]
    assert experiments(session)["T-14"].title == "New B"


def test_keyless_rows_get_keys_after_the_highest_key_in_the_file(
    session: Session, small_policy: Policy
) -> None:
    import_text(session, roadmap(row(key="T-3", title="Old")), small_policy)

    report = import_text(
        session, roadmap(row(title="New"), row(key="T-40", title="Named")), small_policy
    )

    assert report.created == ["T-41", "T-40"]


def test_a_keyless_row_matches_its_teams_test_of_the_same_title(
    session: Session, small_policy: Policy
) -> None:
    import_text(session, roadmap(row(title="Hero banner")), small_policy)

    report = import_text(session, roadmap(row(title="Hero banner", traffic="20")), small_policy)

    assert (report.created, report.updated) == ([], ["T-1"])
    assert experiments(session)["T-1"].traffic == 20.0


def test_a_keyless_row_matching_several_tests_imports_nothing(
    session: Session, small_policy: Policy
) -> None:
    import_text(
        session, roadmap(row(key="T-1", title="Twin"), row(key="T-2", title="Twin")), small_policy
    )
    before = counts(session)

    with pytest.raises(RoadmapFormatError) as caught:
        import_text(session, roadmap(row(title="Fresh"), row(title="Twin")), small_policy)

    assert [(e.line, e.column) for e in caught.value.errors] == [(3, "key")]
    assert "T-1, T-2" in caught.value.errors[0].message
    assert counts(session) == before


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


def test_one_bad_row_in_a_hundred_writes_nothing(session: Session, small_policy: Policy) -> None:
    import_text(session, roadmap(row(key="T-1", title="Test number 1", traffic="1")), small_policy)
    import_text(session, roadmap(row(key="T-2", title="Test number 2", traffic="99")), small_policy)
    session.commit()
    before_counts, before_versions = counts(session), versions(session)
    before_export = export_text(session)

    with pytest.raises(RoadmapFormatError) as caught:
        import_text(session, hundred_rows(bad_row=57), small_policy)

    assert caught.value.errors == [
        RowError(58, "traffic", "traffic is a percent in (0, 100], not 150")
    ]
    assert "line 58, column traffic" in str(caught.value)
    session.expunge_all()
    assert counts(session) == before_counts
    assert versions(session) == before_versions
    assert export_text(session) == before_export


def test_the_same_hundred_rows_without_the_bad_one_import(
    session: Session, small_policy: Policy
) -> None:
    report = import_text(session, hundred_rows(), small_policy)

    assert len(report.created) == 100
    assert counts(session) == (100, 100)


def test_importing_the_same_file_twice_changes_nothing(
    session: Session, small_policy: Policy
) -> None:
    text = hundred_rows()
    first = import_text(session, text, small_policy)
    session.commit()
    before_counts, before_versions = counts(session), versions(session)
    before_export = export_text(session)

    second = import_text(session, text, small_policy)

    assert (second.created, second.updated) == ([], [])
    assert sorted(second.unchanged) == sorted(first.created)
    assert not second.changed
    assert second.summary() == "0 created, 0 updated, 100 unchanged"
    assert counts(session) == before_counts  # no new tests, no new audit events
    assert versions(session) == before_versions
    assert export_text(session) == before_export


def test_importing_a_file_with_keyless_rows_twice_changes_nothing(
    session: Session, small_policy: Policy
) -> None:
    first = import_text(session, GOOD_FILE, small_policy)

    second = import_text(session, GOOD_FILE, small_policy)

    assert second.unchanged == first.created == ["T-8", "T-7", "T-9"]
    assert (second.created, second.updated) == ([], [])
    assert counts(session) == (3, 3)
    assert set(versions(session).values()) == {1}


def test_an_edited_row_updates_its_test(session: Session, small_policy: Policy) -> None:
    import_text(session, GOOD_FILE, small_policy)
    edited = list(GOOD_ROWS)
    edited[1] = {**GOOD_ROWS[1], "traffic": "25", "audiences": "loyalty"}

    report = import_text(session, roadmap(*edited), small_policy)

    assert report.updated == ["T-7"]
    assert sorted(report.unchanged) == ["T-8", "T-9"]
    newsletter = experiments(session)["T-7"]
    assert newsletter.spec() == replace(NEWSLETTER_SPEC, traffic=25.0, audiences=("loyalty",))
    assert newsletter.status == ExperimentStatus.APPROVED
    assert versions(session) == {"T-7": 2, "T-8": 1, "T-9": 1}
    created, updated = events_for(session, newsletter.id)
    assert (updated.actor, updated.action) == (ACTOR, "imported")
    assert updated.before is not None and updated.after is not None
    assert (updated.before["traffic"], updated.after["traffic"]) == (100.0, 25.0)
    assert (updated.before["audiences"], updated.after["audiences"]) == ([], ["loyalty"])
    assert updated.before == created.after
    assert counts(session) == (3, 4)


def test_a_changed_status_alone_updates_the_test(session: Session, small_policy: Policy) -> None:
    import_text(session, GOOD_FILE, small_policy)
    edited = [GOOD_ROWS[0], {**GOOD_ROWS[1], "status": "live"}, GOOD_ROWS[2]]

    report = import_text(session, roadmap(*edited), small_policy)

    assert report.updated == ["T-7"]
    (_, event) = events_for(session, experiments(session)["T-7"].id)
    assert event.before is not None and event.after is not None
    assert (event.before["status"], event.after["status"]) == ("approved", "live")
    assert versions(session)["T-7"] == 2


# --------------------------------------------------------------------------- exporting


def test_export_writes_every_test_in_key_order(session: Session, small_policy: Policy) -> None:
    import_text(session, GOOD_FILE, small_policy)

    text = export_text(session)

    assert text == written(
        [
            (7, NEWSLETTER_SPEC, ExperimentStatus.APPROVED),
            (8, CHECKOUT_SPEC, ExperimentStatus.DRAFT),
            (9, HERO_SPEC, ExperimentStatus.SUBMITTED),
        ]
    )
    assert text.splitlines()[1].startswith("T-7,Newsletter subject lines,ecommerce,")


def test_an_export_imported_into_the_same_registry_changes_nothing(
    session: Session, small_policy: Policy
) -> None:
    import_text(session, GOOD_FILE, small_policy)
    import_text(session, hundred_rows(first_key=100), small_policy)
    before_counts, before_versions = counts(session), versions(session)

    report = import_text(session, export_text(session), small_policy)

    assert (report.created, report.updated) == ([], [])
    assert len(report.unchanged) == 103
    assert counts(session) == before_counts
    assert versions(session) == before_versions


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=numbered_specs(max_size=6))
def test_generated_rows_survive_a_database_round_trip(
    session: Session, small_policy: Policy, rows: list[Numbered]
) -> None:
    text = written(rows)
    savepoint = session.begin_nested()
    try:
        report = import_text(session, text, small_policy)
        assert report.created == [format_key(number) for number, _, _ in rows]
        session.expire_all()  # read back what the database holds, not what was set

        assert export_text(session) == text
        again = import_text(session, text, small_policy)
        assert again.unchanged == report.created
        assert counts(session) == (len(rows), len(rows))
    finally:
        savepoint.rollback()
        session.expunge_all()


# --------------------------------------------------------------------------- the CLI


def tower(url: str, *args: str) -> Result:
    env = {"DATABASE_URL": url, "TOWER_POLICY": str(SMALL_POLICY)}
    return CliRunner().invoke(main, list(args), env=env)


def succeeded(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    assert result.exception is None
    return result


@pytest.fixture
def cli_database(scratch_database_url: str) -> str:
    """A fresh database, created with `tower init`."""
    succeeded(tower(scratch_database_url, "init"))
    return scratch_database_url


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


def test_cli_imports_a_file_and_lists_it(cli_database: str, tmp_path: Path) -> None:
    path = write_file(tmp_path / "roadmap.csv", GOOD_FILE)

    result = succeeded(tower(cli_database, "import", str(path), "--by", "U0TOWERMGR"))

    assert "3 created, 0 updated, 0 unchanged" in result.output
    listed = json.loads(succeeded(tower(cli_database, "list", "--format", "json")).stdout)
    assert [(t["key"], t["status"], t["version"]) for t in listed] == [
        ("T-8", "draft", 1),
        ("T-7", "approved", 1),
        ("T-9", "submitted", 1),
    ]
    assert listed[1]["audiences"] == []
    assert listed[0]["surfaces"] == ["web/checkout/cart", "web/checkout/payment"]
    engine = create_engine(cli_database)
    try:
        with Session(engine) as session:
            actors = set(session.scalars(select(AuditEvent.actor)))
    finally:
        engine.dispose()
    assert actors == {"U0TOWERMGR"}


def audit_actions(url: str) -> list[tuple[str, str]]:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return [(e.actor, e.action) for e in session.scalars(select(AuditEvent))]
    finally:
        engine.dispose()


def test_a_member_importing_states_or_another_teams_tests_is_refused_line_by_line(
    cli_database: str, tmp_path: Path
) -> None:
    path = write_file(tmp_path / "roadmap.csv", GOOD_FILE)

    result = tower(cli_database, "import", str(path), "--by", "U0BEN")

    assert result.exit_code == 1 and "Traceback" not in result.output
    for line in [
        f"{path}: 3 problems; nothing was imported",
        "  line 3, column status: a new test is a draft, not approved: only a manager "
        "changes a test's state by import",
        "  line 3, column team: U0BEN is not a member of team 'ecommerce': only its members "
        "import it",
        "  line 4, column status: a new test is a draft, not submitted: only a manager "
        "changes a test's state by import",
    ]:
        assert line in result.output, result.output
    assert database_counts(cli_database) == (0, 1)  # no test; the refusal's audit event
    assert audit_actions(cli_database) == [("U0BEN", "denied:import")]


def test_a_member_imports_drafts_of_their_own_team(cli_database: str, tmp_path: Path) -> None:
    path = write_file(tmp_path / "roadmap.csv", roadmap(row(), row(title="Express payment")))
    result = succeeded(tower(cli_database, "import", str(path), "--by", "U0BEN"))
    assert "2 created" in result.output
    listed = json.loads(succeeded(tower(cli_database, "list", "--format", "json")).stdout)
    assert {t["status"] for t in listed} == {"draft"}


def test_someone_outside_the_policy_imports_nothing(cli_database: str, tmp_path: Path) -> None:
    path = write_file(tmp_path / "roadmap.csv", roadmap(row()))
    result = tower(cli_database, "import", str(path), "--by", "U0NOBODY")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (
        "U0NOBODY is neither a manager nor a member of a team in the policy: nothing was imported"
    ) in " ".join(result.output.split())
    assert database_counts(cli_database) == (0, 1)
    assert audit_actions(cli_database) == [("U0NOBODY", "denied:import")]


def test_cli_import_twice_reports_everything_unchanged(cli_database: str, tmp_path: Path) -> None:
    path = write_file(tmp_path / "roadmap.csv", GOOD_FILE)
    succeeded(tower(cli_database, "import", str(path)))
    before = database_counts(cli_database)

    result = succeeded(tower(cli_database, "import", str(path)))

    assert "0 created, 0 updated, 3 unchanged" in result.output
    assert database_counts(cli_database) == before


def test_cli_import_of_a_bad_file_writes_nothing_and_names_the_line(
    cli_database: str, tmp_path: Path
) -> None:
    succeeded(tower(cli_database, "import", str(write_file(tmp_path / "a.csv", GOOD_FILE))))
    before_counts = database_counts(cli_database)
    before_export = succeeded(tower(cli_database, "export", "-")).stdout
    bad = write_file(tmp_path / "bad.csv", hundred_rows(bad_row=57))

    result = tower(cli_database, "import", str(bad))

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "line 58, column traffic" in result.output
    assert "nothing was imported" in result.output
    assert database_counts(cli_database) == before_counts
    assert succeeded(tower(cli_database, "export", "-")).stdout == before_export


@pytest.mark.parametrize("team", ["[tbd]", "[/tbd]"])
def test_cli_shows_bad_cells_with_brackets_as_typed(
    cli_database: str, tmp_path: Path, team: str
) -> None:
    bad = write_file(tmp_path / "bad.csv", roadmap(row(team=team)))

    result = tower(cli_database, "import", str(bad))

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert f"unknown team '{team}'" in result.output


def test_cli_reads_a_spreadsheet_saved_with_a_byte_order_mark(
    cli_database: str, tmp_path: Path
) -> None:
    path = write_file(tmp_path / "excel.csv", GOOD_FILE, encoding="utf-8-sig")

    result = succeeded(tower(cli_database, "import", str(path)))

    assert "3 created" in result.output


def test_cli_line_numbers_hold_for_windows_line_endings_and_quoted_newlines(
    cli_database: str, tmp_path: Path
) -> None:
    text = roadmap(
        row(title="Two\nlines"),  # lines 2-3
        row(title="Three\nlines\nhere"),  # lines 4-6
        row(title="Bad", effort_weeks="0"),  # line 7
    )
    path = write_file(tmp_path / "windows.csv", text.replace("\n", "\r\n"))

    result = tower(cli_database, "import", str(path))

    assert result.exit_code == 1
    assert "line 7, column effort_weeks: effort must be positive, not 0" in result.output
    assert database_counts(cli_database) == (0, 0)


def test_cli_import_needs_an_initialised_database(
    scratch_database_url: str, tmp_path: Path
) -> None:
    path = write_file(tmp_path / "roadmap.csv", GOOD_FILE)

    result = tower(scratch_database_url, "import", str(path))

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "tower init" in result.output


def test_export_import_into_a_fresh_database_gives_the_same_bytes(
    session: Session, small_policy: Policy, cli_database: str, tmp_path: Path
) -> None:
    multiline = row(title='Quoted, "multi"\nline — ünïcode', hypothesis="a\nb", key="T-3")
    import_text(session, roadmap(*GOOD_ROWS, multiline), small_policy)
    import_text(session, hundred_rows(first_key=1000), small_policy)
    first = tmp_path / "first.csv"
    with first.open("w", newline="", encoding="utf-8") as stream:
        export_roadmap(session, stream)

    succeeded(tower(cli_database, "import", str(first)))
    second = tmp_path / "second.csv"
    result = succeeded(tower(cli_database, "export", str(second)))

    assert "Exported 104 tests" in result.output
    assert second.read_bytes() == first.read_bytes()
    assert succeeded(tower(cli_database, "export", "-")).stdout == first.read_text("utf-8")
    again = succeeded(tower(cli_database, "import", str(second)))
    assert "0 created, 0 updated, 104 unchanged" in again.output


# --------------------------------------------------------------------------- bad bytes, odd cells


def test_a_file_that_is_not_utf8_is_refused_naming_the_line_and_the_remedy(
    cli_database: str, tmp_path: Path
) -> None:
    text = roadmap(row(), row(title="Crème brûlée banner"))
    files = {
        "latin1.csv": text.encode("latin-1"),
        "utf16.csv": text.encode("utf-16"),
        "binary.csv": bytes(range(256)) * 8,
        "nul.csv": text.replace("One-page", "One\x00page").encode(),
    }
    expected = {
        "latin1.csv": "line 3, column row: byte 0xE8 is not UTF-8 text (a Latin-1 export?): "
        "save it as CSV UTF-8",
        "utf16.csv": "line 1, column row: the file is UTF-16 or UTF-32: save it as CSV UTF-8",
        "binary.csv": "line 1, column row: holds a NUL byte: is it a binary or UTF-16 file? "
        "Save it as CSV UTF-8",
        "nul.csv": "line 2, column row: holds a NUL byte: is it a binary or UTF-16 file? "
        "Save it as CSV UTF-8",
    }
    for name, raw in files.items():
        path = tmp_path / name
        path.write_bytes(raw)
        result = tower(cli_database, "import", str(path))
        assert result.exit_code == 1 and "Traceback" not in result.output, name
        assert expected[name] in " ".join(result.output.split()), (name, result.output)
    assert database_counts(cli_database) == (0, 0)


@pytest.mark.parametrize(
    ("cells", "column", "message"),
    [
        ({"traffic": "\uff150"}, "traffic", "'\uff150' is not a number (write it like 12.5)"),
        ({"traffic": "5_0"}, "traffic", "'5_0' is not a number (write it like 12.5)"),
        ({"baseline": "infinity"}, "baseline", "'infinity' is not a number"),
        (
            {"key": "T-99999999999999999999"},
            "key",
            "'T-99999999999999999999' is too big a key (the largest is T-2147483647)",
        ),
        ({"start": "20260302"}, "start", "'20260302' is not a date in YYYY-MM-DD form"),
        ({"start": "\uff12026-03-02"}, "start", "is not a date in YYYY-MM-DD form"),
        ({"kind": "AB_TEST"}, "kind", "'AB_TEST' is not one of ab_test"),
        ({"team": "Checkout-Squad"}, "team", "unknown team 'Checkout-Squad'"),
        ({"hypothesis": "x" * 50_001}, "hypothesis", "keep the hypothesis to at most 50,000"),
    ],
)
def test_odd_cells_are_refused_by_line_and_column(
    small_policy: Policy, cells: dict[str, str], column: str, message: str
) -> None:
    with pytest.raises(RoadmapFormatError) as raised:
        read(roadmap(row(**cells)), small_policy)
    [error] = raised.value.errors
    assert (error.line, error.column) == (2, column)
    assert message in error.message


@pytest.mark.parametrize(
    "title",
    [
        '=HYPERLINK("https://evil.example")',
        "+1 conversion",
        "-5% price",
        "@SUM(A1)",
        "'=x",
        "''a",
        "'plain",
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_exported_inert_and_reads_back_as_typed(
    session: Session, small_policy: Policy, title: str
) -> None:
    experiment_service.create(
        session,
        number=1,
        spec=replace(CHECKOUT_SPEC, title=title),
        status=ExperimentStatus.DRAFT,
        actor=ACTOR,
        action="registered",
    )
    exported = export_text(session)
    [cells] = list(csv.DictReader(io.StringIO(exported)))
    assert cells["title"] == ("'" + title if title != "'plain" else title)
    assert experiments(session)["T-1"].title == title
    assert import_text(session, exported, small_policy).unchanged == ["T-1"]
    assert export_text(session) == exported


def _equivalents(text: str) -> dict[str, bytes]:
    """The same roadmap as a spreadsheet might save it: BOM, CRLF, columns reordered or
    padded, blank lines; and a file of its header alone."""
    header, *body = list(csv.reader(io.StringIO(text)))

    def written(
        head: list[str], rows: list[list[str]], end: str = "\n", blank: bool = False
    ) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator=end)
        writer.writerow(head)
        for row in rows:
            writer.writerow(row)
            if blank:
                buffer.write(end)
        return buffer.getvalue()

    backwards = list(reversed(range(len(header))))
    return {
        "bom": ("\ufeff" + text).encode(),
        "crlf": written(header, body, "\r\n").encode(),
        "reordered": written(
            [header[i] for i in backwards], [[row[i] for i in backwards] for row in body]
        ).encode(),
        "padded": written([f"  {name} " for name in header], body).encode(),
        "blank lines": written(header, body, blank=True).encode(),
        "blank lines before the header": ("\n \n,,\n" + text).encode(),
        "header only": written(header, []).encode(),
    }


@pytest.mark.parametrize(
    "variant",
    [
        "bom",
        "crlf",
        "reordered",
        "padded",
        "blank lines",
        "blank lines before the header",
        "header only",
    ],
)
def test_an_equivalent_file_imports_cleanly_and_changes_nothing(
    cli_database: str, tmp_path: Path, variant: str
) -> None:
    succeeded(tower(cli_database, "import", str(write_file(tmp_path / "a.csv", GOOD_FILE))))
    before = succeeded(tower(cli_database, "export", "-")).stdout
    counts = database_counts(cli_database)
    path = tmp_path / "variant.csv"
    path.write_bytes(_equivalents(before)[variant])
    result = succeeded(tower(cli_database, "import", str(path)))
    assert "0 created, 0 updated" in result.output
    assert database_counts(cli_database) == counts
    assert succeeded(tower(cli_database, "export", "-")).stdout == before


# --------------------------------------------------------------------------- limits and odd text


def test_a_cell_past_the_csv_readers_limit_is_refused_by_line(
    cli_database: str, tmp_path: Path
) -> None:
    huge = row(title="Huge", hypothesis="x" * 200_000)
    path = write_file(tmp_path / "huge.csv", roadmap(row(title="Fine"), huge, row(title="After")))

    result = failed(tower(cli_database, "import", str(path)))

    assert (
        "line 3, column row: a cell is longer than 131,072 characters "
        "(text cells hold at most 50,000)"
    ) in " ".join(result.output.split())
    assert database_counts(cli_database) == (0, 0)


def import_errors(session: Session, text: str, policy: Policy) -> list[RowError]:
    with pytest.raises(RoadmapFormatError) as caught:
        import_text(session, text, policy)
    return caught.value.errors


NO_KEY_LEFT = (
    "no new key fits after T-2147483647, the largest the registry holds: "
    "give this row an unused key"
)


def test_a_keyless_row_after_the_last_key_is_refused_naming_its_line(
    session: Session, small_policy: Policy
) -> None:
    last = row(key="T-2147483647", title="The last key")

    same_file = import_errors(session, roadmap(last, row(title="No key")), small_policy)

    assert same_file == [RowError(3, "key", NO_KEY_LEFT)]
    assert counts(session) == (0, 0)
    import_text(session, roadmap(last), small_policy)
    later = roadmap(row(key="T-5", title="Keyed"), row(title="No key"))
    assert import_errors(session, later, small_policy) == [RowError(3, "key", NO_KEY_LEFT)]
    assert counts(session) == (1, 1)
    keyed = roadmap(row(key="T-5", title="Keyed"), row(key="T-6", title="No key"))
    assert import_text(session, keyed, small_policy).created == ["T-5", "T-6"]


def test_registering_when_no_key_is_left_is_refused_and_writes_nothing(
    session: Session, small_policy: Policy
) -> None:
    import_text(session, roadmap(row(key="T-2147483647", title="The last key")), small_policy)
    before = counts(session)
    ctx = ServiceContext.create(small_policy, datetime(2026, 3, 2, 12, tzinfo=UTC))

    with pytest.raises(NoKeyLeft, match="no new key fits after T-2147483647"):
        edits.register(session, ctx, CHECKOUT_SPEC, actor="U0ANNA")

    assert counts(session) == before


def test_line_breaks_typed_any_way_are_read_as_newlines(small_policy: Policy) -> None:
    text = roadmap(row(title="One\rtwo\r\nthree", hypothesis="If\r\rthen"), quote_all=True)

    [read_back] = read(text, small_policy)

    assert (read_back.spec.title, read_back.spec.hypothesis) == ("One\ntwo\nthree", "If\n\nthen")
    values, errors = read_fields({"title": "a\rb", "hypothesis": "c\r\nd"})  # edit, Slack
    assert (values, errors) == ({"title": "a\nb", "hypothesis": "c\nd"}, [])


def store(session: Session, *, title: str, hypothesis: str) -> None:
    """T-1: the checkout test with this title and hypothesis, stored as they are (as no
    input path would)."""
    experiment_service.create(
        session,
        number=1,
        spec=replace(CHECKOUT_SPEC, title=title, hypothesis=hypothesis),
        status=ExperimentStatus.DRAFT,
        actor=ACTOR,
    )


def test_a_stored_carriage_return_is_exported_as_a_newline_and_round_trips(
    session: Session, small_policy: Policy
) -> None:
    store(session, title="One\rtwo", hypothesis="\rStarts with a break")

    exported = export_text(session)

    [cells] = list(csv.DictReader(io.StringIO(exported)))
    assert (cells["title"], cells["hypothesis"]) == ("One\ntwo", "'\nStarts with a break")
    assert import_text(session, exported, small_policy).updated == ["T-1"]
    stored = experiments(session)["T-1"]
    assert (stored.title, stored.hypothesis) == ("One\ntwo", "\nStarts with a break")
    assert export_text(session) == exported


@pytest.mark.parametrize("first", ["\t", "=", "+", "-", "@", "\n"])
def test_text_an_export_guards_reads_back_exactly(
    session: Session, small_policy: Policy, first: str
) -> None:
    title, hypothesis = f"{first}Tab\ttitle", f"{first}If this, then that"
    store(session, title=title, hypothesis=hypothesis)

    exported = export_text(session)

    [cells] = list(csv.DictReader(io.StringIO(exported)))
    assert (cells["title"], cells["hypothesis"]) == ("'" + title, "'" + hypothesis)
    assert import_text(session, exported, small_policy).unchanged == ["T-1"]
    stored = experiments(session)["T-1"]
    assert (stored.title, stored.hypothesis) == (title, hypothesis)
    assert export_text(session) == exported


def test_blank_lines_before_the_header_are_skipped_and_line_numbers_stay_true(
    small_policy: Policy,
) -> None:
    rows = read("\n \n,,\n" + GOOD_FILE, small_policy)

    assert [r.line for r in rows] == [5, 6, 7]
    short_header = roadmap(row(), columns=COLUMNS[:-1])
    assert read_errors("\n" + short_header, small_policy) == [
        RowError(2, "header", "missing columns: status")
    ]
    assert read_errors("\n\n", small_policy) == [RowError(1, "header", "the file is empty")]


# --------------------------------------------------------------------------- who imports


def test_system_is_not_a_user_to_import_by(cli_database: str, tmp_path: Path) -> None:
    path = write_file(tmp_path / "roadmap.csv", GOOD_FILE)

    result = failed(tower(cli_database, "import", str(path), "--by", "system"))

    assert (
        "system is neither a manager nor a member of a team in the policy: nothing was imported"
    ) in " ".join(result.output.split())
    assert audit_actions(cli_database) == [("system", "denied:import")]
    succeeded(tower(cli_database, "import", str(path)))  # no --by: the operator's import
    assert audit_actions(cli_database)[1:] == [("system", "imported")] * 3


def test_a_member_changes_no_approved_or_live_test_by_import(
    cli_database: str, tmp_path: Path
) -> None:
    tests = [
        row(key="T-1", title="Approved", status="approved"),
        row(key="T-2", title="Live", status="live"),
        row(key="T-3", title="Draft"),
    ]
    succeeded(tower(cli_database, "import", str(write_file(tmp_path / "a.csv", roadmap(*tests)))))
    before = succeeded(tower(cli_database, "export", "-")).stdout
    changed = [
        {**tests[0], "start": "2026-03-03", "title": "Approved, renamed"},
        {**tests[1], "surfaces": "web/checkout/cart"},
        {**tests[2], "title": "Draft, renamed"},
    ]
    path = write_file(tmp_path / "b.csv", roadmap(*changed))

    result = failed(tower(cli_database, "import", str(path), "--by", "U0BEN"))

    output = " ".join(result.output.split())
    approved = "T-1 is approved: use `tower edit` (it voids the approval where needed) or have a "
    live = "T-2 is live: it can no longer be edited; only a manager changes it by import"
    for line in [
        "3 problems; nothing was imported",
        f"line 2, column start: {approved}",
        f"line 2, column title: {approved}",
        f"line 3, column surfaces: {live}",
    ]:
        assert line in output, output
    assert succeeded(tower(cli_database, "export", "-")).stdout == before
    assert audit_actions(cli_database)[-1] == ("U0BEN", "denied:import")
    own_draft = write_file(tmp_path / "c.csv", roadmap(tests[0], tests[1], changed[2]))
    member = succeeded(tower(cli_database, "import", str(own_draft), "--by", "U0BEN"))
    assert "0 created, 1 updated, 2 unchanged" in member.output
    manager = succeeded(tower(cli_database, "import", str(path), "--by", ACTOR))
    assert "0 created, 2 updated, 1 unchanged" in manager.output
