"""The words of protocol notifications, and who receives them.

Messages are data (`tower.messages`): the people they name and the text people typed are
parts, which each channel renders its own way."""

from __future__ import annotations

from tower.experiments.models import Experiment
from tower.messages import Message, Person, Typed
from tower.policy import Policy
from tower.protocol.gates import Gate


def managers_destination(policy: Policy) -> list[str]:
    """Where managers are told: the tower channel, else each manager directly."""
    return policy.managers_destination()


def team_channel(policy: Policy, experiment: Experiment) -> list[str]:
    team = policy.team(experiment.team)
    return [team.channel] if team is not None and team.channel else []


def label(experiment: Experiment) -> Message:
    """`T-4 'Sticky basket'`: the test's key and the title its owner typed."""
    return Message.of(f"{experiment.key} '", Typed(experiment.title), "'")


def approval_request(experiment: Experiment, gates: list[Gate], approvals: str) -> Message:
    first = Message.of(
        "Approval requested for ",
        label(experiment),
        f" ({experiment.team}, owner ",
        Person(experiment.owner),
        f"), {experiment.start} to {experiment.end}. {approvals}.",
    )
    lines = [f"{'ok' if g.passed else 'FAILS'} {g.name}: {g.message}" for g in gates]
    return Message.of("\n").join([first, *lines])


def decision(experiment: Experiment, verb: str, actor: str, reason: str) -> Message:
    text = Message.of(label(experiment), f" was {verb} by ", Person(actor))
    return Message.of(text, ": ", Typed(reason)) if reason else text + "."


def approval_voided(experiment: Experiment, changed: list[str], actor: str) -> Message:
    return Message.of(
        "The approval of ",
        label(experiment),
        " is void: ",
        Person(actor),
        f" changed {', '.join(changed)}. It is back to submitted for a new review.",
    )


def launch_blocked(experiment: Experiment, gates: list[Gate]) -> Message:
    reasons = "; ".join(f"{g.name}: {g.message}" for g in gates)
    return Message.of(label(experiment), f" did not go live on {experiment.start}: {reasons}")


def moved(experiment: Experiment, state: Message | str) -> Message:
    return Message.of(label(experiment), " is now ", state, ".")
