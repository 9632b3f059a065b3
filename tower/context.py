"""What every use case needs besides a session: the policy, its business calendar, the time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from tower.policy import Policy
from tower.policy.calendar import BusinessCalendar


@dataclass(frozen=True)
class ServiceContext:
    """The policy in force and the moment the use case happens (injected, so tests and
    `tower sweep --now` control time)."""

    policy: Policy
    calendar: BusinessCalendar
    now: datetime

    @classmethod
    def create(cls, policy: Policy, now: datetime | None = None) -> ServiceContext:
        moment = datetime.now(UTC) if now is None else now
        if moment.tzinfo is None:
            raise ValueError("the service clock needs an aware datetime")
        return cls(policy, BusinessCalendar.from_policy(policy), moment.astimezone(UTC))

    @property
    def today(self) -> date:
        """The date in the policy's time zone."""
        return self.now.astimezone(ZoneInfo(self.policy.timezone)).date()

    def at(self, now: datetime) -> ServiceContext:
        """The same policy and calendar at another moment."""
        return ServiceContext(self.policy, self.calendar, now.astimezone(UTC))
