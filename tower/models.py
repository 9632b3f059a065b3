"""Every table Tower owns, imported in one place for Alembic and for `Base.metadata`."""

from tower.audit.models import AuditEvent
from tower.collisions.models import Collision, collision_experiments
from tower.db import Base
from tower.experiments.models import Experiment
from tower.protocol.models import Decision

__all__ = ["AuditEvent", "Base", "Collision", "Decision", "Experiment", "collision_experiments"]
