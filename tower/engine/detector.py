"""The collision engine: every kind of clash in a portfolio, or those of one test."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable

from tower.engine.capacity import CapacityIndex
from tower.engine.collector import without_collector
from tower.engine.collisions import PairDetector
from tower.engine.contact_crowds import channel_schedules, contact_cap_breaches
from tower.engine.crowding import by_number, exclusion_group_overloads
from tower.engine.findings import Finding
from tower.engine.kinds import CollisionKind, Severity
from tower.engine.portfolio import Compiler, Footprint
from tower.engine.schedule import DaySchedule, insert_by_number, remove_by_number

_SEVERITY_ORDER = {Severity.BLOCKING: 0, Severity.WARNING: 1, Severity.INFO: 2}
PAIR_KINDS = frozenset({CollisionKind.SURFACE, CollisionKind.FUNNEL})  # the pair detector's


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Blocking first, then by first shared day, then by the tests involved."""
    return sorted(
        findings, key=lambda f: (_SEVERITY_ORDER[f.severity], f.first_day, f.kind, f.keys)
    )


class CollisionEngine:
    """Indexes a portfolio once; then scans it whole or checks one test against it, and
    keeps up with the tests that join, change or leave it (`replace`).

    The portfolio is held in registration-number order (the order `portfolio_items` lists
    tests in), whatever order it comes in: a test's number decides its place, and with it
    the order of every index.
    """

    def __init__(self, compiler: Compiler, footprints: Iterable[Footprint]) -> None:
        self.compiler = compiler
        self.policy = compiler.policy
        self.footprints = by_number(footprints)
        self._by_key = {footprint.key: footprint for footprint in self.footprints}
        self.pairs = PairDetector(compiler, self.footprints)
        self.by_channel = channel_schedules(compiler, self.footprints)
        limit = self.policy.protocol.max_concurrent_per_surface
        self.capacity = CapacityIndex(self.pairs.schedule, limit)
        self._groups: defaultdict[str, list[Footprint]] = defaultdict(list)  # group members
        for footprint in self.footprints:
            if footprint.group is not None:
                self._groups[footprint.group].append(footprint)

    @without_collector
    def scan(self) -> list[Finding]:
        """Every collision in the portfolio."""
        findings = self.pairs.scan()
        findings.extend(exclusion_group_overloads(self.footprints))
        findings.extend(self.capacity.overloads())
        findings.extend(
            contact_cap_breaches(self.compiler, self.by_channel, self.policy.contact_caps)
        )
        return sort_findings(findings)

    def prepare_checks(self) -> None:
        """Build now the indexes checks would build on first use (a scan builds the crowds
        already): the tests on or inside each node, each node's capacity crowd, and the
        tests on each funnel step."""
        self.pairs.schedule.index_nested()
        self.pairs.index_funnels()
        self.capacity.build()

    @without_collector
    def check(
        self, candidate: Footprint, kinds: Collection[CollisionKind] | None = None
    ) -> list[Finding]:
        """The collisions `candidate` would be in (of `kinds` only, when given); a test of
        the same key is replaced by it."""
        wanted = set(CollisionKind) if kinds is None else set(kinds)
        findings = self.pairs.check(candidate) if wanted & PAIR_KINDS else []
        if CollisionKind.CAPACITY in wanted:
            if candidate.group is not None:
                group = self._groups.get(candidate.group, [])
                findings.extend(exclusion_group_overloads(self._with(candidate, group)))
            indexed = self._by_key.get(candidate.key) is candidate
            findings.extend(self.capacity.overloads_with(candidate, indexed=indexed))
        if CollisionKind.CONTACT_CAP in wanted:
            channels = self._channels(candidate)
            caps = [cap for cap in self.policy.contact_caps if cap.channel in channels]
            findings.extend(
                contact_cap_breaches(self.compiler, self.by_channel, caps, including=candidate)
            )
        return sort_findings(f for f in findings if f.involves(candidate.key) and f.kind in wanted)

    def replace(self, key: str, footprint: Footprint | None) -> None:
        """Put `footprint` in the portfolio in place of the test `key` (None: the test leaves
        it; a key not yet there: the test joins it). Every index stays as a fresh engine
        would build it, from the portfolio in number order: `scan` and `check` then return
        exactly the findings of `CollisionEngine(compiler, new footprints)`, in the same order.
        Built indexes are updated, the crowds the change can alter dropped (worked out again
        when next asked for), the rest built on first use as ever.
        """
        if footprint is not None and footprint.key != key:
            raise ValueError(f"replace({key!r}, ...) was given the footprint of {footprint.key}")
        old = self._by_key.pop(key, None)
        if old is not None:
            self._leave(old)
        if footprint is not None:
            self._join(footprint)
        self.pairs.replace(old, footprint)
        for changed in (old, footprint):
            if changed is not None:
                self.capacity.forget(changed)

    def _join(self, footprint: Footprint) -> None:
        """Add `footprint` to the portfolio, its exclusion group and its channels' schedules."""
        self._by_key[footprint.key] = footprint
        insert_by_number(self.footprints, footprint)
        if footprint.group is not None:
            insert_by_number(self._groups[footprint.group], footprint)
        for channel in self._channels(footprint):
            schedule = self.by_channel.get(channel)
            if schedule is None:
                schedule = self.by_channel[channel] = DaySchedule()
            schedule.insert(footprint)

    def _leave(self, footprint: Footprint) -> None:
        """Take `footprint` out of what `_join` added it to; a group or channel left empty
        goes, as a fresh engine would not have it."""
        remove_by_number(self.footprints, footprint)
        if footprint.group is not None:
            members = self._groups[footprint.group]
            remove_by_number(members, footprint)
            if not members:
                del self._groups[footprint.group]
        for channel in self._channels(footprint):
            schedule = self.by_channel[channel]
            schedule.remove(footprint)
            if not schedule:
                del self.by_channel[channel]

    def _channels(self, footprint: Footprint) -> set[str]:
        channel = self.compiler.graph.surfaces.channel
        return {channel(node) for node in footprint.surfaces}

    @staticmethod
    def _with(candidate: Footprint, others: Iterable[Footprint]) -> list[Footprint]:
        return [candidate, *(f for f in others if f.key != candidate.key)]
