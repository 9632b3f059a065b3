"""What a clash costs each test in days to its MDE, from the score's sample model.

A test needing n people at E eligible people a week takes ⌈7n/E⌉ days alone, and
⌈7n/(E(1 - a))⌉ when a share a of its traffic is taken by the clash (never when a = 1).
Only surface and funnel clashes share traffic this way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tower.engine.findings import Finding
from tower.engine.kinds import CollisionKind
from tower.engine.portfolio import Compiler, Footprint
from tower.engine.score import SampleNeed, sample_need

TIMES = " \N{MULTIPLICATION SIGN} "
SHARING_KINDS = frozenset({CollisionKind.SURFACE, CollisionKind.FUNNEL})


class SampleNeedsByKey(Mapping[str, "SampleNeed | None"]):
    """Each test's sample model, worked out when first asked (a change asks for a few)."""

    def __init__(self, footprints: Mapping[str, Footprint], compiler: Compiler) -> None:
        self._footprints, self._compiler = footprints, compiler
        self._known: dict[str, SampleNeed | None] = {}

    def __getitem__(self, key: str) -> SampleNeed | None:
        if key not in self._known:
            footprint = self._footprints.get(key)
            need = None if footprint is None else sample_need(footprint, self._compiler)
            self._known[key] = need
        return self._known[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._footprints)

    def __len__(self) -> int:
        return len(self._footprints)


def days_to_mde(
    finding: Finding, needs: Mapping[str, SampleNeed | None]
) -> dict[str, dict[str, Any] | None]:
    """Per test of the finding: days to its MDE alone and sharing (None without a sample
    model; `shared` None when the clash takes all its traffic)."""
    found: dict[str, dict[str, Any] | None] = {}
    for key, share in finding.affected:
        need = needs.get(key)
        found[key] = None if need is None else {"alone": need.days(), "shared": need.days(share)}
    return found


def mde_sentence(finding: Finding, needs: Mapping[str, SampleNeed | None]) -> str:
    """`T-38 needs 2 (times) 23,897 people at 25,000 a week: 14 days alone, 27 sharing half
    its traffic with T-39, past its 21-day window.`, for each test with a sample model."""
    sentences = []
    for key, share in finding.affected:
        need = needs.get(key)
        if need is None:
            continue
        others = " + ".join(k for k in finding.keys if k != key)
        alone, shared = need.days(), need.days(share)
        said = (
            f"{key} needs {need.arms}{TIMES}{need.per_arm:,} people at {need.weekly:,.0f} a week: "
            f"{alone} days alone, "
        )
        if shared is None:
            said += f"never while sharing all its traffic with {others}"
        else:
            said += f"{shared} sharing {_share(share)} its traffic with {others}"
        if alone is not None and alone > need.window_days:
            said += f", past its {need.window_days}-day window even alone"
        elif shared is None or shared > need.window_days:
            said += f", past its {need.window_days}-day window"
        sentences.append(said + ".")
    return " ".join(sentences)


def _share(share: float) -> str:
    """`half`, or `27% of`."""
    if abs(share - 0.5) < 0.005:
        return "half"
    return f"{share:.0%} of"
