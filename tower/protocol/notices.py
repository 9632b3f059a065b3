"""The words of protocol notifications, and who receives them."""

from __future__ import annotations

from tower.experiments.models import Experiment
from tower.policy import Policy
from tower.protocol.gates import Gate
from tower.text import user_text


def managers_destination(policy: Policy) -> list[str]:
    """Where managers are told: the tower channel, else each manager directly."""
    return policy.managers_destination()


def team_channel(policy: Policy, experiment: Experiment) -> list[str]:
    team = policy.team(experiment.team)
    return [team.channel] if team is not None and team.channel else []


def label(experiment: Experiment) -> str:
    return f"{experiment.key} '{user_text(experiment.title)}'"


def approval_request(experiment: Experiment, gates: list[Gate], approvals: str) -> str:
    lines = [
        f"Approval requested for {label(experiment)} ({experiment.team}, owner "
        f"<@{experiment.owner}>), {experiment.start} to {experiment.end}. {approvals}."
    ]
    lines += [f"{'ok' if g.passed else 'FAILS'} {g.name}: {g.message}" for g in gates]
    return "\n".join(lines)


def decision(experiment: Experiment, verb: str, actor: str, reason: str) -> str:
    text = f"{label(experiment)} was {verb} by <@{actor}>"
    return f"{text}: {user_text(reason)}" if reason else f"{text}."


def approval_voided(experiment: Experiment, changed: list[str], actor: str) -> str:
    return (
        f"The approval of {label(experiment)} is void: <@{actor}> changed "
        f"{', '.join(changed)}. It is back to submitted for a new review."
    )


def launch_blocked(experiment: Experiment, gates: list[Gate]) -> str:
    reasons = "; ".join(f"{g.name}: {g.message}" for g in gates)
    return f"{label(experiment)} did not go live on {experiment.start}: {reasons}"


def moved(experiment: Experiment, state: str) -> str:
    return f"{label(experiment)} is now {state}."
