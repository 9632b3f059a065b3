"""Every table Tower owns, imported in one place for Alembic and for `Base.metadata`."""

from tower.audit.models import AuditEvent
from tower.collisions.models import Collision, collision_experiments
from tower.db import Base
from tower.experiments.models import Experiment
from tower.outbox.models import OutboxMessage
from tower.pipeline import registry  # noqa: F401 - stamps every change to the registry
from tower.pipeline.models import PipelineScore, PlanEntry, RegistryState
from tower.protocol.models import Decision
from tower.repeats.models import AnsweredRequest
from tower.sla.models import SlaClock

__all__ = [
    "AnsweredRequest",
    "AuditEvent",
    "Base",
    "Collision",
    "Decision",
    "Experiment",
    "OutboxMessage",
    "PipelineScore",
    "PlanEntry",
    "RegistryState",
    "SlaClock",
    "collision_experiments",
]
