"""Line-aware safe YAML loading and project-file reading: every error names `path:line`.

YAML is read with 1.2 meaning for booleans (`yes`, `no`, `on`, `off`, `y`, `n` are strings), and a
document whose aliases would expand past a node budget (a "billion laughs" bomb) is refused before
anything is built from it."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from promptci.errors import ConfigError
from promptci.types import Location


class LineDict(dict):
    """A mapping that remembers its own line and the line of every key (1-based)."""

    __slots__ = ("file", "key_lines", "line", "value_lines")
    file: str
    key_lines: dict[Any, int]
    line: int
    value_lines: dict[Any, int]


class LineList(list):
    """A sequence that remembers its own line and the line of every item (1-based)."""

    __slots__ = ("file", "item_lines", "line")
    file: str
    item_lines: list[int]
    line: int


# libyaml's parser when PyYAML was built with it: 2.7x faster on a 10,000-case file, same marks.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """A safe loader that builds LineDict/LineList and rejects duplicate keys."""


def _use_yaml_12_booleans(loader: type[yaml.resolver.BaseResolver]) -> None:
    """Only true/false (any case) are booleans, as in YAML 1.2: PyYAML's 1.1 resolver also turns
    yes/no/on/off/y/n into booleans, so `body: Yes` rendered "True" and `id: yes` was refused."""
    bool_tag = "tag:yaml.org,2002:bool"
    resolvers = {first: [(tag, regexp) for tag, regexp in entries if tag != bool_tag]
                 for first, entries in loader.yaml_implicit_resolvers.items()}
    loader.yaml_implicit_resolvers = {first: entries for first, entries in resolvers.items() if entries}
    loader.add_implicit_resolver(bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


_use_yaml_12_booleans(LineLoader)

# Nodes an alias may add beyond the document's own: far above any real suite, far below a bomb's billions.
ALIAS_NODE_BUDGET = 100_000


class AliasBomb(Exception):
    def __init__(self, line: int, detail: str) -> None:
        super().__init__(detail)
        self.line = line


def check_alias_expansion(root: yaml.Node, budget: int = ALIAS_NODE_BUDGET) -> None:
    """Raise AliasBomb when expanding every alias of the composed document would build more than
    `budget` nodes beyond the distinct ones (or when an alias refers to its own ancestor).
    Linear in the distinct nodes: each node's expanded size is computed once."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            in_progress.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] - distinct > budget:
                raise AliasBomb(node.start_mark.line + 1, f"aliases expand to over {budget:,} nodes beyond the "
                                "file's own (an alias bomb?); write the repeated data out or use fewer aliases")
            continue
        if key in sizes:
            continue
        if key in in_progress:
            raise AliasBomb(node.start_mark.line + 1, "an alias refers to a node that contains it (recursive "
                            "data); write the data out without the alias")
        in_progress.add(key)
        distinct += 1
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


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


def check_project_file(path: Path, root: Path, where: str) -> None:
    """Every file promptci reads from a project is a regular file inside it: a symlink out of the project
    is refused, and a directory, FIFO or device is named instead of being skipped or hanging on open."""
    resolved_root = root.resolve()
    target = path.resolve()
    if target != resolved_root and resolved_root not in target.parents:
        raise ConfigError(f"links to {target}, outside the project root {resolved_root}; copy the file into "
                          "the project instead of linking to it", Location(where))
    try:
        mode = os.stat(target).st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror or exc}", Location(where)) from exc
    if not stat.S_ISREG(mode):
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "a device file")
        raise ConfigError(f"is {kind}, not a file; replace it with a regular YAML/text file", Location(where))


def read_text(path: Path, root: Path) -> str:
    """The file's text; a ConfigError when it is binary, not UTF-8, not a regular file or outside the root."""
    where = relative_path(path, root)
    check_project_file(path, root, where)
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
        node = loader.get_single_node()
        if node is None:
            return None
        if "*" in text:  # no alias without one; the walk costs ~30% of parsing a 10,000-case file
            check_alias_expansion(node)
        return loader.construct_document(node)
    except AliasBomb as exc:
        raise ConfigError(f"invalid YAML: {exc}", Location(where, exc.line)) from None
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
