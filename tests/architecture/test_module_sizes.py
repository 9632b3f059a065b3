"""No module in tower/ or bot/ runs over 499 lines (`wc -l`): a longer one is split by job."""

from __future__ import annotations

from pathlib import Path

from tests.support.files import REPO

ROOT = REPO
PACKAGES = ("tower", "bot")
MAX_LINES = 499

# Over the limit today and being split on their own branches. Each must still be over it:
# once a split merges, the second test fails until its entry goes, so none outlives its
# split. Empty when they have all merged.
BEING_SPLIT: frozenset[str] = frozenset()


def line_count(path: Path) -> int:
    """Lines as `wc -l` counts them: line breaks."""
    return path.read_bytes().count(b"\n")


def module_sizes() -> dict[str, int]:
    """Every `.py` file in tower/ and bot/, by path from the repository root."""
    return {
        path.relative_to(ROOT).as_posix(): line_count(path)
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def test_no_module_is_over_the_limit() -> None:
    over = {
        path: lines
        for path, lines in module_sizes().items()
        if lines > MAX_LINES and path not in BEING_SPLIT
    }
    assert over == {}, f"split by job, to at most {MAX_LINES} lines: " + ", ".join(
        f"{path} ({lines} lines)" for path, lines in over.items()
    )


def test_the_modules_being_split_are_still_over_the_limit() -> None:
    sizes = module_sizes()
    done = sorted(path for path in BEING_SPLIT if sizes.get(path, 0) <= MAX_LINES)
    assert done == [], f"split or gone: remove from BEING_SPLIT: {', '.join(done)}"


def test_the_count_is_wc_l(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_bytes(b"a = 1\n\nb = 2")  # no break after the last line: wc -l says 2
    assert line_count(module) == 2
