"""`cases_from:` data files (CSV, JSONL) -> case mappings that remember their data file and row.

A CSV column `id`, `expected`, `tags` (comma-separated), `description` fills that case key; a column
`comparators`, `comparators+` or `transform` holds that case key as JSON (an empty cell: none); a column
`input.NAME` fills input NAME; every other column is an input variable too. A JSONL line is an object
with the same keys; its `input` (a mapping) is merged with its other non-case keys.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from promptci.errors import ConfigError, Problem
from promptci.jsontext import JSONTextError, read_json
from promptci.loading.yamlfile import LineDict, read_text, relative_path
from promptci.types import Location

CASE_COLUMNS = ("id", "expected", "tags", "description")
CHECK_KEYS = ("comparators", "comparators+", "transform")  # per-row checks, JSON in a CSV cell
DATA_SUFFIXES = (".csv", ".jsonl")


def read_case_rows(path: Path, root: Path) -> tuple[list[Row], list[Problem]]:
    """The rows of a .csv or .jsonl data file (the caller checks the suffix) as case mappings whose lines
    are their row, and the problems."""
    where = relative_path(path, root)
    if not path.is_file():
        return [], [Problem("data file named by `cases_from` does not exist", Location(where))]
    try:
        text = read_text(path, root)
    except ConfigError as exc:
        return [], list(exc.problems)
    if path.suffix.lower() == ".csv":
        return _csv_rows(text, where)
    return _jsonl_rows(text, where)


class Row(LineDict):
    """A data-file row as a case mapping: every key's line is the row's line."""

    __slots__ = ()
    line: int
    file: str
    key_lines: dict[str, int]
    value_lines: dict[str, int]


def _row(values: dict[str, Any], where: str, line: int) -> Row:
    row = Row(values)
    row.line, row.file = line, where
    row.key_lines = dict.fromkeys(values, line)
    row.value_lines = row.key_lines
    return row


def _csv_rows(text: str, where: str) -> tuple[list[Row], list[Problem]]:
    reader = csv.reader(io.StringIO(text, newline="\n"))  # lines end at \n only, as grep -n counts them
    header = next(reader, None)
    if not header or not any(name.strip() for name in header):
        return [], [Problem("a CSV `cases_from` file needs a header row naming its columns, e.g. "
                            "id,question,expected", Location(where, 1))]
    names = [name.strip() for name in header]
    problems = [Problem(f"column {n!r} appears twice in the header", Location(where, 1))
                for i, n in enumerate(names) if n in names[:i]]
    if any(not name for name in names):
        problems.append(Problem("a header column has no name", Location(where, 1)))
    if problems:
        return [], problems
    rows: list[Row] = []
    line = reader.line_num + 1
    try:
        for values in reader:
            if any(value.strip() for value in values):
                if len(values) == len(names):
                    case, problem = _case_from_columns(dict(zip(names, values, strict=True)))
                    if problem:
                        problems.append(Problem(problem, Location(where, line)))
                    else:
                        rows.append(_row(case, where, line))
                else:
                    problems.append(Problem(f"row has {len(values)} value(s) but the header names {len(names)} "
                                            "column(s)", Location(where, line)))
            line = reader.line_num + 1  # a quoted value may span lines: a row's line is where it starts
    except csv.Error as exc:  # an unclosed quote, a field over the csv module's size limit
        problems.append(Problem(f"invalid CSV: {exc}", Location(where, line)))
    return rows, problems


def _case_from_columns(columns: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    case: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    for name, value in columns.items():
        if name in CHECK_KEYS:
            if value.strip():
                try:
                    case[name] = read_json(value)
                except JSONTextError as exc:
                    return case, (f"column {name!r} must hold JSON (e.g. [{{\"type\": \"contains\", \"value\": "
                                  f"\"x\"}}]): {exc} in the cell")
        elif name == "tags":
            case["tags"] = [tag.strip() for tag in value.split(",") if tag.strip()]
        elif name in CASE_COLUMNS:
            if value != "" or name in ("id", "expected"):
                case[name] = value
        else:
            inputs[name.removeprefix("input.")] = value
    case["input"] = inputs
    return case, None


def _jsonl_rows(text: str, where: str) -> tuple[list[Row], list[Problem]]:
    rows: list[Row] = []
    problems: list[Problem] = []
    for line, raw in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028 may sit inside a JSON string
        if not raw.strip():
            continue
        try:
            value = read_json(raw)
        except JSONTextError as exc:
            problems.append(Problem(f"invalid JSON: {exc}", Location(where, line)))
            continue
        if not isinstance(value, dict):
            problems.append(Problem(f"each line must be a JSON object (a case), got {type(value).__name__}",
                                    Location(where, line)))
            continue
        rows.append(_row(_case_from_object(value), where, line))
    return rows, problems


def _case_from_object(value: dict[str, Any]) -> dict[str, Any]:
    case = {k: v for k, v in value.items() if k in (*CASE_COLUMNS, *CHECK_KEYS, "metadata")}
    inputs = {k: v for k, v in value.items() if k not in case and k != "input"}
    given = value.get("input")
    case["input"] = {**given, **inputs} if isinstance(given, dict) else (given if given is not None else inputs)
    return case
