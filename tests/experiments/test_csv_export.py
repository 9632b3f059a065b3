"""The roadmap spreadsheet, exported: every test in key order, and an export that imports
back to the same registry, generated specs included.

A file imports all or nothing, importing it again changes nothing, and what Tower exports
imports back to the very same registry (and the very same bytes). Shared rows, files and
helpers: tests/support/roadmap.py.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from sqlalchemy.orm import Session

from tests.support.roadmap import (
    CHECKOUT_SPEC,
    GOOD_FILE,
    HERO_SPEC,
    NEWSLETTER_SPEC,
    Numbered,
    counts,
    export_text,
    hundred_rows,
    import_text,
    numbered_specs,
    versions,
    written,
)
from tower.experiments.spec import (
    ExperimentStatus,
    format_key,
)
from tower.policy import Policy

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
