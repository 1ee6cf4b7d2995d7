"""Tables that fit a terminal without cutting names: name columns (prompt, model, day, run id) are never
cut or folded; number columns go first, in the order given; below the width that holds the names, one
record per line. Used by the run, dry-run, cost and runs tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Column:
    header: str
    is_name: bool = False  # never cut, never dropped


@dataclass(frozen=True)
class Sheet:
    """Rows of cells under columns, plus which number columns to drop first when space runs out."""

    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Text, ...], ...]
    drop_first: tuple[str, ...] = ()  # headers of number columns, least useful first
    bold_rows: frozenset[int] = frozenset()  # e.g. a total line


def cell_width(texts: Sequence[Text]) -> int:
    return max((text.cell_len for text in texts), default=0)


def least_width(sheet: Sheet, index: int) -> int:
    """Every cell on one line; the header may wrap between words."""
    header_word = max((len(word) for word in sheet.columns[index].header.split()), default=0)
    return max(cell_width([row[index] for row in sheet.rows]), header_word)


def build_table(sheet: Sheet, keep: Sequence[int], widths: Sequence[int]) -> Table:
    """Columns of fixed widths, so rich never squeezes a name: whether it fits is decided before."""
    table = Table(box=box.SIMPLE_HEAD, title=sheet.title, title_justify="left", pad_edge=False)
    for index, width in zip(keep, widths, strict=True):
        column = sheet.columns[index]
        table.add_column(column.header, justify="left" if column.is_name else "right", width=width)
    for number, row in enumerate(sheet.rows):
        table.add_row(*(row[index] for index in keep), style="bold" if number in sheet.bold_rows else None)
    return table


def drop_order(sheet: Sheet) -> list[int]:
    """Number columns in the order they go: those named in drop_first, then the rest from the right."""
    headers = [c.header for c in sheet.columns]
    named = [headers.index(h) for h in sheet.drop_first if h in headers]
    rest = [i for i in reversed(range(len(headers))) if not sheet.columns[i].is_name and i not in named]
    return named + rest


UNBOUNDED = 100_000  # measure as if there were room, since a measurement is clamped to the width it is given


def table_width(console: Console, table: Table) -> int:
    return Measurement.get(console, console.options.update(width=UNBOUNDED), table).maximum


def widened(sheet: Sheet, keep: Sequence[int], widths: list[int], spare: int) -> list[int]:
    """Give spare columns to headers that would otherwise wrap, left to right."""
    for position, index in enumerate(keep):
        grow = min(spare, len(sheet.columns[index].header) - widths[position])
        if grow > 0:
            widths[position] += grow
            spare -= grow
    return widths


def fitted(sheet: Sheet, console: Console) -> RenderableType:
    """The widest table that fits console.width with every name whole, else one record per line."""
    keep = list(range(len(sheet.columns)))
    for index in [None, *drop_order(sheet)]:
        if index is not None:
            keep.remove(index)
        if all(sheet.columns[i].is_name for i in keep):
            break
        widths = [least_width(sheet, i) for i in keep]
        needed = table_width(console, build_table(sheet, keep, widths))
        if needed <= console.width:
            return build_table(sheet, keep, widened(sheet, keep, widths, console.width - needed))
    return records(sheet)


def records(sheet: Sheet) -> Text:
    """One record per line: the names, then `header value` pairs; names are never broken."""
    lines = [Text(sheet.title, style="italic")] if sheet.title else []
    for number, row in enumerate(sheet.rows):
        names = [cell for column, cell in zip(sheet.columns, row, strict=True) if column.is_name and cell.plain]
        numbers = [Text(f"{column.header} ") + cell
                   for column, cell in zip(sheet.columns, row, strict=True) if not column.is_name and cell.plain]
        line = Text("  ").join(names) + Text(": ") + Text(", ").join(numbers)
        if number in sheet.bold_rows:
            line.stylize("bold")
        lines.append(line)
    return Text("\n").join(lines)


def print_fitted(sheet: Sheet, console: Console) -> None:
    shown = fitted(sheet, console)
    console.print(shown, soft_wrap=isinstance(shown, Text))  # a record line wraps in the terminal, not mid-name
