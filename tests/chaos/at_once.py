"""`python -m tests.chaos.at_once INSTANT ARGS...`: load `tower`, wait for INSTANT (seconds
since the epoch), then run `tower ARGS`: processes started one after another act at one
instant, each having paid its start-up before it."""

from __future__ import annotations

import sys
import time

from bot.cli import build


def run(argv: list[str]) -> None:
    instant, args = float(argv[0]), argv[1:]
    main = build(freeze_start_up=True)
    delay = instant - time.time()
    if delay > 0:
        time.sleep(delay)
    main.main(args=args, prog_name="tower")


if __name__ == "__main__":
    run(sys.argv[1:])
