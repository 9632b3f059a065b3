"""The write path: a change re-checks what it touches; a resync re-checks everything.

Every change to a test (registered, edited, prioritised, moved through the protocol, from
the CLI, Slack or the worker) goes through `record_change` in the transaction that made
it. The change bumps the registry's version, updates the warm index, checks the changed
tests and the other members of the crowds they were or now are in, and matches only the
records of those tests. Its scores are stored for the read model; the plan is made off the
request path (`resync`, `replan`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy.orm import Session

from tower.collisions import service as collision_service
from tower.collisions.refs import keys_of
from tower.collisions.sync import DetailWriter, RecordScope, SyncReport, finding_details
from tower.context import ServiceContext
from tower.engine.findings import Finding
from tower.engine.fixes import suggest_fixes
from tower.engine.kinds import CollisionKind
from tower.engine.mde_cost import SampleNeedsByKey
from tower.experiments.models import Experiment
from tower.pipeline import collision_flows, read_model, registry
from tower.pipeline.index import PortfolioIndex, portfolio_item, warm_index

# A crowd losing or gaining a member may be found again through its other members.
CROWD_KINDS = frozenset({CollisionKind.CAPACITY, CollisionKind.CONTACT_CAP})
# Crowd kinds whose findings are the largest crowds over a limit, among tests that pair up
# (share people, run close enough): a test joining one can only swallow smaller crowds.
LARGEST_CROWD_KINDS = frozenset({CollisionKind.CONTACT_CAP})
MEMBER_CHECKED_KINDS = CROWD_KINDS - LARGEST_CROWD_KINDS


def record_change(
    session: Session, ctx: ServiceContext, experiments: Sequence[Experiment]
) -> SyncReport:
    """Re-check what `experiments` (changed in this transaction) touch, and announce it;
    and so for any other test this transaction wrote that the index does not yet hold."""
    session.flush()
    index = warm_index(session, ctx.policy, ctx.today)
    with index.lock:
        read_model.forget_on_rollback(session, index)  # whatever it takes in from here
        row = registry.state(session, for_update=True)
        index.catch_up(session, registry.mark_of(row))
        mark = registry.bump(session, row)
        index.rescore(row.scored_on or ctx.today)
        others = _not_indexed(index, registry.written_tests(session))
        changed = [*experiments, *(e for e in others if e not in experiments)]
        for experiment in changed:
            index.put(portfolio_item(experiment))
        index.remember(changed, mark)
        keys = [experiment.key for experiment in changed]
        scope, findings = touched(session, index, keys)
        report = collision_flows.reconcile(
            session, ctx, findings, scope=scope, details=detail_writer(session, index)
        )
        read_model.store_scores(session, index, changed)
        read_model.fill_missing_scores(session, index)
    return report


def _not_indexed(index: PortfolioIndex, experiments: Sequence[Experiment]) -> list[Experiment]:
    """Those of `experiments` the index holds at another version, each once."""
    found: dict[int, Experiment] = {}
    for experiment in experiments:
        if index.rows.get(experiment.number) != (experiment.version, experiment.change_stamp):
            found.setdefault(experiment.number, experiment)
    return list(found.values())


def touched(
    session: Session, index: PortfolioIndex, keys: Collection[str]
) -> tuple[RecordScope, list[Finding]]:
    """The records a change of `keys` can alter, and every finding they should say.

    Every record of the changed tests. For capacity, the records of the other members of
    the crowds they were or are now in, each member checked again: a crowd that loses a
    member may still be over its limit without it, and one that gains a member replaces
    the smaller crowd it was. A member's other kinds of clash cannot change.

    The largest-crowd kinds (contact caps) need less. A crowd of the others stops being
    one only when a changed test now pairs with all its members: it then lies inside a
    crowd the changed test is in now, so the records inside those are read (and resolve).
    A crowd of the others starts being one only when a changed test that paired with all
    its members leaves: it is then exactly what is left of a crowd that test was in, and
    one check of one of its members says whether it is still a largest crowd.
    """
    found: dict[str, Finding] = {}

    def check(key: str, kinds: Collection[CollisionKind] | None = None) -> list[Finding]:
        footprint = index.footprints.get(key)
        return [] if footprint is None else index.engine.check(footprint, kinds)

    changed = frozenset(keys)
    for key in changed:
        found.update((finding.fingerprint, finding) for finding in check(key))
    members: dict[CollisionKind, set[str]] = {kind: set() for kind in MEMBER_CHECKED_KINDS}
    remains: set[tuple[CollisionKind, frozenset[str]]] = set()
    for record in collision_service.live_records(session, changed, CROWD_KINDS):
        if record.kind in LARGEST_CROWD_KINDS:
            remains.add((record.kind, frozenset(keys_of(record)) - changed))
        else:
            members[record.kind].update(keys_of(record))
    joined: dict[CollisionKind, list[frozenset[str]]] = {kind: [] for kind in LARGEST_CROWD_KINDS}
    for finding in list(found.values()):
        if finding.kind in LARGEST_CROWD_KINDS:
            joined[finding.kind].append(frozenset(finding.keys))
        elif finding.kind in MEMBER_CHECKED_KINDS:
            members[finding.kind].update(finding.keys)
    for kind, keys_of_kind in members.items():
        for key in sorted(keys_of_kind - changed):
            for finding in check(key, [kind]):
                found.setdefault(finding.fingerprint, finding)
    for kind, crowd in remains:
        if crowd:
            for finding in check(min(crowd), [kind]):
                if frozenset(finding.keys) == crowd:  # still a largest crowd over the cap
                    found.setdefault(finding.fingerprint, finding)
    by_kind = {kind: frozenset(keys_of_kind - changed) for kind, keys_of_kind in members.items()}
    within = {kind: tuple(crowds) for kind, crowds in joined.items() if crowds}
    return RecordScope(changed, by_kind, within), list(found.values())


def detail_writer(session: Session, index: PortfolioIndex) -> DetailWriter:
    """Details of a finding from the warm index: teams, and fixes from the stored plan."""
    ranks = index.ranks()
    placements = index.placements(session)
    segments = index.compiler.graph.segments
    needs = SampleNeedsByKey(index.footprints, index.compiler)

    def details(finding: Finding) -> dict[str, object]:
        fixes = suggest_fixes(
            finding,
            ranks=ranks,
            placements=placements,
            footprints=index.footprints,
            segments=segments,
        )
        teams = {key: index.footprints[key].item.spec.team for key in finding.keys}
        return finding_details(finding, teams, fixes, needs)

    return details
