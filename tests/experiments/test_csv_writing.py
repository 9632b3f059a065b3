"""The roadmap spreadsheet, written: numbers as short text that reads back exactly, the
documented format, and written rows (generated, keyed or not) that read back the same.

A file imports all or nothing, importing it again changes nothing, and what Tower exports
imports back to the very same registry (and the very same bytes). Shared rows, files and
helpers: tests/support/roadmap.py.
"""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.roadmap import (
    CHECKOUT_SPEC,
    HEADER_LINE,
    NEWSLETTER_SPEC,
    POLICY,
    Numbered,
    numbered_specs,
    written,
)
from tower.experiments.csv_rows import (
    format_number,
    read_roadmap,
    write_roadmap,
)
from tower.experiments.spec import (
    ExperimentSpec,
    ExperimentStatus,
    validate_spec,
)

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
