"""`tower pipeline|conflicts|plan|check|waive|ack` on the shipped retail demo.

Each database is made the way the README says: `tower init`, then
`tower import examples/retail/portfolio.csv`; every command is run for Monday
23 Nov 2026 (`--today 2026-11-23`), the start of Black Friday week.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from tests.support.cli import failed, succeeded, tower
from tests.support.databases import scratch_database
from tests.support.files import RETAIL_PORTFOLIO
from tests.support.people import MANAGER
from tests.support.records import COLLISION_FIELDS
from tower.cli.output import emit_json, emit_json_list
from tower.experiments.spec import ACTIVE_STATUSES

TODAY = "2026-11-23"
REASON = "Both ship together in the January checkout release; agreed with both teams"
RECORD_FIELDS = set(COLLISION_FIELDS)
KEY = re.compile(r"\bT-\d+\b")
Record = dict[str, Any]

# --------------------------------------------------------------------------- helpers


def as_json(url: str, *args: str) -> Any:
    result = succeeded(tower(url, *args, "--today", TODAY, "--format", "json"))
    return json.loads(result.stdout)


def conflicts(url: str, *options: str) -> list[Record]:
    rows: list[Record] = as_json(url, "conflicts", *options)
    return rows


def load_demo(url: str) -> str:
    succeeded(tower(url, "init"))
    succeeded(tower(url, "import", str(RETAIL_PORTFOLIO)))
    return url


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo, shared by the tests that only look (a re-check changes nothing twice)."""
    with scratch_database(tmp_path_factory.mktemp("demo")) as url:
        yield load_demo(url)


@pytest.fixture
def own_demo(scratch_database_url: str) -> str:
    """The demo in a database of this test's own, for tests that change it."""
    return load_demo(scratch_database_url)


def portfolio_rows() -> list[dict[str, str]]:
    with RETAIL_PORTFOLIO.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def active_keys() -> set[str]:
    active = {status.value for status in ACTIVE_STATUSES}
    return {row["key"] for row in portfolio_rows() if row["status"] in active}


def the_collision(rows: list[Record], *keys: str) -> Record:
    found = [row for row in rows if set(row["keys"]) == set(keys)]
    assert len(found) == 1, [row["keys"] for row in rows]
    return found[0]


def day(value: str) -> date:
    return date.fromisoformat(value)


# --------------------------------------------------------------------------- conflicts


def test_conflicts_lists_open_blocking_collisions_only(demo: str) -> None:
    rows = conflicts(demo)

    assert rows
    assert {(row["severity"], row["status"]) for row in rows} == {("blocking", "open")}
    assert len({row["id"] for row in rows}) == len(rows)
    assert all(re.fullmatch(r"C-\d+", row["id"]) for row in rows)


class _Screen(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("at_a_terminal", [False, True], ids=["piped", "terminal"])
@pytest.mark.parametrize("count", [0, 1, 3])
def test_a_listing_written_row_by_row_is_the_json_of_the_whole_list(
    monkeypatch: pytest.MonkeyPatch, at_a_terminal: bool, count: int
) -> None:
    """`tower conflicts` streams its thousands of rows: the text is what printing the
    whole list at once gives, indented at a terminal, on one line in a pipe."""
    rows = [
        {"id": f"C-{n}", "keys": ["T-1", "T-2"], "affected": {"T-1": 0.5}} for n in range(count)
    ]
    whole, streamed = (_Screen() if at_a_terminal else io.StringIO() for _ in range(2))
    monkeypatch.setattr(sys, "stdout", whole)
    emit_json(rows)
    monkeypatch.setattr(sys, "stdout", streamed)
    emit_json_list(iter(rows))
    assert streamed.getvalue() == whole.getvalue()
    assert json.loads(streamed.getvalue()) == rows


def test_conflicts_include_an_agile_vs_bau_surface_clash_and_the_email_cap(demo: str) -> None:
    rows = conflicts(demo)

    surfaces = [r for r in rows if r["kind"] == "surface" and r["agile_vs_bau"]]
    email_caps = [r for r in rows if r["kind"] == "contact_cap" and r["scope"] == "channel:email"]
    assert surfaces
    assert email_caps
    for row in [*surfaces, *email_caps]:
        assert row["explanation"].strip()
        assert all(key in row["explanation"] for key in row["keys"])
        assert row["fixes"]
        assert all(isinstance(fix, str) and fix.strip() for fix in row["fixes"])
    assert all(surface.startswith("email/") for row in email_caps for surface in row["surfaces"])
    kinds = {r["team_kind"] for r in as_json(demo, "pipeline") if r["key"] in surfaces[0]["keys"]}
    assert kinds == {"agile", "bau"}


def test_a_clash_says_what_it_costs_each_test_in_days_to_its_mde(demo: str) -> None:
    """T-38 needs 2 x 23,897 people at 25,000 eligible a week: 14 days alone; T-39 takes
    half its traffic, so 27 days, past its 21-day window."""
    [clash] = [row for row in conflicts(demo) if row["keys"] == ["T-38", "T-39"]]
    assert clash["kind"] == "surface"
    assert clash["days_to_mde"]["T-38"] == {"alone": 14, "shared": 27}
    assert clash["mde_cost"].startswith(
        "T-38 needs 2 \N{MULTIPLICATION SIGN} 23,897 people at 25,000 a week: 14 days alone, "
        "27 sharing half its traffic with T-39, past its 21-day window."
    )
    crowds = [row for row in conflicts(demo, "--all") if row["kind"] not in ("surface", "funnel")]
    assert crowds and all(row["days_to_mde"] is None for row in crowds)  # no traffic shared
    shown = succeeded(tower(demo, "check", "T-38", "--today", TODAY)).stdout
    assert "14 days alone, 27 sharing half its traffic with T-39" in " ".join(shown.split())


def test_conflicts_all_adds_the_funnel_warnings(demo: str) -> None:
    open_blocking = conflicts(demo)

    every = conflicts(demo, "--all")

    assert {row["id"] for row in open_blocking} < {row["id"] for row in every}
    extra = [row for row in every if row["id"] not in {r["id"] for r in open_blocking}]
    assert any(row["kind"] == "funnel" and row["severity"] == "warning" for row in extra)
    funnels = [row for row in every if row["kind"] == "funnel"]
    assert all(row["severity"] == "warning" for row in funnels)
    assert all(row["explanation"].strip() and row["fixes"] for row in funnels)


def test_every_collision_record_has_the_documented_fields(demo: str) -> None:
    for row in conflicts(demo, "--all"):
        assert set(row) == RECORD_FIELDS
        assert row["kind"] in {"surface", "capacity", "contact_cap", "funnel"}
        assert row["severity"] in {"blocking", "warning", "info"}
        assert row["status"] in {"open", "acknowledged", "resolved", "waived"}
        assert isinstance(row["agile_vs_bau"], bool)
        assert len(row["keys"]) >= 2
        assert all(KEY.fullmatch(key) for key in row["keys"])
        assert len(row["teams"]) == len(row["keys"])
        assert isinstance(row["scope"], str)
        assert row["surfaces"]
        assert row["days"] == (day(row["last_day"]) - day(row["first_day"])).days + 1 >= 1
        assert isinstance(row["people_per_week"], int)
        assert row["people_per_week"] > 0
        assert set(row["affected"]) <= set(row["keys"])
        assert all(0 < share <= 1 for share in row["affected"].values())
        assert row["explanation"].strip()
        assert row["fixes"]
        assert (row["acknowledged_by"], row["waived_by"], row["waiver_reason"]) == (None,) * 3


def test_rechecking_the_demo_again_keeps_the_same_records(demo: str) -> None:
    first = conflicts(demo, "--all")

    again = conflicts(demo, "--all")

    assert again == first


def test_a_narrowing_fix_never_excludes_what_the_test_itself_targets(demo: str) -> None:
    audiences = {row["key"]: set(row["audiences"].split(";")) - {""} for row in portfolio_rows()}
    unusable = []
    for row in conflicts(demo, "--all"):
        for fix in row["fixes"]:
            match = re.fullmatch(r"Narrow (T-\d+)'s audience: exclude (.+)", fix)
            if match and audiences[match[1]] & set(match[2].split(", ")):
                unusable.append(f"{row['id']}: {fix}")
    assert unusable == []


# --------------------------------------------------------------------------- pipeline


def test_pipeline_ranks_every_active_test_by_score(demo: str) -> None:
    rows: list[Record] = as_json(demo, "pipeline")

    assert {row["key"] for row in rows} == active_keys()
    assert len(rows) == len(active_keys())
    assert [row["rank"] for row in rows] == list(range(1, len(rows) + 1))
    scores = [row["score"] for row in rows]
    assert all(isinstance(score, float | int) for score in scores)
    assert scores == sorted(scores, reverse=True)
    for row in rows:
        assert row["problem"] is None
        assert row["team_kind"] in {"agile", "bau"}
        assert row["factors"]
        for factor in row["factors"]:
            assert set(factor) >= {"name", "value", "note"}
            assert factor["name"]
            assert factor["note"].strip()


# --------------------------------------------------------------------------- plan


def test_plan_shows_requested_and_planned_windows_in_rank_order(demo: str) -> None:
    plan: list[Record] = as_json(demo, "plan")
    ranks = {row["key"]: row["rank"] for row in as_json(demo, "pipeline")}

    assert [(row["rank"], row["key"]) for row in plan] == sorted(
        (rank, key) for key, rank in ranks.items()
    )
    for row in plan:
        assert day(row["requested_start"]) <= day(row["requested_end"])
        assert row["planned_start"] is not None, row
        assert row["moved_days"] == (day(row["planned_start"]) - day(row["requested_start"])).days
        assert row["moved_days"] >= 0
        assert row["explanation"].strip()
        if not row["moved_days"]:
            assert (row["planned_start"], row["planned_end"]) == (
                row["requested_start"],
                row["requested_end"],
            )


def test_a_moved_test_keeps_its_duration_and_names_who_outranks_it(demo: str) -> None:
    plan: list[Record] = as_json(demo, "plan")
    ranks = {row["key"]: row["rank"] for row in plan}

    moved = [row for row in plan if row["moved_days"] > 0]

    assert moved
    for row in moved:
        requested = day(row["requested_end"]) - day(row["requested_start"])
        assert day(row["planned_end"]) - day(row["planned_start"]) == requested
        assert row["explanation"].startswith(f"moved {row['moved_days']} day")
    outranked = [
        (row["key"], named)
        for row in moved
        for named in re.findall(r"(T-\d+) ranks higher", row["explanation"])
    ]
    assert outranked
    assert all(ranks[named] < ranks[key] for key, named in outranked)


def test_the_plan_moves_the_lowest_ranked_test_of_a_blocking_contact_cap(demo: str) -> None:
    plan = {row["key"]: row for row in as_json(demo, "plan")}
    caps = [row for row in conflicts(demo) if row["kind"] == "contact_cap"]
    assert caps

    kept = []
    for row in caps:
        lowest = max(row["keys"], key=lambda key: plan[key]["rank"])
        if not plan[lowest]["moved_days"]:
            kept.append(f"{row['id']} {lowest}")

    assert kept == []


# --------------------------------------------------------------------------- check


def test_check_shows_rank_score_placement_and_collisions_of_one_test(demo: str) -> None:
    pipeline = {row["key"]: row for row in as_json(demo, "pipeline")}
    plan = {row["key"]: row for row in as_json(demo, "plan")}

    record: Record = as_json(demo, "check", "T-38")

    assert record["key"] == "T-38"
    assert record["title"] == "One-page payment with saved cards"
    assert record["rank"] == pipeline["T-38"]["rank"]
    assert record["score"]["value"] == pipeline["T-38"]["score"]
    assert [f["name"] for f in record["score"]["factors"]] == [
        f["name"] for f in pipeline["T-38"]["factors"]
    ]
    assert record["problem"] is None
    assert record["placement"] == plan["T-38"]
    clash = the_collision(record["collisions"], "T-38", "T-39")
    assert (clash["kind"], clash["severity"], clash["status"]) == ("surface", "blocking", "open")
    assert clash["agile_vs_bau"] is True
    assert "web/checkout/payment" in clash["surfaces"]
    assert all("T-38" in row["keys"] for row in record["collisions"])


def test_check_of_an_unknown_test_names_it(demo: str) -> None:
    result = failed(tower(demo, "check", "T-999", "--today", TODAY))

    assert "T-999" in result.output


# --------------------------------------------------------------------------- tables


@pytest.mark.parametrize(
    "command",
    [["pipeline"], ["conflicts"], ["conflicts", "--all"], ["plan"], ["check", "T-38"]],
    ids=["pipeline", "conflicts", "conflicts-all", "plan", "check"],
)
def test_the_table_output_mentions_the_keys(demo: str, command: list[str]) -> None:
    if command[0] in ("pipeline", "plan"):
        expected = active_keys()
    elif command[0] == "conflicts":
        expected = {key for row in conflicts(demo, *command[1:]) for key in row["keys"]}
        expected |= {row["id"] for row in conflicts(demo, *command[1:])}
    else:
        expected = {"T-38", "T-39"}

    result = succeeded(tower(demo, *command, "--today", TODAY))

    mentioned = set(re.findall(r"\b[TC]-\d+\b", result.stdout))
    assert expected <= mentioned
    assert not result.stdout.lstrip().startswith(("[", "{"))


# --------------------------------------------------------------------------- waive and ack


def payment_clash(url: str) -> Record:
    return the_collision(conflicts(url), "T-38", "T-39")


@pytest.mark.parametrize("actor", ["U0BEN", "U0PRIYA", "U0DAN"])
def test_a_non_manager_cannot_waive_and_nothing_changes(own_demo: str, actor: str) -> None:
    ref = payment_clash(own_demo)["id"]
    before = conflicts(own_demo, "--all")

    result = failed(tower(own_demo, "waive", ref, "--by", actor, "--reason", REASON))

    assert ref in result.output
    assert "manager" in result.output
    assert conflicts(own_demo, "--all") == before


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_waiver_without_a_reason_is_refused(own_demo: str, reason: str) -> None:
    ref = payment_clash(own_demo)["id"]
    before = conflicts(own_demo, "--all")

    result = failed(tower(own_demo, "waive", ref, "--by", MANAGER, "--reason", reason))

    assert ref in result.output
    assert "--reason" in result.output
    assert conflicts(own_demo, "--all") == before


def test_a_manager_waives_with_a_reason(own_demo: str) -> None:
    ref = payment_clash(own_demo)["id"]

    result = succeeded(tower(own_demo, "waive", ref, "--by", MANAGER, "--reason", REASON))

    assert f"{ref} waived by {MANAGER}" in result.output
    assert ref not in {row["id"] for row in conflicts(own_demo)}
    waived = next(row for row in conflicts(own_demo, "--all") if row["id"] == ref)
    assert (waived["status"], waived["waived_by"], waived["waiver_reason"]) == (
        "waived",
        MANAGER,
        REASON,
    )
    assert set(waived["keys"]) == {"T-38", "T-39"}
    check: Record = as_json(own_demo, "check", "T-38")
    assert the_collision(check["collisions"], "T-38", "T-39")["status"] == "waived"
    table = succeeded(tower(own_demo, "conflicts", "--all", "--today", TODAY)).stdout
    assert f"waived by {MANAGER}" in table
    assert REASON in " ".join(table.split())


def test_waiving_it_twice_is_refused(own_demo: str) -> None:
    ref = payment_clash(own_demo)["id"]
    succeeded(tower(own_demo, "waive", ref, "--by", MANAGER, "--reason", REASON))

    result = failed(tower(own_demo, "waive", ref, "--by", "U0TOWERLEAD", "--reason", "again"))

    assert f"{ref} is waived" in result.output


def test_waiving_an_unknown_collision_names_it(own_demo: str) -> None:
    result = failed(tower(own_demo, "waive", "C-9999", "--by", MANAGER, "--reason", REASON))

    assert "C-9999" in result.output


def test_a_member_of_an_involved_team_acknowledges_from_the_cli(own_demo: str) -> None:
    ref = payment_clash(own_demo)["id"]

    outsider = tower(own_demo, "ack", ref, "--by", "U0DAN")
    member = tower(own_demo, "ack", ref, "--by", "U0BEN")

    assert outsider.exit_code == 1, outsider.output
    assert isinstance(outsider.exception, SystemExit), outsider.exception
    assert ref in outsider.output
    assert "Traceback" not in outsider.output
    assert member.exit_code == 0, member.output
    assert f"{ref} acknowledged by U0BEN" in member.output
    acknowledged = next(row for row in conflicts(own_demo, "--all") if row["id"] == ref)
    assert (acknowledged["status"], acknowledged["acknowledged_by"]) == ("acknowledged", "U0BEN")
