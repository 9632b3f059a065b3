"""`tower product-bench`: the click command (`bot/cli.py` names this module to `tower`'s lazy
group, so it is imported only when the command runs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bot.product_bench.export import export_organisation
from bot.product_bench.render import print_report
from bot.product_bench.runner import BenchOptions, run_product_bench
from tower.cli.output import emit_json, error_console, format_option

F = TypeVar("F", bound=Callable[..., Any])


def _number_option(
    name: str, low: float, high: float, default: float, help_text: str
) -> Callable[[F], F]:
    """An option `name` taking a number from `low` to `high`, its default shown."""
    return click.option(
        name,
        type=click.FloatRange(min=low, max=high),
        default=default,
        show_default=True,
        help=help_text,
    )


@click.command("product-bench")
@click.option("--tests", type=click.IntRange(min=1), required=True, help="Tests in the portfolio.")
@click.option("--seed", type=int, default=0, show_default=True, help="The synthetic seed.")
@click.option(
    "--database-url",
    help="postgresql+psycopg://USER@HOST:PORT/NAME: create database NAME there (and drop it "
    "afterwards) instead of a SQLite file in a scratch directory.",
)
@_number_option(
    "--rate", 0.1, 500, 20.0, "Slack requests per second, sent on schedule whatever the answers."
)
@_number_option("--seconds", 1, 3600, 30.0, "How long the load runs.")
@click.option(
    "--export",
    "export_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Only write tower.yaml and roadmap.csv into this folder, and exit.",
)
@format_option
def product_bench_command(
    tests: int,
    seed: int,
    database_url: str | None,
    rate: float,
    seconds: float,
    export_dir: Path | None,
    output_format: str,
) -> None:
    """Benchmark the product's real paths on a synthetic organisation of N tests.

    Runs `tower init`, `import`, `sweep`, `resync` and the reads `list`, `pipeline`,
    `conflicts`, `plan`, `check` as fresh processes, then `tower serve` against a local fake
    Slack, loaded open loop with signed Slack requests (slash commands, App Home, register
    submissions, Acknowledge clicks). Prints times, latencies and memory against the targets,
    and exits with 1 when one is missed or a database or port cannot be used. The JSON keys
    are documented in `bot.product_bench.report`.
    """
    if export_dir is not None:
        organisation = export_organisation(export_dir, tests, seed)
        click.echo(f"Wrote {organisation.policy_path} and {organisation.roadmap_path}", err=True)
        return
    options = BenchOptions(tests, seed, database_url, rate, seconds)
    report = run_product_bench(options, lambda message: click.echo(f"... {message}", err=True))
    if output_format == "json":
        emit_json(report.as_dict())
    else:
        print_report(report)
    missed = [target.name for target in report.targets if not target.passed]
    if missed:
        error_console.print(
            f"[red]missed {len(missed)} target(s):[/red] {'; '.join(missed)}", highlight=False
        )
        raise SystemExit(1)
