"""`tower policy ...`: check a policy file before it is merged."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from tower.cli.output import console
from tower.policy import load_policy
from tower.policy.trees import walk_segments, walk_surfaces


@click.group("policy")
def policy_group() -> None:
    """Work with the policy file."""


@policy_group.command("check")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def check_policy(path: Path) -> None:
    """Validate the policy file PATH; list every problem by the path of its field."""
    policy = load_policy(path)
    surfaces = sum(1 for _ in walk_surfaces(policy.surfaces))
    segments = sum(1 for _ in walk_segments(policy.audiences))
    console.print(
        f"[green]{escape(str(path))} is valid[/green]: {len(policy.teams)} teams, "
        f"{surfaces} surfaces, {segments} audience segments, scoring model {policy.scoring.model}",
        highlight=False,
    )
