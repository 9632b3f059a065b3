"""Opening modals as people do, and reading back the view the bot asked Slack to show.

The register modal opens with `/tower register`, the reason modal with *Request changes* on
an approval request; the view is whatever `views.open` carried to the fake Slack. The edit
modal is built with the bot's own `test_modal`, exactly as *Move to next free slot* builds
it, for a test and version the benchmark names.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from bot.ids import ActionId, CallbackId
from bot.product_bench.errors import BenchSetupError
from bot.product_bench.fake_slack import Call, FakeSlack
from bot.product_bench.load import Endpoint
from bot.product_bench.slack_requests import FORM, click_body, command_body
from bot.views.buttons import ApprovalButton

WAIT = 10.0  # seconds a modal may take to open


def call_view(call: Call) -> dict[str, Any]:
    """The view a views.open / views.publish call carried."""
    view = call.args.get("view") or {}
    parsed = json.loads(view) if isinstance(view, str) else view
    return dict(parsed)


def wait_for_call(
    fake: FakeSlack, since: int, wanted: Callable[[Call], bool], what: str, timeout: float = WAIT
) -> Call:
    """The first call after the first `since` ones that is `wanted`; an error naming `what`
    if none comes in `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = next((c for c in fake.calls_since(since) if wanted(c)), None)
        if found is not None:
            return found
        time.sleep(0.02)
    raise BenchSetupError(f"{what} did not reach the fake Slack within {timeout:g} s")


def _opened(callback_id: CallbackId) -> Callable[[Call], bool]:
    def wanted(call: Call) -> bool:
        return call.method == "views.open" and call_view(call).get("callback_id") == callback_id

    return wanted


def open_register_modal(
    endpoint: Endpoint, fake: FakeSlack, user: str, channel: str, trigger_id: str
) -> dict[str, Any]:
    """`/tower register` as `user`: the modal the bot opened for them."""
    since = len(fake.calls_since(0))
    body = command_body("register", user=user, channel=channel, trigger_id=trigger_id)
    _acknowledged(endpoint, body, "/tower register")
    found = wait_for_call(fake, since, _opened(CallbackId.REGISTER), f"{user}'s register modal")
    return call_view(found)


def open_reason_modal(
    endpoint: Endpoint,
    fake: FakeSlack,
    *,
    manager: str,
    channel: str,
    key: str,
    version: int,
    trigger_id: str,
) -> dict[str, Any]:
    """*Request changes* on `key` at `version`, clicked by `manager`: the reason modal."""
    since = len(fake.calls_since(0))
    body = click_body(
        ActionId.REQUEST_CHANGES.value,
        ApprovalButton(key=key, version=version).value,
        user=manager,
        channel=channel,
        ts="1700000000.000001",
        trigger_id=trigger_id,
    )
    _acknowledged(endpoint, body, f"Request changes on {key}")
    found = wait_for_call(
        fake, since, _opened(CallbackId.DECISION_REASON), f"the reason modal for {key}"
    )
    return call_view(found)


def _acknowledged(endpoint: Endpoint, body: bytes, what: str) -> None:
    try:
        status = endpoint.post(body, FORM).status
    except OSError as error:
        raise BenchSetupError(f"{what} was not acknowledged by tower serve: {error}") from None
    if status != 200:
        raise BenchSetupError(f"{what} was not acknowledged by tower serve: HTTP {status}")


def metadata(view: Mapping[str, Any]) -> dict[str, Any]:
    data = json.loads(view.get("private_metadata") or "{}")
    return dict(data)
