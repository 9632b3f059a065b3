"""A contact cap counts what reaches one person, one arm per exclusion group, through the
command line: `tower conflicts` and `tower plan` on small organisations of their own."""

from __future__ import annotations

import json
import textwrap
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tests.support.cli import succeeded, tower
from tests.support.factories import import_tests

POLICY = textwrap.dedent(
    """
    managers: [U0MGR]
    teams:
      - {key: crm, name: CRM, kind: bau, members: [U0ANNA]}
    surfaces:
      sms: {children: {a: {}, b: {}, c: {}, d: {}}}
      push: {children: {a: {}, b: {}}}
    audiences:
      all:
        size: 9000
        children: {kids: {size: 3000}, sports: {size: 3000}, films: {size: 3000}}
    contact_caps:
      - {channel: sms, max: 2, per_days: 7}
      - {channel: push, max: 2, per_days: 3}
    """
)


def monday() -> date:
    """A Monday four to five weeks ahead."""
    ahead = date.today() + timedelta(days=28)
    return ahead + timedelta(days=-ahead.weekday() % 7)


def organisation(url: str, folder: Path, sends: list[dict[str, str]]) -> tuple[Path, date]:
    """CRM's one-day `sends` (on Monday unless a row says otherwise) imported under the
    policy above: the policy's path, and that Monday."""
    policy = folder / "tower.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    day = monday()
    rows = [{"team": "crm", "kind": "campaign", "end": day.isoformat(), **send} for send in sends]
    import_tests(url, folder / "roadmap.csv", day, rows, policy=policy)
    return policy, day


def as_json(url: str, policy: Path, *args: str) -> Any:
    return json.loads(succeeded(tower(url, *args, "--format", "json", policy=policy)).stdout)


def cap_breaches(url: str, policy: Path) -> list[list[str]]:
    rows = as_json(url, policy, "conflicts", "--all")
    return [row["keys"] for row in rows if row["kind"] == "contact_cap"]


def moved(url: str, policy: Path, today: date) -> dict[str, int]:
    rows = as_json(url, policy, "plan", "--today", today.isoformat())
    return {row["key"]: row["moved_days"] for row in rows}


def sms(slot: str, audiences: str, day: date | None = None) -> dict[str, str]:
    """A send on its own slot of the SMS channel (no surface collision between sends)."""
    send = {"title": f"SMS to {audiences}", "surfaces": f"sms/{slot}", "audiences": audiences}
    return send if day is None else {**send, "start": day.isoformat(), "end": day.isoformat()}


def test_pairwise_sharing_sends_that_reach_nobody_three_times_break_no_cap(
    scratch_database_url: str, tmp_path: Path
) -> None:
    sends = [sms("a", "kids;sports"), sms("b", "sports;films"), sms("c", "films;kids")]
    policy, day = organisation(scratch_database_url, tmp_path, sends)

    assert cap_breaches(scratch_database_url, policy) == []
    today = day - timedelta(days=7)
    assert moved(scratch_database_url, policy, today) == {"T-1": 0, "T-2": 0, "T-3": 0}


def test_a_fourth_send_that_reaches_someone_three_times_breaks_the_cap(
    scratch_database_url: str, tmp_path: Path
) -> None:
    tuesday = monday() + timedelta(days=1)
    sends = [sms("a", "kids;sports"), sms("b", "sports;films"), sms("c", "films;kids")]
    sends.append(sms("d", "kids", tuesday))
    policy, day = organisation(scratch_database_url, tmp_path, sends)

    # Kids get T-1, T-3 and T-4; nobody else gets three.
    assert cap_breaches(scratch_database_url, policy) == [["T-1", "T-3", "T-4"]]
    [conflict] = [
        row
        for row in as_json(scratch_database_url, policy, "conflicts", "--all")
        if row["kind"] == "contact_cap"
    ]
    assert "3,000 people a week could get all of them" in conflict["explanation"]
    # The plan moves the fourth send (registered last, ranked last) out of the window.
    assert moved(scratch_database_url, policy, day - timedelta(days=7))["T-4"] > 0


def test_arms_of_one_group_count_once_per_person(scratch_database_url: str, tmp_path: Path) -> None:
    split = {"surfaces": "push/a", "exclusion_group": "push-split", "traffic": "33"}
    arms = [{**split, "title": f"Push arm {arm}"} for arm in "ABC"]
    tuesday = monday() + timedelta(days=1)
    reminder = {"title": "Push reminder", "surfaces": "push/b"}
    reminder |= {"start": tuesday.isoformat(), "end": tuesday.isoformat()}
    policy, day = organisation(scratch_database_url, tmp_path, [*arms, reminder])

    # Each person gets one arm and the reminder: 2 in 3 days, within the cap.
    assert cap_breaches(scratch_database_url, policy) == []
    plan = moved(scratch_database_url, policy, day - timedelta(days=7))
    assert plan == {"T-1": 0, "T-2": 0, "T-3": 0, "T-4": 0}  # the split stays on Monday


TRIANGLE = textwrap.dedent(
    """
    managers: [U0MGR]
    teams:
      - {key: crm, name: CRM, kind: bau, members: [U0ANNA]}
    surfaces:
      sms: {children: {a: {}, b: {}, c: {}}}
    audiences:
      all:
        size: 9000
        children: {kids: {size: 3000}, sports: {size: 3000}, films: {size: 3000}}
    overlaps:
      - {a: kids, b: sports, share: 0.5}
      - {a: sports, b: films, share: 0.5}
      - {a: films, b: kids, share: 0.5}
    contact_caps:
      - {channel: sms, max: 2, per_days: 7}
    """
)


def test_three_branches_meeting_two_by_two_break_the_cap_by_estimate(
    scratch_database_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "tower.yaml"
    policy.write_text(TRIANGLE, encoding="utf-8")
    day = monday()
    sends = [
        sms(slot, segment) for slot, segment in zip("abc", ["kids", "sports", "films"], strict=True)
    ]
    rows = [{"team": "crm", "kind": "campaign", "end": day.isoformat(), **s} for s in sends]
    import_tests(scratch_database_url, tmp_path / "roadmap.csv", day, rows, policy=policy)

    # Each two share 1,500 people through an overlap, but no region holds all three: by
    # independence within kids, 3,000 x 1/2 x 1/2 = 750 people, and the finding says so.
    [conflict] = [
        row
        for row in as_json(scratch_database_url, policy, "conflicts", "--all")
        if row["kind"] == "contact_cap"
    ]
    assert conflict["keys"] == ["T-1", "T-2", "T-3"]
    assert "750 people a week (estimated:" in conflict["explanation"]
