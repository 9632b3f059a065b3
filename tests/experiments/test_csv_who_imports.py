"""Who imports the roadmap spreadsheet: a manager anything; a team member drafts of their
own team only, refused line by line otherwise; nobody outside the policy, nor the system.

A file imports all or nothing, importing it again changes nothing, and what Tower exports
imports back to the very same registry (and the very same bytes). Shared rows, files and
helpers: tests/support/roadmap.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import failed, succeeded
from tests.support.people import MANAGER as ACTOR
from tests.support.roadmap import (
    GOOD_FILE,
    audit_actions,
    database_counts,
    roadmap,
    row,
    tower,
    write_file,
)

# --------------------------------------------------------------------------- who imports


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
