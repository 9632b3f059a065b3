"""What Tower's forms remember in `private_metadata`, as pydantic models: the one place a
memo is written (`dump`, when a modal is built) and read back (`parse`, where a listener
receives the submission), so a listener never sees the raw string.

The stored formats are those of every form already open in Slack:
  `edit_test`        `{"key": "T-4", "version": 3}`
  `decision_reason`  `{"action": "reject", "key": "T-4", "version": 3, "channel": ..., "ts": ...}`
Anything else (not JSON, a version in words, a decision the form never asks for) raises
`NotOurs`, saying what is wrong.
"""

from __future__ import annotations

import json
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.views.buttons import NotOurs
from bot.views.fitting import truncate
from tower.db_limits import INTEGER_MAX

_QUOTED = 60  # characters of a refused memo quoted back


class _Memo(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    def dump(self) -> str:
        """The memo as the form stores it."""
        return json.dumps(self.model_dump())

    @classmethod
    def parse(cls, text: str) -> Self:
        """The memo `text` stores; `NotOurs` (saying what is wrong) if it is not one."""
        try:
            return cls.model_validate_json(text or "null")
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "memo"
            shown = truncate(text, _QUOTED)
            raise NotOurs(f"its memo {shown!r} is wrong: {where}: {first['msg']}") from None


class EditMemo(_Memo):
    """The edit form: the test, and the version its editor saw."""

    key: str = Field(min_length=1)
    version: int = Field(ge=0, le=INTEGER_MAX)


class ReasonMemo(_Memo):
    """The reason form: the decision asked for, on the test at the version the manager saw,
    and where they clicked."""

    action: Literal["reject", "request_changes"]
    key: str = Field(min_length=1)
    version: int = Field(ge=0, le=INTEGER_MAX)
    channel: str = ""
    ts: str = ""
