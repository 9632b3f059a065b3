"""The roadmap spreadsheet format: read CSV rows into specs, write specs back out.

Pure: no database. Every bad cell is reported with its line, column and reason, and a file
with any bad row yields no rows at all.
"""

from __future__ import annotations

import csv
import enum
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, TextIO, TypeVar

from tower.errors import TowerError
from tower.experiments.spec import (
    FOOTPRINT_FIELDS,
    ExperimentKind,
    ExperimentSpec,
    ExperimentStatus,
    format_key,
    parse_key,
    validate_spec,
)
from tower.policy import Policy
from tower.text import LONG_TEXT_MAX, unix_line_breaks

# The key, every field of the spec (the footprint's together) and the state.
COLUMNS = (
    "key",
    "title",
    "team",
    "owner",
    "kind",
    *FOOTPRINT_FIELDS,
    "hypothesis",
    "impact",
    "confidence",
    "effort_weeks",
    "status",
)
LIST_SEPARATOR = ";"
DEFAULT_TRAFFIC = 100.0
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
# A spreadsheet runs a cell that starts with one of these as a formula, and an import
# strips a cell's leading tab or line break: exported text cells starting so get a leading
# `'`, which an import takes off again (after stripping). Line breaks are written `\n`.
_GUARDED_STARTS = ("=", "+", "-", "@", "\t", "\n")
_UTF16_32_MARKS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_STAND_IN_DAY = date(2000, 1, 1)
E = TypeVar("E", bound=enum.Enum)


@dataclass(frozen=True)
class RoadmapRow:
    """One valid row: the test's number when the row names a key, its fields and its state."""

    line: int
    number: int | None
    spec: ExperimentSpec
    status: ExperimentStatus


@dataclass(frozen=True, order=True)
class RowError:
    """A bad cell: the file line it is on, its column and why it is wrong."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


class RoadmapFormatError(TowerError):
    """A roadmap file with bad rows; nothing from it may be written."""

    def __init__(self, source: str, errors: list[RowError]) -> None:
        self.source = source
        self.errors = sorted(errors)
        count = len(self.errors)
        header = f"{source}: {count} problem{'s' if count != 1 else ''}; nothing was imported"
        super().__init__("\n".join([header, *(f"  {error}" for error in self.errors)]))


class _Cells:
    """Converts the cells of one row, collecting an error per bad cell."""

    def __init__(self, line: int, values: dict[str, str]) -> None:
        self.line = line
        self.values = {column: _cell_text(cell) for column, cell in values.items()}
        self.errors: list[RowError] = []

    def fail(self, column: str, message: str) -> None:
        self.errors.append(RowError(self.line, column, message))

    def text(self, column: str, *, required: bool = False) -> str:
        value = self.values[column]
        if required and not value:
            self.fail(column, "a value is required")
        return value

    def optional(self, column: str) -> str | None:
        return self.text(column) or None

    def items(self, column: str) -> tuple[str, ...]:
        parts = (part.strip() for part in self.values[column].split(LIST_SEPARATOR))
        return tuple(part for part in parts if part)

    def choice(self, column: str, kind: type[E], default: E | None = None) -> E | None:
        value = self.text(column, required=default is None)
        if not value:
            return default
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(str(member.value) for member in kind)
            self.fail(column, f"{value!r} is not one of {allowed}")
            return None

    def day(self, column: str) -> date | None:
        value = self.text(column, required=True)
        if not value:
            return None
        try:
            if not _ISO_DATE.fullmatch(value):
                raise ValueError(value)
            return date.fromisoformat(value)
        except ValueError:
            self.fail(column, f"{value!r} is not a date in YYYY-MM-DD form")
            return None

    def number(self, column: str) -> float | None:
        value = self.text(column)
        if not value:
            return None
        # Plain decimal digits only: float() would also read `1_000`, `inf` and the digits
        # of other scripts, which no spreadsheet writes and no one means.
        parsed = float(value) if _DECIMAL.fullmatch(value) else math.nan
        if not math.isfinite(parsed):
            self.fail(column, f"{value!r} is not a number (write it like 12.5)")
            return None
        return parsed


def decode_roadmap(raw: bytes, source: str = "<csv>") -> str:
    """A roadmap file's text: UTF-8, with or without a byte-order mark. Anything else (a
    UTF-16 or Latin-1 export, a binary file, NUL bytes) is `RoadmapFormatError` naming the
    line, with the remedy: save it as CSV UTF-8."""
    if raw.startswith(_UTF16_32_MARKS):
        message = "the file is UTF-16 or UTF-32: save it as CSV UTF-8"
        raise RoadmapFormatError(source, [RowError(1, "row", message)])
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        message = "holds a NUL byte: is it a binary or UTF-16 file? Save it as CSV UTF-8"
        raise RoadmapFormatError(source, [RowError(line, "row", message)])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        byte = raw[error.start]
        message = f"byte 0x{byte:02X} is not UTF-8 text (a Latin-1 export?): save it as CSV UTF-8"
        raise RoadmapFormatError(source, [RowError(line, "row", message)]) from None


def read_roadmap(stream: TextIO, policy: Policy, source: str = "<csv>") -> list[RoadmapRow]:
    """Every row of a roadmap file, or `RoadmapFormatError` listing every bad cell."""
    errors: list[RowError] = []
    records = _records(stream, errors)
    first = next(records, None)
    if first is None:
        raise RoadmapFormatError(source, errors or [RowError(1, "header", "the file is empty")])
    header_line, names = first
    header = [name.strip() for name in names]
    errors.extend(_header_errors(header_line, header))
    if errors:
        raise RoadmapFormatError(source, errors)
    rows: list[RoadmapRow] = []
    for line, cells in records:
        row, row_errors = _read_row(line, header, cells, policy)
        errors.extend(row_errors)
        if row is not None:
            rows.append(row)
    errors.extend(_duplicate_errors(rows))
    if errors:
        raise RoadmapFormatError(source, errors)
    return rows


def _records(stream: TextIO, errors: list[RowError]) -> Iterator[tuple[int, list[str]]]:
    """The file's records that are not blank, each with the line it starts on. A record the
    CSV reader cannot read (a cell past its size limit) ends the file: its error, naming
    the line, goes to `errors`."""
    reader = csv.reader(stream)
    line = 1
    while True:
        try:
            cells = next(reader, None)
        except csv.Error as error:
            errors.append(RowError(line, "row", _unreadable(error)))
            return
        if cells is None:
            return
        if any(cell.strip() for cell in cells):
            yield line, cells
        line = reader.line_num + 1


def _unreadable(error: csv.Error) -> str:
    if "field larger than field limit" in str(error):
        return (
            f"a cell is longer than {csv.field_size_limit():,} characters "
            f"(text cells hold at most {LONG_TEXT_MAX:,})"
        )
    return f"not readable as CSV: {error}"


def _header_errors(line: int, header: list[str]) -> list[RowError]:
    errors = []
    missing = [column for column in COLUMNS if column not in header]
    unknown = [column for column in header if column not in COLUMNS]
    repeated = sorted({column for column in header if header.count(column) > 1})
    if missing:
        errors.append(RowError(line, "header", f"missing columns: {', '.join(missing)}"))
    if unknown:
        errors.append(RowError(line, "header", f"unknown columns: {', '.join(unknown)}"))
    if repeated:
        errors.append(RowError(line, "header", f"columns given twice: {', '.join(repeated)}"))
    return errors


def _read_row(
    line: int, header: list[str], cells: list[str], policy: Policy
) -> tuple[RoadmapRow | None, list[RowError]]:
    if len(cells) != len(header):
        message = f"the row has {len(cells)} cells but the header has {len(header)} columns"
        return None, [RowError(line, "row", message)]
    row = _Cells(line, dict(zip(header, cells, strict=True)))
    number = None
    if key := row.text("key"):
        try:
            number = parse_key(key)
        except ValueError as error:
            row.fail("key", str(error))
    kind = row.choice("kind", ExperimentKind)
    status = row.choice("status", ExperimentStatus, default=ExperimentStatus.DRAFT)
    start, end = row.day("start"), row.day("end")
    traffic = row.number("traffic")
    values: dict[str, Any] = {
        "title": row.text("title", required=True),
        "team": row.text("team", required=True),
        "owner": row.text("owner", required=True),
        "surfaces": row.items("surfaces"),
        "audiences": row.items("audiences"),
        "exclude_audiences": row.items("exclude_audiences"),
        "traffic": DEFAULT_TRAFFIC if traffic is None else traffic,
        "exclusion_group": row.optional("exclusion_group"),
        "primary_kpi": row.optional("primary_kpi"),
        "hypothesis": row.text("hypothesis"),
        **{name: row.number(name) for name in ("baseline", "mde", "impact", "confidence")},
        "effort_weeks": row.number("effort_weeks"),
    }
    # Check the rules even when some cells did not parse, so one import reports every bad
    # cell of the row; stand-ins for unparsed cells are never reported themselves.
    unparsed = {error.column for error in row.errors}
    if {"start", "end"} & unparsed:
        unparsed |= {"start", "end"}
    spec = ExperimentSpec(
        kind=kind or ExperimentKind.AB_TEST,
        start=start or _STAND_IN_DAY,
        end=end or start or _STAND_IN_DAY,
        **values,
    )
    for problem in validate_spec(spec, policy):
        if problem.field not in unparsed:
            row.fail(problem.field, problem.message)
    if row.errors or status is None:
        return None, row.errors
    return RoadmapRow(line, number, spec, status), []


def _duplicate_errors(rows: list[RoadmapRow]) -> Iterator[RowError]:
    """A key, or the team and title of a row without a key, may appear only once per file."""
    seen_keys: dict[int, int] = {}
    seen_titles: dict[tuple[str, str], int] = {}
    for row in rows:
        if row.number is not None:
            first = seen_keys.setdefault(row.number, row.line)
            if first != row.line:
                key = format_key(row.number)
                yield RowError(row.line, "key", f"{key} is already used on line {first}")
        else:
            identity = (row.spec.team, row.spec.title)
            first = seen_titles.setdefault(identity, row.line)
            if first != row.line:
                yield RowError(
                    row.line,
                    "title",
                    f"same team and title as line {first}: give each row a key or its own title",
                )


def format_number(value: float | None) -> str:
    """Text that reads back as exactly `value`: `50`, `0.032`; empty for None."""
    if value is None:
        return ""
    return str(int(value)) if value.is_integer() else repr(value)


def _format_cell(value: object) -> str:
    formatters: dict[type, Callable[[Any], str]] = {
        tuple: lambda items: _guarded(LIST_SEPARATOR.join(items)),
        date: date.isoformat,
        float: format_number,
    }
    if value is None:
        return ""
    for kind, formatter in formatters.items():
        if isinstance(value, kind):
            return formatter(value)
    return _guarded(str(value))


def _guarded(text: str) -> str:
    """Text a spreadsheet shows as typed and an import reads back as it is: line breaks
    written `\\n`, and a leading `'` before what would start a formula or be stripped (and
    before a `'` that would otherwise be taken for that mark)."""
    text = unix_line_breaks(text)
    if text.startswith(_GUARDED_STARTS) or _unguarded(text) != text:
        return "'" + text
    return text


def _unguarded(cell: str) -> str:
    """A cell without the `'` an export put before its first character."""
    if cell.startswith("'") and (cell[1:].startswith(_GUARDED_STARTS) or cell.startswith("''")):
        return cell[1:]
    return cell


def _cell_text(cell: str) -> str:
    """What a cell says: its line breaks as `\\n`, stripped, then without an export's `'`
    (taken off last, so the tab or line break it kept stays)."""
    return _unguarded(unix_line_breaks(cell).strip())


def write_roadmap(
    stream: TextIO, rows: Iterable[tuple[int, ExperimentSpec, ExperimentStatus]]
) -> None:
    """Write a roadmap file that `read_roadmap` reads back to the same numbers, specs, states."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMNS)
    for number, spec, status in rows:
        cells = {"key": format_key(number), "status": status.value}
        cells.update({name: _format_cell(getattr(spec, name)) for name in spec.field_names()})
        writer.writerow([cells[column] for column in COLUMNS])


_FIELD_READERS: dict[str, Callable[[_Cells, str], object]] = {
    "title": lambda cells, name: cells.text(name, required=True),
    "team": lambda cells, name: cells.text(name, required=True),
    "owner": lambda cells, name: cells.text(name, required=True),
    "hypothesis": _Cells.text,
    "kind": lambda cells, name: cells.choice(name, ExperimentKind),
    "surfaces": _Cells.items,
    "audiences": _Cells.items,
    "exclude_audiences": _Cells.items,
    "start": _Cells.day,
    "end": _Cells.day,
    "traffic": _Cells.number,
    "exclusion_group": _Cells.optional,
    "primary_kpi": _Cells.optional,
    "baseline": _Cells.number,
    "mde": _Cells.number,
    "impact": _Cells.number,
    "confidence": _Cells.number,
    "effort_weeks": _Cells.number,
}


def read_fields(texts: dict[str, str]) -> tuple[dict[str, Any], list[RowError]]:
    """Typed values of some spec fields given as text, in the roadmap's cell format (an edit
    from the command line reads exactly like a spreadsheet cell); errors name the field."""
    unknown = [name for name in texts if name not in _FIELD_READERS]
    cells = _Cells(0, dict(texts))
    for name in unknown:
        cells.fail(name, f"not an editable field (fields: {', '.join(_FIELD_READERS)})")
    values = {name: _FIELD_READERS[name](cells, name) for name in texts if name in _FIELD_READERS}
    if "traffic" in texts and not texts["traffic"].strip():
        cells.fail("traffic", "a value is required")
    return values, cells.errors
