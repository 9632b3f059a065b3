"""SQLite writers wait in line: a lock file beside the database, taken before a writing
transaction begins and given back when it ends.

SQLite lets one writer in at a time. One that finds the lock taken sleeps in SQLite's busy
handler and tries again (after 1, 2, 5 ... up to 100 ms), so under load a writer can lose
to newcomers again and again: at 20 requests/s, one *Acknowledge* in 35 waited seconds
while the median took 100 ms. Here threads of one process queue on a lock of their own,
woken as soon as it is free; then the thread at the head of its process's queue takes a
`flock` on the file, looking again every millisecond while a writer in another process
(`tower serve`'s workers, the worker, a CLI command) holds it.

The lock is only a queue in front of SQLite's own: a writer that cannot get in line within
the busy timeout goes on and leaves the waiting to SQLite, as before.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import Any

from sqlalchemy import Connection

_HELD = "tower_writer_lock"  # Connection.info: this connection holds the line
_RETRY_S = 0.001  # a writer in another process holds the line: look again this soon


class WriterLine:
    """The line of writers to one SQLite database file."""

    def __init__(self, database_path: str, timeout_s: float) -> None:
        self.path = f"{database_path}-writers.lock"
        self.timeout_s = timeout_s
        self._pid = -1
        self._threads = threading.Lock()
        self._file = -1

    def enter(self, connection: Connection) -> None:
        """Wait for this connection's turn to write (or the timeout: then SQLite's busy
        handler takes over)."""
        self._after_fork()
        deadline = time.monotonic() + self.timeout_s
        if not self._threads.acquire(timeout=self.timeout_s):
            return
        if not self._lock_file(deadline):
            self._threads.release()
            return
        connection.info[_HELD] = True

    def _lock_file(self, deadline: float) -> bool:
        """Lock the file before `deadline`, trying every millisecond; whether it did."""
        while True:
            try:
                fcntl.flock(self._descriptor(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(_RETRY_S)
            except OSError:
                return False

    def leave(self, connection: Connection, *_: Any) -> None:
        """This connection's transaction is ending: the next writer may go."""
        if connection.info.pop(_HELD, False):
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._threads.release()

    def _descriptor(self) -> int:
        if self._file < 0:
            self._file = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._file

    def _after_fork(self) -> None:
        """A forked process shares its parent's open file, and so its lock: it opens its
        own (and starts with a fresh thread lock)."""
        pid = os.getpid()
        if pid != self._pid:
            if self._file >= 0:
                os.close(self._file)  # the parent's lock stays with the parent's copy
            self._pid = pid
            self._threads = threading.Lock()
            self._file = -1
