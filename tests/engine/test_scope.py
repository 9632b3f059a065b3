"""A finding's scope is typed in the engine and written as today's text wherever it is
kept or shown (records, JSON, fingerprints); stored text reads back as the same scope."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tower.engine.scope import PAIR_SCOPE, Scope, ScopeKind

WRITTEN = [
    (PAIR_SCOPE, ""),
    (Scope(ScopeKind.SURFACE, "web/checkout"), "surface:web/checkout"),
    (Scope(ScopeKind.GROUP, "hero"), "group:hero"),
    (Scope(ScopeKind.CHANNEL, "email"), "channel:email"),
    (Scope(ScopeKind.FUNNEL, "purchase"), "purchase"),
]


@pytest.mark.parametrize(("scope", "text"), WRITTEN, ids=[scope.kind.value for scope, _ in WRITTEN])
def test_a_scope_is_written_as_records_and_json_keep_it(scope: Scope, text: str) -> None:
    assert str(scope) == text


@pytest.mark.parametrize(("scope", "text"), WRITTEN, ids=[scope.kind.value for scope, _ in WRITTEN])
def test_written_text_reads_back_as_its_scope(scope: Scope, text: str) -> None:
    assert Scope.parse(text) == scope


def test_a_group_name_may_hold_a_colon() -> None:
    assert Scope.parse("group:q3:hero") == Scope(ScopeKind.GROUP, "q3:hero")


@given(st.text())
def test_any_text_reads_back_as_itself(text: str) -> None:
    assert str(Scope.parse(text)) == text
