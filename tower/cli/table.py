"""Tables as plain text, fast enough for 10,000 rows.

A `rich` table lays out every cell as styled text: 7 to 8 seconds for a 10,000-test
portfolio. Listings only need columns that fit the width, long cells wrapped on words,
and rich's box lines, so this writes them directly: the same look in a few hundred
milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rich.cells import cell_len, chop_cells

# Rich's default box (HEAVY_HEAD): a heavy frame around the header, light lines below it.
_TOP = ("┏━", "━┳━", "━┓")
_HEADER = ("┃ ", " ┃ ", " ┃")
_UNDER_HEADER = ("┡━", "━╇━", "━┩")
_ROW = ("│ ", " │ ", " │")
_BOTTOM = ("└─", "─┴─", "─┘")
# The narrowest a column is squeezed to when the table is wider than the screen.
NARROWEST = 6


def render_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], width: int
) -> Iterator[str]:
    """The lines of a table of `rows` (cells as text; a cell may hold several lines) under
    `headers`, at most `width` characters wide where the columns can be squeezed that far,
    with `title` above it."""
    rows = [[cell.expandtabs(4) for cell in row] for row in rows]  # a tab is no width
    widths = _fitted(_natural_widths(headers, rows), width)
    yield title
    yield _rule(_TOP, widths, "━")
    yield from _lines(_HEADER, headers, widths)
    yield _rule(_UNDER_HEADER, widths, "━")
    for row in rows:
        yield from _lines(_ROW, row, widths)
    yield _rule(_BOTTOM, widths, "─")


def _natural_widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    widths = [cell_len(header) for header in headers]
    for row in rows:
        for column, cell in enumerate(row):
            for line in cell.split("\n"):
                size = cell_len(line)
                if size > widths[column]:
                    widths[column] = size
    return widths


def _fitted(widths: list[int], width: int) -> list[int]:
    """The columns narrowed, widest first, until the table fits `width` (or each is at
    its narrowest)."""
    room = width - (3 * len(widths) + 1)  # each column's "│ " and " ", and the last "│"
    fitted = list(widths)
    while sum(fitted) > room:
        widest = max(range(len(fitted)), key=fitted.__getitem__)
        if fitted[widest] <= NARROWEST:
            break
        fitted[widest] -= 1
    return fitted


def _rule(box: tuple[str, str, str], widths: Sequence[int], line: str) -> str:
    left, middle, right = box
    return left + middle.join(line * size for size in widths) + right


def _lines(box: tuple[str, str, str], cells: Sequence[str], widths: Sequence[int]) -> Iterator[str]:
    """A row's lines: each cell wrapped to its column, the row as tall as its tallest."""
    left, middle, right = box
    wrapped = [wrap_cells(cell, size) for cell, size in zip(cells, widths, strict=True)]
    height = max(len(lines) for lines in wrapped)
    for index in range(height):
        parts = [
            _pad(lines[index] if index < len(lines) else "", size)
            for lines, size in zip(wrapped, widths, strict=True)
        ]
        yield left + middle.join(parts) + right


def wrap_cells(cell: str, size: int) -> list[str]:
    """The text's lines, each wrapped on words to `size` screen cells (a word longer than
    that cut into pieces; wide characters count two)."""
    lines: list[str] = []
    for line in cell.split("\n"):
        if cell_len(line) <= size:
            lines.append(line)
            continue
        current = ""
        for word in line.split(" "):
            joined = f"{current} {word}" if current else word
            if cell_len(joined) <= size:
                current = joined
                continue
            if current:
                lines.append(current)
            pieces = chop_cells(word, size) if cell_len(word) > size else [word]
            lines += pieces[:-1]
            current = pieces[-1]
        lines.append(current)
    return lines or [""]


def _pad(text: str, size: int) -> str:
    return text + " " * (size - cell_len(text))
