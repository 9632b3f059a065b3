"""Collision records: opened, kept, reopened and resolved as the engine's findings change.

A finding is matched to its record by fingerprint, so acknowledgements and waivers survive
every re-check; a record whose clash no longer holds is resolved. A change matches only the
records of the tests it touched; a resync matches them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import ColumnElement, Select, case, insert, select
from sqlalchemy.orm import Session, selectinload

from tower.collisions.kinds import CollisionStatus
from tower.collisions.models import (
    ANNOUNCED_DETAILS,
    AnnouncedRecord,
    Collision,
    OpenedRecord,
    collision_experiments,
)
from tower.db import BATCH, batches, utcnow
from tower.engine.findings import Finding
from tower.engine.kinds import CollisionKind, Severity
from tower.engine.mde_cost import SHARING_KINDS, days_to_mde, mde_sentence
from tower.engine.scope import Scope
from tower.engine.score import SampleNeed
from tower.errors import NotFoundError, TowerError
from tower.experiments.models import Experiment
from tower.experiments.permissions import PermissionDenied
from tower.experiments.spec import format_key, parse_key
from tower.paging import Page, first_rows
from tower.policy import Policy
from tower.text import require_within

LIVE_STATUSES = (CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED, CollisionStatus.WAIVED)
ID_MAX = 2**31 - 1  # the largest id the collisions table's column holds
_REF = re.compile(r"C-([1-9][0-9]*)")
_BARE_REF = re.compile(r"(?:C-)?([1-9][0-9]*)")


class CollisionActionError(TowerError):
    """An action on a collision that the actor may not take, or not in its current state."""


class CollisionActionDenied(CollisionActionError, PermissionDenied):
    """The actor may not take this action on the collision; adapters audit the attempt."""


def require_involved_or_manager(
    policy: Policy, collision: Collision, actor: str, verb: str
) -> None:
    """Only members of a team the collision involves, and managers, may `verb` it."""
    members = {
        member
        for key in collision.details.get("teams", [])
        if (team := policy.team(key)) is not None
        for member in team.members
    }
    if actor not in members and not policy.is_manager(actor):
        raise CollisionActionDenied(
            f"{actor} is not in a team involved in {format_ref(collision)} nor a manager: "
            f"only they can {verb} it"
        )


@dataclass
class SyncReport:
    """What a re-check changed, by collision record; `kept`: the ids of the records that
    still hold (read as rows, so no object is built for a record that stays as it was)."""

    opened: list[OpenedRecord] = field(default_factory=list)
    reopened: list[Collision] = field(default_factory=list)
    resolved: list[Collision] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)


class CollisionFacts(Protocol):
    """What a listing shows of a collision: a record, or a row read without one."""

    id: int
    kind: CollisionKind
    severity: Severity
    status: CollisionStatus
    agile_vs_bau: bool
    explanation: str
    details: dict[str, Any]
    acknowledged_by: str | None
    waived_by: str | None
    waiver_reason: str | None


def format_ref(collision: AnnouncedRecord | CollisionFacts) -> str:
    """The human reference of a collision: `C-12`."""
    return f"C-{collision.id}"


def keys_of(collision: AnnouncedRecord | CollisionFacts) -> list[str]:
    """The tests in a collision, as recorded when it was last seen."""
    keys: list[str] = collision.details.get("keys", [])
    return keys


def scope_of(collision: AnnouncedRecord | CollisionFacts) -> Scope:
    """What a collision is about (a surface, group, channel or funnel), as recorded."""
    return Scope.parse(str(collision.details.get("scope", "")))


@dataclass(frozen=True)
class RecordScope:
    """The records a change can alter: every record of the tests in `keys`; the records of
    each kind in `by_kind` that involve its tests (the other members of crowds a changed
    test was or is now in); and the records of each kind in `within` whose tests all lie
    inside one of its crowds (smaller crowds a bigger one now holds)."""

    keys: frozenset[str]
    by_kind: Mapping[CollisionKind, frozenset[str]] = field(default_factory=dict)
    within: Mapping[CollisionKind, tuple[frozenset[str], ...]] = field(default_factory=dict)


# Blocking, then warnings, then info (the stored names sort info before warning).
MOST_SEVERE_FIRST = case(
    {Severity.BLOCKING: 0, Severity.WARNING: 1, Severity.INFO: 2}, value=Collision.severity
)

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


def _live(
    query: Select[Any],
    scope: Collection[str] | None,
    statuses: Collection[CollisionStatus] = LIVE_STATUSES,
    kinds: Collection[CollisionKind] = (),
    *,
    inside: bool = False,
) -> Select[Any]:
    """`query` narrowed to open, acknowledged and waived records (or `statuses`), of the
    tests in `scope` (None: all), of `kinds` (all kinds when empty); `inside`: only those
    involving no other test."""
    query = query.where(Collision.status.in_(list(statuses)))
    if kinds:
        query = query.where(Collision.kind.in_(list(kinds)))
    if scope is not None:
        numbers = [parse_key(key) for key in scope]
        query = query.where(Collision.id.in_(_involving(Experiment.number.in_(numbers))))
        if inside:
            others = Experiment.number.not_in(numbers)
            own = collision_experiments.c.collision_id == Collision.id
            query = query.where(~_involving(others).where(own).exists())
    return query


def _live_records(
    session: Session,
    scope: Collection[str] | None,
    statuses: Collection[CollisionStatus] = LIVE_STATUSES,
    kinds: Collection[CollisionKind] = (),
) -> dict[str, Collision]:
    """The records `_live` narrows to, by fingerprint."""
    query = _live(select(Collision), scope, statuses, kinds)
    return {record.fingerprint: record for record in session.scalars(query)}


def _stored(
    session: Session,
    scope: Collection[str] | None,
    kinds: Collection[CollisionKind] = (),
    *,
    inside: bool = False,
) -> Iterator[_Stored]:
    """The live records `_live` narrows to, as rows: all of them (no `scope`) read a
    batch at a time; a scope's few at once (streaming them costs a cursor's round trips)."""
    columns = [getattr(Collision, name) for name in _Stored._fields]
    query = _live(select(*columns), scope, kinds=kinds, inside=inside)
    if scope is None:
        query = query.execution_options(yield_per=BATCH)
    for row in session.execute(query):
        yield _Stored(*row)


def _involving(tests: ColumnElement[bool]) -> Select[tuple[int]]:
    """The ids of the collisions that involve a test matching `tests`."""
    return (
        select(collision_experiments.c.collision_id)
        .join(Experiment, Experiment.id == collision_experiments.c.experiment_id)
        .where(tests)
    )


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
            tests = set(row.details.get("keys", []))
            if row.id not in seen and any(tests <= crowd for crowd in crowds):
                seen.add(row.id)
                yield row


def records_involving(
    session: Session, key: str, statuses: Collection[CollisionStatus] = LIVE_STATUSES
) -> list[Collision]:
    """The records of test `key` in `statuses`, in the order they were found."""
    return sorted((r for r in _live_records(session, [key], statuses).values()), key=lambda r: r.id)


def live_records(
    session: Session, keys: Collection[str], kinds: Collection[CollisionKind]
) -> list[Collision]:
    """The live records of `kinds` that involve one of `keys`."""
    return list(_live_records(session, keys, kinds=kinds).values())


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
    cost: dict[str, Any] = {}
    if needs is not None and finding.kind in SHARING_KINDS:
        cost = {
            "days_to_mde": days_to_mde(finding, needs),
            "mde_cost": mde_sentence(finding, needs),
        }
    return {
        "keys": list(finding.keys),
        "teams": [teams[key] for key in finding.keys],
        "scope": str(finding.scope),
        "surfaces": list(finding.surfaces),
        "first_day": finding.first_day.isoformat(),
        "last_day": finding.last_day.isoformat(),
        "days": finding.days,
        "people_per_week": finding.people_per_week,
        "affected": {key: round(share, 4) for key, share in finding.affected},
        "fixes": list(fixes),
        **cost,
    }


def list_collisions(
    session: Session,
    *,
    statuses: Collection[CollisionStatus] = (),
    severities: Collection[Severity] = (),
) -> list[Collision]:
    """Collision records by severity, then in the order they were first found."""
    query = select(Collision).order_by(MOST_SEVERE_FIRST, Collision.id)
    if statuses:
        query = query.where(Collision.status.in_(list(statuses)))
    if severities:
        query = query.where(Collision.severity.in_(list(severities)))
    return list(session.scalars(query))


def collision_rows(
    session: Session,
    *,
    statuses: Collection[CollisionStatus] = (),
    severities: Collection[Severity] = (),
    key: str | None = None,
) -> list[CollisionFacts]:
    """`list_collisions` read as plain rows (of test `key` only, when given): thousands of
    collisions listed without thousands of objects."""
    involving = None if key is None else ids_of_test(key)
    page = collision_page(
        session, statuses=statuses, severities=severities, involving=involving, limit=None
    )
    return page.items


def ids_of_test(key: str) -> Select[Any]:
    """The id of test `key`, as `collision_page` takes the tests whose collisions it pages."""
    return select(Experiment.id).where(Experiment.number == parse_key(key))


def stream_collision_rows(
    session: Session,
    *,
    statuses: Collection[CollisionStatus] = (),
    severities: Collection[Severity] = (),
) -> Iterator[CollisionFacts]:
    """`collision_rows`, read a batch at a time (a listing of every collision)."""
    query = _rows_query(statuses, severities).execution_options(yield_per=BATCH)
    yield from session.execute(query)


def collision_page(
    session: Session,
    *,
    statuses: Collection[CollisionStatus] = (),
    severities: Collection[Severity] = (),
    involving: Select[Any] | None = None,
    limit: int | None,
) -> Page[CollisionFacts]:
    """The most urgent `limit` collisions as rows, and how many there are in all; those
    involving one of the experiments `involving` selects (by id), when given."""
    query = _rows_query(statuses, severities)
    if involving is not None:
        involved = select(collision_experiments.c.collision_id).where(
            collision_experiments.c.experiment_id.in_(involving)
        )
        query = query.where(Collision.id.in_(involved))
    return first_rows(session, query, limit)


def _rows_query(
    statuses: Collection[CollisionStatus], severities: Collection[Severity]
) -> Select[Any]:
    columns = [getattr(Collision, name) for name in CollisionFacts.__annotations__]
    query = select(*columns).order_by(MOST_SEVERE_FIRST, Collision.id)
    if statuses:
        query = query.where(Collision.status.in_(list(statuses)))
    if severities:
        query = query.where(Collision.severity.in_(list(severities)))
    return query


def parse_ref(ref: str, *, bare: bool = False) -> int:
    """The id in a collision reference `C-12` (or `12` when `bare`), exactly as Tower writes
    it (`c-12` is not one); `ValueError` with a readable reason if it is not one."""
    text = ref.strip()
    match = (_BARE_REF if bare else _REF).fullmatch(text)
    if match is None:
        raise ValueError(f"there is no collision {text!r}: collision ids look like C-12")
    if len(match.group(1)) > len(str(ID_MAX)) or int(match.group(1)) > ID_MAX:
        raise ValueError(f"{text!r} is too big a collision id (the largest is C-{ID_MAX})")
    return int(match.group(1))


def by_refs(session: Session, refs: Collection[str]) -> list[Collision]:
    """The collisions named `C-12` in `refs` (unknown ones left out), most urgent first."""
    ids: list[int] = []
    for ref in refs:
        with suppress(ValueError):  # not a reference Tower writes: no collision
            ids.append(parse_ref(ref))
    query = select(Collision).where(Collision.id.in_(ids)).order_by(MOST_SEVERE_FIRST, Collision.id)
    return list(session.scalars(query))


def get_collision(session: Session, ref: str) -> Collision:
    """The collision `C-12` (or `12`); `NotFoundError` if there is none."""
    try:
        id_ = parse_ref(ref, bare=True)
    except ValueError as error:
        raise NotFoundError(str(error)) from None
    collision = session.get(Collision, id_)
    if collision is None:
        raise NotFoundError(f"there is no collision {ref.strip()}")
    return collision


def waive(session: Session, policy: Policy, ref: str, *, actor: str, reason: str) -> Collision:
    """A manager accepts a collision on purpose, saying why; re-checks keep the waiver."""
    collision = get_collision(session, ref)
    if not policy.is_manager(actor):
        raise CollisionActionDenied(
            f"only a control-tower manager can waive {format_ref(collision)}"
        )
    if not reason.strip():
        raise CollisionActionError(f"say why {format_ref(collision)} is waived (--reason)")
    require_within(reason, "reason")
    if collision.status not in (CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED):
        raise CollisionActionError(
            f"{format_ref(collision)} is {collision.status.value}: only open or acknowledged "
            "collisions can be waived"
        )
    collision.status = CollisionStatus.WAIVED
    collision.waived_by, collision.waiver_reason = actor, reason.strip()
    return collision


def acknowledge(
    session: Session, policy: Policy, ref: str, *, actor: str, at: datetime | None = None
) -> Collision:
    """A member of an involved team (or a manager) says the collision has been seen."""
    collision = get_collision(session, ref)
    require_involved_or_manager(policy, collision, actor, "acknowledge")
    if collision.status == CollisionStatus.ACKNOWLEDGED:
        raise AlreadyAcknowledged(collision)
    if collision.status != CollisionStatus.OPEN:
        raise CollisionActionError(
            f"{format_ref(collision)} is {collision.status.value}: only open collisions can be "
            "acknowledged"
        )
    collision.status = CollisionStatus.ACKNOWLEDGED
    collision.acknowledged_by = actor
    collision.acknowledged_at = at or utcnow()
    return collision


class AlreadyAcknowledged(CollisionActionError):
    """Someone acknowledged the collision before: says who and when."""

    def __init__(self, collision: Collision) -> None:
        self.collision = collision
        when = collision.acknowledged_at
        at = f" on {when:%a %d %b %Y %H:%M} UTC" if when is not None else ""
        super().__init__(
            f"{format_ref(collision)} was already acknowledged by {collision.acknowledged_by}{at}"
        )
