"""The engine is pure: no module in `tower/engine/` imports the database, the records or
the layers built on them, not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.files import REPO

ENGINE = REPO / "tower" / "engine"
FORBIDDEN = (
    "sqlalchemy",
    "tower.db",
    "tower.collisions",
    "tower.protocol",
    "tower.sla",
    "tower.outbox",
    "tower.pipeline",
    "tower.cli",
)


def imported_modules(source: str) -> set[str]:
    """Every module a source imports, at any depth: `from a import b` counts as `a` and
    `a.b` (b may be a module); relative imports keep their dots."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def is_forbidden(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in FORBIDDEN)


@pytest.mark.parametrize(
    "path", sorted(ENGINE.rglob("*.py")), ids=lambda path: str(path.relative_to(ENGINE))
)
def test_an_engine_module_imports_neither_storage_nor_the_layers_above(path: Path) -> None:
    modules = imported_modules(path.read_text(encoding="utf-8"))
    assert not any(module.startswith(".") for module in modules), "name modules absolutely"
    assert sorted(filter(is_forbidden, modules)) == []


def test_the_check_sees_imports_inside_functions_and_from_a_package() -> None:
    source = "def late():\n    from tower.collisions.kinds import CollisionStatus\n"
    assert any(map(is_forbidden, imported_modules(source)))
    assert any(map(is_forbidden, imported_modules("from tower import db\n")))
