"""Where a finding is, beyond its surfaces: one surface, an exclusion group, a channel or a
funnel; and the text records and JSON keep of it (`surface:web/home`, `group:hero`,
`channel:email`, a funnel's name, `""` for a pair of tests)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ScopeKind(enum.StrEnum):
    PAIR = "pair"  # two tests on shared surfaces: the finding's surfaces say where
    SURFACE = "surface"  # one surface, over the protocol's tests at once
    GROUP = "group"  # an exclusion group, over 100% of traffic
    CHANNEL = "channel"  # a channel, over its contact cap
    FUNNEL = "funnel"  # steps of one funnel


# Written `kind:name`; a funnel is written by its name alone (a policy's funnel names hold
# no colon), a pair as nothing.
_PREFIXED = frozenset({ScopeKind.SURFACE, ScopeKind.GROUP, ScopeKind.CHANNEL})


@dataclass(frozen=True, slots=True)
class Scope:
    """What a finding is about: `kind` and the surface, group, channel or funnel `name`
    (empty for a pair)."""

    kind: ScopeKind
    name: str

    def __str__(self) -> str:
        """The scope as records and JSON keep it."""
        if self.kind in _PREFIXED:
            return f"{self.kind.value}:{self.name}"
        return self.name

    @classmethod
    def parse(cls, text: str) -> Scope:
        """The scope `text` names, as `str` writes it; any text reads back as itself."""
        prefix, colon, name = text.partition(":")
        if colon and prefix in _PREFIXED:
            return cls(ScopeKind(prefix), name)
        return cls(ScopeKind.FUNNEL, text) if text else PAIR_SCOPE


PAIR_SCOPE = Scope(ScopeKind.PAIR, "")  # one for every pair: the surfaces say where
