"""The engine's input: registered tests as plain values, compiled against the policy graph."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from operator import attrgetter

from tower.engine.audience import Audience, AudienceModel
from tower.engine.graph import PolicyGraph, SurfaceIndex, build_graph
from tower.experiments.spec import ExperimentSpec, ExperimentStatus, names_outside
from tower.policy import Policy


@dataclass(frozen=True)
class PortfolioItem:
    """One registered test as the engine sees it."""

    key: str
    number: int
    status: ExperimentStatus
    spec: ExperimentSpec
    lever: float = 1.0
    deadline: date | None = None


@dataclass(slots=True)
class Footprint:
    """A test compiled for the hot path: surface ids, an interned audience, day ordinals."""

    item: PortfolioItem
    agile: bool
    surfaces: tuple[int, ...]
    audience: Audience
    start: int
    end: int
    traffic: float  # share of the eligible audience, in (0, 1]
    group: str | None
    reach: float = 0.0  # people per week who can meet the test, before traffic allocation
    key: str = field(init=False)  # the test's key, read on every hot path

    def __post_init__(self) -> None:
        self.key = self.item.key

    @property
    def days(self) -> int:
        return self.end - self.start + 1

    def overlaps(self, other: Footprint) -> bool:
        """Whether the two run on at least one common day."""
        return self.start <= other.end and other.start <= self.end

    def shifted(self, start: int) -> Footprint:
        """The same test moved to begin on day ordinal `start`, keeping its duration."""
        return Footprint(
            self.item,
            self.agile,
            self.surfaces,
            self.audience,
            start,
            start + self.end - self.start,
            self.traffic,
            self.group,
            self.reach,
        )


class Compiler:
    """Compiles portfolio items against one policy; share it to share the audience cache."""

    def __init__(self, policy: Policy, graph: PolicyGraph | None = None) -> None:
        self.policy = policy
        self.graph = graph or build_graph(policy)
        self.audiences = AudienceModel(self.graph.segments)
        self._agile = {team.key: team.kind == "agile" for team in policy.teams}

    def compile(self, item: PortfolioItem) -> Footprint:
        spec = item.spec
        footprint = Footprint(
            item=item,
            agile=self._agile.get(spec.team, False),
            surfaces=tuple(self.graph.surfaces.ids[path] for path in spec.surfaces),
            audience=self.audiences.compile(spec.audiences, spec.exclude_audiences),
            start=spec.start.toordinal(),
            end=spec.end.toordinal(),
            traffic=spec.traffic / 100.0,
            group=spec.exclusion_group,
        )
        footprint.reach = self.weekly_reach(footprint)
        return footprint

    def placeable(self, item: PortfolioItem) -> bool:
        """Whether the test occupies the pipeline and the policy has every surface and
        segment it names (one the policy dropped cannot be placed on its graph)."""
        return item.status.is_active and not names_outside(item.spec, self.policy)

    def compile_active(self, items: Iterable[PortfolioItem]) -> list[Footprint]:
        """Footprints of the tests that still occupy the pipeline, in the given order
        (those naming what the policy no longer has aside: `names_outside`)."""
        return [self.compile(item) for item in items if self.placeable(item)]

    def team_kind(self, team: str) -> str:
        return "agile" if self._agile.get(team, False) else "bau"

    def weekly_reach(self, footprint: Footprint) -> float:
        """People per week who can meet the test before traffic allocation.

        Surfaces with weekly visitors contribute their visitors times the audience's share of
        the population; channels without visitor counts (e-mail, call centre) reach the
        whole audience. Never more than the audience itself.
        """
        surfaces, segments = self.graph.surfaces, self.graph.segments
        audience = footprint.audience.size
        share = audience / segments.population if segments.population else 0.0
        reach = 0.0
        for node in outermost(footprint.surfaces, surfaces):
            visitors = surfaces.visitors[node]
            reach += audience if visitors is None else visitors * share
        return min(reach, audience)

    def eligible_weekly(self, footprint: Footprint) -> float:
        """People per week actually in the test: reach times its traffic share."""
        return footprint.reach * footprint.traffic


AUDIENCE_OF = attrgetter("audience")  # a footprint's audience, for AudienceModel.sharing_with


def outermost(nodes: Iterable[int], surfaces: SurfaceIndex) -> list[int]:
    """The nodes not inside another of `nodes` (a test on a page and its slot covers the page)."""
    ordered = sorted(set(nodes))
    if len(ordered) == 1:
        return ordered  # the usual case
    kept: list[int] = []
    for node in ordered:
        if not any(surfaces.nested(other, node) for other in kept):
            kept.append(node)
    return kept
