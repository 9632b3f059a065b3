"""Show results as a readable table or as JSON for scripts (`--format json`)."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import click
from rich.cells import cell_len
from rich.console import Console

from tower import json_text
from tower.cli.table import render_table, wrap_cells

F = TypeVar("F", bound=Callable[..., Any])

# Off a terminal (a pipe, a CI log) tables get room to breathe instead of 80 columns.
_OFF_TERMINAL_WIDTH = 180
console = Console()
if not console.is_terminal:
    console = Console(width=_OFF_TERMINAL_WIDTH)
error_console = Console(stderr=True, soft_wrap=True)


def format_option(function: F) -> F:
    """The `--format table|json` option shared by every listing."""
    option = click.option(
        "--format",
        "output_format",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="A table for people or JSON for scripts.",
    )
    return option(function)


def keyed_listing(name: str) -> Callable[[Callable[..., None]], click.Command]:
    """A command `tower NAME KEY [--format table|json]` about one test (or record): its
    function takes the app, the key and the format."""

    def command(function: Callable[..., None]) -> click.Command:
        listing = format_option(click.pass_obj(function))
        return click.command(name)(click.argument("key")(listing))

    return command


def emit_json(data: Any) -> None:
    """Print `data` as JSON on standard output: indented for a person at a terminal, one
    line for a script."""
    click.echo(json_text.dumps(data, indent=_indented()))


def _indented() -> bool:
    """Indented for a person at a terminal, one line for a script."""
    return sys.stdout.isatty()


def emit_json_list(items: Iterable[Any]) -> None:
    """`emit_json` of a list given one item at a time, written as it comes: the same text,
    without the whole list (or its text) in memory at once (20,000 collisions)."""
    indented = _indented()
    out = sys.stdout
    first = True
    for item in items:
        text = json_text.dumps(item, indent=indented)
        if not indented:
            out.write(("[" if first else ",") + text)
        else:
            out.write(("[\n" if first else ",\n") + textwrap.indent(text, "  "))
        first = False
    out.write("[]\n" if first else ("\n]\n" if indented else "]\n"))
    out.flush()


def emit_table(
    title: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]], empty: str
) -> None:
    """Print rows as a table with the given columns, or `empty` when there are none."""
    if not rows:
        console.print(empty)
        return
    headers = [column.replace("_", " ") for column in columns]
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    emit_lines(render_table(title, headers, cells, console.width))


def emit_lines(lines: Iterable[str], *, wrap: bool = False) -> None:
    """Write `lines` to standard output as they come, a few thousand at a time; off a
    terminal, or with NO_COLOR set, without styles; at a terminal (`wrap`) wrapped on
    words to its width."""
    width = console.width if wrap and console.is_terminal else None
    color = False if os.environ.get("NO_COLOR") else None  # None: styles at a terminal only
    chunk: list[str] = []
    for line in lines:
        if width is not None:
            plain = click.unstyle(line)
            if cell_len(plain) > width:  # wrapped as a table cell is, under its own indent
                text = plain.lstrip(" ")
                indent = " " * (len(plain) - len(text))
                parts = wrap_cells(text, width - len(indent))
                line = "\n".join(indent + part for part in parts)
        chunk.append(line)
        if len(chunk) >= 2000:
            click.echo("\n".join(chunk), color=color)
            chunk = []
    if chunk:
        click.echo("\n".join(chunk), color=color)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "\n".join(str(item) for item in value)
    return str(value)
