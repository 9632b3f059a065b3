"""The product benchmark's report as tables for people (`--format table`)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from bot.product_bench.report import ProductBenchReport, Target, percentile
from tower.cli.output import console


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}"


def _percent(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f}% of a core"


def _pair(values: Sequence[float]) -> str:
    return f"{_ms(percentile(values, 50))} / {_ms(percentile(values, 99))}"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    return table


def print_report(report: ProductBenchReport) -> None:
    machine = report.machine
    console.print(
        f"[bold]Tower product benchmark[/bold]: {report.tests:,} tests, seed {report.seed}, "
        f"{report.database}; load {report.rate:g} requests/s for {report.seconds:g} s\n"
        f"machine: {machine.platform}; {machine.cpu}; {machine.cores} cores; {machine.python}; "
        f"code {machine.revision or 'unknown'}",
        highlight=False,
    )
    commands = _table("Commands, each a fresh process", "command", "seconds", "peak RSS (MB)")
    for run in report.commands.values():
        commands.add_row(
            f"tower {' '.join(run.args)}", f"{run.seconds:.2f}", f"{run.peak_rss_mb:.0f}"
        )
    commands.add_row(
        "tower serve",
        f"{report.server_start_seconds:.2f} to /healthz, {_seconds(report.server_warm_seconds)}"
        f" to warm; idle CPU {_percent(report.server_idle_cpu_percent)}",
        f"{report.server_peak_rss_mb:.0f} (after the load {report.server_rss_after_load_mb:.0f})",
    )
    console.print(commands)
    _print_load(report)
    changes = _table(
        "One change on the warm server (ms)", "change", "samples", "slowest", "failures"
    )
    for name, times in report.changes.items():
        samples = ", ".join(_ms(ms) for ms in times.samples_ms)
        failures = "; ".join(times.failures) or "0"
        changes.add_row(name, samples, _ms(max(times.samples_ms, default=None)), failures)
    console.print(changes)
    _print_targets(report.targets)


def _print_load(report: ProductBenchReport) -> None:
    warm = {o.kind: o for o in report.warmup}
    load = _table(
        "Slack requests under load (ms, p50 / p99)",
        "kind",
        "sent",
        "failed",
        "ack",
        "answer",
        "first request: ack / answer",
    )
    reasons: list[str] = []
    for kind, figures in report.kinds.items():
        first = warm.get(kind)
        cold = "-" if first is None else f"{_ms(first.ack_ms)} / {_ms(first.answer_ms)}"
        failed = sum(figures.failures.values())
        sent = f"{figures.sent}" + (f" ({figures.skipped} skipped)" if figures.skipped else "")
        load.add_row(
            str(kind), sent, str(failed), _pair(figures.ack_ms), _pair(figures.answer_ms), cold
        )
        reasons += [f"{kind}: {count}x {why}" for why, count in figures.failures.items()]
    console.print(load)
    if report.load is not None:
        lags = [one.lag_ms for one in report.load.sent]
        console.print(
            f"sent {len(report.load.sent)} of {report.load.planned} planned; "
            f"sender lag behind schedule p99 {_ms(percentile(lags, 99))} ms, "
            f"max {_ms(max(lags, default=None))} ms",
            highlight=False,
        )
    for reason in reasons:
        console.print(f"  failed: {reason}", markup=False, highlight=False)


def _print_targets(targets: Sequence[Target]) -> None:
    table = _table("Targets", "target", "limit", "measured", "result")
    for target in targets:
        sign = "<" if target.strict else "<="
        measured = "not measured" if target.measured is None else f"{target.measured:,.3g}"
        result = "[green]pass[/green]" if target.passed else "[red]MISSED[/red]"
        table.add_row(target.name, f"{sign} {target.limit:g} {target.unit}", measured, result)
    console.print(table)
