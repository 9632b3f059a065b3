"""The benchmark's synthetic organisation as the files people use: `tower.yaml` and
`roadmap.csv`.

The policy is `tower.bench.synthetic.policy.synthetic_policy(seed)` written as YAML; the
roadmap is `synthetic_portfolio(policy, N, seed)` in the format `tower import` reads (and
`tower export` writes), each row keeping its status (submitted, approved or live). The
synthetic data already satisfies the policy's validation (owners are members of their team,
KPIs are the policy's), so nothing is adjusted here; `tower policy check tower.yaml` and
`tower import roadmap.csv` accept the files as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tower.bench.synthetic.policy import synthetic_policy
from tower.bench.synthetic.portfolio import synthetic_portfolio
from tower.engine.portfolio import PortfolioItem
from tower.experiments.csv_rows import write_roadmap

POLICY_FILE = "tower.yaml"
ROADMAP_FILE = "roadmap.csv"


@dataclass(frozen=True)
class Organisation:
    """The exported files, and the data they were written from."""

    policy_path: Path
    roadmap_path: Path
    policy: dict[str, Any]
    items: list[PortfolioItem]

    @property
    def managers(self) -> list[str]:
        return [str(manager) for manager in self.policy["managers"]]

    @property
    def importer(self) -> str:
        """The manager who imports the roadmap (`tower import --by`)."""
        return self.managers[0]

    @property
    def decider(self) -> str:
        """A manager other than the importer, who decides on approvals."""
        return self.managers[-1]


def export_organisation(directory: Path, tests: int, seed: int) -> Organisation:
    """Write `tower.yaml` and `roadmap.csv` for N synthetic tests into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    policy = synthetic_policy(seed)
    items = synthetic_portfolio(policy, tests, seed)
    policy_path = directory / POLICY_FILE
    with policy_path.open("w", encoding="utf-8") as stream:
        yaml.safe_dump(policy, stream, sort_keys=False, allow_unicode=True)
    roadmap_path = directory / ROADMAP_FILE
    with roadmap_path.open("w", newline="", encoding="utf-8") as stream:
        write_roadmap(stream, ((item.number, item.spec, item.status) for item in items))
    return Organisation(policy_path, roadmap_path, policy, items)
