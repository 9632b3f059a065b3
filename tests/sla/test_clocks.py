"""SLA clocks driven by protocol events and swept for reminders, on a controlled clock.

Every moment is an explicit London wall-clock time. The small policy (tests/data/policy.yaml)
has the default promises: review within 2 business days (17 business hours: the calendar
works 09:00-17:30, 8.5 hours a day), conflicts acknowledged within 4 business hours per team,
results within 5 business days. GB holidays apply; Spring Bank Holiday is Monday 2026-05-25.
Managers are told in the tower channel C0TOWER; checkout-squad's channel is C0CHECKOUT.
"""

from __future__ import annotations

import json
import threading
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.databases import server_url
from tower import migrate
from tower.collisions.models import Collision
from tower.context import ServiceContext
from tower.db import create_database_engine, create_session_factory
from tower.engine.kinds import CollisionKind, Severity
from tower.experiments import service as experiment_service
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentKind, ExperimentSpec, ExperimentStatus
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.policy import Policy
from tower.policy.calendar import BusinessCalendar
from tower.policy.schema import SlaPolicy
from tower.sla import clocks as sla_clocks
from tower.sla import notices
from tower.sla import queries as sla_queries
from tower.sla import reminders as sla_reminders
from tower.sla.models import ClockState, SlaClock
from tower.sla.reminders import ESCALATION_EVERY_SHARE_OF_TARGET

LONDON = ZoneInfo("Europe/London")
REVIEW_HOURS = 17.0


def london(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in London."""
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


# Monday 2 March 2026, 09:00 (GMT): a review submitted now is due Tuesday at closing.
MONDAY_OPENING = london(2026, 3, 2, 9)
TUESDAY_CLOSING = london(2026, 3, 3, 17, 30)


@pytest.fixture(scope="module")
def calendar(small_policy: Policy) -> BusinessCalendar:
    return BusinessCalendar.from_policy(small_policy)


def register(
    session: Session,
    number: int = 1,
    *,
    title: str = "Sticky basket",
    team: str = "checkout-squad",
    owner: str = "U0ANNA",
) -> Experiment:
    spec = ExperimentSpec(
        title=title,
        team=team,
        owner=owner,
        kind=ExperimentKind.AB_TEST,
        surfaces=("web/checkout/cart",),
        start=date(2026, 3, 16),
        end=date(2026, 3, 29),
        hypothesis="A basket that stays put converts better.",
    )
    return experiment_service.create(
        session, number=number, spec=spec, status=ExperimentStatus.SUBMITTED, actor=owner
    )


def collide(session: Session, *tests: Experiment) -> Collision:
    collision = Collision(
        fingerprint="surface:" + ":".join(test.key for test in tests),
        kind=CollisionKind.SURFACE,
        severity=Severity.BLOCKING,
        details={"keys": [test.key for test in tests], "teams": [test.team for test in tests]},
        experiments=list(tests),
    )
    session.add(collision)
    session.flush()
    return collision


def messages(session: Session) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def dedupe_keys(queued: list[OutboxMessage]) -> list[str]:
    return [message.dedupe_key for message in queued]


def with_sla(policy: Policy, *slas: SlaPolicy, **changes: Any) -> Policy:
    """The policy with other SLA policies (and any other top-level fields changed)."""
    return policy.model_copy(update={"sla": list(slas) or policy.sla, **changes})


class Tower:
    """The SLA service bound to a session, policy and calendar, to keep tests short."""

    def __init__(self, session: Session, policy: Policy, calendar: BusinessCalendar) -> None:
        self.session, self.policy, self.calendar = session, policy, calendar

    def at(self, moment: datetime) -> ServiceContext:
        """The service context at `moment`, as given (a naive moment too, to be refused)."""
        return ServiceContext(self.policy, self.calendar, moment)

    def event(self, event: str, at: datetime, **subject: Any) -> list[SlaClock]:
        return sla_clocks.handle_event(self.session, self.at(at), event=event, **subject)

    def sweep(self, now: datetime) -> sla_reminders.SweepReport:
        return sla_reminders.sweep(self.session, self.at(now))


@pytest.fixture
def tower(session: Session, small_policy: Policy, calendar: BusinessCalendar) -> Tower:
    return Tower(session, small_policy, calendar)


# Starting


def test_a_submission_starts_a_review_clock_due_two_business_days_later(
    session: Session, tower: Tower
) -> None:
    test = register(session)
    started = tower.event("submitted", london(2026, 3, 2, 10), experiment=test)

    assert len(started) == 1
    clock = started[0]
    assert clock.policy_key == "review"
    assert (clock.subject, clock.cycle, clock.state) == ("T-1", 1, ClockState.RUNNING)
    assert (clock.experiment_id, clock.collision_id, clock.team) == (test.id, None, test.team)
    assert clock.target_hours == REVIEW_HOURS
    assert clock.started_at == london(2026, 3, 2, 10)
    assert clock.due_at == london(2026, 3, 4, 10)  # 7.5 h Monday + 8.5 h Tuesday + 1 h
    assert (clock.warned, clock.breached_at, clock.escalations) == (0, None, 0)
    assert sla_queries.clocks_for(session) == [clock]


def test_the_due_time_skips_a_weekend_and_a_bank_holiday(session: Session, tower: Tower) -> None:
    test = register(session)
    # Friday 14:00 BST: 3.5 h on Friday, weekend, Spring Bank Holiday Monday, 8.5 h Tuesday,
    # and the last 5 h on Wednesday.
    (clock,) = tower.event("submitted", london(2026, 5, 22, 14), experiment=test)
    assert clock.due_at == london(2026, 5, 27, 14)


def test_a_submission_before_opening_counts_from_the_opening(
    session: Session, tower: Tower
) -> None:
    test = register(session)
    (clock,) = tower.event("submitted", london(2026, 3, 1, 22), experiment=test)  # Sunday night
    assert clock.due_at == TUESDAY_CLOSING


def test_a_double_submit_keeps_one_clock(session: Session, tower: Tower) -> None:
    test = register(session)
    (first,) = tower.event("submitted", MONDAY_OPENING, experiment=test)
    assert tower.event("submitted", london(2026, 3, 2, 9, 1), experiment=test) == []
    assert sla_queries.clocks_for(session, "T-1") == [first]
    assert first.due_at == TUESDAY_CLOSING


def test_events_that_no_policy_mentions_change_nothing(session: Session, tower: Tower) -> None:
    test = register(session)
    assert tower.event("approved", MONDAY_OPENING, experiment=test) == []
    assert tower.event("collision_acknowledged", MONDAY_OPENING, experiment=test) == []
    assert sla_queries.clocks_for(session) == []


def test_completion_starts_the_results_clock_of_five_business_days(
    session: Session, tower: Tower
) -> None:
    test = register(session)
    (clock,) = tower.event("completed", MONDAY_OPENING, experiment=test)
    assert clock.policy_key == "results"
    assert clock.due_at == london(2026, 3, 6, 17, 30)
    (stopped,) = tower.event("results_recorded", london(2026, 3, 4, 12), experiment=test)
    assert stopped is clock and clock.state == ClockState.STOPPED


# Pausing and resuming


def test_changes_requested_pauses_and_resubmission_shifts_due_by_the_paused_business_time(
    session: Session, tower: Tower, calendar: BusinessCalendar
) -> None:
    test = register(session)
    (clock,) = tower.event("submitted", london(2026, 3, 2, 10), experiment=test)
    paused_at, resumed_at = london(2026, 3, 2, 15), london(2026, 3, 5, 11)

    assert tower.event("changes_requested", paused_at, experiment=test) == [clock]
    assert (clock.state, clock.paused_at) == (ClockState.PAUSED, paused_at)
    assert clock.due_at == london(2026, 3, 4, 10)  # unchanged while paused

    assert tower.event("submitted", resumed_at, experiment=test) == [clock]
    # 5 h had run, 12 h were left: 6.5 h on Thursday and 5.5 h on Friday.
    assert clock.due_at == london(2026, 3, 6, 14, 30)
    assert (clock.state, clock.paused_at, clock.cycle) == (ClockState.RUNNING, None, 1)
    paused_for = calendar.between(paused_at, resumed_at)
    assert paused_for == 21.5
    assert calendar.between(clock.started_at, clock.due_at) == REVIEW_HOURS + paused_for
    assert sla_queries.clocks_for(session, "T-1") == [clock]


def test_a_pause_outside_working_hours_leaves_the_due_time_alone(
    session: Session, tower: Tower
) -> None:
    test = register(session)
    (clock,) = tower.event("submitted", MONDAY_OPENING, experiment=test)
    tower.event("changes_requested", london(2026, 3, 2, 18), experiment=test)
    tower.event("submitted", london(2026, 3, 2, 23), experiment=test)
    assert clock.due_at == TUESDAY_CLOSING


def test_a_clock_paused_while_overdue_stays_overdue_by_the_same_business_time(
    session: Session, tower: Tower, calendar: BusinessCalendar
) -> None:
    test = register(session)
    (clock,) = tower.event("submitted", MONDAY_OPENING, experiment=test)
    tower.event("changes_requested", london(2026, 3, 4, 11), experiment=test)  # 2 h overdue
    resumed_at = london(2026, 3, 9, 10)
    tower.event("submitted", resumed_at, experiment=test)
    # Paused for 24.5 business hours (Wednesday 6.5, Thursday, Friday, Monday 1): the due
    # time moves from Tuesday's closing to Friday 16:30, still 2 business hours ago.
    assert clock.due_at == london(2026, 3, 6, 16, 30)
    assert calendar.between(clock.due_at, resumed_at) == 2.0
    assert tower.sweep(resumed_at).breaches != []


def test_paused_clocks_never_fire(session: Session, tower: Tower) -> None:
    test = register(session)
    (clock,) = tower.event("submitted", MONDAY_OPENING, experiment=test)
    tower.event("changes_requested", london(2026, 3, 2, 12), experiment=test)

    report = tower.sweep(london(2026, 3, 20, 12))  # far past every threshold
    assert report.queued == 0 and messages(session) == []
    assert (clock.state, clock.warned, clock.breached_at, clock.escalations) == (
        ClockState.PAUSED,
        0,
        None,
        0,
    )


# Stopping and restarting


def test_approval_stops_the_clock(session: Session, tower: Tower) -> None:
    test = register(session)
    (clock,) = tower.event("submitted", MONDAY_OPENING, experiment=test)
    assert tower.event("approved", london(2026, 3, 3, 10), experiment=test) == [clock]
    assert (clock.state, clock.stopped_at) == (ClockState.STOPPED, london(2026, 3, 3, 10))
    assert tower.sweep(london(2026, 3, 20, 12)).queued == 0


def test_a_paused_clock_stops_too(session: Session, tower: Tower) -> None:
    test = register(session)
    (clock,) = tower.event("submitted", MONDAY_OPENING, experiment=test)
    tower.event("changes_requested", london(2026, 3, 2, 12), experiment=test)
    assert tower.event("withdrawn", london(2026, 3, 3, 12), experiment=test) == [clock]
    assert clock.state == ClockState.STOPPED


def test_a_restart_after_a_stop_is_a_new_cycle(session: Session, tower: Tower) -> None:
    test = register(session)
    (first,) = tower.event("submitted", MONDAY_OPENING, experiment=test)
    tower.event("rejected", london(2026, 3, 2, 11), experiment=test)
    (second,) = tower.event("submitted", london(2026, 3, 4, 9), experiment=test)

    assert second is not first
    assert (first.cycle, first.state) == (1, ClockState.STOPPED)
    assert (second.cycle, second.state) == (2, ClockState.RUNNING)
    assert second.due_at == london(2026, 3, 5, 17, 30)
    assert sla_queries.clocks_for(session, "T-1") == [first, second]
    # Each cycle reminds on its own: the stopped one stays quiet.
    report = tower.sweep(london(2026, 3, 5, 15))
    assert {message.payload["cycle"] for message in report.warnings} == {2}


# Sweeping


def test_the_warning_at_75_percent_is_sent_exactly_once(session: Session, tower: Tower) -> None:
    test = register(session)
    (clock,) = tower.event("submitted", MONDAY_OPENING, experiment=test)
    # 75% of 17 h is 12.75 h: all of Monday and 4.25 h of Tuesday, 13:15.
    assert tower.sweep(london(2026, 3, 3, 13, 14)).queued == 0

    report = tower.sweep(london(2026, 3, 3, 13, 15))
    assert dedupe_keys(report.warnings) == [f"sla:{clock.id}:warn:0"]
    assert (report.breaches, report.escalations) == ([], [])
    (warning,) = report.warnings
    assert warning.recipient == "U0ANNA"
    assert warning.kind == "sla_warning"
    assert warning.text == (
        "Review of T-1 'Sticky basket' is due in 4.2 business hours "
        "(Tue 3 Mar 17:30 Europe/London): 75% of the 17.0 business hours allowed have gone."
    )
    assert warning.payload["threshold"] == 0.75
    assert clock.warned == 1

    for now in (london(2026, 3, 3, 13, 15), london(2026, 3, 3, 14), london(2026, 3, 3, 17)):
        assert tower.sweep(now).queued == 0
    assert len(messages(session)) == 1


def test_each_warning_threshold_fires_once_in_order(
    session: Session, small_policy: Policy, calendar: BusinessCalendar
) -> None:
    review = small_policy.sla[0].model_copy(update={"warn_at": [0.75, 0.5]})
    tower = Tower(session, with_sla(small_policy, review), calendar)
    test = register(session)
    (clock,) = tower.event("submitted", MONDAY_OPENING, experiment=test)

    first = tower.sweep(london(2026, 3, 2, 17, 30))  # 8.5 h of 17: 50%
    assert dedupe_keys(first.warnings) == [f"sla:{clock.id}:warn:0"]
    second = tower.sweep(london(2026, 3, 3, 14))
    assert dedupe_keys(second.warnings) == [f"sla:{clock.id}:warn:1"]
    assert clock.warned == 2


def test_breach_and_escalations_follow_the_ladder_step_by_step(
    session: Session, tower: Tower
) -> None:
    test = register(session)
    (clock,) = tower.event("submitted", MONDAY_OPENING, experiment=test)
    tower.sweep(london(2026, 3, 3, 14))  # the warning

    breach = tower.sweep(TUESDAY_CLOSING)
    assert dedupe_keys(breach.breaches) == [f"sla:{clock.id}:breach"]
    assert breach.breaches[0].recipient == "U0ANNA"
    assert breach.breaches[0].text == (
        "Review of T-1 'Sticky basket' is now overdue (it was due Tue 3 Mar 17:30 "
        "Europe/London): the target was 17.0 business hours "
        "(Review within 2 business days of submission). Owner: @U0ANNA."
    )
    assert clock.breached_at == TUESDAY_CLOSING

    # Step 1 (team channel) at 50% of the target overdue: 8.5 h, Wednesday's closing.
    assert ESCALATION_EVERY_SHARE_OF_TARGET == 0.5
    assert tower.sweep(london(2026, 3, 4, 17, 29)).queued == 0
    team = tower.sweep(london(2026, 3, 4, 17, 30))
    assert dedupe_keys(team.escalations) == [f"sla:{clock.id}:escalate:1"]
    assert team.escalations[0].recipient == "C0CHECKOUT"
    assert team.escalations[0].text == (
        "Escalated to the team channel (step 2 of 3): Review of T-1 'Sticky basket' is "
        "8.5 business hours overdue (it was due Tue 3 Mar 17:30 Europe/London). "
        "Owner: @U0ANNA."
    )
    assert clock.escalations == 1

    # Step 2 (managers, in the tower channel) at 100% of the target overdue: Thursday.
    assert tower.sweep(london(2026, 3, 5, 17)).queued == 0
    managers = tower.sweep(london(2026, 3, 5, 17, 30))
    assert dedupe_keys(managers.escalations) == [f"sla:{clock.id}:escalate:2"]
    assert managers.escalations[0].recipient == "C0TOWER"
    assert managers.escalations[0].text.startswith("Escalated to the managers (step 3 of 3): ")
    assert clock.escalations == 2

    assert tower.sweep(london(2026, 3, 20, 12)).queued == 0  # the ladder has no more steps


def test_a_sweep_after_a_long_downtime_sends_each_missed_reminder_once(
    session: Session, tower: Tower
) -> None:
    test = register(session)
    (clock,) = tower.event("submitted", MONDAY_OPENING, experiment=test)

    late = london(2026, 3, 9, 10)  # 26.5 business hours overdue
    report = tower.sweep(late)
    assert dedupe_keys(report.warnings) == [f"sla:{clock.id}:warn:0"]
    assert dedupe_keys(report.breaches) == [f"sla:{clock.id}:breach"]
    assert dedupe_keys(report.escalations) == [
        f"sla:{clock.id}:escalate:1",
        f"sla:{clock.id}:escalate:2",
    ]
    # The owner's two notices go out as one message; each stays on record, merged into it.
    rows = messages(session)
    assert [m.recipient for m in rows] == ["U0ANNA", "U0ANNA", "C0CHECKOUT", "C0TOWER", "U0ANNA"]
    merged = rows[-1]
    assert (merged.kind, merged.status) == ("sla_notices", MessageStatus.PENDING)
    assert merged.text == f"{report.warnings[0].text}\n\n{report.breaches[0].text}"
    assert [m.status for m in rows[:2]] == [MessageStatus.MERGED, MessageStatus.MERGED]
    assert [m.status for m in rows[2:4]] == [MessageStatus.PENDING, MessageStatus.PENDING]
    assert report.warnings[0].text == (
        "Review of T-1 'Sticky basket' is 26.5 business hours overdue (it was due Tue 3 Mar "
        "17:30 Europe/London): this 75% reminder is late: all 17.0 business hours have gone."
    )
    assert "is 26.5 business hours overdue" in report.escalations[0].text
    assert (clock.warned, clock.breached_at, clock.escalations) == (1, TUESDAY_CLOSING, 2)

    assert tower.sweep(late).queued == 0
    assert tower.sweep(london(2026, 3, 10, 10)).queued == 0
    assert len(messages(session)) == 5


def test_a_resumed_clock_fires_against_its_shifted_due_time(session: Session, tower: Tower) -> None:
    test = register(session)
    (clock,) = tower.event("submitted", MONDAY_OPENING, experiment=test)
    tower.event("changes_requested", london(2026, 3, 2, 13), experiment=test)  # 4 h run
    tower.event("submitted", london(2026, 3, 4, 9), experiment=test)  # 13 h left
    assert clock.due_at == london(2026, 3, 5, 13, 30)
    assert tower.sweep(london(2026, 3, 4, 17, 30)).queued == 0  # 12.5 h run: under 75%
    assert [m.dedupe_key for m in tower.sweep(london(2026, 3, 5, 13, 30)).breaches] == [
        f"sla:{clock.id}:breach"
    ]


# Collisions


def test_a_collision_starts_one_acknowledgement_clock_per_team(
    session: Session, tower: Tower, calendar: BusinessCalendar
) -> None:
    basket = register(session, 1)
    banner = register(session, 2, title="Free delivery banner", team="ecommerce", owner="U0CARLA")
    collision = collide(session, basket, banner)
    opened = tower.event("collision_opened", london(2026, 3, 2, 15), collision=collision)

    ref = f"C-{collision.id}"
    assert [(c.policy_key, c.subject, c.team) for c in opened] == [
        ("conflict-ack", f"{ref}:checkout-squad", "checkout-squad"),
        ("conflict-ack", f"{ref}:ecommerce", "ecommerce"),
    ]
    for clock in opened:
        assert (clock.collision_id, clock.experiment_id) == (collision.id, None)
        assert clock.target_hours == 4
        assert clock.due_at == london(2026, 3, 3, 10, 30)  # 2.5 h Monday, 1.5 h Tuesday
    assert tower.event("collision_opened", london(2026, 3, 2, 16), collision=collision) == []
    assert sla_queries.clocks_for(session, ref) == opened

    report = tower.sweep(london(2026, 3, 3, 10, 30))
    by_recipient = {message.recipient: message.text for message in report.breaches}
    assert set(by_recipient) == {"U0ANNA", "U0CARLA"}
    assert by_recipient["U0ANNA"].startswith(
        f"Acknowledgement of conflict {ref} (T-1 'Sticky basket' vs T-2 'Free delivery banner') "
        "by Checkout Squad is now overdue (it was due Tue 3 Mar 10:30 Europe/London)"
    )
    assert "by E-commerce" in by_recipient["U0CARLA"]
    assert "@U0CARLA" in by_recipient["U0CARLA"]
    assert "@U0ANNA" not in by_recipient["U0CARLA"]

    # Two business hours overdue is 50% of 4 h: each team's channel; e-commerce's is C0ECOM.
    escalated = tower.sweep(london(2026, 3, 3, 12, 30))
    assert sorted(m.recipient for m in escalated.escalations) == ["C0CHECKOUT", "C0ECOM"]

    stopped = tower.event("collision_acknowledged", london(2026, 3, 3, 13), collision=collision)
    assert stopped == opened
    assert all(clock.state == ClockState.STOPPED for clock in opened)
    assert tower.sweep(london(2026, 3, 9, 12)).queued == 0


def test_a_collision_clock_that_is_not_per_team_tells_every_owner(
    session: Session, small_policy: Policy, calendar: BusinessCalendar
) -> None:
    shared = small_policy.sla[1].model_copy(update={"per_team": False})
    tower = Tower(session, with_sla(small_policy, shared), calendar)
    basket = register(session, 1)
    banner = register(session, 2, title="Free delivery banner", team="ecommerce", owner="U0CARLA")
    collision = collide(session, basket, banner)

    (clock,) = tower.event("collision_opened", MONDAY_OPENING, collision=collision)
    assert (clock.subject, clock.team) == (f"C-{collision.id}", None)
    report = tower.sweep(london(2026, 3, 2, 15))  # 2 h overdue: breach and the team channels
    assert dedupe_keys(report.breaches) == [
        f"sla:{clock.id}:breach:U0ANNA",
        f"sla:{clock.id}:breach:U0CARLA",
    ]
    assert [m.recipient for m in report.escalations] == ["C0CHECKOUT", "C0ECOM"]


# Recipients


def test_recipients_of_each_ladder_step(session: Session, small_policy: Policy) -> None:
    subject = notices.experiment_subject(register(session))
    assert notices.recipients("owner", small_policy, subject) == ["U0ANNA"]
    assert notices.recipients("team_channel", small_policy, subject) == ["C0CHECKOUT"]
    assert notices.recipients("managers", small_policy, subject) == ["C0TOWER"]

    no_channel = with_sla(
        small_policy,
        tower_channel=None,
        managers=["U0TOWERMGR", "U0BOSS"],
        teams=[team.model_copy(update={"channel": None}) for team in small_policy.teams],
    )
    assert notices.recipients("team_channel", no_channel, subject) == []
    assert notices.recipients("managers", no_channel, subject) == ["U0TOWERMGR", "U0BOSS"]


def test_managers_without_a_tower_channel_are_told_one_by_one(
    session: Session, small_policy: Policy, calendar: BusinessCalendar
) -> None:
    policy = with_sla(small_policy, tower_channel=None, managers=["U0TOWERMGR", "U0BOSS"])
    tower = Tower(session, policy, calendar)
    (clock,) = tower.event("submitted", MONDAY_OPENING, experiment=register(session))
    report = tower.sweep(london(2026, 3, 9, 10))
    managers = [m for m in report.escalations if m.payload["step"] == "managers"]
    assert [(m.recipient, m.dedupe_key) for m in managers] == [
        ("U0TOWERMGR", f"sla:{clock.id}:escalate:2:U0TOWERMGR"),
        ("U0BOSS", f"sla:{clock.id}:escalate:2:U0BOSS"),
    ]


def test_a_ladder_step_that_reaches_nobody_is_passed_over(
    session: Session, small_policy: Policy, calendar: BusinessCalendar
) -> None:
    review = small_policy.sla[0].model_copy(update={"escalation": ["team_channel", "managers"]})
    policy = with_sla(
        small_policy,
        review,
        teams=[team.model_copy(update={"channel": None}) for team in small_policy.teams],
    )
    tower = Tower(session, policy, calendar)
    (clock,) = tower.event("submitted", MONDAY_OPENING, experiment=register(session))
    report = tower.sweep(london(2026, 3, 9, 10))
    # The breach goes to the first step that reaches anyone: the managers.
    assert [(m.kind, m.recipient) for m in report.warnings + report.breaches] == [
        ("sla_warning", "C0TOWER"),
        ("sla_breach", "C0TOWER"),
    ]
    assert [m.recipient for m in report.escalations] == ["C0TOWER"]
    assert clock.escalations == 1


# Reading


def test_clock_status_is_json_ready_and_negative_when_overdue(
    session: Session, tower: Tower, calendar: BusinessCalendar
) -> None:
    test = register(session)
    (clock,) = tower.event("submitted", MONDAY_OPENING, experiment=test)
    status = sla_queries.clock_status(clock, calendar, london(2026, 3, 3, 13, 15))
    json.dumps(status)
    assert {key: status[key] for key in ("policy", "subject", "cycle", "state")} == {
        "policy": "review",
        "subject": "T-1",
        "cycle": 1,
        "state": "running",
    }
    assert status["due_at"] == TUESDAY_CLOSING.isoformat()
    assert status["started_at"] == MONDAY_OPENING.isoformat()
    assert (status["business_hours_left"], status["elapsed_share"]) == (4.25, 0.75)
    assert (status["warned"], status["breached_at"], status["escalations"]) == (0, None, 0)

    tower.sweep(london(2026, 3, 4, 11))
    overdue = sla_queries.clock_status(clock, calendar, london(2026, 3, 4, 11))
    assert overdue["business_hours_left"] == -2.0
    assert overdue["breached_at"] == TUESDAY_CLOSING.isoformat()

    tower.event("changes_requested", london(2026, 3, 4, 11), experiment=test)
    frozen = sla_queries.clock_status(clock, calendar, london(2026, 3, 20, 12))
    assert (frozen["state"], frozen["business_hours_left"]) == ("paused", -2.0)


def test_clocks_for_matches_whole_keys_and_per_team_clocks(session: Session, tower: Tower) -> None:
    one, ten = register(session, 1), register(session, 10)
    collision = collide(session, one, register(session, 2, team="ecommerce", owner="U0CARLA"))
    tower.event("submitted", MONDAY_OPENING, experiment=one)
    tower.event("submitted", london(2026, 3, 2, 10), experiment=ten)
    tower.event("collision_opened", london(2026, 3, 2, 11), collision=collision)

    assert [c.subject for c in sla_queries.clocks_for(session, "T-1")] == ["T-1"]
    assert [c.subject for c in sla_queries.clocks_for(session, "T-10")] == ["T-10"]
    assert [c.subject for c in sla_queries.clocks_for(session, "T-")] == ["T-1", "T-10"]
    ref = f"C-{collision.id}"
    assert [c.subject for c in sla_queries.clocks_for(session, ref)] == [
        f"{ref}:checkout-squad",
        f"{ref}:ecommerce",
    ]
    assert len(sla_queries.clocks_for(session)) == 4


# Mistakes


def test_an_event_needs_a_test_or_a_collision(tower: Tower) -> None:
    with pytest.raises(ValueError, match="needs the test or the collision"):
        tower.event("submitted", MONDAY_OPENING)


def test_naive_times_are_refused(session: Session, tower: Tower) -> None:
    test = register(session)
    with pytest.raises(ValueError, match="no time zone"):
        tower.event("submitted", datetime(2026, 3, 2, 9), experiment=test)
    with pytest.raises(ValueError, match="no time zone"):
        tower.sweep(datetime(2026, 3, 2, 9))


# Two transactions at once


@pytest.mark.skipif(
    server_url() is None,
    reason="two transactions writing at once need PostgreSQL (SQLite serialises writers)",
)
def test_two_transactions_starting_one_clock_at_once_leave_one_clock_and_both_commit(
    scratch_database_url: str, small_policy: Policy, calendar: BusinessCalendar
) -> None:
    """The second start waits for the first to commit, then finds its cycle taken: it
    starts nothing, raises nothing, and its transaction goes on to commit its other work."""
    migrate.upgrade(scratch_database_url)
    engines = [create_database_engine(scratch_database_url) for _ in range(2)]
    try:
        with create_session_factory(engines[0]).begin() as setup:
            register(setup)
        first, second = (create_session_factory(engine)() for engine in engines)
        test = experiment_service.get_by_key(first, "T-1")
        (started,) = Tower(first, small_policy, calendar).event(
            "submitted", MONDAY_OPENING, experiment=test
        )
        outcome: dict[str, object] = {}

        def start_again() -> None:
            try:
                again = experiment_service.get_by_key(second, "T-1")
                tower = Tower(second, small_policy, calendar)
                outcome["started"] = tower.event("submitted", MONDAY_OPENING, experiment=again)
                again.hypothesis = "Written after the clock was found taken."
                second.commit()
            except Exception as error:  # the assertion below names it
                outcome["error"] = error
                second.rollback()

        waiting = threading.Thread(target=start_again)
        waiting.start()
        waiting.join(timeout=1)
        assert waiting.is_alive(), outcome  # held by the first transaction's new row
        first.commit()
        waiting.join(timeout=20)
        assert not waiting.is_alive()
        assert outcome == {"started": []}
        with create_session_factory(engines[0])() as check:
            clocks = sla_queries.clocks_for(check, "T-1")
            assert [(c.id, c.cycle) for c in clocks] == [(started.id, 1)]
            assert experiment_service.get_by_key(check, "T-1").hypothesis.startswith("Written")
        first.close()
        second.close()
    finally:
        for engine in engines:
            engine.dispose()
