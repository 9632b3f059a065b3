"""No import cycle between the files of tower/ and bot/.

import-linter's contracts (`pyproject.toml`, run by `make lint`) keep Slack and the bot out
of tower/ and the packages acyclic. A contract between siblings cannot see a package's
`__init__.py`, nor the `__init__.py` that importing from a package runs; this test sees
every file. Imports inside functions count; those under `if TYPE_CHECKING:` never run and
do not.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import networkx as nx
import pytest


def import_graph(*roots: str) -> nx.DiGraph:
    """The modules of `roots`, each with an edge to what importing it runs: the modules it
    imports and the `__init__.py` of every package they are in, bar the importer's own
    packages (they ran before it did). An edge holds the line of the import behind it."""
    imports = grimp.build_graph(*roots, exclude_type_checking_imports=True, cache_dir=None)
    graph = nx.DiGraph()
    for importer in imports.modules:
        graph.add_node(importer)
        for imported in imports.find_modules_directly_imported_by(importer):
            details = imports.get_import_details(importer=importer, imported=imported)
            line = min(detail["line_number"] for detail in details)
            graph.add_edge(importer, imported, line=line)
            for package in _packages_of(imported):
                outside = not f"{importer}.".startswith(f"{package}.")
                if outside and not graph.has_edge(importer, package):
                    graph.add_edge(importer, package, line=line)
    return graph


def _packages_of(module: str) -> list[str]:
    """The packages `module` is in, outermost first: `a.b.c` -> `a`, `a.b`."""
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def cycles(graph: nx.DiGraph) -> list[str]:
    """One chain for each group of modules that import each other, as `a:12 -> b:3 -> a`
    (`a` imports `b` at line 12)."""
    chains = []
    for group in nx.strongly_connected_components(graph):
        if len(group) > 1:
            loop = nx.find_cycle(graph.subgraph(group))
            steps = [
                f"{importer}:{graph.edges[importer, imported]['line']}"
                for importer, imported in loop
            ]
            chains.append(f"{' -> '.join(steps)} -> {loop[0][0]} ({len(group)} files in all)")
    return sorted(chains)


def test_no_import_cycle_between_the_files_of_tower_and_bot() -> None:
    assert cycles(import_graph("tower", "bot")) == []


TANGLE = {
    "__init__.py": "",
    # a cycle through an import inside a function
    "calls.py": "def later() -> None:\n    from tangle import called\n",
    "called.py": "import tangle.calls\n",
    # no cycle: one side imports only for type checking
    "typed.py": (
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from tangle import hinted\n"
    ),
    "hinted.py": "from tangle import typed\n",
    # a cycle through a package's __init__.py, run by importing from the package
    "kit/__init__.py": "from tangle import user\n",
    "kit/part.py": "",
    "user.py": "from tangle.kit.part import PART\n",
    # no cycle: a package's __init__.py imports its files, which import each other
    "own/__init__.py": "from tangle.own import first\n",
    "own/first.py": "from tangle.own import second\n",
    "own/second.py": "",
}


def test_cycles_count_imports_in_functions_and_package_inits_not_type_checking_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, text in TANGLE.items():
        path = tmp_path / "tangle" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))

    found = cycles(import_graph("tangle"))

    assert len(found) == 2, found
    assert any("tangle.calls:2" in chain and "tangle.called:1" in chain for chain in found)
    assert any("tangle.kit:1" in chain and "tangle.user:1" in chain for chain in found)
