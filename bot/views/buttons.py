"""What Tower's buttons carry, as pydantic models: the one place a button's value is written
(`.value`, when a message is built) and read back (`parse`, where a listener receives a
click), so a listener never sees the raw string.

The wire formats are those of every message already out in Slack:
  approval request  `KEY:VERSION`     `T-4:3`    (the test, the version under review)
  collision alert   `C-N:KEY`, `C-N`  `C-7:T-12` (the collision, its first test if known)
  *Show all*        `N`               `41`       (the summary's outbox message)
A value is one of Tower's only if it is exactly what `.value` writes (`T-4:03` is not);
anything else (tampered, damaged, a version in words, longer than a button holds) raises
`NotOurs`, saying what is wrong.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_sdk.models.blocks import ButtonElement

from bot.views.fitting import truncate
from tower.collisions.refs import parse_ref
from tower.db_limits import INTEGER_MAX

_QUOTED = 40  # characters of a refused value quoted back to the clicker


class NotOurs(ValueError):
    """A button value or form memo Tower never writes, and why (`str(error)`)."""


class TowerButton(BaseModel):
    """What one kind of Tower's buttons carries."""

    model_config = ConfigDict(frozen=True)
    kind: ClassVar[str]  # "an approval": what the button is, in words
    expected: ClassVar[str]  # its value's format, in words

    @property
    def value(self) -> str:
        raise NotImplementedError

    @classmethod
    def _fields(cls, value: str) -> dict[str, object]:
        raise NotImplementedError

    @classmethod
    def parse(cls, value: str) -> Self:
        """The button whose `.value` is exactly `value`; `NotOurs` if there is none."""
        if len(value) <= ButtonElement.value_max_length:
            try:
                button = cls.model_validate(cls._fields(value))
            except (ValidationError, ValueError):
                pass
            else:
                if button.value == value:
                    return button
        shown = truncate(value, _QUOTED)
        raise NotOurs(f"not {cls.kind} button value: {shown!r}, expected {cls.expected}")


class ApprovalButton(TowerButton):
    """Approve, Request changes, Reject: the test and the version under review."""

    kind: ClassVar[str] = "an approval"
    expected: ClassVar[str] = "KEY:VERSION, the version a number"
    key: str = Field(min_length=1)
    version: int = Field(ge=0, le=INTEGER_MAX)

    @property
    def value(self) -> str:
        return f"{self.key}:{self.version}"

    @classmethod
    def _fields(cls, value: str) -> dict[str, object]:
        key, _, version = value.rpartition(":")
        if not (version.isascii() and version.isdigit()):
            raise ValueError(version)
        return {"key": key, "version": version}


class CollisionButton(TowerButton):
    """Acknowledge, Move to next free slot, Ask for a waiver: the collision and, if known,
    its first test."""

    kind: ClassVar[str] = "a collision"
    expected: ClassVar[str] = "C-N or C-N:KEY"
    ref: str
    key: str | None = Field(default=None, min_length=1)

    @property
    def value(self) -> str:
        return f"{self.ref}:{self.key}" if self.key else self.ref

    @classmethod
    def _fields(cls, value: str) -> dict[str, object]:
        ref, _, key = value.partition(":")
        parse_ref(ref)  # C-N, within the database's ids
        return {"ref": ref, "key": key or None}


class ShowAllButton(TowerButton):
    """*Show all* on a collisions summary: the summary's outbox message."""

    kind: ClassVar[str] = "a summary"
    expected: ClassVar[str] = "the number of a summary Tower sent"
    message_id: int = Field(ge=1, le=INTEGER_MAX)

    @property
    def value(self) -> str:
        return str(self.message_id)

    @classmethod
    def _fields(cls, value: str) -> dict[str, object]:
        if not (value.isascii() and value.isdigit() and len(value) <= len(str(INTEGER_MAX))):
            raise ValueError(value)
        return {"message_id": value}
