"""The roadmap spreadsheet, imported: tests created and audited, keys given to keyless rows,
all or nothing, twice changes nothing, edited rows update their tests.

A file imports all or nothing, importing it again changes nothing, and what Tower exports
imports back to the very same registry (and the very same bytes). Shared rows, files and
helpers: tests/support/roadmap.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy.orm import Session

from tests.support.people import MANAGER as ACTOR
from tests.support.roadmap import (
    CHECKOUT_SPEC,
    GOOD_FILE,
    GOOD_ROWS,
    HERO_SPEC,
    NEWSLETTER_SPEC,
    counts,
    experiments,
    export_text,
    hundred_rows,
    import_text,
    roadmap,
    row,
    versions,
)
from tower.audit.service import events_for
from tower.experiments.csv_rows import (
    RoadmapFormatError,
    RowError,
)
from tower.experiments.spec import (
    ExperimentStatus,
)
from tower.policy import Policy

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
