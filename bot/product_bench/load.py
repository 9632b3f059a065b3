"""The open-loop sender: requests go out on schedule, whatever the server is doing.

`run_load` sends `rate` requests a second for `seconds` seconds: one thread keeps the
schedule (request i is due at start + i / rate) and builds each request when it is due; a
pool of sender threads signs and posts it, so a slow answer never delays the next request.
How late a request left against its schedule is kept (`lag_ms`), so a sender that could
not keep up shows. Latencies are counted from the moment a request was sent.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bot.product_bench.slack_requests import TIMEOUT, HttpResponse, http, signature_headers
from bot.product_bench.traffic import Kind, Request, kinds_in

MAX_SENDERS = 256


@dataclass
class Sent:
    """One request and what came back: when it left, when its acknowledgement arrived."""

    request: Request
    scheduled: float  # time.monotonic() it was due at
    sent: float = 0.0
    acked: float | None = None
    status: int | None = None
    reply: bytes = b""
    error: str | None = None  # no acknowledgement: timed out, or no connection

    @property
    def lag_ms(self) -> float:
        return max(0.0, (self.sent - self.scheduled) * 1000)

    @property
    def ack_ms(self) -> float | None:
        return None if self.acked is None else (self.acked - self.sent) * 1000


@dataclass(frozen=True)
class Endpoint:
    """Where Slack's requests go, and the secret they are signed with."""

    url: str
    secret: str

    def post(self, body: bytes, content_type: str) -> HttpResponse:
        """Sign and post `body`; `OSError` when no acknowledgement comes in Slack's 3 s."""
        headers = {"Content-Type": content_type, **signature_headers(body, secret=self.secret)}
        return http(self.url, body=body, headers=headers, timeout=TIMEOUT)

    def send(self, request: Request, scheduled: float | None = None) -> Sent:
        """Post `request` now; its acknowledgement, or why none came."""
        sent = time.monotonic()
        outcome = Sent(request, sent if scheduled is None else scheduled, sent)
        try:
            response = self.post(request.body, request.content_type)
        except OSError as error:
            timed_out = isinstance(error, TimeoutError) or "timed out" in str(error)
            outcome.error = f"no acknowledgement in {TIMEOUT:g} s" if timed_out else str(error)
            return outcome
        outcome.acked = time.monotonic()
        outcome.status = response.status
        outcome.reply = response.body
        return outcome


@dataclass
class LoadRun:
    """Everything one load run sent, and the requests it had nothing to send for."""

    rate: float
    seconds: float
    sent: list[Sent] = field(default_factory=list)
    skipped: Counter[Kind] = field(default_factory=Counter)

    @property
    def planned(self) -> int:
        return len(self.sent) + sum(self.skipped.values())


def run_load(
    endpoint: Endpoint, build: Callable[[Kind], Request | None], rate: float, seconds: float
) -> LoadRun:
    """Send `rate` requests a second for `seconds` seconds, open loop; wait for every
    acknowledgement (each gives up after Slack's 3 s)."""
    run = LoadRun(rate, seconds)
    kinds = kinds_in(max(1, round(rate * seconds)))
    senders = min(MAX_SENDERS, max(8, math.ceil(rate * TIMEOUT * 2)))
    start = time.monotonic() + 0.05
    with ThreadPoolExecutor(max_workers=senders, thread_name_prefix="bench-send") as pool:
        futures = []
        for number, kind in enumerate(kinds):
            due = start + number / rate
            time.sleep(max(0.0, due - time.monotonic()))
            request = build(kind)
            if request is None:
                run.skipped[kind] += 1
                continue
            futures.append(pool.submit(endpoint.send, request, due))
        run.sent = [future.result() for future in futures]
    return run
