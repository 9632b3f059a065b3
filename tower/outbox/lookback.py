"""Look for a message whose outcome is unknown before sending it again: found, proven
absent, or still unknown (the delivery guarantee: `tower.outbox.dispatcher`)."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from tower.outbox.notifier import (
    Delivery,
    DeliveryFailed,
    LooksBack,
    Notifier,
    OutcomeUnknown,
    RateLimited,
    Receipt,
)
from tower.outbox.outcomes import Sent

logger = logging.getLogger("tower.outbox")

# Looking for a message whose outcome is unknown starts this long before its first attempt:
# clocks of the machine and of Slack may disagree a little.
LOOK_BACK_MARGIN = timedelta(minutes=5)
LOOKUP_TRIES = 3  # a lookup that fails in passing is asked again this often in one attempt
LOOKUP_PAUSE_S = 0.2


def look_for(notifier: Notifier, delivery: Delivery, since: datetime) -> Sent | None:
    """Whether a message that may have landed did: sent (with its receipt), still unknown
    (retried later, or held for a person), or None when proven absent, to be sent."""
    if not isinstance(notifier, LooksBack):
        reason = f"{type(notifier).__name__} cannot look for what it sent"
        return Sent(failure=reason, unknown=True, permanent=True)
    try:
        found = _find(notifier, delivery, since - LOOK_BACK_MARGIN)
    except OutcomeUnknown as unknown:
        return Sent(failure=unknown.reason, unknown=True, permanent=True)
    except RateLimited as limited:
        return Sent(limited=limited)
    except DeliveryFailed as failed:
        reason = f"looking for it: {failed.reason}"
        return Sent(failure=reason, unknown=True, permanent=failed.permanent)
    except Exception as error:
        logger.exception("outbox message %d: looking for it raised", delivery.message_id)
        return Sent(failure=f"looking for it: {type(error).__name__}: {error}", unknown=True)
    if found is None:
        logger.info("outbox message %d: not there after all, sending it", delivery.message_id)
        return None
    logger.info("outbox message %d: it had landed (%s)", delivery.message_id, dict(found))
    return Sent(receipt=found)


def _find(notifier: LooksBack, delivery: Delivery, since: datetime) -> Receipt | None:
    """`notifier.find`, asked again at once after a passing failure (a lookup is a read:
    asking twice harms nothing), so one dropped answer does not cost a whole attempt."""
    attempt = 1
    while True:
        try:
            return notifier.find(delivery, since)
        except DeliveryFailed as failed:
            if failed.permanent or attempt >= LOOKUP_TRIES:
                raise
        time.sleep(LOOKUP_PAUSE_S * attempt)
        attempt += 1
