"""The tests mirror the code, and no test module imports another.

A test module lives in the directory of what it tests (`tests/engine/` for `tower/engine/`,
`tests/bot/` for `bot/`); `tests/architecture/` checks the whole and `tests/db/` the
database modules at the top of `tower/`. What tests share lives in `tests/support/` (or a
directory's `conftest.py`), never in a test module another one imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.files import REPO, TESTS

# Test directories besides tower/'s packages: bot/ (for bot/), the whole (architecture/)
# and tower/'s database modules (db/: db.py, migrate.py, models.py, sqlite_writers.py,
# json_text.py).
NOT_A_PACKAGE = {"architecture", "db", "bot"}


def modules_under(tests: Path) -> list[Path]:
    return sorted(path for path in tests.rglob("test_*.py") if "__pycache__" not in path.parts)


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function, relative imports
    resolved; `from a import b` counts `a` and `a.b` (b may be a module)."""
    package = module_name(path, root).rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def imports_of_test_modules(tests: Path) -> list[str]:
    """`importer -> imported` for each test module that imports another test module."""
    root = tests.parent
    modules = {module_name(path, root) for path in modules_under(tests)}
    return [
        f"{module_name(path, root)} -> {imported}"
        for path in modules_under(tests)
        for imported in sorted(imported_modules(path, root) & modules)
    ]


def misplaced(tests: Path, packages: set[str]) -> list[str]:
    """Test modules outside a mirror directory: directly in `tests/`, in a directory that
    mirrors nothing, or in one without `__init__.py` (its modules' names would clash)."""
    problems = []
    for path in modules_under(tests):
        folder = path.parent.relative_to(tests)
        if not folder.parts:
            problems.append(f"{path.name}: directly in tests/")
        elif folder.parts[0] not in packages | NOT_A_PACKAGE:
            problems.append(f"{folder / path.name}: {folder.parts[0]}/ mirrors nothing")
        if not (path.parent / "__init__.py").exists():
            problems.append(f"{folder / path.name}: no __init__.py beside it")
    return problems


def tower_packages() -> set[str]:
    return {path.parent.name for path in (REPO / "tower").glob("*/__init__.py")}


def test_no_test_module_imports_another() -> None:
    assert imports_of_test_modules(TESTS) == []


def test_every_test_module_sits_in_a_mirror_directory() -> None:
    assert misplaced(TESTS, tower_packages()) == []


def test_an_import_of_another_test_module_is_found(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "engine").mkdir(parents=True)
    (tests / "protocol").mkdir()
    (tests / "engine" / "test_planner.py").write_text("POLICY = 1\n")
    (tests / "engine" / "test_graph.py").write_text("from .test_planner import POLICY\n")
    (tests / "protocol" / "test_gates.py").write_text(
        "def test_x():\n    from tests.engine import test_planner\n"
    )
    (tests / "protocol" / "test_edits.py").write_text(
        "import tests.engine.test_graph\nfrom bot.views.modal import test_modal\n"
    )
    assert imports_of_test_modules(tests) == [
        "tests.engine.test_graph -> tests.engine.test_planner",
        "tests.protocol.test_edits -> tests.engine.test_graph",
        "tests.protocol.test_gates -> tests.engine.test_planner",
    ]


def test_a_test_module_outside_a_mirror_directory_is_found(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "engine").mkdir(parents=True)
    (tests / "stray").mkdir()
    (tests / "__init__.py").write_text("")
    (tests / "engine" / "__init__.py").write_text("")
    (tests / "stray" / "__init__.py").write_text("")
    (tests / "engine" / "test_planner.py").write_text("")
    (tests / "test_protocol.py").write_text("")
    (tests / "stray" / "test_odd.py").write_text("")
    (tests / "engine" / "nested").mkdir()
    (tests / "engine" / "nested" / "test_deep.py").write_text("")
    assert misplaced(tests, {"engine"}) == [
        "engine/nested/test_deep.py: no __init__.py beside it",
        "stray/test_odd.py: stray/ mirrors nothing",
        "test_protocol.py: directly in tests/",
    ]
