"""One change of each kind on the warm server, measured through Slack.

- edit: the edit modal (as *Move to next free slot* opens it) submitted with the window a
  week later; the bot acknowledges it only once the edit is committed;
- status move: *Request changes* on a submitted test, its reason modal submitted; the bot
  acknowledges only once the move is committed;
- register: the bot acknowledges the submission as soon as the form is valid and registers
  after, delivering the registrant's DM first; so a registration is timed to that DM
  reaching the fake Slack.

So each time covers the whole change on the server (the check against the portfolio, the
collision records, the score, the commit) plus the HTTP exchange, the signature check and
Bolt's parsing, and for a registration one Slack delivery: an upper bound on the change.
Each kind runs `SAMPLES` times, one at a time, each once the server has done all it was
asked before (`settle.py`); a sample the server is too busy to take is a failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial

from bot.ids import BlockId
from bot.mrkdwn import escape_typed
from bot.product_bench.errors import BenchSetupError
from bot.product_bench.fake_slack import Call, FakeSlack, dm_channel
from bot.product_bench.load import Endpoint
from bot.product_bench.modals import open_reason_modal, wait_for_call
from bot.product_bench.settle import PROMPT, TIMEOUT
from bot.product_bench.slack_requests import FORM, fill_modal, submission_body
from bot.product_bench.traffic import Registration, Traffic
from bot.views.modal import test_modal
from tower.experiments.spec import ExperimentSpec
from tower.policy import Policy

SAMPLES = 3
REGISTER, EDIT, STATUS_MOVE = "register", "edit", "status_move"
MOVED_BY = timedelta(days=7)
UNSETTLED = (
    "not measured: tower serve was still busy (undelivered messages, or /tower help not "
    f"acknowledged within {PROMPT:g} s) {TIMEOUT:g} s after the previous step"
)


@dataclass(frozen=True)
class Target:
    """An existing test the benchmark changes: its key, version and fields."""

    key: str
    version: int
    spec: ExperimentSpec


@dataclass
class ChangeTimes:
    """How long each change of one kind took (ms), and the ones that failed."""

    samples_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def submit(self, endpoint: Endpoint, body: bytes) -> tuple[float, float] | None:
        """Post `body`: when it was sent and acknowledged, or None (and the failure kept)
        unless the acknowledgement is an empty 200 (no field errors)."""
        sent = time.monotonic()
        try:
            response = endpoint.post(body, FORM)
        except OSError as error:
            self.failures.append(f"no acknowledgement: {error}")
            return None
        acked = time.monotonic()
        if response.status != 200 or response.body.strip():
            said = response.body.decode(errors="replace")
            self.failures.append(f"HTTP {response.status}: {said}"[:200])
            return None
        return sent, acked


def _edited(target: Target, policy: Policy, trigger_id: str) -> bytes:
    """The edit modal of `target` submitted by its owner, its window a week later."""
    spec = target.spec
    view = test_modal(policy, [spec.team], spec=spec, key=target.key, version=target.version)
    moved = replace(spec, start=spec.start + MOVED_BY, end=spec.end + MOVED_BY)
    answers = {
        BlockId.START.value: moved.start.isoformat(),
        BlockId.END.value: moved.end.isoformat(),
        BlockId.HYPOTHESIS.value: f"{spec.hypothesis} (moved a week later)",
    }
    return submission_body(fill_modal(view, answers), user=spec.owner, trigger_id=trigger_id)


def _dm_naming(registration: Registration) -> Callable[[Call], bool]:
    channels = {registration.owner, dm_channel(registration.owner)}
    shown = escape_typed(registration.title)  # as Slack is sent a title

    def wanted(call: Call) -> bool:
        return (
            call.method == "chat.postMessage"
            and call.args.get("channel") in channels
            and shown in str(call.args.get("text"))
        )

    return wanted


@dataclass
class ChangeBench:
    """Sends the changes to the warm server, one at a time."""

    endpoint: Endpoint
    fake: FakeSlack
    traffic: Traffic
    policy: Policy
    decider: str  # a manager who did not import the tests
    settle: Callable[[], bool]  # whether the server has done all it was asked (`settle.py`)
    gave_up: bool = False  # the server stayed busy once: the samples left are not taken

    def _settled(self) -> bool:
        if not self.gave_up and not self.settle():
            self.gave_up = True
        return not self.gave_up

    def run(self, edits: Sequence[Target], moves: Sequence[Target]) -> dict[str, ChangeTimes]:
        times = {REGISTER: ChangeTimes(), EDIT: ChangeTimes(), STATUS_MOVE: ChangeTimes()}
        for _ in range(SAMPLES):
            self._sample(times[REGISTER], self._register)
        for target in edits[:SAMPLES]:
            self._sample(times[EDIT], partial(self._edit, target))
        for target in moves[:SAMPLES]:
            self._sample(times[STATUS_MOVE], partial(self._request_changes, target))
        return times

    def _sample(self, times: ChangeTimes, change: Callable[[ChangeTimes], None]) -> None:
        """One change, once the server has done all it was asked; a step that cannot be done
        (a modal that does not open, a DM that never comes) is its failure."""
        if not self._settled():
            times.failures.append(UNSETTLED)
            return
        try:
            change(times)
        except BenchSetupError as error:
            times.failures.append(str(error))

    def _acknowledged(self, times: ChangeTimes, body: bytes) -> None:
        """A change committed before its acknowledgement: timed to the acknowledgement."""
        exchange = times.submit(self.endpoint, body)
        if exchange is not None:
            sent, acked = exchange
            times.samples_ms.append((acked - sent) * 1000)

    def _edit(self, target: Target, times: ChangeTimes) -> None:
        self._acknowledged(times, _edited(target, self.policy, self.traffic.trigger_id()))

    def _register(self, times: ChangeTimes) -> None:
        """A registration, timed to the registrant's DM."""
        request = self.traffic.register()
        registration = self.traffic.last_registration
        if request is None or registration is None:
            times.failures.append("no registration left to send")
            return
        since = len(self.fake.calls_since(0))
        exchange = times.submit(self.endpoint, request.body)
        if exchange is not None:
            dm = wait_for_call(self.fake, since, _dm_naming(registration), "the registrant's DM")
            times.samples_ms.append((dm.at - exchange[0]) * 1000)

    def _request_changes(self, target: Target, times: ChangeTimes) -> None:
        """*Request changes* on `target`: its reason modal opened, then the reason given (the
        move is timed from the reason's submission)."""
        view = open_reason_modal(
            self.endpoint,
            self.fake,
            manager=self.decider,
            channel=self.traffic.people.tower_channel,
            key=target.key,
            version=target.version,
            trigger_id=self.traffic.trigger_id(),
        )
        answers = {BlockId.REASON.value: "Please narrow the audience first (benchmark)."}
        view = fill_modal(view, answers)
        body = submission_body(view, user=self.decider, trigger_id=self.traffic.trigger_id())
        if not self._settled():
            times.failures.append(UNSETTLED)
            return
        self._acknowledged(times, body)
