"""Walk the surface and audience trees of a policy, in file order, with their paths."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tower.policy.schema import AudienceNode, SurfaceNode

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class SurfaceEntry:
    """A surface node: its slash path (`web/checkout/cart`), the node, its place in the file."""

    path: str
    parent: str | None
    node: SurfaceNode
    loc: Loc


@dataclass(frozen=True)
class SegmentEntry:
    """One audience segment: its name, its parent's name and its place in the file."""

    name: str
    parent: str | None
    node: AudienceNode
    loc: Loc


def walk_surfaces(roots: Mapping[str, SurfaceNode]) -> Iterator[SurfaceEntry]:
    """Yield every surface node, parents before children."""

    def walk(
        children: Mapping[str, SurfaceNode], parent: str | None, loc: Loc
    ) -> Iterator[SurfaceEntry]:
        for name, node in children.items():
            path = name if parent is None else f"{parent}/{name}"
            node_loc = (*loc, name)
            yield SurfaceEntry(path, parent, node, node_loc)
            yield from walk(node.children, path, (*node_loc, "children"))

    yield from walk(roots, None, ("surfaces",))


def walk_segments(roots: Mapping[str, AudienceNode]) -> Iterator[SegmentEntry]:
    """Yield every audience segment, parents before children."""

    def walk(
        children: Mapping[str, AudienceNode], parent: str | None, loc: Loc
    ) -> Iterator[SegmentEntry]:
        for name, node in children.items():
            node_loc = (*loc, name)
            yield SegmentEntry(name, parent, node, node_loc)
            yield from walk(node.children, name, (*node_loc, "children"))

    yield from walk(roots, None, ("audiences",))


def format_loc(loc: Loc) -> str:
    """Render a location as the path a person reads in the file: `funnels.purchase[2]`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def paths_nested(a: str, b: str) -> bool:
    """Whether surface paths `a` and `b` are the same node or one lies inside the other."""
    return a == b or b.startswith(a + "/") or a.startswith(b + "/")
