"""Create and drop the throwaway PostgreSQL database of one CI run.

usage: postgres.py ping SERVER_URL | create SERVER_URL | drop SERVER_URL DATABASE_URL
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tower.db import normalize_url


def _admin(server_url: str) -> Engine:
    return create_engine(
        normalize_url(server_url),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3},
    )


def ping(server_url: str) -> int:
    try:
        with _admin(server_url).connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError:
        return 1
    return 0


def create(server_url: str) -> int:
    name = f"tower_ci_{uuid.uuid4().hex[:12]}"
    with _admin(server_url).connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalize_url(server_url)).set(database=name)
    print(url.render_as_string(hide_password=False))
    return 0


def drop(server_url: str, database_url: str) -> int:
    name = make_url(database_url).database
    with _admin(server_url).connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"Dropped {name}")
    return 0


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    actions: dict[str, Callable[..., int]] = {"ping": ping, "create": create, "drop": drop}
    sys.exit(actions[command](*arguments))
