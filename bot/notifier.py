"""The Slack side of Tower's outbox: delivers a `Delivery` as a Slack message.

Implements `tower.outbox.notifier.Notifier`, and nothing else of Tower. A recipient that is a
user ID (`U…`, `W…`) gets a direct message (the conversation is opened once per user and
remembered); a delivery that replaces an earlier message updates it in place
(`chat.update`), one that follows an earlier message answers in its thread. The receipt
returned (`{"channel", "ts"}`) is what the outbox stores, so later messages can find it.

Slack allows about one message per second per channel: sends to one channel are spaced
`min_interval` apart (waiting at most that long), other channels are not held up. What Slack
answers becomes what the dispatcher understands: HTTP 429 is `RateLimited(Retry-After)`,
errors retrying cannot fix (unknown channel, bad token, invalid blocks) are permanent
`DeliveryFailed`, server errors and a Slack that cannot be reached are transient ones. A
post whose request went out but whose answer never came (the connection dropped, the
client's timeout passed) may have landed: `OutcomeUnknown`. `chat.update` and
`conversations.open` do the same thing however often they run, so they are simply retried.

Every post carries its dedupe key in its metadata (`event_payload.dedupe_key`), so `find`
can look for a message in the channel's history (or its thread's replies) since a moment:
found, or proven absent by an answer that covers that whole time. That needs the
`channels:history`, `groups:history` and `im:history` scopes.

The client must make each call once (`retry_handlers=[]`, as `SlackSettings.client`
builds it): slack_sdk's default handler posts again after a dropped connection.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.views.messages import fallback_text, message_blocks
from tower.outbox.notifier import Delivery, DeliveryFailed, OutcomeUnknown, RateLimited, Receipt

logger = logging.getLogger("bot.notifier")

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")

# Slack errors that the same request will meet again, however often it is retried.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "msg_too_long",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_arguments",
        "restricted_action",
        "no_text",
    }
)
# chat.update cannot reach the original any more: post the new message instead.
_ORIGINAL_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
_PRUNE_AT = 1024  # pacing entries kept before stale ones are dropped
HISTORY_PAGE = 200  # messages per page when looking for one that may have landed
HISTORY_PAGES = 10  # pages read before giving up: the rest of the window stays unknown
# Beyond the client's timeouts, how long Slack may take to show a post it accepted.
LANDING_MARGIN = timedelta(seconds=10)


class SlackNotifier:
    """Delivers outbox messages to Slack through `client` (a `slack_sdk.WebClient`).

    `clock` and `sleep` pace sends to one channel; tests inject fakes so they never wait.
    `people`: the Slack users a message may mention (the policy's); a mention of anyone
    else is shown as typed.
    """

    def __init__(
        self,
        client: WebClient,
        *,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        people: Collection[str] | None = None,
    ) -> None:
        if min_interval < 0:
            raise ValueError("min_interval must be >= 0 seconds")
        if client.retry_handlers:
            raise ValueError(
                "the Slack client must not retry by itself (WebClient(retry_handlers=[])): "
                "a post retried after a dropped connection may land twice"
            )
        self._client = client
        self._people = people  # whose mentions stay mentions (the policy's); None: all
        self._min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free: dict[str, float] = {}  # channel -> when it may get the next message
        self._dm_channels: dict[str, str] = {}  # user ID -> their DM channel with the bot
        # One send: an update, a DM channel opened and a post, each within the client's
        # timeout, and the pacing between them; past it, a post it began cannot land.
        self.longest_send = (
            3 * timedelta(seconds=client.timeout) + timedelta(seconds=min_interval) + LANDING_MARGIN
        )

    def send(self, delivery: Delivery) -> Receipt | None:
        """Post, update or answer in a thread; the receipt says where the message is."""
        text = fallback_text(delivery, self._people)
        blocks = message_blocks(delivery, self._people)
        if delivery.replace:
            receipt = self._update(delivery, delivery.replace, text, blocks)
            if receipt is not None:
                return receipt
        if delivery.thread:
            channel, thread_ts = delivery.thread["channel"], delivery.thread["ts"]
        else:
            channel, thread_ts = self._channel_for(delivery.recipient), None
        self._pace(channel)
        args: dict[str, Any] = {"channel": channel, "text": text, "blocks": blocks}
        if thread_ts:
            args["thread_ts"] = thread_ts
        response = self._call(
            "chat.postMessage",
            channel,
            unsure=True,
            request=lambda: self._client.chat_postMessage(
                **args,
                unfurl_links=False,
                unfurl_media=False,
                metadata={
                    "event_type": "tower_message",
                    "event_payload": {"dedupe_key": delivery.dedupe_key, "kind": delivery.kind},
                },
            ),
        )
        logger.debug("message %d (%s) posted to %s", delivery.message_id, delivery.kind, channel)
        return {"channel": str(response["channel"]), "ts": str(response["ts"])}

    def find(self, delivery: Delivery, since: datetime) -> Receipt | None:
        """Where `delivery` was posted at or after `since`, by its dedupe key in the
        metadata of the recipient's channel and, for an answer in a thread, of the
        thread's replies (an earlier attempt made before the thread's first message was
        sent went to the channel itself); None when Slack's answers cover all that time,
        in both, without it."""
        oldest = f"{since.timestamp():.6f}"
        places: list[tuple[str, str | None]] = [(self._channel_for(delivery.recipient), None)]
        if delivery.thread:
            places.append((delivery.thread["channel"], delivery.thread["ts"]))
        for channel, thread_ts in places:
            found = self._find_in(channel, thread_ts, delivery.dedupe_key, oldest, since)
            if found is not None:
                return found
        return None

    def _find_in(
        self, channel: str, thread_ts: str | None, dedupe_key: str, oldest: str, since: datetime
    ) -> Receipt | None:
        """The message with `dedupe_key` in `channel` (in its thread `thread_ts`) since
        `oldest`; None once every page is read without it."""
        cursor = None
        for _ in range(HISTORY_PAGES):
            args: dict[str, Any] = {
                "channel": channel,
                "oldest": oldest,
                "inclusive": True,
                "limit": HISTORY_PAGE,
                "include_all_metadata": True,
            }
            if cursor:
                args["cursor"] = cursor
            page = self._page(args, thread_ts)
            for message in page.get("messages") or []:
                if _dedupe_key(message) == dedupe_key:
                    return {"channel": channel, "ts": str(message["ts"])}
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") and not cursor:
                return None
        raise OutcomeUnknown(
            f"{channel} has more than {HISTORY_PAGE * HISTORY_PAGES} messages since "
            f"{since.isoformat(timespec='seconds')}: not all of them were read"
        )

    # -- steps -----------------------------------------------------------------------------

    def _page(self, args: dict[str, Any], thread_ts: str | None) -> SlackResponse:
        """One page of a channel's history, or of a thread's replies."""
        client = self._client
        if thread_ts:
            return self._call(
                "conversations.replies",
                args["channel"],
                request=lambda: client.conversations_replies(ts=thread_ts, **args),
            )
        return self._call(
            "conversations.history",
            args["channel"],
            request=lambda: client.conversations_history(**args),
        )

    def _update(
        self, delivery: Delivery, original: Receipt, text: str, blocks: list[dict[str, Any]]
    ) -> Receipt | None:
        """Update `original` in place; None if it is gone (deleted), so a new post is due."""
        channel, ts = original["channel"], original["ts"]
        self._pace(channel)
        try:
            self._call(
                "chat.update",
                channel,
                request=lambda: self._client.chat_update(
                    channel=channel, ts=ts, text=text, blocks=blocks
                ),
                tolerate=_ORIGINAL_GONE,
            )
        except _OriginalGone:
            logger.info(
                "message %d: the message it replaces (%s %s) is gone; posting anew",
                delivery.message_id,
                channel,
                ts,
            )
            return None
        logger.debug("message %d updated %s %s", delivery.message_id, channel, ts)
        return {"channel": channel, "ts": ts}

    def _channel_for(self, recipient: str) -> str:
        """The channel to post to: the recipient itself, or a user's DM channel."""
        if not _USER_ID.fullmatch(recipient):
            return recipient
        with self._lock:
            cached = self._dm_channels.get(recipient)
        if cached is not None:
            return cached

        def open_dm() -> SlackResponse:
            return self._client.conversations_open(users=recipient)

        response = self._call("conversations.open", recipient, request=open_dm)
        channel = str(response["channel"]["id"])
        with self._lock:
            self._dm_channels[recipient] = channel
        return channel

    def _pace(self, channel: str) -> None:
        """Wait until `channel` may get another message: one per `min_interval` per channel."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_free.get(channel, now))
            wait = slot - now
            if wait > self._min_interval:  # only when many threads queue on one channel
                raise RateLimited(wait)
            self._next_free[channel] = slot + self._min_interval
            if len(self._next_free) > _PRUNE_AT:
                self._next_free = {c: t for c, t in self._next_free.items() if t > now}
        if wait > 0:
            self._sleep(wait)

    def _call(
        self,
        method: str,
        target: str,
        *,
        request: Callable[[], SlackResponse],
        tolerate: frozenset[str] = frozenset(),
        unsure: bool = False,
    ) -> SlackResponse:
        """Make one Web API call, turning what goes wrong into the outbox's outcomes.
        `unsure`: a call that acts once per run (a post), so one whose request may have
        reached Slack without an answer coming back has an unknown outcome."""
        try:
            return request()
        except SlackApiError as error:
            raise _outcome(method, target, error.response, tolerate) from None
        except (OSError, HTTPException) as error:  # refused, reset, timed out, DNS
            what = type(error.reason if isinstance(error, URLError) else error).__name__
            if unsure and not _never_sent(error):
                raise OutcomeUnknown(
                    f"Slack {method} to {target}: no answer ({what}); it may have landed"
                ) from None
            reason = f"Slack {method} to {target}: cannot reach Slack ({what})"
            raise DeliveryFailed(reason, permanent=False) from None


def _never_sent(error: BaseException) -> bool:
    """Whether the request surely never reached Slack: the connection was refused, or the
    name did not resolve (urllib wraps what fails before the answer in `URLError`)."""
    reason = error.reason if isinstance(error, URLError) else error
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)


def _dedupe_key(message: Mapping[str, Any]) -> str | None:
    """The dedupe key a message of ours carries in its metadata, if any."""
    metadata = message.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    payload = metadata.get("event_payload")
    key = payload.get("dedupe_key") if isinstance(payload, Mapping) else None
    return key if isinstance(key, str) else None


class _OriginalGone(Exception):
    """chat.update found no message to update."""


def _outcome(
    method: str, target: str, response: SlackResponse, tolerate: frozenset[str]
) -> Exception:
    """The exception that tells the dispatcher what Slack's error answer means."""
    status = response.status_code
    data = response.data if isinstance(response.data, Mapping) else {}
    error = str(data.get("error") or f"HTTP {status}")
    if status == 429 or error == "ratelimited":
        return RateLimited(_retry_after(response.headers))
    if error in tolerate:
        return _OriginalGone(error)
    reason = f"Slack {method} to {target}: {error} (HTTP {status})"
    return DeliveryFailed(reason, permanent=error in PERMANENT_ERRORS)


def _retry_after(headers: Mapping[str, Any]) -> float:
    """Seconds from the `Retry-After` header (any case, maybe a list); 1 when absent or odd."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            try:
                seconds = float(raw)
            except (TypeError, ValueError):
                break
            return max(seconds, 0.0)
    return 1.0
