"""The kinds of notification Tower queues: one name each, stored as is in `outbox_messages.kind`.

A kind is written only from this list (`notify`, `messages_for`, `enqueue`); a stored kind
is read back as the plain string it is (`OutboxMessage.kind`, `Delivery.kind`), since a row
queued by an older version may name a kind no longer listed here. `NotificationKind.read`
says which known kind a stored string is, if any.
"""

from __future__ import annotations

import enum


class NotificationKind(enum.StrEnum):
    # A registrant's confirmation (bot/listeners/submissions.py).
    REGISTERED = "registered"
    # The review protocol (tower/protocol/notifications.py).
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_DECIDED = "approval_decided"
    APPROVAL_VOIDED = "approval_voided"
    DECISION = "decision"
    LAUNCH_BLOCKED = "launch_blocked"
    STATUS_LIVE = "status_live"
    STATUS_CANCELLED = "status_cancelled"
    RESULTS_REQUESTED = "results_requested"
    # The plan (tower/pipeline/resync.py, tower/protocol/slot_notices.py).
    DEADLINE_MISSED = "deadline_missed"
    SLOT_GIVEN = "slot_given"
    # Collisions (tower/pipeline/collision_flows.py, tower/collisions/alerts.py).
    COLLISION_OPENED = "collision_opened"
    COLLISIONS_SUMMARY = "collisions_summary"
    COLLISION_RESOLVED = "collision_resolved"
    COLLISION_ACKNOWLEDGED = "collision_acknowledged"
    COLLISION_WAIVED = "collision_waived"
    WAIVER_REQUESTED = "waiver_requested"
    # The SLA sweep (tower/sla/reminders.py): its notices, and several merged into one.
    SLA_WARNING = "sla_warning"
    SLA_BREACH = "sla_breach"
    SLA_ESCALATION = "sla_escalation"
    SLA_NOTICES = "sla_notices"
    # The weekly digest (tower/worker/jobs.py).
    DIGEST = "digest"

    @classmethod
    def read(cls, stored: str) -> NotificationKind | None:
        """The kind a stored string names; None for one this version does not know (a row
        queued by another version), which is still delivered as it is."""
        try:
            return cls(stored)
        except ValueError:
            return None
