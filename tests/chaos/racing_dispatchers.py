"""Dispatchers racing on one database: a `tower worker`, two loops of `tower sweep` and a
writer, all at once, under the same faulty Slack. No row may be sent twice, no sweep may
crash (SQLite's lock included), nothing may be lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from tests.chaos.actors import drain, start_worker, stop_worker, sweep, tracebacks_in, write
from tests.chaos.delivery import tally_database
from tests.chaos.setting import FAULT_RATE, SLACK_TIMEOUT, Setting

SWEEP_LOOPS = 2

MUST_BE_ZERO = ("lost", "duplicated", "same_text", "sweeps_crashed", "tracebacks")


def run(setting: Setting, scratch: Path, *, seed: int, seconds: float) -> dict[str, Any]:
    setting.slack.chaos(FAULT_RATE, seed=seed, stall=SLACK_TIMEOUT + 1)
    stop = threading.Event()
    changes: list[str] = []
    outcomes: list[tuple[bool, int]] = []
    lock = threading.Lock()

    def sweep_loop() -> None:
        while not stop.is_set():
            outcome = sweep(setting)
            with lock:
                outcomes.append(outcome)

    log_path = scratch / f"racing-worker-{setting.kind}-{seed}.log"
    with log_path.open("w") as log:
        worker = start_worker(setting, log)
        threads = [threading.Thread(target=write, args=(setting, stop, changes, 0.1))]
        threads += [threading.Thread(target=sweep_loop) for _ in range(SWEEP_LOOPS)]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        stop_worker(worker)
    drain(setting, after_weeks=1)
    counted = tally_database(setting.database_url, setting.slack)
    setting.slack.chaos(0, seed=seed, stall=0)
    return {
        **counted.as_dict(),
        "faults": sum(setting.slack.faults.values()),
        "changes": len(changes),
        "sweeps": len(outcomes),
        "sweeps_crashed": sum(1 for ok, printed in outcomes if not ok or printed),
        "tracebacks": sum(printed for _, printed in outcomes) + tracebacks_in(log_path),
    }
