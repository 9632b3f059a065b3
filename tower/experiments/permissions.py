"""Who may do what: checked on the server for every adapter, whatever a button claims."""

from __future__ import annotations

from tower.errors import TowerError
from tower.experiments.models import Experiment
from tower.policy import Policy


class PermissionDenied(TowerError):
    """The actor may not take this action; adapters audit the attempt."""


def require_may_register(policy: Policy, user: str, team_key: str) -> None:
    """Members register tests for their own team; managers for any team."""
    if not policy.is_manager(user) and not is_member_of(policy, user, team_key):
        raise PermissionDenied(
            f"{user} is not a member of team {team_key!r}: register tests for your own team"
        )


def is_member_of(policy: Policy, user: str, team_key: str) -> bool:
    team = policy.team(team_key)
    return team is not None and user in team.members


def require_team_or_manager(policy: Policy, user: str, experiment: Experiment, verb: str) -> None:
    """Only the test's owner, its team's members and managers may `verb` it."""
    if (
        user == experiment.owner
        or is_member_of(policy, user, experiment.team)
        or policy.is_manager(user)
    ):
        return
    raise PermissionDenied(
        f"only the owner of {experiment.key}, members of team {experiment.team!r} or a "
        f"manager can {verb} it; {user} is none of them"
    )


def require_manager(policy: Policy, user: str, experiment: Experiment, verb: str) -> None:
    """Only control-tower managers may decide on a release."""
    if not policy.is_manager(user):
        raise PermissionDenied(f"only a control-tower manager can {verb} {experiment.key}")


def require_not_own(
    policy: Policy, user: str, experiment: Experiment, submitter: str | None, verb: str
) -> None:
    """A manager may not decide on their own test unless the policy allows self-approval."""
    if policy.protocol.allow_self_approval:
        return
    if user in (experiment.owner, submitter):
        raise PermissionDenied(
            f"{user} owns or submitted {experiment.key} and cannot {verb} it: another "
            "manager must (the policy does not allow self-approval)"
        )
