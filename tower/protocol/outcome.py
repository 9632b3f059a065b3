"""What a protocol use case gives back: what it did, in words, or why it refused."""

from __future__ import annotations

from dataclasses import dataclass, field

from tower.errors import TowerError
from tower.experiments.models import Experiment
from tower.protocol.gates import Gate, failing


class StaleVersion(TowerError):
    """Someone changed the test since the actor opened it."""


class GatesFailed(TowerError):
    """The test does not pass the approval gates; each failing gate says what to fix."""

    def __init__(self, experiment: Experiment, gates: list[Gate]) -> None:
        self.gates = gates
        lines = [f"{experiment.key} cannot be approved yet:"]
        lines += [f"  {gate.name}: {gate.message}" for gate in failing(gates)]
        super().__init__("\n".join(lines))


class InvalidEdit(TowerError):
    """An edit with values that break the rules; nothing was changed."""


@dataclass
class Outcome:
    """What an action did, in words for the person who took it."""

    experiment: Experiment
    changed: bool
    message: str
    gates: list[Gate] = field(default_factory=list)
    # A step recorded towards a change that awaits more (one approval of several): the
    # test itself has not moved yet.
    awaiting_more: bool = False
