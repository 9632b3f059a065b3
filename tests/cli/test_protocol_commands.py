"""The release protocol from the command line, on the shipped retail demo.

Each test gets its own database made the way the README says (`tower init`, then `tower
import examples/retail/portfolio.csv`). The protocol commands act at the wall-clock time, so
these tests assert what holds whatever today is; `tower sweep --now` and `tower demo --story`
run on their own clocks.

In the demo: T-1 is live (crm, owner U0QUINN, email/lifecycle/welcome, conversion_rate);
T-13 is submitted (checkout-squad, owner U0ANNA); T-32 is a draft (search-squad, owner
U0FINN); U0BEN is a checkout-squad member, not a manager; managers are told in C0TOWER.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest

from bot.mrkdwn import render
from tests.support.cli import failed, succeeded, tower
from tests.support.files import RETAIL_PORTFOLIO
from tests.support.message_rows import queued_message

GATE_NAMES = [
    "policy",
    "required fields",
    "collisions",
    "surface capacity",
    "freeze windows",
    "send days",
    "lead time",
    "duration",
]
CLOCK_FIELDS = {
    "policy",
    "subject",
    "collision",  # C-n when the clock belongs to a collision
    "team",
    "cycle",
    "state",
    "started_at",
    "due_at",
    "target_hours",
    "business_hours_left",
    "elapsed_share",
    "paused_at",
    "stopped_at",
    "warned",
    "breached_at",
    "escalations",
}
PLAYBOOK_FIELDS = {
    "surface",
    "kpi",
    "tests",
    "winners",
    "losers",
    "inconclusive",
    "average_winning_lift",
    "results",
}
SUMMARY = re.compile(
    r"Sweep at 2027-03-01T10:00:00\+00:00: launched \d+, held back \d+, completed \d+, "
    r"SLA notices (?P<sla>\d+), digest (queued|not due); resync: re-checked \d+ tests "
    r"\(\d+ collisions\) in [\d.]+ s: (?P<opened>\d+) opened, \d+ resolved, \d+ scores and "
    r"plan rows written; outbox: \d+ sent, \d+ to retry, \d+ rate limited, \d+ dead-lettered"
)
Record = dict[str, Any]

# --------------------------------------------------------------------------- helpers


def flat(text: str) -> str:
    return " ".join(text.split())


def as_json(url: str, *args: str) -> Any:
    return json.loads(succeeded(tower(url, *args, "--format", "json")).stdout)


def audit(url: str, key: str) -> list[Record]:
    events: list[Record] = as_json(url, "audit", key)
    return events


def show(url: str, key: str) -> Record:
    """The test's fields, state and version (its history is `audit`'s business)."""
    shown: Record = as_json(url, "show", key)
    shown.pop("history", None)
    return shown


def outbox(url: str, *options: str) -> list[Record]:
    messages: list[Record] = as_json(url, "outbox", "list", *options)
    return messages


@pytest.fixture
def demo(scratch_database_url: str) -> str:
    succeeded(tower(scratch_database_url, "init"))
    succeeded(tower(scratch_database_url, "import", str(RETAIL_PORTFOLIO)))
    return scratch_database_url


# --------------------------------------------------------------------------- decisions


def test_approve_by_a_non_manager_exits_1_and_the_attempt_is_audited(demo: str) -> None:
    before = show(demo, "T-13")

    result = failed(tower(demo, "approve", "T-13", "--by", "U0BEN"))

    assert "only a control-tower manager can approve T-13" in flat(result.output)
    denied = audit(demo, "T-13")[-1]
    assert (denied["action"], denied["actor"]) == ("denied:approve", "U0BEN")
    assert denied["reason"] == "only a control-tower manager can approve T-13"
    assert show(demo, "T-13") == before
    assert not [e for e in audit(demo, "T-13") if e["action"] == "approve"]


@pytest.mark.parametrize(
    "action, extra",
    [
        ("withdraw", ()),
        ("cancel", ("--reason", "no")),
        ("edit", ("--set", "title=Mine now")),
        ("edit", ("--set", "traffic=ten")),  # what is typed is not read before who typed it
    ],
)
def test_an_outsider_with_a_stale_version_is_refused_as_an_outsider(
    demo: str, action: str, extra: tuple[str, ...]
) -> None:
    """The permission comes first: audited, and the test's version is not given away."""
    before = show(demo, "T-13")
    result = failed(tower(demo, action, "T-13", "--by", "U0DAN", "--version", "99", *extra))
    assert "U0DAN is none of them" in flat(result.output)
    assert "it is now" not in result.output
    denied = audit(demo, "T-13")[-1]
    assert (denied["action"], denied["actor"]) == (f"denied:{action}", "U0DAN")
    assert show(demo, "T-13") == before


def test_a_cancel_reason_is_shown_as_typed_and_pings_nobody(demo: str) -> None:
    assert show(demo, "T-5")["status"] == "approved"
    reason = "*stop* _now_ ~x~ ask <@U0TOWERMGR> see <https://evil.example|here> <!channel>"
    succeeded(tower(demo, "cancel", "T-5", "--by", "U0TOWERMGR", "--reason", reason))
    [*_, told] = [m for m in outbox(demo) if "cancelled" in m["text"]]
    assert told["text"].endswith(f"is now cancelled: {reason}.")  # the console: as typed
    in_slack = render(queued_message(demo, told["id"]))
    for markup in ("*stop*", "_now_", "~x~", "<@U0TOWERMGR>", "<https:", "<!channel>"):
        assert markup not in in_slack, in_slack
    assert "\u2217stop\u2217" in in_slack


def test_submitting_a_draft_queues_an_approval_request_for_the_managers(demo: str) -> None:
    assert show(demo, "T-32")["status"] == "draft"
    pending = {m["id"] for m in outbox(demo)}

    result = succeeded(tower(demo, "submit", "T-32", "--by", "U0FINN"))

    assert "T-32 submitted for review" in result.output
    for name in GATE_NAMES:
        assert f" {name}: " in result.output
    assert show(demo, "T-32")["status"] == "submitted"
    [request] = [m for m in outbox(demo) if m["id"] not in pending]
    assert (request["kind"], request["recipient"], request["status"]) == (
        "approval_requested",
        "C0TOWER",
        "pending",
    )
    assert request["text"].startswith("Approval requested for T-32 ")
    [event] = [e for e in audit(demo, "T-32") if e["action"] == "submit"]
    assert (event["actor"], event["before"]["status"], event["after"]["status"]) == (
        "U0FINN",
        "draft",
        "submitted",
    )


def test_an_edit_with_an_impossible_date_names_the_field_and_changes_nothing(demo: str) -> None:
    before, history = show(demo, "T-32"), audit(demo, "T-32")

    result = failed(tower(demo, "edit", "T-32", "--by", "U0FINN", "--set", "start=2027-02-30"))

    output = flat(result.output)
    assert "T-32 was not changed" in output
    assert "start: '2027-02-30' is not a date" in output
    assert show(demo, "T-32") == before
    assert audit(demo, "T-32") == history


def test_an_edit_of_a_version_that_is_no_longer_current_changes_nothing(demo: str) -> None:
    succeeded(tower(demo, "edit", "T-32", "--by", "U0FINN", "--set", "title=Zero results, v2"))
    before, history = show(demo, "T-32"), audit(demo, "T-32")
    assert before["version"] == 2

    result = failed(
        tower(demo, "edit", "T-32", "--by", "U0FINN", "--version", "1", "--set", "traffic=50")
    )

    assert "T-32 changed since you opened it (you saw version 1, it is now 2)" in flat(
        result.output
    )
    assert show(demo, "T-32") == before
    assert audit(demo, "T-32") == history


# --------------------------------------------------------------------------- listings


def test_gates_json_lists_the_seven_gates_in_order(demo: str) -> None:
    gates: list[Record] = as_json(demo, "gates", "T-13")
    assert [g["name"] for g in gates] == GATE_NAMES
    for found in gates:
        assert set(found) == {"name", "passed", "message"}
        assert isinstance(found["passed"], bool)
        assert isinstance(found["message"], str) and found["message"]


def test_sla_json_shows_the_review_clock_a_submission_started(demo: str) -> None:
    succeeded(tower(demo, "submit", "T-32", "--by", "U0FINN"))

    [review] = as_json(demo, "sla", "T-32")
    assert set(review) == CLOCK_FIELDS
    assert (review["policy"], review["subject"], review["team"]) == (
        "review",
        "T-32",
        "search-squad",
    )
    assert (review["cycle"], review["state"], review["target_hours"]) == (1, "running", 17.0)
    assert datetime.fromisoformat(review["due_at"]) > datetime.fromisoformat(review["started_at"])
    everything: list[Record] = as_json(demo, "sla")
    assert review in everything
    assert all(set(row) == CLOCK_FIELDS for row in everything)


def test_playbook_json_lists_recorded_results_by_surface_and_kpi(demo: str) -> None:
    assert as_json(demo, "playbook") == []
    assert "T-1 completed" in succeeded(tower(demo, "complete", "T-1", "--by", "U0QUINN")).output
    recorded = tower(
        demo,
        "record-result",
        "T-1",
        "--by",
        "U0QUINN",
        "--result",
        "winner",
        "--lift",
        "0.05",
        "--note",
        "Five short e-mails win",
    )
    assert "result of T-1 recorded: winner" in succeeded(recorded).output

    [entry] = as_json(demo, "playbook")
    assert set(entry) == PLAYBOOK_FIELDS
    assert {name: entry[name] for name in PLAYBOOK_FIELDS - {"results"}} == {
        "surface": "email/lifecycle/welcome",
        "kpi": "conversion_rate",
        "tests": 1,
        "winners": 1,
        "losers": 0,
        "inconclusive": 0,
        "average_winning_lift": 0.05,
    }
    [result] = entry["results"]
    assert (result["key"], result["team"], result["result"]) == ("T-1", "crm", "winner")
    assert (result["observed_lift"], result["note"]) == (0.05, "Five short e-mails win")


# --------------------------------------------------------------------------- sweep and demo


def test_sweep_at_a_given_moment_prints_a_summary_and_a_second_one_sends_nothing_new(
    demo: str,
) -> None:
    first = succeeded(tower(demo, "sweep", "--now", "2027-03-01T10:00:00Z"))
    assert SUMMARY.search(flat(first.output)), first.output
    breaches = [m["id"] for m in outbox(demo, "--all") if m["kind"] == "sla_breach"]

    second = succeeded(tower(demo, "sweep", "--now", "2027-03-01T10:00:00Z"))
    matched = SUMMARY.search(flat(second.output))
    assert matched, second.output
    assert (matched["sla"], matched["opened"]) == ("0", "0")
    assert [m["id"] for m in outbox(demo, "--all") if m["kind"] == "sla_breach"] == breaches


def test_the_demo_story_walks_a_test_from_submission_to_a_recorded_result(demo: str) -> None:
    result = succeeded(tower(demo, "demo", "--story"))
    output = result.output
    found = re.search(r"\((T-\d+): Express pay button", output)
    assert found, output
    key = found[1]

    assert "refused: only a control-tower manager can approve" in output
    refusal = re.search(rf"refused: {key} cannot be approved yet:\s+collisions: (C-\d+)", output)
    assert refusal, output
    assert re.search(rf"waived (C-\d+, )*{refusal[1]}\b.*: Agreed with e-commerce", output)
    assert f"{key} approved" in output
    assert f"{key} 'Express pay button for loyalty members' is now live." in output
    assert re.search(rf"\[results_requested\] {key} .* has completed: record its result", output)
    assert f"result of {key} recorded: winner" in output
    assert f"See `tower audit {key}`" in output

    actions = [e["action"] for e in audit(demo, key)]
    for action in ("submit", "approve", "launch", "complete", "record_result"):
        assert action in actions
