"""Who hears of which collisions, and how: one alert per collision for a small change, one
summary per channel for a batch.

A change opening a few collisions alerts per collision. A batch (an import, a resync, or
one transaction opening more than `GROUP_ABOVE` for one channel) posts one summary per
channel instead: counts by kind and severity, then the most urgent collisions, each with
its actions. Follow-ups about a collision go in the thread of whichever message
announced it.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tower.collisions.details import CollisionDetails
from tower.collisions.models import AnnouncedRecord
from tower.collisions.refs import format_ref, keys_of
from tower.engine.kinds import Severity
from tower.outbox.kinds import NotificationKind
from tower.outbox.notify import batch_stem
from tower.outbox.payloads import CollisionsSummary, UrgentCollision
from tower.policy import Policy

GROUP_ABOVE = 3  # more opened collisions than this for one channel: one summary
# A summary shows this many collisions with their buttons (two blocks each), and a
# *Show all* for the rest: within Slack's 50 blocks with its header and counts.
SUMMARY_SHOWN = 20
SUMMARY_KIND = NotificationKind.COLLISIONS_SUMMARY
ALERT_KIND = NotificationKind.COLLISION_OPENED

_SEVERITY_ORDER = {Severity.BLOCKING: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class Summary:
    """One channel's summary of a batch of opened and resolved collisions."""

    recipient: str
    opened: list[AnnouncedRecord]
    resolved: list[AnnouncedRecord]

    @property
    def dedupe_stem(self) -> str:
        """Names the batch: the same collisions are summarised once per recipient."""
        return batch_stem(SUMMARY_KIND, (format_ref(r) for r in [*self.opened, *self.resolved]))

    def text(self) -> str:
        """The plain-language summary (what the console shows, and Slack's fallback)."""
        counts = Counter(f"{r.severity.value} {r.kind.value}" for r in self.opened)
        parts = [f"{count} {what}" for what, count in sorted(counts.items())]
        lines = [f"{len(self.opened)} collision(s) opened: {', '.join(parts) or 'none'}"]
        if self.resolved:
            lines[0] += f"; {len(self.resolved)} no longer hold"
        shown = self.most_urgent()
        if shown:
            lines.append("Most urgent:")
            lines += [f"{format_ref(r)}: {line_of(r)}" for r in shown]
        rest = len(self.opened) - len(shown)
        if rest > 0:
            lines.append(f"and {rest} more (Show all)")
        return "\n".join(lines)

    def most_urgent(self) -> list[AnnouncedRecord]:
        return heapq.nsmallest(SUMMARY_SHOWN, self.opened, key=urgency)

    def payload(self) -> CollisionsSummary:
        return CollisionsSummary(
            collisions=[format_ref(r) for r in self.opened],
            resolved=[format_ref(r) for r in self.resolved],
            urgent=[
                UrgentCollision(collision=format_ref(r), keys=keys_of(r), line=line_of(r))
                for r in self.most_urgent()
            ],
        )


def urgency(record: AnnouncedRecord) -> tuple[int, str, str, int]:
    """Blocking first, then the earliest first shared day, then kind, then age."""
    first = CollisionDetails.of(record).first_day
    first_day = "" if first is None else first.isoformat()
    return (_SEVERITY_ORDER[record.severity], first_day, record.kind.value, record.id)


def line_of(record: AnnouncedRecord) -> str:
    """One line naming a collision: severity, kind, tests and days."""
    details = CollisionDetails.of(record)
    keys = " + ".join(details.keys)
    return f"{record.severity.value} {record.kind.value}, {keys}, {details.window}"


def recipients(policy: Policy, record: AnnouncedRecord) -> list[str]:
    """Each involved team's channel, then the tower channel, each once."""
    found: list[str] = []
    for team_key in CollisionDetails.of(record).teams:
        team = policy.team(team_key)
        if team is not None and team.channel and team.channel not in found:
            found.append(team.channel)
    if policy.tower_channel and policy.tower_channel not in found:
        found.append(policy.tower_channel)
    return found


def summaries(
    policy: Policy,
    opened: Sequence[AnnouncedRecord],
    resolved: Sequence[AnnouncedRecord],
    *,
    batch: bool,
) -> tuple[list[Summary], set[str]]:
    """The summaries to post, and the channels they speak to (which hear of no collision
    in this batch one by one).

    In a batch every channel gets a summary; otherwise only a channel with more than
    `GROUP_ABOVE` opened collisions does, and the others get one alert per collision.
    """
    by_channel_opened = _by_channel(policy, opened)
    by_channel_resolved = _by_channel(policy, resolved)
    grouped = {
        channel
        for channel in [*by_channel_opened, *by_channel_resolved]
        if batch or len(by_channel_opened.get(channel, ())) > GROUP_ABOVE
    }
    found = [
        Summary(channel, by_channel_opened.get(channel, []), by_channel_resolved.get(channel, []))
        for channel in sorted(grouped)
    ]
    return found, grouped


def _by_channel(
    policy: Policy, records: Iterable[AnnouncedRecord]
) -> dict[str, list[AnnouncedRecord]]:
    found: dict[str, list[AnnouncedRecord]] = defaultdict(list)
    for record in records:
        for channel in recipients(policy, record):
            found[channel].append(record)
    return found
