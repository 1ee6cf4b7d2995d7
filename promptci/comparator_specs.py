"""The one place that reads a `comparators:` value: names and mappings -> ComparatorSpecs, each
validated AND built once by its factory (the spec keeps the built comparator), problems at path:line.

Used by promptci.yaml (config) and golden files (loading.goldens); imports neither.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from promptci import registry
from promptci.errors import Problem, PromptCIError
from promptci.loading.yamlfile import item_line, to_plain, type_name
from promptci.transforms import parse_transform, with_transform
from promptci.types import Comparator, ComparatorSpec, Location

# Keys of a comparator mapping that belong to the spec, not to the factory.
SPEC_KEYS = ("type", "metric", "weight", "description", "metadata", "transform")
Specs = tuple[ComparatorSpec, ...]


def parse_comparators(value: Any, file: str, line: int, root: Path, *, allow_empty: bool = False
                      ) -> tuple[Specs, list[Problem]]:
    """A `comparators:` value (a list of names or {type: ..., **options}) -> built specs and problems.

    Every entry is built once by its factory, so an unknown name, a bad option, an invalid regex or a
    factory that raises anything is reported here, at the entry's line, before anything runs.
    """
    items = value if isinstance(value, list) else [value]
    specs: list[ComparatorSpec] = []
    problems: list[Problem] = []
    if not items and not allow_empty:
        problems.append(Problem("an empty `comparators:` list would let every output pass; name at least one "
                                "comparator, or remove the key to use the defaults", Location(file, line)))
    for index, item in enumerate(items):
        location = Location(file, (item_line(value, index) if isinstance(value, list) else 0) or line)
        spec, problem = parse_comparator(item, location, root)
        if problem is not None:
            problems.append(problem)
        elif spec is not None:
            specs.append(spec)
    return tuple(specs), problems


def parse_comparator(item: Any, location: Location, root: Path) -> tuple[ComparatorSpec | None, Problem | None]:
    """One entry of a `comparators:` list -> its built spec, or the problem that stops it."""
    if isinstance(item, Mapping):
        location = Location(location.file, getattr(item, "line", location.line) or location.line)
        name = item.get("type", "expr" if "expr" in item else None)
        options = {k: to_plain(v) for k, v in item.items() if k not in SPEC_KEYS}
        extras: Mapping[str, Any] = item
    else:
        name, options, extras = item, {}, {}
    if not isinstance(name, str) or not name:
        return None, Problem(f"a comparator must be a name or a mapping with `type:`, got {type_name(item)} "
                             "(e.g. `- exact` or `- {type: regex, pattern: '^ok'}`)", location)
    if ":" in name:  # `- checks.py:is_polite` is shorthand for the python comparator
        name, options = "python", {"function": name, **options}
    try:
        spec_fields = _spec_fields(extras)
        instance = build(name, options, root)
        if "transform" in extras:
            instance = with_transform(instance, parse_transform(to_plain(extras["transform"]), root), name)
    except PromptCIError as exc:
        return None, Problem(exc.message, location)
    return ComparatorSpec(name, options, location, instance=instance, **spec_fields), None


def build(name: str, options: Mapping[str, Any], root: Path | None) -> Comparator:
    """The comparator `name` built with options; anything the factory raises is a PromptCIError.

    Options spelled like Python keywords (`with`) reach the factory with a trailing underscore (`with_`).
    """
    arguments = {(k + "_" if keyword.iskeyword(k) else k): v for k, v in options.items()}
    try:
        built: Comparator = registry.build_comparator(name, arguments, root)
    except PromptCIError as exc:
        raise PromptCIError(_as_written(exc.message)) from None
    except Exception as exc:  # a third-party factory's bug is a load problem, not a traceback
        raise PromptCIError(f"comparator {name!r} failed while being built: {type(exc).__name__}: {exc}") from None
    if not callable(built):
        raise PromptCIError(f"comparator {name!r}: its factory returned {type(built).__name__}, not a comparator")
    return built


def _as_written(message: str) -> str:
    """The registry's list of known options with `with_` spelled as the YAML key `with`."""
    head, known, tail = message.partition("(known: ")
    return head + known + re.sub(r"\b([a-z]+)_\b", lambda m: m[1] if keyword.iskeyword(m[1]) else m[0], tail)


def comparator_of(spec: ComparatorSpec, root: Path | None) -> Comparator:
    """The spec's built comparator (building it when the spec was made in code)."""
    return spec.instance if spec.instance is not None else build(spec.type, spec.options, root)


def _spec_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    metric = item.get("metric")
    if metric is not None:
        if not isinstance(metric, str) or not metric.strip():
            raise PromptCIError(f"comparator `metric` must be a name like accuracy, got {metric!r}")
        fields["metric"] = metric.strip()
    if "weight" in item:
        weight = item["weight"]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise PromptCIError(f"comparator `weight` must be a number >= 0, got {weight!r}")
        fields["weight"] = float(weight)
    description = item.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise PromptCIError(f"comparator `description` must be text, got {type_name(description)}")
        fields["description"] = description
    metadata = item.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise PromptCIError(f"comparator `metadata` must be a mapping, got {type_name(metadata)}")
        fields["metadata"] = to_plain(metadata)
    return fields


def check_case_problem(spec: ComparatorSpec, case: Any) -> str | None:
    """What the spec's comparator finds wrong with a case offline (its optional `check_case` hook)."""
    check = getattr(spec.instance, "check_case", None)
    if check is None:
        return None
    try:
        found = check(case)
    except Exception as exc:  # a hook's bug names the case instead of crashing the load
        return f"comparator {spec.type!r} could not check the case: {type(exc).__name__}: {exc}"
    return found if isinstance(found, str) and found else None
