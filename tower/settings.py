"""Settings read from the environment when an application starts (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///tower.db"
DEFAULT_POLICY_PATH = "./tower.yaml"


@dataclass(frozen=True)
class Settings:
    """Where Tower keeps its state and where it reads its policy."""

    database_url: str
    policy_path: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read `DATABASE_URL` and `TOWER_POLICY`, falling back to the documented defaults."""
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            policy_path=Path(env.get("TOWER_POLICY") or DEFAULT_POLICY_PATH),
        )
