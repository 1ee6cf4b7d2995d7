"""Straight layers: imports point one way, down the layer list of /work/shared/STYLE.md (LAYERS below), and no
import cycle among promptci's modules, counting imports inside functions too (a lazy import still ties two
modules together). Only `if TYPE_CHECKING:` imports are left out: they never run."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "promptci"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_modules(tree: ast.AST, this: str, is_package: bool) -> Iterator[str]:
    def visit(node: ast.AST) -> Iterator[ast.AST]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and is_type_checking(child):
                yield from (n for branch in child.orelse for n in [branch, *visit(branch)])
                continue
            yield child
            yield from visit(child)

    base = this.split(".") if is_package else this.split(".")[:-1]
    for node in visit(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = ".".join(base[: len(base) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (parent, node.module or "") if part)
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)  # `from promptci import registry`


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path): path for path in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = imported_modules(tree, name, path.name == "__init__.py")
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


# Top first: a module may import its own layer and the layers above it, never one below. A name matches a
# module and its submodules; the longest match wins (verdict.money is a leaf even types.py may use, the rest
# of verdict/ sits between compare/stats and reporting). Where STYLE.md's list is not literal: the store sits
# above cost/ and the client (the ledger reads it, the client caches in it); merge and history are read-only
# views for the library surface.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("types", "errors", "verdict", "verdict.money", "sequential", "stats", "secrets", "limitheaders", "gitinfo",
     "gitrev", "migrations", "selection", "ratelimit", "retrying", "scaffold", "prcomment", "codeimports", "interrupts",
     "jsontext", "ranges", "spender", "reliability", "seqtarget"),
    ("registry",),
    ("loading.yamlfile",),
    ("config", "usercode", "comparator_specs", "transforms"),
    ("project", "dbfile", "reviewfile"),
    ("loading",),
    ("providers",),
    ("modelcalls",),
    ("comparators",),
    ("store", "recordings", "pgstore", "storechoice", "storecopy"),
    ("cost",),
    ("client",),
    ("plan", "changes", "planning", "batch", "conversation", "calibration"),
    ("runner",),
    ("session", "drift"),
    ("compare", "metrics", "variation"),
    ("verdict.policy",),
    ("verdict.summary", "verdict.paired"),
    ("matrix",),
    ("verdict.gates",),
    ("verdict.diff",),
    ("reporting",),
    ("importers", "history", "merge", "accept", "diffing", "api", "gc", "prcheck", "calibrating"),
    ("viewer",),
    ("cli", "pytest_plugin", "__main__"),
)


def layer_of(module: str) -> int | None:
    name = module.removeprefix("promptci").lstrip(".")
    best: tuple[int, int] | None = None
    for index, names in enumerate(LAYERS):
        for prefix in names:
            if (name == prefix or name.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        if module == "promptci":
            continue
        for target in sorted(targets - {"promptci"}):
            mine, theirs = layer_of(module), layer_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                found.append(f"{module} (layer {mine}) imports {target} (layer {theirs})")
    return found


def test_every_module_has_a_layer() -> None:
    assert [m for m in import_graph() if m != "promptci" and layer_of(m) is None] == []


def test_no_import_runs_back_up_the_layers() -> None:
    assert upward_imports(import_graph()) == []


def test_an_upward_import_is_found() -> None:
    graph = {"promptci.types": {"promptci.reporting.stats"}, "promptci.reporting.stats": {"promptci.types"}}
    assert upward_imports(graph) == ["promptci.types (layer 0) imports promptci.reporting.stats (layer 21)"]


def test_the_graph_sees_function_level_and_relative_imports() -> None:
    graph = import_graph()
    assert "promptci.loading.yamlfile" in graph["promptci.config"]  # imported inside functions
    assert "promptci.client" in graph["promptci.session"]


def test_no_import_cycle_among_promptci_modules() -> None:
    assert cycles(import_graph()) == []


def test_a_cycle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
