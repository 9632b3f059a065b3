"""Collision records kept in step with the engine's findings: opened, kept, reopened and
resolved as they change.

A finding is matched to its record by fingerprint, so acknowledgements and waivers survive
every re-check; a record whose clash no longer holds is resolved. A change matches only the
records of the tests it touched; a resync matches them all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from tower.collisions.details import CollisionDetails
from tower.collisions.kinds import CollisionStatus
from tower.collisions.models import (
    ANNOUNCED_DETAILS,
    Collision,
    OpenedRecord,
    collision_experiments,
)
from tower.collisions.service import narrowed_to_live
from tower.db import BATCH, batches, utcnow
from tower.engine.findings import Finding
from tower.engine.kinds import CollisionKind, Severity
from tower.engine.mde_cost import SHARING_KINDS, days_to_mde, mde_sentence
from tower.engine.score import SampleNeed
from tower.experiments.models import Experiment
from tower.experiments.spec import format_key, parse_key


@dataclass
class SyncReport:
    """What a re-check changed, by collision record; `kept`: the ids of the records that
    still hold (read as rows, so no object is built for a record that stays as it was)."""

    opened: list[OpenedRecord] = field(default_factory=list)
    reopened: list[Collision] = field(default_factory=list)
    resolved: list[Collision] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class RecordScope:
    """The records a change can alter: every record of the tests in `keys`; the records of
    each kind in `by_kind` that involve its tests (the other members of crowds a changed
    test was or is now in); and the records of each kind in `within` whose tests all lie
    inside one of its crowds (smaller crowds a bigger one now holds)."""

    keys: frozenset[str]
    by_kind: Mapping[CollisionKind, frozenset[str]] = field(default_factory=dict)
    within: Mapping[CollisionKind, tuple[frozenset[str], ...]] = field(default_factory=dict)


# Writes a finding's details: the teams of its tests and its fixes.
DetailWriter = Callable[[Finding], dict[str, Any]]


def match_records(
    session: Session,
    findings: Sequence[Finding],
    *,
    scope: RecordScope | None,
    details: DetailWriter,
) -> SyncReport:
    """Make the records in `scope` (None: the whole portfolio) match `findings`, which must
    be every finding in scope.

    The live records are read as rows and compared with their findings; only those that
    open, reopen, resolve or now say something else become objects and are written.
    Only `tower.pipeline.collision_flows.reconcile` calls this: it announces what opened and
    resolved in the same transaction, so no record is ever opened unannounced.
    """
    now = utcnow()
    report = SyncReport()
    found = {finding.fingerprint: finding for finding in findings}
    restated: dict[int, tuple[Finding, dict[str, Any]]] = {}
    leaving: list[int] = []
    matched: set[str] = set()
    for stored in _stored_in(session, scope):  # streamed: a resync reads them all
        finding = found.get(stored.fingerprint)
        if finding is None:
            leaving.append(stored.id)
            continue
        report.kept.append(stored.id)
        matched.add(stored.fingerprint)
        facts = details(finding)
        if not stored.says(finding, facts):
            restated[stored.id] = (finding, facts)
    missing = [fp for fp in found if fp not in matched]
    known = _records_by_fingerprint(session, missing)  # resolved ones that may come back
    tests = _tests_by_key(session, {key for fp in missing for key in found[fp].keys})
    opening: list[Finding] = []
    for fingerprint in missing:
        finding = found[fingerprint]
        record = known.get(fingerprint)
        if record is None:
            opening.append(finding)
            continue
        facts = details(finding)
        if record.status != CollisionStatus.RESOLVED:  # live, though outside the scope read
            report.kept.append(record.id)
            _describe(record, finding, facts)
            continue
        # A clash that comes back is a new problem: earlier acknowledgements and waivers
        # were about the old one.
        record.status, record.resolved_at = CollisionStatus.OPEN, None
        record.acknowledged_by = record.waived_by = record.waiver_reason = None
        record.acknowledged_at = None
        report.reopened.append(record)
        _describe(record, finding, facts)
    report.opened = _open(session, opening, details, tests)
    for record in _records_by_id(session, restated):
        _describe(record, *restated[record.id])
    for record in _records_by_id(session, leaving):
        record.status, record.resolved_at = CollisionStatus.RESOLVED, now
        report.resolved.append(record)
    session.flush()
    return report


class _Test(NamedTuple):
    """A test as a new record needs it: its row's id and its owner."""

    id: int
    owner: str


def _tests_by_key(session: Session, keys: Collection[str]) -> dict[str, _Test]:
    numbers = sorted({parse_key(key) for key in keys})
    found: dict[str, _Test] = {}
    for batch in batches(numbers):
        query = select(Experiment.number, Experiment.id, Experiment.owner).where(
            Experiment.number.in_(batch)
        )
        found.update(
            (format_key(number), _Test(id_, owner)) for number, id_, owner in session.execute(query)
        )
    return found


def _open(
    session: Session,
    opening: Sequence[Finding],
    details: DetailWriter,
    tests: Mapping[str, _Test],
) -> list[OpenedRecord]:
    """New records for the findings `opening`, their details written out and stored a
    batch at a time with their links to their tests; returned as values (a resync may
    open tens of thousands)."""
    records: list[OpenedRecord] = []
    # Ids are matched back by fingerprint (unique): asking for them in the order given
    # makes SQLite insert one row per statement.
    inserted = insert(Collision).returning(Collision.fingerprint, Collision.id)
    for findings in batches(opening):
        batch = [(finding, details(finding)) for finding in findings]
        rows = [
            {
                "fingerprint": finding.fingerprint,
                "kind": finding.kind,
                "severity": finding.severity,
                "status": CollisionStatus.OPEN,
                "agile_vs_bau": finding.agile_vs_bau,
                "explanation": finding.explanation,
                "details": facts,
            }
            for finding, facts in batch
        ]
        ids: dict[str, int] = {fp: id_ for fp, id_ in session.execute(inserted, rows)}
        links: list[dict[str, int]] = []
        for finding, facts in batch:
            id_ = ids[finding.fingerprint]
            involved = [tests[key] for key in finding.keys if key in tests]
            links += [{"collision_id": id_, "experiment_id": test.id} for test in involved]
            owners = sorted({test.owner for test in involved})
            records.append(
                OpenedRecord(
                    id_,
                    finding.fingerprint,
                    finding.kind,
                    finding.severity,
                    finding.agile_vs_bau,
                    finding.explanation,
                    {name: facts[name] for name in ANNOUNCED_DETAILS if name in facts},
                    owners,
                )
            )
        if links:
            session.execute(insert(collision_experiments), links)
    return records


class _Stored(NamedTuple):
    """A live record's facts as stored, read as a row."""

    id: int
    fingerprint: str
    severity: Severity
    agile_vs_bau: bool
    explanation: str
    details: dict[str, Any]

    def says(self, finding: Finding, details: dict[str, Any]) -> bool:
        """Whether the record already says what `finding` (with `details`) says."""
        return (
            self.severity == finding.severity
            and self.agile_vs_bau == finding.agile_vs_bau
            and self.explanation == finding.explanation
            and self.details == details
        )


def _describe(record: Collision, finding: Finding, details: dict[str, Any]) -> None:
    """Write the finding's facts into the record, touching only what differs."""
    if record.severity != finding.severity:
        record.severity = finding.severity
    if record.agile_vs_bau != finding.agile_vs_bau:
        record.agile_vs_bau = finding.agile_vs_bau
    if record.explanation != finding.explanation:
        record.explanation = finding.explanation
    if record.details != details:
        record.details = details


def _stored(
    session: Session,
    scope: Collection[str] | None,
    kinds: Collection[CollisionKind] = (),
    *,
    inside: bool = False,
) -> Iterator[_Stored]:
    """The live records `narrowed_to_live` narrows to, as rows: all of them (no `scope`)
    read a batch at a time; a scope's few at once (streaming them costs a cursor's round
    trips)."""
    columns = [getattr(Collision, name) for name in _Stored._fields]
    query = narrowed_to_live(select(*columns), scope, kinds=kinds, inside=inside)
    if scope is None:
        query = query.execution_options(yield_per=BATCH)
    for row in session.execute(query):
        yield _Stored(*row)


def _stored_in(session: Session, scope: RecordScope | None) -> Iterator[_Stored]:
    """The live records in `scope` (None: all) as rows, each once: read by kind, so a
    member's other clashes stay unread."""
    if scope is None:
        yield from _stored(session, None)
        return
    seen: set[int] = set()
    for row in _stored(session, scope.keys):
        seen.add(row.id)
        yield row
    for kind, members in scope.by_kind.items():
        if members:
            for row in _stored(session, members, kinds=[kind]):
                if row.id not in seen:
                    seen.add(row.id)
                    yield row
    for kind, crowds in scope.within.items():
        for row in _stored(session, frozenset().union(*crowds), kinds=[kind], inside=True):
            tests = set(CollisionDetails.of(row).keys)
            if row.id not in seen and any(tests <= crowd for crowd in crowds):
                seen.add(row.id)
                yield row


def _records_by_fingerprint(session: Session, fingerprints: list[str]) -> dict[str, Collision]:
    found: dict[str, Collision] = {}
    for batch in batches(fingerprints):
        query = (
            select(Collision)
            .where(Collision.fingerprint.in_(batch))
            .options(selectinload(Collision.experiments))  # a reopened one is announced
        )
        found.update((record.fingerprint, record) for record in session.scalars(query))
    return found


def _records_by_id(session: Session, ids: Collection[int]) -> list[Collision]:
    found: list[Collision] = []
    for batch in batches(sorted(ids)):
        query = select(Collision).where(Collision.id.in_(batch))
        found += session.scalars(query.order_by(Collision.id))
    return found


def finding_details(
    finding: Finding,
    teams: Mapping[str, str],
    fixes: Sequence[str],
    needs: Mapping[str, SampleNeed | None] | None = None,
) -> dict[str, Any]:
    """What a record keeps of a finding besides its kind, severity and explanation; for a
    clash that shares traffic, what it costs each test in days to its MDE (`needs`: each
    test's sample model)."""
    cost = None
    if needs is not None and finding.kind in SHARING_KINDS:
        cost = (days_to_mde(finding, needs), mde_sentence(finding, needs))
    return CollisionDetails.new(
        keys=finding.keys,
        teams=[teams[key] for key in finding.keys],
        scope=str(finding.scope),
        surfaces=finding.surfaces,
        first_day=finding.first_day,
        last_day=finding.last_day,
        days=finding.days,
        people_per_week=finding.people_per_week,
        affected={key: round(share, 4) for key, share in finding.affected},
        fixes=fixes,
        cost=cost,
    ).stored()
