"""Who may do what: checked on the server for every adapter, whatever a button claims."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tower.errors import TowerError
from tower.experiments.models import Experiment
from tower.policy import Policy
from tower.policy.schema import Team


class PermissionDenied(TowerError):
    """The actor may not take this action; adapters audit the attempt."""


def require_may_register(policy: Policy, user: str, team_key: str) -> None:
    """Members register tests for their own team; managers for any team."""
    if not policy.is_manager(user) and not is_member_of(policy, user, team_key):
        raise PermissionDenied(
            f"{user} is not a member of team {team_key!r}: register tests for your own team"
        )


def teams_to_register_for(policy: Policy, user: str) -> list[Team]:
    """The teams `user` may register tests for: every team for a manager, else their own."""
    return list(policy.teams) if policy.is_manager(user) else list(policy.teams_of(user))


def test_to_move(
    policy: Policy, user: str, experiments: Sequence[Experiment], ranks: Mapping[str, int | None]
) -> Experiment:
    """Which of a collision's tests `user` may move to its next free slot: their own (as
    owner or team member) that ranks lowest, the one that yields; a manager with none of
    their own moves the lowest-ranked of all. Anyone else may move none."""
    teams = {team.key for team in policy.teams_of(user)}
    mine = [e for e in experiments if e.owner == user or e.team in teams]
    if not mine and not policy.is_manager(user):
        keys = ", ".join(e.key for e in experiments)
        raise PermissionDenied(f"none of {keys} is yours to move")
    return max(mine or experiments, key=lambda e: ranks.get(e.key) or 0)


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
