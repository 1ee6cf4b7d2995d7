"""Name -> factory for comparators and providers.

Built-ins are listed as "module:attr" strings and loaded exactly like third-party entry points
(groups `promptci.comparators` and `promptci.providers`), so every test exercises the plugin path.
Nothing is imported until a name is asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from promptci.errors import ComparatorError, PromptCIError

BUILTIN_COMPARATORS: dict[str, str] = {
    "exact": "promptci.comparators.text:exact",
    "normalized": "promptci.comparators.text:normalized",
    "contains": "promptci.comparators.text:contains",
    "not_contains": "promptci.comparators.text:not_contains",
    "regex": "promptci.comparators.text:regex",
    "similarity": "promptci.comparators.text:similarity",
    "json": "promptci.comparators.structured:json_equal",
    "json_schema": "promptci.comparators.structured:json_schema",
    "streams_json": "promptci.comparators.structured:streams_json",
    "latency": "promptci.comparators.budget:latency",
    "cost": "promptci.comparators.budget:cost",
    "python": "promptci.comparators.custom:python",
    "json_fields": "promptci.comparators.fields:json_fields",
    "tool_called": "promptci.comparators.fields:tool_called",
    "tool_sequence": "promptci.comparators.trajectory:tool_sequence",
    "max_tool_calls": "promptci.comparators.trajectory:max_tool_calls",
    "turns": "promptci.comparators.trajectory:turns",
    "expr": "promptci.comparators.expr:expr",
    "is_json": "promptci.comparators.structured:is_json",
    "starts_with": "promptci.comparators.text:starts_with",
    "not_regex": "promptci.comparators.text:not_regex",
    "one_of": "promptci.comparators.text:one_of",
    "length": "promptci.comparators.measures:length",
    "fuzzy": "promptci.comparators.measures:fuzzy",
    "levenshtein": "promptci.comparators.measures:levenshtein",
    "llm_judge": "promptci.comparators.judge:llm_judge",
}

BUILTIN_PROVIDERS: dict[str, str] = {
    "echo": "promptci.providers.offline:echo",
    "replay": "promptci.providers.offline:replay",
    "python": "promptci.providers.offline:python_function",
    "openai": "promptci.providers.openai:openai_provider",
    "anthropic": "promptci.providers.anthropic:anthropic_provider",
}


# What `promptci providers` says of the built-ins (their factories live in modules others tune for speed).
BUILTIN_PROVIDER_DESCRIPTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "echo": ("Offline: answers with the rendered prompt's last user message.", ()),
    "replay": ("Offline: answers only from recordings and the response cache; a miss is an error.", ()),
    "python": ("Your own code as the system under test: python:package.module:function.", ()),
    "openai": ("OpenAI Chat Completions and embeddings, or any OpenAI-compatible server.",
               ("base_url", "api_key_env", "rpm", "headers", "api_version")),
    "anthropic": ("Anthropic Messages API.", ("base_url", "api_key_env", "rpm", "headers")),
}


def load_object(spec: str, root: Path | None = None) -> Any:
    """Load "pkg.module:attr" or "path/to/file.py:attr" (relative to root).

    The project root goes first on sys.path so a user's `app.py` beside promptci.yaml is found.
    """
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise PromptCIError(f"{spec!r} is not of the form 'package.module:function' or 'path/file.py:function'")
    if target.endswith(".py"):
        module = _load_file_module(Path(target) if root is None else root / target, spec, root)
    else:
        if root is not None:
            _put_root_first(root, target)
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise PromptCIError(f"cannot import module {target!r} for {spec!r}: {exc}") from exc
        except SystemExit as exc:
            raise PromptCIError(f"importing {target!r} for {spec!r} called sys.exit({exc.code!r})") from None
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # CancelledError, GeneratorExit, the user's own: a load error, not a crash
            raise PromptCIError(f"importing {target!r} for {spec!r} raised {type(exc).__name__}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PromptCIError(f"module {target!r} has no attribute {attr!r} (from {spec!r})") from None


def _put_first_on_path(folder: Path) -> None:
    folder_text = str(folder)
    if folder_text in sys.path:
        sys.path.remove(folder_text)
    sys.path.insert(0, folder_text)


def _put_root_first(root: Path, target: str) -> None:
    """Put root first on sys.path, and forget a same-named module imported from elsewhere (another
    project's app.py in the same process) when root has its own."""
    _put_first_on_path(root)
    module = sys.modules.get(target)
    module_file = getattr(module, "__file__", None)
    relative = Path(*target.split("."))
    has_own = (root / relative.with_suffix(".py")).is_file() or (root / relative / "__init__.py").is_file()
    if module_file and has_own and not Path(module_file).resolve().is_relative_to(root.resolve()):
        for name in [n for n in sys.modules if n == target or n.startswith(target + ".")]:
            del sys.modules[name]


def _load_file_module(path: Path, spec: str, root: Path | None = None) -> Any:
    """Import a file by path. Its own folder, then the project root, go first on sys.path, so
    `checks.py` can import a module beside it the same way under `promptci` (whose sys.path[0] is the
    script's folder) and `python -m promptci` (whose sys.path[0] is the current directory)."""
    if not path.is_file():
        raise PromptCIError(f"file {str(path)!r} named in {spec!r} does not exist")
    if root is not None:
        _put_first_on_path(root)
    _put_first_on_path(path.parent)
    name = f"promptci_user_{abs(hash(str(path.resolve())))}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise PromptCIError(f"cannot load {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise PromptCIError(f"importing {str(path)!r} failed: {type(exc).__name__}: {exc}") from exc
    except SystemExit as exc:  # the user's module must not end promptci silently
        del sys.modules[name]
        raise PromptCIError(f"importing {str(path)!r} called sys.exit({exc.code!r})") from None
    except KeyboardInterrupt:
        del sys.modules[name]
        raise
    except BaseException as exc:  # CancelledError, GeneratorExit, the user's own: a load error, not a crash
        del sys.modules[name]
        raise PromptCIError(f"importing {str(path)!r} raised {type(exc).__name__}: {exc}") from None
    return module


class Registry:
    """Factories by name: built-ins first, then installed entry points of `group`."""

    def __init__(self, group: str, builtins: Mapping[str, str], kind: str) -> None:
        self.group = group
        self.kind = kind
        self._specs: dict[str, str] = dict(builtins)
        self._loaded: dict[str, Callable[..., Any]] = {}
        self._entry_points_read = False

    def register(self, name: str, factory: Callable[..., Any]) -> None:
        self._loaded[name] = factory

    def names(self) -> list[str]:
        self._read_entry_points()
        return sorted(set(self._specs) | set(self._loaded))

    def get(self, name: str) -> Callable[..., Any]:
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._specs:
            self._read_entry_points()
        if name not in self._specs:
            raise PromptCIError(f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})")
        factory = load_object(self._specs[name])
        self._loaded[name] = factory
        return factory

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.group):
            self._specs.setdefault(ep.name, ep.value)


def option_names(factory: Callable[..., Any]) -> list[str]:
    params = inspect.signature(factory).parameters.values()
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def describe(registry: Registry, name: str) -> tuple[str, list[str]]:
    """(first line of the factory's docstring, its options) for `promptci comparators` / `providers`. A
    provider factory lists the promptci.yaml keys it reads in a `provider_options` attribute."""
    if registry is providers and name in BUILTIN_PROVIDER_DESCRIPTIONS:
        summary, keys = BUILTIN_PROVIDER_DESCRIPTIONS[name]
        return summary, list(keys)
    try:
        factory = registry.get(name)
    except PromptCIError as exc:
        return f"cannot load: {exc.message}", []
    summary = first_sentence(inspect.getdoc(factory) or "")
    if registry is providers:
        return summary, list(getattr(factory, "provider_options", ()))
    return summary, [n.rstrip("_") for n in option_names(factory) if n != "root"]


def first_sentence(doc: str) -> str:
    """The docstring's first sentence (its first paragraph when no sentence ends in it), on one line."""
    paragraph = " ".join(doc.strip().split("\n\n", 1)[0].split())
    end = paragraph.find(". ")
    return paragraph[: end + 1] if end != -1 else paragraph


def build_comparator(name: str, options: Mapping[str, Any], root: Path | None = None) -> Any:
    """Call the comparator factory with options; unknown or missing options are a ComparatorError.

    Factories take their options as keyword arguments and raise ComparatorError for bad values.
    A factory may accept `root` (the project root) to resolve files such as a schema path.
    """
    factory = comparators.get(name)
    known = option_names(factory)
    public = [n for n in known if n != "root"]
    unknown = sorted(set(options) - set(public))
    if unknown:
        raise ComparatorError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for comparator {name!r} "
            f"(known: {', '.join(public) or 'none'})"
        )
    kwargs = dict(options)
    if "root" in known:
        kwargs["root"] = root
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ComparatorError(f"comparator {name!r}: {exc}") from exc


comparators = Registry("promptci.comparators", BUILTIN_COMPARATORS, "comparator")
providers = Registry("promptci.providers", BUILTIN_PROVIDERS, "provider")
