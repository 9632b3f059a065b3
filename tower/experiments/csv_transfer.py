"""Import a roadmap spreadsheet into the registry and export the registry back to one.

Import is all or nothing and idempotent: a row with a key updates that test, a row without
one matches the team's test of the same title or gets the next free key, and a row that
changes nothing writes nothing (no new version, no audit event).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.experiments import service as experiment_service
from tower.experiments.csv_rows import RoadmapFormatError, RoadmapRow, RowError, read_roadmap
from tower.experiments.csv_rows import write_roadmap as write_rows
from tower.experiments.models import Experiment
from tower.experiments.permissions import PermissionDenied, is_member_of
from tower.experiments.spec import (
    EDITABLE_STATUSES,
    KEY_MAX_NUMBER,
    ExperimentStatus,
    format_key,
)
from tower.policy import Policy

# Who the audit log says imported when no one is named: the person running Tower. Not a
# user: `--by system` is refused like any name outside the policy.
OPERATOR = "system"

# The states in which a team member's import may change a test's fields: those `tower edit`
# allows, less `approved` (an edit there voids the approval, which an import cannot do).
MEMBER_EDITABLE = EDITABLE_STATUSES - {ExperimentStatus.APPROVED}

IMPORT_ACTION = "imported"


@dataclass
class ImportReport:
    """Which keys an import created, updated or left as they were."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def summary(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged"
        )


def import_roadmap(
    session: Session,
    stream: TextIO,
    *,
    policy: Policy,
    actor: str | None,
    source: str = "<csv>",
) -> ImportReport:
    """Validate every row first, then apply them all; raise `RoadmapFormatError` on any bad row.
    `actor`: a user of the policy, or None for the operator (audited as `OPERATOR`)."""
    rows = read_roadmap(stream, policy, source)
    targets = _match_rows(session, rows, source)
    check_importer(policy, actor, rows, targets, source)
    numbers = _new_numbers(session, rows, targets, source)
    report = ImportReport()
    for row in rows:
        existing = targets.get(row.line)
        if existing is None:
            number = numbers[row.line]
            experiment_service.create(
                session,
                number=number,
                spec=row.spec,
                status=row.status,
                actor=actor or OPERATOR,
                action=IMPORT_ACTION,
            )
            report.created.append(format_key(number))
        elif experiment_service.overwrite(
            session,
            existing,
            spec=row.spec,
            status=row.status,
            actor=actor or OPERATOR,
            action=IMPORT_ACTION,
        ):
            report.updated.append(existing.key)
        else:
            report.unchanged.append(existing.key)
    return report


def _new_numbers(
    session: Session, rows: list[RoadmapRow], targets: dict[int, Experiment], source: str
) -> dict[int, int]:
    """The number of each test the file creates, by file line: the row's key, else the next
    after the highest in use or named in the file. A keyless row past the last key the
    registry holds is `RoadmapFormatError`."""
    last = max(
        [experiment_service.highest_number(session)]
        + [row.number for row in rows if row.number is not None]
    )
    numbers: dict[int, int] = {}
    errors = []
    for row in rows:
        if row.line in targets:
            continue
        if row.number is not None:
            numbers[row.line] = row.number
        elif last < KEY_MAX_NUMBER:
            last += 1
            numbers[row.line] = last
        else:
            message = f"{experiment_service.NO_KEY_LEFT}: give this row an unused key"
            errors.append(RowError(row.line, "key", message))
    if errors:
        raise RoadmapFormatError(source, errors)
    return numbers


class ImportDenied(RoadmapFormatError, PermissionDenied):
    """Rows the importer may not write; nothing from the file is."""


def check_importer(
    policy: Policy,
    actor: str | None,
    rows: list[RoadmapRow],
    targets: dict[int, Experiment],
    source: str,
) -> None:
    """Who may import what: the operator (None) and managers anything; a member of a team
    only that team's tests, no state (a new test is a draft, an existing one keeps its
    state) and no test past the states `MEMBER_EDITABLE`; a row that changes nothing is
    not theirs to answer for. Anyone else, nothing."""
    if actor is None or policy.is_manager(actor):
        return
    if not any(actor in team.members for team in policy.teams):
        raise PermissionDenied(
            f"{actor} is neither a manager nor a member of a team in the policy: "
            "nothing was imported"
        )
    errors = []
    for row in rows:
        existing = targets.get(row.line)
        if existing is not None and (existing.spec(), existing.status) == (row.spec, row.status):
            continue
        teams = {row.spec.team} | ({existing.team} if existing is not None else set())
        for team in sorted(teams):
            if not is_member_of(policy, actor, team):
                message = f"{actor} is not a member of team {team!r}: only its members import it"
                errors.append(RowError(row.line, "team", message))
        kept = ExperimentStatus.DRAFT if existing is None else existing.status
        if row.status != kept:
            was = "a new test is a draft" if existing is None else f"{existing.key} is {kept}"
            message = f"{was}, not {row.status}: only a manager changes a test's state by import"
            errors.append(RowError(row.line, "status", message))
        if existing is not None and existing.status not in MEMBER_EDITABLE:
            errors += _past_editing(row, existing)
    if errors:
        raise ImportDenied(source, errors)


def _past_editing(row: RoadmapRow, existing: Experiment) -> list[RowError]:
    """An error for each field a team member's row changes on a test they may no longer
    change by import."""
    if existing.status in EDITABLE_STATUSES:  # approved
        why = "use `tower edit` (it voids the approval where needed) or have a manager import it"
    else:
        why = "it can no longer be edited; only a manager changes it by import"
    before = existing.spec()
    return [
        RowError(row.line, name, f"{existing.key} is {existing.status}: {why}")
        for name in before.field_names()
        if getattr(row.spec, name) != getattr(before, name)
    ]


def _match_rows(session: Session, rows: list[RoadmapRow], source: str) -> dict[int, Experiment]:
    """The existing test each row updates, by file line: by key, else by team and title."""
    by_number = {e.number: e for e in session.scalars(select(Experiment))}
    by_title: dict[tuple[str, str], list[Experiment]] = {}
    for experiment in by_number.values():
        by_title.setdefault((experiment.team, experiment.title), []).append(experiment)
    claimed = {row.number for row in rows if row.number is not None}
    targets: dict[int, Experiment] = {}
    errors = []
    for row in rows:
        if row.number is not None:
            if row.number in by_number:
                targets[row.line] = by_number[row.number]
            continue
        candidates = by_title.get((row.spec.team, row.spec.title), [])
        if len(candidates) > 1:
            keys = ", ".join(sorted(c.key for c in candidates))
            message = f"matches several tests of team {row.spec.team!r} ({keys}): give a key"
            errors.append(RowError(row.line, "key", message))
        elif candidates and candidates[0].number in claimed:
            message = f"matches {candidates[0].key}, which another row of the file also sets"
            errors.append(RowError(row.line, "key", message))
        elif candidates:
            targets[row.line] = candidates[0]
    if errors:
        raise RoadmapFormatError(source, errors)
    return targets


def export_roadmap(session: Session, stream: TextIO) -> int:
    """Write every test, in key order; returns how many were written."""
    experiments = list(session.scalars(select(Experiment).order_by(Experiment.number)))
    write_rows(stream, ((e.number, e.spec(), e.status) for e in experiments))
    return len(experiments)
