"""SQLite writers wait in line on a lock file, across threads and processes, instead of
polling in SQLite's busy handler; readers never wait."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from sqlalchemy import text

from tower.db import create_database_engine, create_session_factory, read_only
from tower.sqlite_writers import WriterLine

HOLDER = textwrap.dedent(
    """
    import sys, time
    from sqlalchemy import text
    from tower.db import create_database_engine, create_session_factory
    factory = create_session_factory(create_database_engine(sys.argv[1]))
    with factory.begin() as session:
        session.execute(text("INSERT INTO marks VALUES ('held')"))
        print("writing", flush=True)
        time.sleep(float(sys.argv[2]))
    print("done", flush=True)
    """
)


def _database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'tower.db'}"
    with create_database_engine(url).begin() as connection:
        connection.execute(text("CREATE TABLE marks (what TEXT)"))
    return url


def _line_is_free(tmp_path: Path) -> bool:
    descriptor = os.open(tmp_path / "tower.db-writers.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return True
    finally:
        os.close(descriptor)


def test_a_writer_in_another_process_holds_the_line_until_its_transaction_ends(
    tmp_path: Path,
) -> None:
    url = _database(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, "1.5"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "writing"
    assert not _line_is_free(tmp_path)
    factory = create_session_factory(create_database_engine(url))
    with read_only(factory) as session:  # a reader does not wait
        assert session.scalar(text("SELECT count(*) FROM marks")) == 0
    with factory.begin() as session:  # a writer waits its turn, then writes
        session.execute(text("INSERT INTO marks VALUES ('after')"))
    assert holder.wait(timeout=30) == 0
    with factory.begin() as session:
        marks = session.scalars(text("SELECT what FROM marks ORDER BY rowid")).all()
    assert marks == ["held", "after"]
    assert _line_is_free(tmp_path)


def test_writers_on_many_threads_all_write_and_the_line_is_free_after(tmp_path: Path) -> None:
    url = _database(tmp_path)
    factory = create_session_factory(create_database_engine(url))
    failures: list[BaseException] = []

    def write(name: str) -> None:
        try:
            for step in range(10):
                with factory.begin() as session:
                    session.execute(text("INSERT INTO marks VALUES (:what)"), {"what": name})
                    time.sleep(0.001 * step)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=write, args=(f"t{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    with read_only(factory) as session:
        assert session.scalar(text("SELECT count(*) FROM marks")) == 60
    assert _line_is_free(tmp_path)


def test_a_transaction_that_fails_gives_the_line_back(tmp_path: Path) -> None:
    url = _database(tmp_path)
    factory = create_session_factory(create_database_engine(url))
    try:
        with factory.begin() as session:
            session.execute(text("INSERT INTO marks VALUES ('lost')"))
            raise RuntimeError("the change fails")
    except RuntimeError:
        pass
    assert _line_is_free(tmp_path)
    with read_only(factory) as session:
        assert session.scalar(text("SELECT count(*) FROM marks")) == 0


def test_a_writer_that_cannot_get_in_line_in_time_leaves_the_waiting_to_sqlite(
    tmp_path: Path,
) -> None:
    url = _database(tmp_path)
    engine = create_database_engine(url)
    blocker = os.open(tmp_path / "tower.db-writers.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(blocker, fcntl.LOCK_EX)  # a writer elsewhere that never lets go of the line
    try:
        line = WriterLine(str(tmp_path / "tower.db"), timeout_s=0.2)
        with engine.connect() as connection:
            waiting = threading.Thread(target=line.enter, args=(connection,), daemon=True)
            waiting.start()
            waiting.join(timeout=10)
            assert not waiting.is_alive()  # it gave up rather than waiting for ever
            line.leave(connection)  # it holds nothing, so gives nothing back
        assert not _line_is_free(tmp_path)  # and the other writer still holds the line
    finally:
        fcntl.flock(blocker, fcntl.LOCK_UN)
        os.close(blocker)
    assert _line_is_free(tmp_path)
