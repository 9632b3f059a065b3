"""Policy as code: the YAML file loads with its documented defaults, or every mistake is named.

Most cases vary one section of a small valid policy (`BASE`) and check the exact path of the
problem a reviewer would be shown.
"""

from __future__ import annotations

import textwrap
from datetime import date, time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.support.files import RETAIL_POLICY, SMALL_POLICY
from tower.cli import main
from tower.policy import Policy, PolicyError, PolicyIssue, load_policy, parse_policy
from tower.policy.schema import Calendar, Protocol, Scoring


def block(text: str) -> str:
    """A block-style section value: on the lines after `name:`, indented by two spaces."""
    return "\n" + textwrap.indent(textwrap.dedent(text).strip("\n"), "  ")


# One valid policy, section by section (the YAML after `name:`), in file order.
BASE: dict[str, str] = {
    "timezone": "Europe/Paris",
    "calendar": '{working_hours: ["09:00", "18:00"], holidays: FR, closed: [2026-12-24]}',
    "managers": "[U0MGR1, U0MGR2]",
    "tower_channel": "C0TOWER",
    "teams": block("""
        - {key: squad, name: Checkout Squad, kind: agile, channel: C0SQUAD, members: [U0ANNA]}
        - {key: crm, name: CRM, kind: bau, members: [U0BOB, U0CARL]}"""),
    "surfaces": block("""
          web:
            weekly_visitors: 1000
            children:
              home: {}
              checkout: {weekly_visitors: 200, children: {cart: {}, payment: {}}}
          email: {children: {promo: {}}}"""),
    "funnels": "{purchase: [web/home, web/checkout/cart, web/checkout/payment]}",
    "audiences": block("""
          all:
            size: 1000
            children:
              anonymous: {size: 600}
              logged_in: {size: 400, children: {loyalty: {size: 100}}}
              app_users: {size: 300}"""),
    "overlaps": "[{a: app_users, b: logged_in, share: 0.5}]",
    "contact_caps": "[{channel: email, max: 3, per_days: 7}]",
    "freeze_windows": (
        "[{name: Black Friday, start: 2026-11-20, end: 2026-11-30, surfaces: [web/checkout]}]"
    ),
}

SURFACE_PATHS = {
    "web",
    "web/home",
    "web/checkout",
    "web/checkout/cart",
    "web/checkout/payment",
    "email",
    "email/promo",
}
SEGMENTS = {"all", "anonymous", "logged_in", "loyalty", "app_users"}

MINIMAL = """\
surfaces:
  web:
    children:
      home: {}
  email: {}
audiences:
  all:
    size: 1000
    children:
      members: {size: 200}
"""


def policy_text(**sections: str | None) -> str:
    """`BASE` with some sections replaced (a string), removed (None) or added (a new name)."""
    merged: dict[str, str | None] = {**BASE, **sections}
    return "".join(f"{name}: {value}\n" for name, value in merged.items() if value is not None)


def problems(text: str) -> list[PolicyIssue]:
    """The issues `parse_policy` reports for `text` (it must refuse it)."""
    with pytest.raises(PolicyError) as raised:
        parse_policy(text)
    return raised.value.issues


def only_problem(text: str) -> PolicyIssue:
    """The one issue reported for `text`."""
    issues = problems(text)
    assert len(issues) == 1, [str(issue) for issue in issues]
    return issues[0]


def check(path: Path) -> Result:
    return CliRunner().invoke(main, ["policy", "check", str(path)])


# --- files that load ---------------------------------------------------------------------


def test_base_policy_is_valid() -> None:
    policy = parse_policy(policy_text())
    assert policy.timezone == "Europe/Paris"
    assert policy.calendar.working_hours == (time(9, 0), time(18, 0))
    assert policy.calendar.holidays == "FR"
    assert policy.calendar.closed == [date(2026, 12, 24)]
    assert [team.key for team in policy.teams] == ["squad", "crm"]
    assert policy.funnels == {"purchase": ["web/home", "web/checkout/cart", "web/checkout/payment"]}
    assert policy.overlaps[0].share == 0.5
    assert policy.freeze_windows[0].start == date(2026, 11, 20)
    assert policy.freeze_windows[0].team_kinds == ["agile", "bau"]


def test_small_example_loads(small_policy: Policy) -> None:
    assert small_policy.timezone == "Europe/London"
    assert small_policy.calendar.holidays == "GB"
    assert small_policy.calendar.closed == [date(2026, 12, 24)]
    assert small_policy.managers == ["U0TOWERMGR"]
    assert small_policy.tower_channel == "C0TOWER"
    assert [(team.key, team.kind) for team in small_policy.teams] == [
        ("checkout-squad", "agile"),
        ("ecommerce", "bau"),
    ]
    assert "web/checkout/payment" in small_policy.surface_paths
    assert "email/promotional/weekly_newsletter" in small_policy.surface_paths
    # `product:` with nothing after it is a leaf page, not a mistake.
    assert "web/product" in small_policy.surface_paths
    assert small_policy.funnels["purchase"][-1] == "web/checkout/payment"
    assert small_policy.segment_names == {"all", "anonymous", "logged_in", "loyalty", "app_users"}
    assert small_policy.kpis["conversion_rate"] == 3


def test_load_policy_accepts_a_string_path() -> None:
    assert load_policy(str(SMALL_POLICY)).timezone == "Europe/London"


def test_ten_line_file_gets_documented_defaults() -> None:
    assert len(MINIMAL.splitlines()) == 10
    policy = parse_policy(MINIMAL)

    assert policy.timezone == "UTC"
    assert policy.calendar == Calendar()
    assert policy.calendar.working_days == ["mon", "tue", "wed", "thu", "fri"]
    assert policy.calendar.working_hours == (time(9, 0), time(17, 30))
    assert policy.calendar.holidays is None
    assert policy.calendar.closed == []
    assert policy.managers == []
    assert policy.tower_channel is None
    assert policy.teams == []
    assert policy.funnels == {}
    assert policy.overlaps == []
    assert policy.contact_caps == []
    assert policy.freeze_windows == []
    assert policy.kpis == {}

    sla = {entry.key: entry for entry in policy.sla}
    assert list(sla) == ["review", "conflict-ack", "results"]
    # Business days of the default 09:00-17:30 calendar: 8.5 business hours each.
    assert sla["review"].start == "submitted"
    assert "approved" in sla["review"].stop
    assert sla["review"].pause == ["changes_requested"]
    assert sla["review"].target_hours(policy.calendar) == 2 * 8.5
    assert sla["conflict-ack"].start == "collision_opened"
    assert "collision_acknowledged" in sla["conflict-ack"].stop
    assert sla["conflict-ack"].target_hours(policy.calendar) == 4
    assert sla["results"].start == "completed"
    assert "results_recorded" in sla["results"].stop
    assert sla["results"].target_hours(policy.calendar) == 5 * 8.5
    assert all(entry.escalation == ["owner", "team_channel", "managers"] for entry in policy.sla)

    assert policy.scoring == Scoring()
    assert policy.scoring.model == "tower"
    assert (policy.scoring.alpha, policy.scoring.power) == (0.05, 0.8)
    assert (policy.scoring.lever_min, policy.scoring.lever_max) == (0.5, 2.0)

    assert policy.protocol == Protocol()
    assert policy.protocol.min_lead_business_days == 2
    assert policy.protocol.min_duration_days == 7
    assert policy.protocol.max_duration_days == 56
    assert policy.protocol.max_concurrent_per_surface == 3
    assert policy.protocol.approvals_required == 1
    assert policy.protocol.allow_self_approval is False


def test_defaults_are_not_shared_between_policies() -> None:
    first, second = parse_policy(MINIMAL), parse_policy(MINIMAL)
    assert first.calendar.working_days is not second.calendar.working_days
    assert first.sla is not second.sla


def test_overlap_share_of_one_is_accepted() -> None:
    policy = parse_policy(policy_text(overlaps="[{a: app_users, b: logged_in, share: 1}]"))
    assert policy.overlaps[0].share == 1


def test_a_chosen_scoring_model_and_protocol_are_kept() -> None:
    policy = parse_policy(
        policy_text(
            scoring="{model: wsjf}",
            protocol="{approvals_required: 2, max_concurrent_per_surface: 1}",
        )
    )
    assert policy.scoring.model == "wsjf"
    assert policy.protocol.approvals_required == 2
    assert policy.protocol.max_concurrent_per_surface == 1
    assert policy.protocol.min_duration_days == 7


# --- Policy helpers ----------------------------------------------------------------------


def test_surface_paths_lists_every_node() -> None:
    assert parse_policy(policy_text()).surface_paths == SURFACE_PATHS


def test_segment_names_lists_every_segment() -> None:
    assert parse_policy(policy_text()).segment_names == SEGMENTS


def test_root_segment_is_the_audience_root() -> None:
    assert parse_policy(policy_text()).root_segment == "all"
    assert parse_policy(MINIMAL).root_segment == "all"
    everyone = policy_text(audiences="{everyone: {size: 10}}", overlaps=None)
    assert parse_policy(everyone).root_segment == "everyone"


def test_team_finds_a_team_by_key() -> None:
    policy = parse_policy(policy_text())
    crm = policy.team("crm")
    assert crm is not None
    assert (crm.name, crm.kind, crm.members) == ("CRM", "bau", ["U0BOB", "U0CARL"])
    squad = policy.team("squad")
    assert squad is not None
    assert squad.channel == "C0SQUAD"
    assert policy.team("Checkout Squad") is None
    assert policy.team("missing") is None


def test_is_manager_only_for_listed_managers() -> None:
    policy = parse_policy(policy_text())
    assert policy.is_manager("U0MGR1")
    assert policy.is_manager("U0MGR2")
    assert not policy.is_manager("U0ANNA")  # a team member is not a manager
    assert not policy.is_manager("u0mgr1")
    assert not parse_policy(MINIMAL).is_manager("U0MGR1")


# --- every mistake at once ---------------------------------------------------------------

FIVE_MISTAKES = policy_text(
    timezone="Europe/Londres",
    teams=block("""
        - {key: squad, name: Checkout Squad, kind: agile, members: [U0ANNA]}
        - {key: crm, name: CRM, kind: bau, members: [U0BOB, carl]}"""),
    funnels="{purchase: [web/home, web/checkout/cart, web/checkout/pay]}",
    overlaps="[{a: app_users, b: vip, share: 0.5}]",
    contact_caps="[{channel: sms, max: 3, per_days: 7}]",
)

FIVE_PATHS = [
    "timezone",
    "teams[1].members[1]",
    "funnels.purchase[2]",
    "overlaps[0].b",
    "contact_caps[0].channel",
]


def test_five_mistakes_are_reported_together_by_path() -> None:
    issues = problems(FIVE_MISTAKES)
    assert sorted(issue.path for issue in issues) == sorted(FIVE_PATHS)
    by_path = {issue.path: issue.message for issue in issues}
    assert "unknown time zone 'Europe/Londres'" in by_path["timezone"]
    assert "'carl' is not a Slack user ID" in by_path["teams[1].members[1]"]
    assert str(PolicyIssue("funnels.purchase[2]", by_path["funnels.purchase[2]"])) == (
        "funnels.purchase[2]: unknown surface 'web/checkout/pay'"
    )
    assert by_path["overlaps[0].b"] == "unknown segment 'vip'"
    assert by_path["contact_caps[0].channel"].startswith("unknown channel 'sms'")


def test_a_section_failing_its_schema_hides_none_of_its_other_mistakes() -> None:
    """Mistakes in two sections: an overlap's bad share no longer hides another overlap's
    unknown segment, and a team's duplicate member, a person in two teams and a channel
    two teams share (one of them a team with a bad member) are all named."""
    text = policy_text(
        teams=block("""
            - {key: squad, name: Squad, kind: agile, channel: C0SQUAD, members: [U0ANNA, U0ANNA]}
            - {key: crm, name: CRM, kind: bau, channel: C0SQUAD, members: [U0BOB, U0ANNA]}
            - {key: app, name: App, kind: agile, channel: C0SQUAD, members: [U0CARL, nobody]}"""),
        overlaps="[{a: app_users, b: logged_in, share: 1.7}, {a: app_users, b: vip, share: 0.2}]",
    )
    by_path = {issue.path: issue.message for issue in problems(text)}
    assert by_path == {
        "teams[0].members[1]": "twice: U0ANNA is already a member of 'squad'",
        "teams[1].channel": "C0SQUAD is already the channel of 'squad': one team each",
        "teams[1].members[1]": "U0ANNA is already a member of 'squad': one team each",
        "teams[2].members[1]": by_path.get("teams[2].members[1]", "missing"),
        "teams[2].channel": "C0SQUAD is already the channel of 'squad': one team each",
        "overlaps[0].share": by_path.get("overlaps[0].share", "missing"),
        "overlaps[1].b": "unknown segment 'vip'",
    }
    assert "not a Slack user ID" in by_path["teams[2].members[1]"]
    assert "less than or equal to 1" in by_path["overlaps[0].share"]


def test_a_manager_or_a_contact_cap_listed_twice_is_named() -> None:
    text = policy_text(
        managers="[U0MGR1, U0MGR2, U0MGR1]",
        contact_caps=(
            "[{channel: email, max: 3, per_days: 7}, {channel: email, max: 2, per_days: 7}]"
        ),
    )
    by_path = {issue.path: issue.message for issue in problems(text)}
    assert by_path == {
        "managers[2]": "twice: U0MGR1 is already a manager",
        "contact_caps[1]": "twice: 'email' already has a cap per 7 days",
    }


def test_rules_no_calendar_can_keep_are_named() -> None:
    text = policy_text(
        calendar=(
            '{working_hours: ["09:00", "18:00"], working_days: [mon, tue, mon], '
            "closed: [2026-12-24, 2026-12-24, 2101-01-01]}"
        ),
        protocol="{approvals_required: 3, min_lead_business_days: 400}",
        freeze_windows="[{name: Forever, start: 2026-11-20, end: 2150-01-01}]",
        kpis="{conversion_rate: .inf}",
        sla=block("""
            - {key: review, name: Review, start: submitted, stop: [approved], pause: [submitted],
               target_business_days: 300, warn_at: [0.5, 0.5]}
            - {key: ack, name: Ack, start: collision_opened, stop: [collision_acknowledged],
               resume: [collision_opened], target_business_hours: 4}"""),
    )
    by_path = {issue.path: issue.message for issue in problems(text)}
    assert by_path == {
        "calendar.working_days[2]": "twice: mon is already listed",
        "calendar.closed[1]": "twice: 2026-12-24 is already listed",
        "calendar.closed[2]": "2101-01-01 is after 2100",
        "protocol.approvals_required": (
            "3 approvals are required but the policy has 2 managers to give them"
        ),
        "protocol.min_lead_business_days": "400 business days is more than a year's (261)",
        "freeze_windows[0].end": "2150-01-01 is after 2100",
        "kpis.conversion_rate": "inf is not a weight: give a finite number",
        "sla[0].pause": "'submitted' both starts and pauses the clock",
        "sla[0].warn_at[1]": "twice: 0.5 is listed",
        "sla[0].target_business_days": "300 business days is more than a year's (261)",
        "sla[1].resume": "the clock resumes but nothing pauses it: add pause",
    }


@pytest.mark.parametrize(
    ("hours", "refused"),
    [
        pytest.param("2349", False, id="a-year-of-9-hour-days"),
        pytest.param("2349.5", True, id="half-an-hour-more"),
        pytest.param("100000000", True, id="far-more"),
    ],
)
def test_an_sla_target_in_hours_is_held_to_a_year_of_the_calendars_days(
    hours: str, refused: bool
) -> None:
    """BASE's working day is 09:00 to 18:00: a year of business days is 261 x 9 hours."""
    sla = (
        "[{key: ack, name: Ack, start: collision_opened, stop: [collision_acknowledged],"
        f" target_business_hours: {hours}}}]"
    )
    text = policy_text(sla=sla)
    if not refused:
        assert parse_policy(text).sla[0].target_business_hours == 2349
        return
    assert str(only_problem(text)) == (
        f"sla[0].target_business_hours: {hours} business hours is more than a year's "
        "(2349: 261 business days of 9 hours)"
    )


def test_a_freeze_window_starting_and_ending_after_2100_names_both_dates() -> None:
    issues = problems(
        policy_text(freeze_windows="[{name: Far, start: 2101-12-14, end: 2102-01-02}]")
    )
    assert [str(issue) for issue in issues] == [
        "freeze_windows[0].start: 2101-12-14 is after 2100",
        "freeze_windows[0].end: 2102-01-02 is after 2100",
    ]


def test_a_list_item_failing_its_schema_still_has_its_good_fields_checked() -> None:
    """An item's bad field hides neither the rules on its other fields nor, reading
    nothing of a field that failed, raises a false alarm (a `pause` that failed is not
    taken for no pause)."""
    text = policy_text(
        overlaps="[{a: app_users, b: nosuch, share: 1.75}]",
        sla=block("""
            - {key: review, name: Review, start: submitted, stop: [approved],
               pause: [changes_requested, submitted], warn_at: [0.5, x], target_business_days: 2}
            - {key: ack, name: Ack, start: collision_opened, stop: [collision_acknowledged],
               pause: [nonsense], resume: [collision_opened], target_business_hours: 4}
            - {key: review, name: 7, start: submitted, stop: [approved],
               target_business_days: 300}"""),
    )
    by_path = {issue.path: issue.message for issue in problems(text)}
    assert by_path == {
        "overlaps[0].share": "input should be less than or equal to 1 (got 1.75)",
        "overlaps[0].b": "unknown segment 'nosuch'",
        "sla[0].warn_at[1]": (
            "input should be a valid number, unable to parse string as a number (got 'x')"
        ),
        "sla[0].pause": "'submitted' both starts and pauses the clock",
        "sla[1].pause[0]": by_path.get("sla[1].pause[0]", "missing"),
        "sla[2].name": "input should be a valid string (got 7)",
        "sla[2].key": "duplicate SLA key 'review'",
        "sla[2].target_business_days": "300 business days is more than a year's (261)",
    }
    assert by_path["sla[1].pause[0]"].startswith("input should be 'submitted'")


def test_policy_error_message_lists_every_problem() -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(FIVE_MISTAKES, source="tower.yaml")
    text = str(raised.value)
    assert text.startswith("tower.yaml: 5 problems")
    assert "funnels.purchase[2]: unknown surface 'web/checkout/pay'" in text
    for path in FIVE_PATHS:
        assert f"  {path}: " in text


def test_cli_prints_all_five_problems_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "tower.yaml"
    path.write_text(FIVE_MISTAKES, encoding="utf-8")
    result = check(path)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert str(path) in result.stderr
    assert "5 problems" in result.stderr
    for issue in problems(FIVE_MISTAKES):
        assert str(issue) in result.stderr
    assert "is valid" not in result.output


def test_cli_accepts_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "tower.yaml"
    path.write_text(policy_text(), encoding="utf-8")
    result = check(path)
    assert result.exit_code == 0, result.output
    assert f"{path} is valid" in result.stdout
    assert "2 teams" in result.stdout
    assert f"{len(SURFACE_PATHS)} surfaces" in result.stdout
    assert f"{len(SEGMENTS)} audience segments" in result.stdout


def test_cli_accepts_the_small_example() -> None:
    result = check(SMALL_POLICY)
    assert result.exit_code == 0, result.output
    assert "is valid" in result.stdout


def test_cli_reports_a_missing_file_without_traceback(tmp_path: Path) -> None:
    result = check(tmp_path / "nowhere.yaml")
    assert result.exit_code == 1
    assert "file not found" in result.stderr
    assert "Traceback" not in result.output


def test_cli_reports_invalid_yaml_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "tower.yaml"
    path.write_text("surfaces: {web: {}\naudiences: {all: {size: 1}}\n", encoding="utf-8")
    result = check(path)
    assert result.exit_code == 1
    assert "invalid YAML at line" in result.stderr
    assert "Traceback" not in result.output


# --- each rule ---------------------------------------------------------------------------

RULES: list[tuple[str, dict[str, str | None], str, str]] = [
    (
        "send-day-not-a-day",
        {"surfaces": "{web: {children: {home: {}}}, email: {send_days: [tue, thursday]}}"},
        "surfaces.email.send_days[1]",
        "input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun' (got 'thursday')",
    ),
    (
        "funnel-unknown-surface",
        {"funnels": "{purchase: [web/home, web/basket]}"},
        "funnels.purchase[1]",
        "unknown surface 'web/basket'",
    ),
    (
        "funnel-step-is-a-path-not-a-name",
        {"funnels": "{purchase: [web/home, cart]}"},
        "funnels.purchase[1]",
        "unknown surface 'cart'",
    ),
    (
        "overlap-unknown-segment-a",
        {"overlaps": "[{a: vip, b: logged_in, share: 0.5}]"},
        "overlaps[0].a",
        "unknown segment 'vip'",
    ),
    (
        "overlap-share-zero",
        {"overlaps": "[{a: app_users, b: logged_in, share: 0}]"},
        "overlaps[0].share",
        "greater than 0",
    ),
    (
        "overlap-share-above-one",
        {"overlaps": "[{a: app_users, b: logged_in, share: 1.5}]"},
        "overlaps[0].share",
        "less than or equal to 1",
    ),
    (
        "overlap-share-negative",
        {"overlaps": "[{a: app_users, b: logged_in, share: -0.2}]"},
        "overlaps[0].share",
        "greater than 0",
    ),
    (
        "overlap-nested-parent-child",
        {"overlaps": "[{a: logged_in, b: loyalty, share: 0.5}]"},
        "overlaps[0]",
        "'logged_in' and 'loyalty' are nested",
    ),
    (
        "overlap-nested-root",
        {"overlaps": "[{a: loyalty, b: all, share: 0.5}]"},
        "overlaps[0]",
        "'loyalty' and 'all' are nested",
    ),
    (
        "overlap-with-itself",
        {"overlaps": "[{a: app_users, b: app_users, share: 0.5}]"},
        "overlaps[0]",
        "cannot overlap itself",
    ),
    (
        "overlap-declared-twice",
        {
            "overlaps": "[{a: app_users, b: logged_in, share: 0.5},"
            " {a: logged_in, b: app_users, share: 0.4}]"
        },
        "overlaps[1]",
        "declared twice",
    ),
    (
        "child-segment-bigger-than-parent",
        {
            "audiences": "{all: {size: 1000, children: "
            "{logged_in: {size: 400, children: {loyalty: {size: 401}}}}}}",
            "overlaps": None,
        },
        "audiences.all.children.logged_in.children.loyalty.size",
        "'loyalty' (401) is bigger than its parent 'logged_in' (400)",
    ),
    (
        "duplicate-segment-in-other-branch",
        {
            "audiences": "{all: {size: 1000, children: {"
            "logged_in: {size: 400, children: {loyalty: {size: 100}}},"
            " app_users: {size: 300, children: {loyalty: {size: 50}}}}}}",
        },
        "audiences.all.children.app_users.children.loyalty",
        "'loyalty' is already defined at audiences.all.children.logged_in.children.loyalty",
    ),
    (
        "two-audience-roots",
        {
            "audiences": "{all: {size: 1000}, prospects: {size: 500}}",
            "overlaps": None,
        },
        "audiences",
        "at most 1",
    ),
    (
        "segment-without-size",
        {"audiences": "{all: {children: {x: {size: 1}}}}", "overlaps": None},
        "audiences.all.size",
        "required field is missing",
    ),
    (
        "duplicate-team-key",
        {
            "teams": "[{key: squad, name: A, kind: agile}, {key: crm, name: B, kind: bau},"
            " {key: squad, name: C, kind: bau}]"
        },
        "teams[2].key",
        "duplicate team key 'squad'",
    ),
    (
        "team-member-not-a-slack-id",
        {"teams": "[{key: squad, name: A, kind: agile, members: [U0ANNA, '@bob']}]"},
        "teams[0].members[1]",
        "'@bob' is not a Slack user ID",
    ),
    (
        "team-member-lower-case-id",
        {"teams": "[{key: squad, name: A, kind: agile, members: [u0anna]}]"},
        "teams[0].members[0]",
        "'u0anna' is not a Slack user ID",
    ),
    (
        "team-unknown-kind",
        {"teams": "[{key: squad, name: A, kind: agil}]"},
        "teams[0].kind",
        "'agile' or 'bau'",
    ),
    (
        "team-channel-not-a-slack-id",
        {"teams": "[{key: squad, name: A, kind: agile, channel: '#checkout'}]"},
        "teams[0].channel",
        "not a Slack channel ID",
    ),
    (
        "manager-not-a-slack-id",
        {"managers": "[U0MGR1, alice@example.com]"},
        "managers[1]",
        "'alice@example.com' is not a Slack user ID",
    ),
    (
        "contact-cap-unknown-channel",
        {
            "contact_caps": "[{channel: email, max: 3, per_days: 7}, {channel: sms, max: 1,"
            " per_days: 1}]"
        },
        "contact_caps[1].channel",
        "unknown channel 'sms' (channels: web, email)",
    ),
    (
        "contact-cap-on-a-page-not-a-channel",
        {"contact_caps": "[{channel: email/promo, max: 3, per_days: 7}]"},
        "contact_caps[0].channel",
        "unknown channel 'email/promo'",
    ),
    (
        "contact-cap-max-zero",
        {"contact_caps": "[{channel: email, max: 0, per_days: 7}]"},
        "contact_caps[0].max",
        "greater than or equal to 1",
    ),
    (
        "freeze-unknown-surface",
        {
            "freeze_windows": "[{name: Sale, start: 2026-01-01, end: 2026-01-10,"
            " surfaces: [web/checkout, web/check-out]}]"
        },
        "freeze_windows[0].surfaces[1]",
        "unknown surface 'web/check-out'",
    ),
    (
        "freeze-end-before-start",
        {"freeze_windows": "[{name: Sale, start: 2026-02-01, end: 2026-01-31}]"},
        "freeze_windows[0].end",
        "end 2026-01-31 is before start 2026-02-01",
    ),
    (
        "freeze-unknown-team-kind",
        {
            "freeze_windows": "[{name: Sale, start: 2026-02-01, end: 2026-02-02,"
            " team_kinds: [squad]}]"
        },
        "freeze_windows[0].team_kinds[0]",
        "'agile' or 'bau'",
    ),
    (
        "bad-time-zone",
        {"timezone": "Europe/Londres"},
        "timezone",
        "unknown time zone 'Europe/Londres'",
    ),
    (
        "time-zone-abbreviation",
        {"timezone": "Paris"},
        "timezone",
        "unknown time zone 'Paris'",
    ),
    (
        "unknown-holiday-country",
        {"calendar": "{holidays: XX}"},
        "calendar.holidays",
        "no holiday calendar for country 'XX'",
    ),
    (
        "holiday-country-given-as-name",
        {"calendar": "{holidays: France}"},
        "calendar.holidays",
        "no holiday calendar for country 'France'",
    ),
    (
        "unknown-working-day",
        {"calendar": "{working_days: [mon, tuesday]}"},
        "calendar.working_days[1]",
        "'mon', 'tue'",
    ),
    (
        "no-working-days",
        {"calendar": "{working_days: []}"},
        "calendar.working_days",
        "at least 1 item",
    ),
    (
        "closed-day-not-a-date",
        {"calendar": "{closed: [2026-12-24, christmas]}"},
        "calendar.closed[1]",
        "valid date",
    ),
    (
        "unknown-top-level-section",
        {"colour": "blue"},
        "colour",
        "unknown section",
    ),
    (
        "misspelt-top-level-section",
        {"team": "[]"},
        "team",
        "unknown section",
    ),
    (
        "unknown-field-in-calendar",
        {"calendar": '{opening_hours: ["09:00", "17:00"]}'},
        "calendar.opening_hours",
        "unknown field",
    ),
    (
        "unknown-field-in-team",
        {"teams": "[{key: squad, name: A, kind: agile, slack: C0SQUAD}]"},
        "teams[0].slack",
        "unknown field",
    ),
    (
        "unknown-field-in-surface-node",
        {"surfaces": "{web: {children: {home: {visitors: 10}}}, email: {children: {promo: {}}}}"},
        "surfaces.web.children.home.visitors",
        "unknown field",
    ),
    (
        "unknown-field-in-protocol",
        {"protocol": "{min_lead_days: 3}"},
        "protocol.min_lead_days",
        "unknown field",
    ),
    (
        "unknown-scoring-model",
        {"scoring": "{model: moscow}"},
        "scoring.model",
        "'tower', 'rice'",
    ),
    (
        "protocol-max-duration-below-min",
        {"protocol": "{min_duration_days: 14, max_duration_days: 7}"},
        "protocol.max_duration_days",
        "7 is smaller than min_duration_days (14)",
    ),
    (
        "missing-surfaces",
        {"surfaces": None, "funnels": None, "contact_caps": None, "freeze_windows": None},
        "surfaces",
        "required section is missing",
    ),
    (
        "empty-surfaces",
        {"surfaces": "{}", "funnels": None, "contact_caps": None, "freeze_windows": None},
        "surfaces",
        "at least 1 item",
    ),
    (
        "missing-audiences",
        {"audiences": None, "overlaps": None},
        "audiences",
        "required section is missing",
    ),
    (
        "bad-surface-name",
        {"surfaces": "{web: {children: {Home Page: {}}}, email: {children: {promo: {}}}}"},
        "surfaces.web.children.Home Page",
        "'Home Page' is not a valid name",
    ),
    (
        "page-busier-than-its-channel",
        {
            "surfaces": "{web: {weekly_visitors: 100, children: {home: {weekly_visitors: 150},"
            " checkout: {children: {cart: {}, payment: {}}}}}, email: {children: {promo: {}}}}"
        },
        "surfaces.web.children.home.weekly_visitors",
        "150 weekly visitors is more than its parent 'web' has (100)",
    ),
    (
        "funnel-of-one-step",
        {"funnels": "{purchase: [web/home]}"},
        "funnels.purchase",
        "at least two steps",
    ),
    (
        "funnel-step-repeated",
        {"funnels": "{purchase: [web/home, web/checkout/cart, web/home]}"},
        "funnels.purchase[2]",
        "'web/home' appears twice",
    ),
    (
        "duplicate-sla-key",
        {
            "sla": "[{key: review, name: A, start: submitted, stop: [approved],"
            " target_business_hours: 8}, {key: review, name: B, start: completed,"
            " stop: [results_recorded], target_business_hours: 8}]"
        },
        "sla[1].key",
        "duplicate SLA key 'review'",
    ),
    (
        "sla-stops-on-its-start",
        {
            "sla": "[{key: review, name: A, start: submitted, stop: [approved, submitted],"
            " target_business_hours: 8}]"
        },
        "sla[0].stop",
        "'submitted' both starts and stops the clock",
    ),
]


@pytest.mark.parametrize(
    ("sections", "path", "message"),
    [pytest.param(sections, path, message, id=name) for name, sections, path, message in RULES],
)
def test_rule_is_reported_at_its_path(
    sections: dict[str, str | None], path: str, message: str
) -> None:
    issue = only_problem(policy_text(**sections))
    assert issue.path == path, str(issue)
    assert message in issue.message, str(issue)


def test_missing_surfaces_and_audiences_are_both_reported() -> None:
    issues = problems("timezone: UTC\n")
    assert {(issue.path, issue.message) for issue in issues} == {
        ("surfaces", "required section is missing"),
        ("audiences", "required section is missing"),
    }


def test_a_broken_section_does_not_hide_checks_on_the_others() -> None:
    # The audiences are broken, so overlaps cannot be checked; funnels still are.
    issues = problems(
        policy_text(
            audiences="{all: {size: lots}}",
            funnels="{purchase: [web/home, web/nope]}",
        )
    )
    assert sorted(issue.path for issue in issues) == ["audiences.all.size", "funnels.purchase[1]"]


@pytest.mark.parametrize(
    "hours",
    [
        pytest.param('["18:00", "09:00"]', id="reversed"),
        pytest.param('["09:00", "09:00"]', id="empty"),
    ],
)
def test_working_hours_closing_before_opening(hours: str) -> None:
    issue = only_problem(policy_text(calendar=f"{{working_hours: {hours}}}"))
    assert issue.path.startswith("calendar")
    assert "working_hours" in str(issue)
    assert "must come before closing" in issue.message


def test_working_hours_need_two_times() -> None:
    issue = only_problem(policy_text(calendar='{working_hours: ["09:00"]}'))
    assert issue.path == "calendar.working_hours[1]"


def test_unquoted_working_hours_are_read_or_rejected_not_a_crash() -> None:
    text = policy_text(calendar="{working_hours: [09:00, 17:30]}")
    try:
        policy = parse_policy(text)
    except PolicyError as error:
        assert error.issues[0].path.startswith("calendar.working_hours")
    else:
        assert policy.calendar.working_hours == (time(9, 0), time(17, 30))


def test_unquoted_working_hours_are_not_misread_as_seconds() -> None:
    text = policy_text(calendar="{working_hours: [8:30, 17:30]}")
    try:
        policy = parse_policy(text)
    except PolicyError as error:
        assert error.issues[0].path.startswith("calendar.working_hours")
    else:
        assert policy.calendar.working_hours == (time(8, 30), time(17, 30))


# --- YAML and files ----------------------------------------------------------------------


def line_of(text: str, line: str) -> int:
    """The number of `line` in `text`, counted from 1."""
    return text.splitlines().index(line) + 1


def test_key_repeated_in_a_mapping_is_named_by_its_path_and_the_last_value_is_checked() -> None:
    text = policy_text(
        surfaces=block("""
              web:
                weekly_visitors: 1000
                children:
                  home: {}
                  home: {weekly_visitors: 5000}
              email: {children: {promo: {}}}"""),
        funnels=None,
        freeze_windows=None,
    )
    first, again = (
        line_of(text, "      home: {}"),
        line_of(text, "      home: {weekly_visitors: 5000}"),
    )
    assert [str(issue) for issue in problems(text)] == [
        f"surfaces.web.children.home: twice: given at lines {first} and {again}; "
        "the value given last is used",
        "surfaces.web.children.home.weekly_visitors: "
        "5000 weekly visitors is more than its parent 'web' has (1000)",
    ]


def test_top_level_section_repeated_is_named_and_its_last_value_checked() -> None:
    text = policy_text() + "timezone: Mars/Olympus\n"
    assert [str(issue) for issue in problems(text)] == [
        f"timezone: twice: given at lines 1 and {len(text.splitlines())}; "
        "the value given last is used",
        "timezone: unknown time zone 'Mars/Olympus' (use an IANA name like Europe/London)",
    ]


def test_key_repeated_in_a_flow_mapping_is_named_by_its_path() -> None:
    issue = only_problem(policy_text(calendar="{holidays: FR, holidays: GB}"))
    line = list(BASE).index("calendar") + 1
    assert str(issue) == (
        f"calendar.holidays: twice: given at line {line}; the value given last is used"
    )


def test_repeated_keys_hide_none_of_the_other_mistakes() -> None:
    """Two repeated keys and two rules broken elsewhere: all four are named at once."""
    text = policy_text(
        teams=block("""
            - {key: squad, name: Squad, kind: agile, channel: C0SQUAD, members: [U0ANNA]}
            - key: crm
              name: CRM
              kind: bau
              channel: C0CRM
              channel: C0CRM2"""),
        protocol="{approvals_required: 3}",
        kpis="{conversion_rate: 1, engagement: 2, engagement: .inf}",
    )
    channels = (line_of(text, "    channel: C0CRM"), line_of(text, "    channel: C0CRM2"))
    kpis = line_of(text, "kpis: {conversion_rate: 1, engagement: 2, engagement: .inf}")
    assert [str(issue) for issue in problems(text)] == [
        f"teams[1].channel: twice: given at lines {channels[0]} and {channels[1]}; "
        "the value given last is used",
        f"kpis.engagement: twice: given at line {kpis}; the value given last is used",
        "protocol.approvals_required: 3 approvals are required but the policy has 2 managers "
        "to give them",
        "kpis.engagement: inf is not a weight: give a finite number",
    ]


def test_key_repeated_under_an_anchor_is_named_once_where_the_anchor_is() -> None:
    text = policy_text(
        surfaces="{web: &page {weekly_visitors: 10, weekly_visitors: 20}, email: *page}",
        funnels=None,
        freeze_windows=None,
    )
    issue = only_problem(text)
    assert issue.path == "surfaces.web.weekly_visitors"
    assert issue.message.startswith("twice: given at line")


def test_cli_names_a_repeated_key_by_its_path_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "tower.yaml"
    path.write_text(policy_text() + "managers: [U0MGR1]\n", encoding="utf-8")
    result = check(path)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"{path}: 1 problem" in result.stderr
    assert "  managers: twice: given at lines 3 and " in result.stderr


def test_a_list_as_a_key_is_named_and_the_rest_of_the_file_still_read() -> None:
    issues = problems("[surfaces]: {web: {}}\naudiences: {all: {size: -1}}\n")
    assert [str(issue) for issue in issues] == [
        "line 1: a key must be a plain value, not a list or mapping",
        "surfaces: required section is missing",
        "audiences.all.size: input should be greater than or equal to 0 (got -1)",
    ]


def test_invalid_yaml_names_the_line() -> None:
    text = "surfaces:\n  web: {}\naudiences:\n  all: {size: 1\nfunnels: {}\n"
    issue = only_problem(text)
    assert issue.path == ""
    assert issue.message.startswith("invalid YAML at line ")
    line = int(issue.message.removeprefix("invalid YAML at line ").split(",")[0])
    assert line in (4, 5)


def test_tab_indentation_is_invalid_yaml() -> None:
    issue = only_problem("surfaces:\n\tweb: {}\n")
    assert issue.message.startswith("invalid YAML at line 2")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("\n\n", id="blank-lines"),
        pytest.param("# just a comment\n", id="comment-only"),
    ],
)
def test_empty_file_is_refused(text: str) -> None:
    issue = only_problem(text)
    assert issue == PolicyIssue("", "expected a mapping of sections, found an empty file")


def test_file_that_is_a_list_is_refused() -> None:
    issue = only_problem("- surfaces\n- audiences\n")
    assert issue.message == "expected a mapping of sections, found list"


def test_empty_file_on_disk_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tower.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert raised.value.source == str(path)
    assert "empty file" in raised.value.issues[0].message


def test_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert raised.value.source == str(path)
    assert raised.value.issues == [PolicyIssue("", "file not found")]
    assert str(raised.value) == f"{path}: 1 problem\n  file not found"


def test_load_policy_names_the_file_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "tower.yaml"
    path.write_text(FIVE_MISTAKES, encoding="utf-8")
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert raised.value.source == str(path)
    assert len(raised.value.issues) == 5


def test_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tower.yaml"
    path.write_bytes(b"timezone: \xff\xfe\n")
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert "cannot read the file" in raised.value.issues[0].message


# --- the CLI shows what the user wrote --------------------------------------------------


@pytest.mark.parametrize("kind", ["[agile]", "[/b]"])
def test_cli_prints_values_with_brackets_verbatim(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "tower.yaml"
    path.write_text(policy_text(teams=f'[{{key: squad, name: A, kind: "{kind}"}}]'))
    result = check(path)
    assert result.exit_code == 1
    assert f"(got '{kind}')" in result.stderr


# --- the shipped example -----------------------------------------------------------------


def test_retail_example_loads(retail_policy: Policy) -> None:
    kinds = {team.kind for team in retail_policy.teams}
    assert kinds == {"agile", "bau"}
    assert retail_policy.managers
    assert len(retail_policy.surface_paths) > len(retail_policy.surfaces)
    assert len(retail_policy.segment_names) > 1
    assert retail_policy.funnels
    for steps in retail_policy.funnels.values():
        assert set(steps) <= retail_policy.surface_paths
    assert all(retail_policy.is_manager(user) for user in retail_policy.managers)


def test_cli_accepts_the_retail_example() -> None:
    result = check(RETAIL_POLICY)
    assert result.exit_code == 0, result.output
    assert "is valid" in result.stdout


def test_sla_targets_in_business_days_follow_the_calendars_working_day() -> None:
    policy = parse_policy(
        textwrap.dedent(
            """\
            calendar: {working_hours: ["08:00", "18:00"]}
            surfaces: {web: {}}
            audiences: {all: {size: 10}}
            sla:
              - {key: review, name: Review, start: submitted, stop: [approved],
                 target_business_days: 2}
              - {key: ack, name: Ack, start: collision_opened,
                 stop: [collision_acknowledged], target_business_hours: 4}
            """
        )
    )
    review, ack = policy.sla
    assert review.target_hours(policy.calendar) == 20
    assert ack.target_hours(policy.calendar) == 4


def test_sla_target_must_be_given_once() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(
            "surfaces: {web: {}}\naudiences: {all: {size: 10}}\n"
            "sla: [{key: review, name: Review, start: submitted, stop: [approved],"
            " target_business_days: 2, target_business_hours: 17}]\n"
        )
    assert [str(issue) for issue in caught.value.issues] == [
        "sla[0]: give exactly one of target_business_hours and target_business_days"
    ]


def test_lever_range_must_be_in_order() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(
            "surfaces: {web: {}}\naudiences: {all: {size: 10}}\n"
            "scoring: {lever_min: 2, lever_max: 0.5}\n"
        )
    assert [str(issue) for issue in caught.value.issues] == [
        "scoring.lever_max: 0.5 is smaller than lever_min (2)"
    ]


def test_a_holiday_region_must_belong_to_the_country() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(
            "calendar: {holidays: GB, holiday_region: BAV}\n"
            "surfaces: {web: {}}\naudiences: {all: {size: 10}}\n"
        )
    assert [str(issue) for issue in caught.value.issues] == [
        "calendar.holiday_region: GB has no region 'BAV' (regions: ENG, NIR, SCT, WLS)"
    ]
