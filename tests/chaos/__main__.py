"""`python -m tests.chaos [--budget SECONDS] [--seed N] [--database sqlite|postgresql|both]`:
run the chaos parts, print one JSON summary (a line per part), exit 1 on any count that
must be zero and is not. `make chaos` runs it; `.ci/run` on a short budget."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.chaos import decisions, fuzzing, racing_dispatchers, security, worker_kills
from tests.chaos.setting import Setting, fresh_setting
from tower.db import normalize_url

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
FULL_BUDGET = 900  # seconds: the README's figures come from a run this long
FULL_KILLS = 12
RACING_SECONDS = 60.0
DECISION_TRIALS = 6
FUZZ_EXAMPLES = 150

# A part: the setting, a scratch folder, the seed, and the share of a full run's work to do.
Part = Callable[[Setting, Path, int, float], dict[str, Any]]


def _worker_kills(setting: Setting, scratch: Path, seed: int, scale: float) -> dict[str, Any]:
    """12 kills in a full run; fewer, at least 2, on a shorter budget."""
    kills = max(2, min(FULL_KILLS, round(FULL_KILLS * scale)))
    plan = worker_kills.Plan(kills=kills, seconds_between=(1.0, 4.0))
    return worker_kills.run(setting, scratch, seed=seed, plan=plan)


def _racing_dispatchers(setting: Setting, scratch: Path, seed: int, scale: float) -> dict[str, Any]:
    """The worker, two sweep loops and a writer at once: a minute in a full run."""
    seconds = max(10.0, RACING_SECONDS * scale)
    return racing_dispatchers.run(setting, scratch, seed=seed, seconds=seconds)


def _decisions(setting: Setting, scratch: Path, seed: int, scale: float) -> dict[str, Any]:
    """Approvals, edits and clicks racing: six trials of each in a full run."""
    return decisions.run(setting, scratch, trials=max(1, round(DECISION_TRIALS * scale)))


def _security(setting: Setting, scratch: Path, seed: int, scale: float) -> dict[str, Any]:
    """Every probe, whatever the budget: they take seconds."""
    return security.run(setting, scratch)


def _fuzzing(setting: Setting, scratch: Path, seed: int, scale: float) -> dict[str, Any]:
    """Generated roadmaps, policies and payloads: 150 of each in a full run."""
    return fuzzing.run(setting, scratch, examples=max(20, round(FUZZ_EXAMPLES * scale)))


PARTS: dict[str, tuple[Part, tuple[str, ...]]] = {
    "worker_kills": (_worker_kills, worker_kills.MUST_BE_ZERO),
    "racing_dispatchers": (_racing_dispatchers, racing_dispatchers.MUST_BE_ZERO),
    "decisions": (_decisions, decisions.MUST_BE_ZERO),
    "security": (_security, security.MUST_BE_ZERO),
    "fuzzing": (_fuzzing, fuzzing.MUST_BE_ZERO),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--budget", type=float, default=FULL_BUDGET, help="Seconds in all.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="Keep the logs and databases.")
    parser.add_argument("--part", choices=list(PARTS), action="append", help="Only these.")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres", default=POSTGRES, help="A server to create databases on.")
    options = parser.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if options.database == "both" else [options.database]
    if "postgresql" in kinds and not _answers(options.postgres):
        print(f"no PostgreSQL server answers at {options.postgres}: SQLite only", file=sys.stderr)
        kinds.remove("postgresql")
    scale = min(1.0, options.budget / FULL_BUDGET)
    results: dict[str, dict[str, Any]] = {}
    bad: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tower-chaos-") as scratch_dir:
        scratch = (
            Path(tempfile.mkdtemp(prefix="tower-chaos-")) if options.keep else Path(scratch_dir)
        )
        if options.keep:
            print(f"logs and databases kept in {scratch}", file=sys.stderr)
        # What the in-process dispatchers and writers log goes to a file, not the summary.
        logging.basicConfig(
            filename=scratch / "chaos.log",
            level=logging.INFO,
            format="%(asctime)s %(name)s %(message)s",
        )
        for kind in kinds:
            for name, (part, must_be_zero) in PARTS.items():
                if options.part and name not in options.part:
                    continue
                started = time.monotonic()
                with fresh_setting(kind, scratch, options.postgres) as setting:
                    counts = part(setting, scratch, options.seed, scale)
                counts["seconds"] = round(time.monotonic() - started, 1)
                results[f"{kind}/{name}"] = counts
                bad += [f"{kind}/{name}.{key}" for key in must_be_zero if counts.get(key)]
    lines = [f"  {json.dumps(name)}: {json.dumps(counts)}" for name, counts in results.items()]
    lines.append(f'  "failed": {json.dumps(bad)}')
    print("{\n" + ",\n".join(lines) + "\n}")
    return 1 if bad else 0


def _answers(server_url: str) -> bool:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(normalize_url(server_url), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
