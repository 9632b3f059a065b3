"""The product benchmark's figures, its targets, and its JSON document.

`ProductBenchReport.as_dict()` has these keys (times in milliseconds where the key says
`_ms`, else seconds; memory in MB):

    tests, seed, rate, seconds, database ("sqlite" or "postgresql")
    machine: platform, cpu, cores, python, revision
    commands: {init, import, sweep, resync, list, pipeline, conflicts, plan, check}:
              each {args, seconds, peak_rss_mb, exit_code}; a fresh process each, timed
              from start to exit
    server: start_seconds (spawn to GET /healthz 200), warm_seconds (spawn to /healthz
            saying the index is warm; null if it never did), idle_cpu_percent (of one
            core, all its processes, over 10 s with no request), peak_rss_mb,
            rss_after_load_mb
    warmup: {kind: {ack_ms, answer_ms, failure}}: the first request of each kind, one at a
            time, before the load
    load: planned, sent, max_lag_ms, p99_lag_ms, kinds: {kind: {sent, skipped, answered,
          failed, failure_reasons: {reason: count}, ack_ms: {p50, p99, max},
          answer_ms: {p50, p99, max}}}
    changes: {register, edit, status_move}: {samples_ms, failures, p50_ms, max_ms}
    targets: list of {name, limit, unit, measured, passed}
    passed: true when every target passed

Kinds: list, show, home, queue, conflicts, plan, register, acknowledge. Percentiles are
nearest-rank over every request sent: one never acknowledged counts 3,000 ms (when Slack
gives up), one never answered as long as the benchmark waited for it, so a percentile that
takes in failures is a lower bound; `answered` counts the requests that did not fail.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.product_bench.answers import Outcome
from bot.product_bench.changes import EDIT, REGISTER, STATUS_MOVE, ChangeTimes
from bot.product_bench.load import LoadRun
from bot.product_bench.processes import CommandRun
from bot.product_bench.slack_requests import TIMEOUT
from bot.product_bench.traffic import CLICKS, CYCLE, READS, Kind
from tower.bench.runner import Machine

SETUP_COMMANDS = ("init", "import", "sweep", "resync")
READ_COMMANDS = ("list", "pipeline", "conflicts", "plan", "check")
ACK_P99_MS = 300.0  # strictly below
ANSWER_P99_MS = 1000.0
REGISTER_DM_P99_MS = 2000.0
CHANGE_MS = 100.0
CLI_READ_S = 3.0
RSS_MB = 300.0
WARM_S = 30.0
IDLE_CPU_PERCENT = 0.5  # of one core: next to nothing
ACK_CUTOFF_MS = TIMEOUT * 1000  # a request never acknowledged counts this long


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (`share` in [0, 100]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share / 100 * len(ordered)) - 1)]


def _summary(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50": _round(percentile(values, 50)),
        "p99": _round(percentile(values, 99)),
        "max": _round(max(values, default=None)),
    }


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class KindFigures:
    """The load's figures for one kind of request."""

    sent: int = 0
    skipped: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    ack_ms: list[float] = field(default_factory=list)
    answer_ms: list[float] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        """Count `outcome`; one never acknowledged counts Slack's 3 s, one never answered as
        long as the benchmark waited (lower bounds: a failure never improves a percentile)."""
        self.sent += 1
        self.ack_ms.append(ACK_CUTOFF_MS if outcome.ack_ms is None else outcome.ack_ms)
        self.answer_ms.append(outcome.answer_or_wait_ms)
        if outcome.failure is not None:
            self.failures[outcome.failure] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "skipped": self.skipped,
            "answered": self.sent - sum(self.failures.values()),
            "failed": sum(self.failures.values()),
            "failure_reasons": dict(self.failures.most_common()),
            "ack_ms": _summary(self.ack_ms),
            "answer_ms": _summary(self.answer_ms),
        }


def kind_figures(run: LoadRun, outcomes: Sequence[Outcome]) -> dict[Kind, KindFigures]:
    figures = {kind: KindFigures() for kind in dict.fromkeys(CYCLE)}
    for outcome in outcomes:
        figures[outcome.kind].add(outcome)
    for kind, skipped in run.skipped.items():
        figures[kind].skipped = skipped
    return figures


@dataclass(frozen=True)
class Target:
    """A limit a measure must stay within (below it, when `strict`)."""

    name: str
    limit: float
    unit: str
    measured: float | None
    strict: bool = False

    @property
    def passed(self) -> bool:
        """A measure that could not be taken does not pass."""
        if self.measured is None:
            return False
        return self.measured < self.limit if self.strict else self.measured <= self.limit

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["measured"] = _round(self.measured, 3)
        return {**data, "passed": self.passed}


@dataclass
class ProductBenchReport:
    tests: int
    seed: int
    rate: float
    seconds: float
    database: str
    machine: Machine
    commands: dict[str, CommandRun] = field(default_factory=dict)
    server_start_seconds: float = 0.0
    server_warm_seconds: float | None = None
    server_idle_cpu_percent: float | None = None
    server_peak_rss_mb: float = 0.0
    server_rss_after_load_mb: float = 0.0
    warmup: list[Outcome] = field(default_factory=list)
    load: LoadRun | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    changes: dict[str, ChangeTimes] = field(default_factory=dict)

    @property
    def kinds(self) -> dict[Kind, KindFigures]:
        if self.load is None:
            return {}
        return kind_figures(self.load, self.outcomes)

    @property
    def targets(self) -> list[Target]:
        kinds = self.kinds
        targets = [
            Target(f"Slack ack p99: {kind}", ACK_P99_MS, "ms", percentile(f.ack_ms, 99), True)
            for kind, f in kinds.items()
        ]
        targets += [
            Target(
                f"answer p99: {kind}", ANSWER_P99_MS, "ms", percentile(kinds[kind].answer_ms, 99)
            )
            for kind in (*READS, *CLICKS)
            if kind in kinds
        ]
        if Kind.REGISTER in kinds:
            dm = percentile(kinds[Kind.REGISTER].answer_ms, 99)
            targets.append(Target("register submission to DM p99", REGISTER_DM_P99_MS, "ms", dm))
        failed = sum(sum(f.failures.values()) for f in kinds.values())
        targets.append(Target("failed requests", 0, "", float(failed) if kinds else None))
        for name in (REGISTER, EDIT, STATUS_MOVE):
            times = self.changes.get(name)
            slowest = (
                None if times is None or times.failures else max(times.samples_ms, default=None)
            )
            targets.append(Target(f"one change warm: {name} (slowest)", CHANGE_MS, "ms", slowest))
        targets += [
            Target(f"CLI read: tower {name}", CLI_READ_S, "s", self._seconds(name))
            for name in READ_COMMANDS
        ]
        targets.append(Target("tower serve: index warm", WARM_S, "s", self.server_warm_seconds))
        idle_cpu = self.server_idle_cpu_percent
        targets.append(Target("tower serve: CPU while idle", IDLE_CPU_PERCENT, "%", idle_cpu))
        targets.append(
            Target("peak RSS: tower serve", RSS_MB, "MB", self.server_peak_rss_mb or None)
        )
        targets += [
            Target(f"peak RSS: tower {name}", RSS_MB, "MB", run.peak_rss_mb)
            for name, run in self.commands.items()
        ]
        return targets

    def _seconds(self, command: str) -> float | None:
        run = self.commands.get(command)
        return None if run is None else run.seconds

    @property
    def passed(self) -> bool:
        return all(target.passed for target in self.targets)

    def as_dict(self) -> dict[str, Any]:
        sent = [] if self.load is None else self.load.sent
        lags = [one.lag_ms for one in sent]
        return {
            "tests": self.tests,
            "seed": self.seed,
            "rate": self.rate,
            "seconds": self.seconds,
            "database": self.database,
            "machine": asdict(self.machine),
            "commands": {name: run.as_dict() for name, run in self.commands.items()},
            "server": {
                "start_seconds": _round(self.server_start_seconds, 3),
                "warm_seconds": _round(self.server_warm_seconds, 3),
                "idle_cpu_percent": _round(self.server_idle_cpu_percent, 3),
                "peak_rss_mb": _round(self.server_peak_rss_mb),
                "rss_after_load_mb": _round(self.server_rss_after_load_mb),
            },
            "warmup": {
                str(o.kind): {
                    "ack_ms": _round(o.ack_ms),
                    "answer_ms": _round(o.answer_ms),
                    "failure": o.failure,
                }
                for o in self.warmup
            },
            "load": {
                "planned": 0 if self.load is None else self.load.planned,
                "sent": len(sent),
                "max_lag_ms": _round(max(lags, default=None)),
                "p99_lag_ms": _round(percentile(lags, 99)),
                "kinds": {str(kind): f.as_dict() for kind, f in self.kinds.items()},
            },
            "changes": {
                name: {
                    "samples_ms": [round(ms, 1) for ms in times.samples_ms],
                    "failures": times.failures,
                    "p50_ms": _round(percentile(times.samples_ms, 50)),
                    "max_ms": _round(max(times.samples_ms, default=None)),
                }
                for name, times in self.changes.items()
            },
            "targets": [target.as_dict() for target in self.targets],
            "passed": self.passed,
        }
