"""`tower import` and `tower export` from the command line: what is imported and listed,
reports, bad files named by line, byte order marks and line endings, an uninitialised
database, the same bytes through a fresh database.

A file imports all or nothing, importing it again changes nothing, and what Tower exports
imports back to the very same registry (and the very same bytes). Shared rows, files and
helpers: tests/support/roadmap.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from tests.support.cli import succeeded
from tests.support.roadmap import (
    GOOD_FILE,
    GOOD_ROWS,
    database_counts,
    hundred_rows,
    import_text,
    roadmap,
    row,
    tower,
    write_file,
)
from tower.audit.models import AuditEvent
from tower.experiments.csv_transfer import export_roadmap
from tower.policy import Policy

# --------------------------------------------------------------------------- the CLI


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
