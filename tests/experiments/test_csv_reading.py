"""The roadmap spreadsheet, read: every field of a good file, defaults, any column order,
true line numbers, and every bad cell, row, header or key reported with its line.

A file imports all or nothing, importing it again changes nothing, and what Tower exports
imports back to the very same registry (and the very same bytes). Shared rows, files and
helpers: tests/support/roadmap.py.
"""

from __future__ import annotations

import csv
import io

import pytest

from tests.support.roadmap import (
    CHECKOUT_SPEC,
    GOOD_FILE,
    GOOD_ROWS,
    HEADER_LINE,
    HERO_SPEC,
    NEWSLETTER_SPEC,
    read,
    read_errors,
    roadmap,
    row,
)
from tower.experiments.csv_rows import (
    COLUMNS,
    RoadmapFormatError,
    RowError,
)
from tower.experiments.spec import (
    ExperimentStatus,
)
from tower.policy import Policy

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
