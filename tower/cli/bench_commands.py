"""`tower bench`: what the collision engine, score and planner cost on a large portfolio."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from tower.bench.runner import (
    NAIVE_MAX_TESTS,
    PHASES,
    SCALING_MIN_TESTS,
    SKIPPABLE,
    BenchReport,
    PairDiff,
    run_benchmark,
)
from tower.cli.output import console, emit_json, error_console, format_option

_SHOWN_DIFFERENCES = 100


@click.command("bench")
@click.option(
    "--tests",
    type=click.IntRange(min=2),
    default=10_000,
    show_default=True,
    help="Size of the synthetic portfolio.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Same seed, same organisation."
)
@click.option(
    "--naive/--no-naive",
    default=None,
    help=f"Cross-check against the all-pairs scan [default: on up to {NAIVE_MAX_TESTS:,} tests].",
)
@click.option(
    "--scaling/--no-scaling",
    default=None,
    help=f"Also scan 2N tests and report the ratio [default: on from {SCALING_MIN_TESTS:,}].",
)
@click.option(
    "--skip",
    type=click.Choice(SKIPPABLE),
    multiple=True,
    help="Leave a slow phase out (repeatable); it reports null.",
)
@click.option(
    "--profile",
    type=click.Choice(PHASES),
    default=None,
    help="Run one phase under cProfile and print where its time goes (on standard error).",
)
@format_option
def bench_command(
    tests: int,
    seed: int,
    naive: bool | None,
    scaling: bool | None,
    skip: tuple[str, ...],
    profile: str | None,
    output_format: str,
) -> None:
    """Benchmark the engine on a synthetic organisation of about 2,000 surfaces and N tests.

    Times the build (policy and footprints), the full collision scan, 200 single checks,
    ranking and planning, and the peak memory, then compares them with the targets. Up to
    5,000 tests, the indexed scan is cross-checked against the naive all-pairs scan: if
    they disagree on a single pair, the pairs are printed and the command exits with 1.

    --scaling (on from 10,000 tests) also scans 2N tests in the same year (twice as
    crowded) and over two years (as crowded as N). The JSON keys are documented in
    `tower.bench.runner`.
    """
    report, profile_text = run_benchmark(
        tests,
        seed,
        naive=naive,
        scaling=scaling,
        skip=skip,
        profile=profile,
        progress=lambda message: click.echo(f"... {message}", err=True),
    )
    if profile_text:
        click.echo(profile_text, err=True)
    if output_format == "json":
        emit_json(report.as_dict())
    else:
        _print_report(report)
    if report.naive is not None and not report.naive.diff.agree:
        _print_disagreement(report.naive.diff)
        raise SystemExit(1)


def _print_disagreement(diff: PairDiff) -> None:
    error_console.print(
        f"[red]error:[/red] the engine and the naive scan disagree on "
        f"{len(diff.missing) + len(diff.extra)} surface collision pair(s)",
        highlight=False,
    )
    for label, pairs in (
        ("missed by the engine", diff.missing),
        ("found only by the engine", diff.extra),
    ):
        for a, b in pairs[:_SHOWN_DIFFERENCES]:
            error_console.print(f"  {label}: {a} + {b}", highlight=False)
        if len(pairs) > _SHOWN_DIFFERENCES:
            error_console.print(
                f"  ... and {len(pairs) - _SHOWN_DIFFERENCES} more", highlight=False
            )


def _print_report(report: BenchReport) -> None:
    machine, portfolio = report.machine, report.portfolio
    console.print(
        f"[bold]Tower engine benchmark[/bold]: {report.tests:,} tests, seed {report.seed}\n"
        f"machine: {machine.platform}; {machine.cpu}; {machine.cores} cores; {machine.python}; "
        f"code {machine.revision or 'unknown'}\n"
        f"portfolio: {portfolio['surfaces']:,} surfaces, {portfolio['segments']} segments, "
        f"{portfolio['overlaps']} overlaps, {portfolio['teams']} teams, "
        f"{portfolio['active_tests']:,} active tests "
        f"({portfolio['exclusion_group_tests']:,} in exclusion groups)",
        highlight=False,
    )
    table = Table(title="Measurements", title_justify="left")
    for column in ("measure", "value", "detail"):
        table.add_column(column)
    for row in _rows(report):
        table.add_row(*row)
    console.print(table)
    targets = Table(title="Targets", title_justify="left")
    for column in ("target", "limit", "measured", "result"):
        targets.add_column(column)
    for target in report.targets:
        sign = ">=" if target.at_least else "<="
        result = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "not measured"}
        note = (
            "" if target.set_at_tests == report.tests else f" (set at N = {target.set_at_tests:,})"
        )
        targets.add_row(
            target.name,
            f"{sign} {target.limit:g} {target.unit}",
            "" if target.measured is None else f"{_number(target.measured)} {target.unit}",
            result[target.passed] + note,
        )
    console.print(targets)


def _rows(report: BenchReport) -> list[tuple[str, str, str]]:
    seconds, findings = report.seconds, report.findings
    kinds = ", ".join(
        f"{kind} {findings[kind]:,}" for kind in ("surface", "capacity", "contact_cap", "funnel")
    )
    check, planning = report.check_ms, report.planning
    rows = [
        ("generate", _seconds(seconds["generate"]), "synthetic policy data and tests"),
        ("build", _seconds(seconds["build"]), "validate policy, graph, compile footprints"),
        (
            "full scan",
            _seconds(seconds["scan"]),
            f"{findings['total']:,} findings ({kinds}); {findings['blocking']:,} blocking, "
            f"{findings['agile_vs_bau']:,} agile vs BAU",
        ),
        (
            ("single check", "skipped", "")
            if check is None
            else (
                "single check",
                f"p50 {_number(check['p50'])} ms, p99 {_number(check['p99'])} ms",
                f"{check['calls']:g} fresh tests; slowest {_number(check['max'])} ms; "
                f"indexes for checks built first in {_number(check['index_ms'])} ms; "
                f"the same checks again: p50 {_number(check['again_p50'])} ms, "
                f"p99 {_number(check['again_p99'])} ms",
            )
        ),
        ("ranking", _seconds(seconds["ranking"]), "score every active test, then rank"),
        (
            ("planning", "skipped", "")
            if planning is None
            else (
                "planning",
                _seconds(seconds["planning"]),
                f"{planning['placed']:,} placed ({planning['moved']:,} moved), "
                f"{planning['unplaced']:,} without a slot",
            )
        ),
        ("peak RSS", f"{report.peak_rss_mb:,.0f} MB", "ru_maxrss before the scaling run"),
    ]
    if report.naive is not None:
        naive = report.naive
        verdict = "agree" if naive.diff.agree else "[red]DISAGREE[/red]"
        rows.append(
            (
                "naive cross-check",
                f"{verdict}: {naive.pairs:,} pairs",
                f"naive {_seconds(naive.seconds)} vs engine pairs "
                f"{_seconds(naive.engine_seconds)}: {_number(naive.speedup)}x faster",
            )
        )
    if report.scaling is not None:
        scaling = report.scaling
        rows.append(
            (
                f"scan at 2N = {scaling.tests:,}",
                _seconds(scaling.scan_seconds),
                f"{_number(scaling.ratio)}x the scan at N; {scaling.findings:,} findings "
                "(same year: twice as crowded)",
            )
        )
        rows.append(
            (
                "  over two years",
                _seconds(scaling.spread_scan_seconds),
                f"{_number(scaling.spread_ratio)}x the scan at N; "
                f"{scaling.spread_findings:,} findings (as crowded as N); "
                f"peak RSS {scaling.peak_rss_mb:,.0f} MB",
            )
        )
    return rows


def _seconds(value: float | None) -> str:
    if value is None:
        return "skipped"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _number(value: Any) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"
