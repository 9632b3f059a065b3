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
from tower.experiments.spec import ExperimentStatus, format_key
from tower.policy import Policy
from tower.protocol.permissions import PermissionDenied, is_member_of

OPERATOR = "system"  # who imports when no one is named: the person running Tower

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
    session: Session, stream: TextIO, *, policy: Policy, actor: str, source: str = "<csv>"
) -> ImportReport:
    """Validate every row first, then apply them all; raise `RoadmapFormatError` on any bad row."""
    rows = read_roadmap(stream, policy, source)
    targets = _match_rows(session, rows, source)
    check_importer(policy, actor, rows, targets, source)
    report = ImportReport()
    next_number = max(
        [experiment_service.highest_number(session)]
        + [row.number for row in rows if row.number is not None]
    )
    for row in rows:
        existing = targets.get(row.line)
        if existing is None:
            if row.number is None:
                next_number += 1
            number = next_number if row.number is None else row.number
            experiment_service.create(
                session,
                number=number,
                spec=row.spec,
                status=row.status,
                actor=actor,
                action=IMPORT_ACTION,
            )
            report.created.append(format_key(number))
        elif experiment_service.overwrite(
            session,
            existing,
            spec=row.spec,
            status=row.status,
            actor=actor,
            action=IMPORT_ACTION,
        ):
            report.updated.append(existing.key)
        else:
            report.unchanged.append(existing.key)
    return report


class ImportDenied(RoadmapFormatError, PermissionDenied):
    """Rows the importer may not write; nothing from the file is."""


def check_importer(
    policy: Policy,
    actor: str,
    rows: list[RoadmapRow],
    targets: dict[int, Experiment],
    source: str,
) -> None:
    """Who may import what: the operator (`OPERATOR`) and managers anything; a member of
    a team only that team's tests, and no state (a new test is a draft, an existing one
    keeps its state); a row that changes nothing is not theirs to answer for. Anyone
    else, nothing."""
    if actor == OPERATOR or policy.is_manager(actor):
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
    if errors:
        raise ImportDenied(source, errors)


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
