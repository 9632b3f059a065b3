"""The plain-text tables of the command line: rich's look, fitted to the width."""

from __future__ import annotations

from rich.cells import cell_len

from tower.cli.table import NARROWEST, render_table


def test_a_table_has_its_title_frame_header_and_every_cell() -> None:
    lines = list(
        render_table("Portfolio: 2 tests", ["key", "title"], [["T-1", "Hero"], ["T-2", "Cart"]], 80)
    )
    assert lines == [
        "Portfolio: 2 tests",
        "┏━━━━━┳━━━━━━━┓",
        "┃ key ┃ title ┃",
        "┡━━━━━╇━━━━━━━┩",
        "│ T-1 │ Hero  │",
        "│ T-2 │ Cart  │",
        "└─────┴───────┘",
    ]


def test_a_table_wider_than_the_screen_wraps_its_widest_column_on_words() -> None:
    title = "Summer sale banner on the home page for returning customers"
    lines = list(render_table("Tests", ["key", "title"], [["T-1", title]], 30))
    assert all(len(line) <= 30 for line in lines)
    body = lines[4:-1]
    assert len(body) > 1  # the title runs over several lines of its row
    assert all(line.startswith("│ ") and line.endswith(" │") for line in body)
    words = " ".join(line.split("│")[2].strip() for line in body)
    assert words == title  # wrapped on words: nothing lost, nothing cut


def test_a_cell_of_several_lines_makes_its_row_as_tall() -> None:
    lines = list(render_table("Tests", ["key", "surfaces"], [["T-1", "web/home\nweb/cart"]], 80))
    assert lines[4:6] == ["│ T-1 │ web/home │", "│     │ web/cart │"]


def test_columns_are_never_squeezed_below_the_narrowest() -> None:
    lines = list(render_table("T", ["a" * 20, "b" * 20, "c" * 20], [["x", "y", "z"]], 10))
    assert lines[2].count("┃") == 4
    assert all(len(cell.strip()) >= 1 for cell in lines[2].strip("┃").split("┃"))
    assert len(lines[1]) == 3 * (NARROWEST + 3) + 1


def test_wide_characters_and_tabs_keep_the_frame_straight() -> None:
    title = "夏のセール 夏のセール ホームページのバナー\tand an emoji 🎉 too"
    lines = list(render_table("Tests", ["key", "title"], [["T-1", title]], 24))
    assert len({cell_len(line) for line in lines[1:]}) == 1  # every frame line as wide
    assert all(cell_len(line) <= 24 for line in lines[1:])
    body = "".join(line.split("│")[2].strip() for line in lines[4:-1])
    assert body.replace(" ", "") == title.expandtabs(4).replace(" ", "")
