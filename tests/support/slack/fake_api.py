"""A local stand-in for Slack's Web API (it lives in `bot/product_bench/fake_slack.py`, which
the product benchmark shares): records every call and answers like Slack.

Point `WebClient(base_url=fake.url)` (or `SLACK_API_URL`) at it. It can be told to answer
the next calls to a method with HTTP 429 and `Retry-After`, or with HTTP 500.
"""

from __future__ import annotations

from bot.product_bench.fake_slack import Call, FakeSlack

__all__ = ["Call", "FakeSlack"]
