"""When the reply a person sees arrived, for each request sent.

- a slash command answers in its acknowledgement: the answer is the acknowledgement, if its
  text is the one the command gives when it works (`traffic.COMMAND_TEXT`, or the key for
  `/tower show`);
- App Home: the `views.publish` for that user reaching the fake Slack (requests and
  publishes of one user are paired in order);
- a register submission: its acknowledgement carries no field errors, and the direct
  message to the registrant naming the new test's title reaches the fake Slack;
- *Acknowledge*: the `chat.postEphemeral` to the clicker naming the collision reaches the
  fake Slack, and says it was acknowledged.

Anything else is a failure, with its reason: no acknowledgement, an HTTP status other than
200, an error reply, or no answer at all. A failed request still has latencies: a reply
that came (an error reply, or an answer after a late acknowledgement) counts when it came,
and one that never came counts as long as the benchmark waited for it (`waited_ms`), so
percentiles over failures are lower bounds, never better than what people saw.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from bot.mrkdwn import escape_typed
from bot.product_bench.fake_slack import Call, FakeSlack, dm_channel
from bot.product_bench.load import Sent
from bot.product_bench.slack_requests import TIMEOUT
from bot.product_bench.traffic import ACKNOWLEDGED, COMMANDS, Kind

NO_ANSWER = "no answer"
POLL = 0.1  # seconds between two looks for answers still awaited


@dataclass(frozen=True)
class Outcome:
    """One request's latencies in milliseconds (None when it never came), how long the
    benchmark waited for its answer, and its failure."""

    kind: Kind
    ack_ms: float | None
    answer_ms: float | None
    failure: str | None
    waited_ms: float = 0.0

    @property
    def answer_or_wait_ms(self) -> float:
        """The answer's latency, or at least this long when it never came."""
        return self.waited_ms if self.answer_ms is None else self.answer_ms


class _Arrivals:
    """The fake's calls, indexed by who they are for."""

    def __init__(self, calls: Sequence[Call]) -> None:
        self.publishes: dict[str, list[Call]] = defaultdict(list)
        self.messages: dict[str, list[Call]] = defaultdict(list)
        self.ephemerals: dict[tuple[str, str], list[Call]] = defaultdict(list)
        for call in calls:
            if call.method == "views.publish":
                self.publishes[str(call.args.get("user_id"))].append(call)
            elif call.method == "chat.postMessage":
                self.messages[str(call.args.get("channel"))].append(call)
            elif call.method == "chat.postEphemeral":
                key = (str(call.args.get("user")), str(call.args.get("channel")))
                self.ephemerals[key].append(call)


def resolve(sent: Sequence[Sent], calls: Sequence[Call], now: float) -> list[Outcome]:
    """The outcome of each request in `sent`, from the fake's `calls`, as of `now`."""
    arrivals = _Arrivals(calls)
    claimed: set[int] = set()  # ids of publishes already paired with an earlier request
    return [_outcome(one, arrivals, claimed, now) for one in sorted(sent, key=lambda s: s.sent)]


def _outcome(one: Sent, arrivals: _Arrivals, claimed: set[int], now: float) -> Outcome:
    request, kind = one.request, one.request.kind
    failure = one.error or (None if one.status == 200 else f"HTTP {one.status}")
    if kind in COMMANDS:  # the acknowledgement is the answer
        waited = TIMEOUT * 1000 if one.acked is None else 0.0
        text = _reply_text(one.reply)
        if failure is None and text != request.expect:
            failure = f"error reply: {text[:120]}"
        return Outcome(kind, one.ack_ms, one.ack_ms, failure, waited)
    answer: Call | None = None
    if kind == Kind.HOME:
        answer = _first_after(arrivals.publishes[request.user], one.sent, claimed)
    elif kind == Kind.REGISTER:
        if failure is None and one.reply.strip():
            failure = f"error reply: {one.reply.decode(errors='replace')[:120]}"
        answer = _registered(arrivals, request.user, request.expect, one.sent)
    elif kind == Kind.ACKNOWLEDGE:
        told = arrivals.ephemerals[(request.user, request.channel)]
        answer = next(
            (c for c in told if c.at >= one.sent and request.expect in str(c.args.get("text"))),
            None,
        )
        said = "" if answer is None else str(answer.args.get("text"))
        if failure is None and answer is not None and not said.startswith(ACKNOWLEDGED):
            failure = f"error reply: {said[:120]}"
    waited = (now - one.sent) * 1000
    if answer is None:
        return Outcome(kind, one.ack_ms, None, failure or NO_ANSWER, waited)
    return Outcome(kind, one.ack_ms, (answer.at - one.sent) * 1000, failure, waited)


def _reply_text(reply: bytes) -> str:
    try:
        data = json.loads(reply or b"{}")
    except ValueError:
        return reply.decode(errors="replace")
    return str(data.get("text", "")) if isinstance(data, dict) else str(data)


def _first_after(calls: list[Call], after: float, claimed: set[int]) -> Call | None:
    for call in calls:
        if call.at >= after and id(call) not in claimed:
            claimed.add(id(call))
            return call
    return None


def _registered(arrivals: _Arrivals, user: str, title: str, after: float) -> Call | None:
    shown = escape_typed(title)  # as Slack is sent a title: escaped, markup made inert
    for channel in (user, dm_channel(user)):
        for call in arrivals.messages[channel]:
            if call.at >= after and shown in str(call.args.get("text")):
                return call
    return None


def await_answers(sent: Sequence[Sent], fake: FakeSlack, timeout: float) -> list[Outcome]:
    """The outcomes once every answer came, or `timeout` seconds after the last request was
    sent (what has not come by then is a failure)."""
    last = max((one.sent for one in sent), default=time.monotonic())
    while True:
        now = time.monotonic()
        outcomes = resolve(sent, fake.calls_since(0), now)
        waiting = any(o.answer_ms is None for o in outcomes)
        if not waiting or now > last + timeout:
            return outcomes
        time.sleep(POLL)
