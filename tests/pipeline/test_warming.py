"""A server's warm index: built at start, kept up while requests come, left alone while
none do (an idle server does no work), and caught up at once when a request comes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.support.files import SMALL_POLICY
from tests.support.people import MANAGER
from tests.support.slack.harness import BAU_TEST, spec, wait_for
from tower import migrate
from tower.context import ServiceContext
from tower.db import create_database_engine, create_session_factory, read_only
from tower.experiments import service as experiment_service
from tower.experiments.spec import ExperimentStatus
from tower.pipeline import registry, warming
from tower.pipeline.index import warm_index
from tower.policy import Policy


@pytest.fixture
def factory(scratch_database_url: str) -> Iterator[sessionmaker[Session]]:
    migrate.upgrade(scratch_database_url)
    engine = create_database_engine(scratch_database_url)
    yield create_session_factory(engine)
    engine.dispose()


@pytest.fixture
def warm_server(
    factory: sessionmaker[Session], small_policy: Policy
) -> Iterator[Callable[[], warming.Warming]]:
    """Starts a server's warming (index, working plan, keep-up) on `factory`; it stops with
    the test."""
    started: list[warming.Warming] = []

    def start() -> warming.Warming:
        started.append(
            warming.warm_up_in_background(factory, ServiceContext.create(small_policy), slots=True)
        )
        return started[-1]

    yield start
    for each in started:
        each.stop()


def _register(factory: sessionmaker[Session], number: int) -> None:
    with factory.begin() as session:
        experiment_service.create(
            session,
            number=number,
            spec=spec(**BAU_TEST),
            status=ExperimentStatus.APPROVED,
            actor=MANAGER,
        )


class _Looks:
    """Stands in for `keep_up`: counts the looks at the registry, and can be waited on."""

    def __init__(self) -> None:
        self.count = 0
        self.looked = threading.Event()

    def __call__(self, *_args: object) -> bool:
        self.count += 1
        self.looked.set()
        return False


def test_the_index_is_built_at_start_and_says_so(
    factory: sessionmaker[Session], warm_server: Callable[[], warming.Warming]
) -> None:
    _register(factory, 1)
    started = warm_server()
    assert started.wait_warm(30.0)
    assert started.warm


def test_an_idle_server_does_not_look_and_a_request_wakes_it(
    warm_server: Callable[[], warming.Warming], monkeypatch: pytest.MonkeyPatch
) -> None:
    looks = _Looks()
    monkeypatch.setattr(warming, "keep_up", looks)
    monkeypatch.setattr(warming, "KEEP_UP_EVERY", 0.01)
    monkeypatch.setattr(warming, "BUSY_FOR", 0.3)
    monkeypatch.setattr(warming, "IDLE_LOOK_EVERY", 3600.0)
    started = warm_server()
    assert started.wait_warm(30.0)

    time.sleep(0.5)
    assert looks.count == 0, "no request has come: the server should not have looked"

    started.nudge()
    assert looks.looked.wait(5.0), "a request should wake the keep-up at once"
    wait_for(lambda: looks.count >= 5, what="looks every KEEP_UP_EVERY while requests come")

    time.sleep(0.6)  # past BUSY_FOR since the request: idle again
    resting = looks.count
    time.sleep(0.5)
    assert looks.count == resting, "an idle server should stop looking"


def test_a_request_catches_the_index_up_with_another_processs_change(
    scratch_database_url: str,
    factory: sessionmaker[Session],
    small_policy: Policy,
    warm_server: Callable[[], warming.Warming],
) -> None:
    _register(factory, 1)
    ctx = ServiceContext.create(small_policy)
    started = warm_server()
    assert started.wait_warm(30.0)
    with read_only(factory) as session:
        index = warm_index(session, small_policy, ctx.today)

    env = {**os.environ, "DATABASE_URL": scratch_database_url, "TOWER_POLICY": str(SMALL_POLICY)}
    edited = subprocess.run(
        [str(Path(sys.executable).parent / "tower"), "edit", "T-1", "--by", MANAGER,
         "--set", "title=Basket banner, larger"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    with read_only(factory) as session:
        changed = registry.peek(session)
    assert index.mark != changed  # another process's change: not seen here yet

    started.nudge()
    wait_for(lambda: index.mark == changed, what="the keep-up takes the change in")
