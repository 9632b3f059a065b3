"""`tower demo --story`: the release protocol walked end to end on the demo portfolio."""

from __future__ import annotations

import click

from tower.cli.context import AppContext
from tower.cli.output import console
from tower.demo.story import tell_story


@click.command("demo")
@click.option("--story", is_flag=True, required=True, help="Walk one test through the protocol.")
@click.pass_obj
def demo_command(app: AppContext, story: bool) -> None:
    """Register a test that clashes with a BAU test and walk it from submission to result.

    Run it on the demo database (`make demo` does): it adds one test and moves the clock.
    """
    key = tell_story(
        app.session_factory,
        app.policy,
        lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True),
    )
    console.print(f"\nSee `tower audit {key}` for its full history.", markup=False)
