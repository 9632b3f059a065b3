"""Python's cyclic garbage collector, held off while the engine builds its results.

A scan or a plan allocates hundreds of thousands of small objects (findings, tuples, key
sets) that hold no reference cycles, and keeps many of them. Each batch of survivors makes
the collector walk every live object again, portfolio included: on 10,000 tests that was
a third of a scan's time, spent finding no garbage. Reference counting still frees
everything the engine drops; the collector simply runs afterwards, when it next would.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection inside the block; the previous setting is restored after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def without_collector(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` with the cyclic collector paused (see `collector_paused`)."""

    @wraps(function)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        with collector_paused():
            return function(*args, **kwargs)

    return paused
