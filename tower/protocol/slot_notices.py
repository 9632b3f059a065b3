"""Slots the plan gives to another team's test: both teams hear it once.

After a resync, the contested slots of the weeks ahead (`contested.py`) where a test of
one team keeps the slot and a test of another yields are told to both teams' channels:
one grouped message per channel, listing only what that channel has not been told. A
decision is told once, whatever the later resyncs say of it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.collisions.refs import format_ref
from tower.context import ServiceContext
from tower.outbox.kinds import NotificationKind
from tower.outbox.models import OutboxMessage
from tower.outbox.notify import batch_stem, messages_for
from tower.outbox.payloads import SlotsGiven
from tower.outbox.service import enqueue_all
from tower.policy import Policy
from tower.protocol.contested import ContestedSlot, Side, contested_slots

SLOT_GIVEN = NotificationKind.SLOT_GIVEN
WEEKS_AHEAD = 6  # as `tower arbitration` looks by default


@dataclass(frozen=True)
class GivenSlot:
    """One test of a team yielding a contested slot to another team's test."""

    slot: ContestedSlot
    keeper: Side
    yielder: Side

    @property
    def id(self) -> str:
        """What makes it the same decision on a later resync."""
        keeper, yielder = self.keeper.contender.key, self.yielder.contender.key
        return f"{format_ref(self.slot.collision)}:{keeper}>{yielder}"

    def line(self, policy: Policy) -> str:
        slot, keeper, yielder = self.slot, self.keeper, self.yielder
        start, end = yielder.planned or (None, None)
        moved = f"planned {start} to {end}" if start and end else "no slot planned yet"
        return (
            f"{slot.where} {slot.first_day} to {slot.last_day} ({format_ref(slot.collision)}): "
            f"{_who(keeper, policy)} keeps it; {_who(yielder, policy)} yields, {moved} "
            f"({slot.deciding})."
        )


def tell_given_slots(session: Session, ctx: ServiceContext) -> int:
    """Queue, per team channel, the slots newly given across teams; how many messages."""
    policy = ctx.policy
    by_channel: dict[str, dict[str, GivenSlot]] = defaultdict(dict)
    for given in _given_slots(session, policy, ctx):
        for team in (given.keeper.team, given.yielder.team):
            known = policy.team(team)
            if known is not None and known.channel:
                by_channel[known.channel][given.id] = given
    told = _told(session, list(by_channel))
    messages = []
    for channel, slots in sorted(by_channel.items()):
        new = [given for id_, given in slots.items() if id_ not in told[channel]]
        if not new:
            continue
        ids = [given.id for given in new]
        text = "\n".join(
            [
                "The plan gives a contested slot to another team's test "
                "(`tower arbitration` for the weeks ahead):",
                *(f"- {given.line(policy)}" for given in new),
            ]
        )
        stem = batch_stem(SLOT_GIVEN, ids)
        messages += messages_for(
            ctx, SLOT_GIVEN, [channel], text, dedupe_stem=stem, payload=SlotsGiven(decisions=ids)
        )
    enqueue_all(session, messages)
    return len(messages)


def _given_slots(session: Session, policy: Policy, ctx: ServiceContext) -> list[GivenSlot]:
    found = []
    for slot in contested_slots(session, policy, today=ctx.today, weeks=WEEKS_AHEAD):
        keepers = [side for side in slot.keeps if side.contender.holds]
        for yielder in slot.yields:
            keeper = next((k for k in keepers if k.team != yielder.team), None)
            if keeper is not None:
                found.append(GivenSlot(slot, keeper, yielder))
    return found


def _told(session: Session, channels: list[str]) -> dict[str, set[str]]:
    """The decisions each channel has been told already."""
    told: dict[str, set[str]] = defaultdict(set)
    if not channels:
        return told
    rows = session.execute(
        select(OutboxMessage.recipient, OutboxMessage.payload).where(
            OutboxMessage.kind == SLOT_GIVEN, OutboxMessage.recipient.in_(channels)
        )
    )
    for recipient, payload in rows:
        given = SlotsGiven.read(payload)
        told[recipient].update([] if given is None else given.decisions)
    return told


def _who(side: Side, policy: Policy) -> str:
    team = policy.team(side.team)
    name = team.name if team is not None else side.team
    rank = "unranked" if side.contender.rank is None else f"rank {side.contender.rank}"
    return f"{side.contender.key} ({name}, {side.team_kind or 'team'}, {rank})"
