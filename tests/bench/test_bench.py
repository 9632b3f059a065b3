"""The benchmark: a reproducible synthetic organisation, a JSON report with documented keys,
and a naive cross-check that agrees with the engine and fails loudly when they differ.

No timing is asserted: figures depend on the machine.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from click.testing import CliRunner

from tower.bench import runner
from tower.bench.runner import PairDiff, diff_pairs, run_benchmark
from tower.bench.synthetic.policy import SEGMENTS, SURFACES, TEAMS, synthetic_policy
from tower.bench.synthetic.portfolio import MESSAGE_CHANNELS, fresh_tests, synthetic_portfolio
from tower.cli.bench_commands import bench_command
from tower.engine.portfolio import Compiler, Footprint
from tower.experiments.spec import validate_spec
from tower.policy import validate_policy

SMALL = 300

REPORT_KEYS = {
    "tests",
    "seed",
    "machine",
    "portfolio",
    "seconds",
    "check_ms",
    "findings",
    "planning",
    "peak_rss_mb",
    "naive",
    "scaling",
    "targets",
}
NESTED_KEYS = {
    "machine": {"platform", "cpu", "cores", "python", "revision"},
    "portfolio": {
        "surfaces",
        "segments",
        "overlaps",
        "teams",
        "active_tests",
        "exclusion_group_tests",
    },
    "seconds": {"generate", "build", "scan", "ranking", "planning"},
    "check_ms": {"index_ms", "calls", "p50", "p99", "max", "again_p50", "again_p99"},
    "findings": {
        "total",
        "surface",
        "capacity",
        "contact_cap",
        "funnel",
        "blocking",
        "agile_vs_bau",
    },
    "planning": {"placed", "moved", "unplaced"},
    "naive": {"seconds", "engine_seconds", "speedup", "pairs", "agree", "missing", "extra"},
    "scaling": {
        "tests",
        "scan_seconds",
        "ratio",
        "findings",
        "spread_scan_seconds",
        "spread_ratio",
        "spread_findings",
        "peak_rss_mb",
    },
}
TARGET_KEYS = {"name", "limit", "unit", "at_least", "measured", "passed", "set_at_tests"}


def invoke(*args: str) -> Any:
    return CliRunner().invoke(bench_command, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def small_json() -> dict[str, Any]:
    result = invoke("--tests", str(SMALL), "--seed", "7", "--scaling", "--format", "json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_policy_is_valid_and_the_documented_size() -> None:
    policy = validate_policy(synthetic_policy(3))
    assert len(policy.surface_paths) == SURFACES
    assert len(policy.segment_names) == SEGMENTS
    assert len(policy.teams) == TEAMS
    assert len(policy.overlaps) >= 20
    assert {path.split("/")[0] for path in policy.surface_paths} == {
        "web",
        "app",
        "email",
        "push",
        "sms",
        "call_center",
        "direct_mail",
    }
    assert max(path.count("/") + 1 for path in policy.surface_paths) == 5
    assert {team.kind for team in policy.teams} == {"agile", "bau"}
    assert all(2 <= len(team.members) <= 5 for team in policy.teams)
    assert {cap.channel for cap in policy.contact_caps} == {"email", "sms", "push"}
    assert 2 <= len(policy.freeze_windows) <= 3
    assert 2 <= len(policy.funnels) <= 3


def test_every_synthetic_test_is_valid_and_looks_like_a_pipeline() -> None:
    data = synthetic_policy(3)
    policy = validate_policy(data)
    items = synthetic_portfolio(data, 2_000, seed=3)
    assert [item.number for item in items] == list(range(1, 2_001))
    assert [item.key for item in items if validate_spec(item.spec, policy)] == []
    depths = Counter(min(path.count("/") + 1 for path in item.spec.surfaces) for item in items)
    assert depths[1] < 0.03 * len(items)  # a few tests on a whole channel
    assert depths[3] + depths[4] + depths[5] > 0.8 * len(items)  # most on pages and slots
    in_groups = sum(1 for item in items if item.spec.exclusion_group is not None)
    assert 0.05 * len(items) < in_groups < 0.15 * len(items)
    assert {len(item.spec.surfaces) for item in items} == {1, 2}
    assert {len(item.spec.audiences) for item in items} == {0, 1, 2}
    assert any(item.spec.exclude_audiences for item in items)
    assert {item.status.value for item in items} == {"submitted", "approved", "live"}
    assert all(10 <= item.spec.traffic <= 100 for item in items)
    durations = Counter((item.spec.end - item.spec.start).days + 1 for item in items)
    assert set(durations) == {1} | {7 * weeks for weeks in range(1, 7)}
    one_day = [item for item in items if item.spec.start == item.spec.end]
    assert {item.spec.surfaces[0].split("/")[0] for item in one_day} <= MESSAGE_CHANNELS


def test_the_same_seed_gives_the_same_organisation_and_portfolio() -> None:
    assert synthetic_policy(11) == synthetic_policy(11)
    assert synthetic_policy(11) != synthetic_policy(12)
    data = synthetic_policy(11)
    first = synthetic_portfolio(data, SMALL, seed=11)
    assert first == synthetic_portfolio(data, SMALL, seed=11)
    assert first != synthetic_portfolio(data, SMALL, seed=12)
    # A bigger portfolio from the same seed starts with the smaller one (the scaling run).
    assert synthetic_portfolio(data, 2 * SMALL, seed=11)[:SMALL] == first
    spread = synthetic_portfolio(data, SMALL, seed=11, days=730)
    assert max(item.spec.start for item in spread) > max(item.spec.start for item in first)


def test_fresh_tests_are_not_in_the_portfolio() -> None:
    data = synthetic_policy(5)
    portfolio = synthetic_portfolio(data, SMALL, seed=5)
    fresh = fresh_tests(data, 200, 5, first_number=SMALL + 1)
    assert [item.number for item in fresh] == list(range(SMALL + 1, SMALL + 201))
    assert not {item.key for item in portfolio} & {item.key for item in fresh}
    # A fresh test never joins one of the portfolio's exclusion groups by name.
    groups = {item.spec.exclusion_group for item in portfolio} - {None}
    fresh_groups = {item.spec.exclusion_group for item in fresh} - {None}
    assert groups and fresh_groups and not groups & fresh_groups
    assert fresh == fresh_tests(data, 200, 5, first_number=SMALL + 1)


def test_json_report_has_the_documented_keys(small_json: dict[str, Any]) -> None:
    assert set(small_json) == REPORT_KEYS
    for section, keys in NESTED_KEYS.items():
        assert set(small_json[section]) == keys, section
    assert {name for target in small_json["targets"] for name in target} == TARGET_KEYS
    assert small_json["tests"] == SMALL
    assert small_json["seed"] == 7
    assert small_json["portfolio"]["surfaces"] == SURFACES
    assert small_json["check_ms"]["calls"] == runner.CHECK_CALLS
    assert small_json["scaling"]["tests"] == 2 * SMALL
    findings = small_json["findings"]
    kinds = ("surface", "capacity", "contact_cap", "funnel")
    assert findings["total"] == sum(findings[kind] for kind in kinds)


def test_naive_cross_check_agrees_with_the_engine(small_json: dict[str, Any]) -> None:
    naive = small_json["naive"]
    assert naive["agree"] is True
    assert naive["missing"] == naive["extra"] == []
    assert naive["pairs"] > 0  # the comparison is not vacuous
    assert naive["pairs"] == small_json["findings"]["surface"]


def test_diff_pairs_names_every_difference() -> None:
    engine = {("T-1", "T-2"), ("T-2", "T-5"), ("T-3", "T-4")}
    naive = {("T-1", "T-2"), ("T-3", "T-4"), ("T-1", "T-9")}
    assert diff_pairs(engine, naive) == PairDiff(missing=(("T-1", "T-9"),), extra=(("T-2", "T-5"),))
    assert not diff_pairs(engine, naive).agree
    assert diff_pairs(engine, set(engine)).agree


def test_a_corrupted_engine_result_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    honest = runner.engine_surface_pairs
    dropped: list[tuple[str, str]] = []

    def lose_one_pair(compiler: Compiler, footprints: list[Footprint]) -> set[tuple[str, str]]:
        pairs = honest(compiler, footprints)
        dropped.append(min(pairs))
        return pairs - {dropped[0]}

    monkeypatch.setattr(runner, "engine_surface_pairs", lose_one_pair)
    result = invoke("--tests", str(SMALL), "--no-scaling")
    assert result.exit_code == 1
    a, b = dropped[0]
    assert f"missed by the engine: {a} + {b}" in result.output
    assert "disagree on 1 surface collision pair" in result.output


def test_table_output_names_the_machine_and_the_targets() -> None:
    result = invoke("--tests", "60", "--no-naive", "--no-scaling")
    assert result.exit_code == 0, result.output
    for text in ("machine:", "cores", "full scan", "single check", "planning", "Targets"):
        assert text in result.stdout


def test_skipped_phases_report_null() -> None:
    result = invoke(
        "--tests", "60", "--no-naive", "--skip", "check", "--skip", "planning", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["check_ms"] is None and data["planning"] is None
    assert data["seconds"]["planning"] is None and data["seconds"]["scan"] is not None
    passed = {target["name"]: target["passed"] for target in data["targets"]}
    assert passed["planning"] is None and passed["single check p99"] is None


def test_profile_prints_where_the_time_goes() -> None:
    report, profile = run_benchmark(60, 1, naive=False, scaling=False, checks=5, profile="scan")
    assert "cProfile of scan" in profile
    assert "scan" in report.seconds
    assert report.check_ms is not None and report.check_ms["calls"] == 5
