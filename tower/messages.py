"""Messages as data: Tower's own words, the people they name, and text a person typed.

The core never writes a channel's markup. It composes a `Message` from parts: plain
strings are Tower's own words, a `Person` is someone named by user ID, and `Typed` is text a
person typed (a title, a reason), to be shown exactly as typed. Each channel renders the
parts its own way: the console writes a person `@U0ANNA` and typed text as it is
(`Message.plain`); Slack (`bot/mrkdwn.py`) mentions a person and makes everything else
inert, so typed text can never ping, link or format.

    Message.of(experiment.key, " '", Typed(title), "' was approved by ", Person(actor), ".")

The outbox stores a message's parts as JSON (`Message.to_json`): a string for Tower's
words, `{"person": "U0ANNA"}` or `{"typed": "..."}` for the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Person:
    """Someone a message names, by user ID (`U0ANNA`)."""

    user_id: str


@dataclass(frozen=True)
class Typed:
    """Text a person typed: shown as typed, never read as markup."""

    text: str


Part = str | Person | Typed


@dataclass(frozen=True)
class Message:
    """A sequence of parts; adjacent words are merged and empty ones dropped."""

    parts: tuple[Part, ...] = ()

    @classmethod
    def of(cls, *pieces: Piece) -> Message:
        """The message made of `pieces` in order (a piece may be a message itself)."""
        parts: list[Part] = []
        for piece in pieces:
            for part in piece.parts if isinstance(piece, Message) else (piece,):
                if isinstance(part, str):
                    if not part:
                        continue
                    if parts and isinstance(parts[-1], str):
                        parts[-1] += part
                        continue
                parts.append(part)
        return cls(tuple(parts))

    def join(self, pieces: Iterable[Piece]) -> Message:
        """`pieces` with this message between each two, as `str.join`."""
        joined: list[Piece] = []
        for index, piece in enumerate(pieces):
            if index:
                joined.append(self)
            joined.append(piece)
        return Message.of(*joined)

    def __add__(self, other: Piece) -> Message:
        return Message.of(self, other)

    def __radd__(self, other: Piece) -> Message:
        return Message.of(other, self)

    def plain(self) -> str:
        """The message as a console shows it: a person as `@U0ANNA`, typed text as typed."""
        return "".join(_plain(part) for part in self.parts)

    def people(self) -> list[str]:
        """The user IDs of the people it names, in order, each once."""
        named = (part.user_id for part in self.parts if isinstance(part, Person))
        return list(dict.fromkeys(named))

    def to_json(self) -> list[str | dict[str, str]]:
        """Its parts as JSON: words as strings, `{"person": id}`, `{"typed": text}`."""
        return [_part_json(part) for part in self.parts]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> Message:
        """The message `to_json` wrote; `ValueError` for anything else."""
        return cls.of(*(_part_from_json(item) for item in data))


Piece = Part | Message  # what a message is composed of


def _plain(part: Part) -> str:
    if isinstance(part, Person):
        return f"@{part.user_id}"
    if isinstance(part, Typed):
        return part.text
    return part


def _part_json(part: Part) -> str | dict[str, str]:
    if isinstance(part, Person):
        return {"person": part.user_id}
    if isinstance(part, Typed):
        return {"typed": part.text}
    return part


def _part_from_json(item: Any) -> Part:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and len(item) == 1:
        [(name, value)] = item.items()
        if name == "person" and isinstance(value, str):
            return Person(value)
        if name == "typed" and isinstance(value, str):
            return Typed(value)
    raise ValueError(f"not a message part: {item!r}")
