"""Tower's commands as people run them: fresh processes, timed from start to exit, with their
peak memory.

Each process is timed from `Popen` to the moment it is reaped (start-up included), polled
every `POLL` seconds, so a time is late by at most that much. Its peak resident set size is
the larger of psutil's samples (taken at each poll) and the kernel's own peak for the
process (`ru_maxrss` from `os.wait4`), which no sampling can miss. A command of several
processes (the server: a worker per core) counts its largest process.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bot.product_bench.errors import BenchSetupError

POLL = 0.01  # seconds between two looks at a running command
SERVER_POLL = 0.2  # seconds between two memory samples of the server
STOP_WAIT = 10.0  # seconds a stopped server may take to exit before it is killed
OWN_VARIABLES = ("DATABASE_URL", "TOWER_POLICY", "PORT")


def tower_executable() -> Path:
    """The `tower` console script of this Python environment."""
    beside = Path(sys.executable).parent / "tower"
    if beside.exists():
        return beside
    found = shutil.which("tower")
    if found is None:
        raise BenchSetupError("cannot find the `tower` command beside this Python or on PATH")
    return Path(found)


def clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any Slack or Tower setting, plus `extra`: a command
    of the benchmark never reaches a real Slack workspace or another database."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SLACK_") and name not in OWN_VARIABLES
    }
    return {**kept, **extra}


def _megabytes(rss_bytes: float) -> float:
    return rss_bytes / (1024 * 1024)


def _kernel_peak_mb(usage: Any) -> float:
    """`ru_maxrss` in MB (Linux reports KiB, macOS bytes)."""
    peak = float(usage.ru_maxrss)
    return _megabytes(peak) if platform.system() == "Darwin" else peak / 1024


@dataclass
class _Memory:
    """The largest resident set size psutil saw for one process, or for the largest of its
    processes (the server runs a worker process per core under a small master)."""

    pid: int
    peak_mb: float = 0.0
    last_mb: float = 0.0
    _process: psutil.Process | None = None

    def sample(self) -> None:
        try:
            if self._process is None:
                self._process = psutil.Process(self.pid)
            family = [self._process, *self._process.children(recursive=True)]
        except psutil.Error:  # gone (or a zombie): the kernel's peak covers the end
            return
        sizes = []
        for process in family:
            try:
                sizes.append(process.memory_info().rss)
            except psutil.Error:  # a worker gone meanwhile
                continue
        if not sizes:
            return
        self.last_mb = _megabytes(max(sizes))
        self.peak_mb = max(self.peak_mb, self.last_mb)


def _reap(process: subprocess.Popen[bytes], memory: _Memory, deadline: float) -> float:
    """Wait for `process` to exit, sampling its memory; kill it past `deadline`. Its peak RSS."""
    killed = False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return max(memory.peak_mb, _kernel_peak_mb(usage))
        memory.sample()
        if not killed and time.monotonic() > deadline:
            process.kill()
            killed = True
        time.sleep(POLL)


@dataclass(frozen=True)
class CommandRun:
    """One `tower` command run to its end."""

    name: str
    args: tuple[str, ...]
    seconds: float
    peak_rss_mb: float
    exit_code: int
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text(encoding="utf-8")

    def error_tail(self, lines: int = 15) -> str:
        text = self.stderr.read_text(encoding="utf-8", errors="replace").strip()
        return "\n".join(text.splitlines()[-lines:])

    def as_dict(self) -> dict[str, Any]:
        return {
            "args": list(self.args),
            "seconds": round(self.seconds, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "exit_code": self.exit_code,
        }


@dataclass
class Tower:
    """Runs `tower` commands with one environment, keeping their output in `logs`."""

    environment: dict[str, str]
    logs: Path
    executable: Path = field(default_factory=tower_executable)

    def run(self, name: str, *args: str, timeout: float = 3600.0) -> CommandRun:
        """`tower ARGS`, timed; a command that fails is a `BenchSetupError` naming it."""
        stdout, stderr = self.logs / f"{name}.out", self.logs / f"{name}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            started = time.perf_counter()
            process = subprocess.Popen(
                [str(self.executable), *args],
                env=self.environment,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
            peak = _reap(process, _Memory(process.pid), time.monotonic() + timeout)
            seconds = time.perf_counter() - started
        run = CommandRun(name, args, seconds, peak, process.returncode, stdout, stderr)
        if run.exit_code != 0:
            raise BenchSetupError(
                f"`tower {' '.join(args)}` failed with exit code {run.exit_code}:\n"
                f"{run.error_tail()}"
            )
        return run

    def serve(self, port: int, slack: Mapping[str, str]) -> Server:
        """`tower serve --port PORT` with the Slack settings `slack`, left running."""
        stdout, stderr = self.logs / "serve.out", self.logs / "serve.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                [str(self.executable), "serve", "--port", str(port)],
                env={**self.environment, **slack},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        return Server(process, stderr)


class Server:
    """A running `tower serve`, its memory sampled in the background until it is stopped."""

    def __init__(self, process: subprocess.Popen[bytes], stderr: Path) -> None:
        self.process = process
        self.stderr = stderr
        self.started = time.perf_counter()
        self.memory = _Memory(process.pid)
        self.peak_rss_mb = 0.0
        self._stopping = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stopping.wait(SERVER_POLL):
            self.memory.sample()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the server's processes have used so far."""
        try:
            root = psutil.Process(self.process.pid)
            family = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        used = 0.0
        for process in family:
            try:
                times = process.cpu_times()
            except psutil.Error:  # a worker gone meanwhile
                continue
            used += times.user + times.system
        return used

    def error_tail(self, lines: int = 15) -> str:
        text = self.stderr.read_text(encoding="utf-8", errors="replace").strip()
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> float:
        """Stop the server (SIGTERM, then SIGKILL); its peak RSS in MB."""
        self._stopping.set()
        self._sampler.join()
        self.memory.sample()
        if self.process.returncode is not None:  # it died on its own: no usage to read
            return self.memory.peak_mb
        self.process.send_signal(signal.SIGTERM)
        self.peak_rss_mb = _reap(self.process, self.memory, time.monotonic() + STOP_WAIT)
        return self.peak_rss_mb
