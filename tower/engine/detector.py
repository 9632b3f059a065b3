"""The collision engine: every kind of clash in a portfolio, or those of one test."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from tower.collisions.kinds import Severity
from tower.engine.capacity import CapacityIndex
from tower.engine.collector import without_collector
from tower.engine.collisions import PairDetector
from tower.engine.contact_crowds import channel_schedules, contact_cap_breaches
from tower.engine.crowding import exclusion_group_overloads
from tower.engine.findings import Finding
from tower.engine.portfolio import Compiler, Footprint

_SEVERITY_ORDER = {Severity.BLOCKING: 0, Severity.WARNING: 1, Severity.INFO: 2}


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Blocking first, then by first shared day, then by the tests involved."""
    return sorted(
        findings, key=lambda f: (_SEVERITY_ORDER[f.severity], f.first_day, f.kind, f.keys)
    )


class CollisionEngine:
    """Indexes a portfolio once; then scans it whole or checks one test against it."""

    def __init__(self, compiler: Compiler, footprints: Iterable[Footprint]) -> None:
        self.compiler = compiler
        self.policy = compiler.policy
        self.footprints = list(footprints)
        self.pairs = PairDetector(compiler, self.footprints)
        self.by_channel = channel_schedules(compiler, self.footprints)
        limit = self.policy.protocol.max_concurrent_per_surface
        self.capacity = CapacityIndex(self.pairs.schedule, limit)
        self._groups: dict[str, list[Footprint]] = defaultdict(list)  # exclusion group members
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
        already): the tests on or inside each node, and each node's capacity crowd."""
        self.pairs.schedule.index_nested()
        self.capacity.build()

    @without_collector
    def check(self, candidate: Footprint) -> list[Finding]:
        """The collisions `candidate` would be in; a test of the same key is replaced by it."""
        findings = self.pairs.check(candidate)
        if candidate.group is not None:
            group = self._groups.get(candidate.group, [])
            findings.extend(exclusion_group_overloads(self._with(candidate, group)))
        findings.extend(self.capacity.overloads_with(candidate))
        surfaces = self.compiler.graph.surfaces
        channels = {surfaces.channel(node) for node in candidate.surfaces}
        caps = [cap for cap in self.policy.contact_caps if cap.channel in channels]
        findings.extend(
            contact_cap_breaches(self.compiler, self.by_channel, caps, including=candidate)
        )
        return sort_findings(f for f in findings if f.involves(candidate.key))

    @staticmethod
    def _with(candidate: Footprint, others: Iterable[Footprint]) -> list[Footprint]:
        return [candidate, *(f for f in others if f.key != candidate.key)]
