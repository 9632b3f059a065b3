"""Bad input to the roadmap spreadsheet: bytes that are not UTF-8, odd and dangerous cells,
equivalent files, cells past the CSV reader's limit, no key left, line breaks typed any way
and text an export must guard.

A file imports all or nothing, importing it again changes nothing, and what Tower exports
imports back to the very same registry (and the very same bytes). Shared rows, files and
helpers: tests/support/roadmap.py.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.support.cli import failed, succeeded
from tests.support.people import MANAGER as ACTOR
from tests.support.roadmap import (
    CHECKOUT_SPEC,
    GOOD_FILE,
    counts,
    database_counts,
    experiments,
    export_text,
    import_text,
    read,
    read_errors,
    roadmap,
    row,
    tower,
    write_file,
)
from tower.context import ServiceContext
from tower.experiments import service as experiment_service
from tower.experiments.csv_rows import (
    COLUMNS,
    RoadmapFormatError,
    RowError,
    read_fields,
)
from tower.experiments.service import NoKeyLeft
from tower.experiments.spec import (
    ExperimentStatus,
)
from tower.policy import Policy
from tower.protocol import edits

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
        for row in rows:  # noqa: F402 (the cells of a row, not the `row` builder)
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
