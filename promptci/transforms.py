"""`transform:` — what is done to a model's output before a comparator sees it.

A transform is a name (`strip_fence`, `strip`, `lower`), `json:PATH` (a JMESPath into the output parsed
as JSON, the result written back as text), `{python: file.py:fn}` (fn(text) -> text), or a list of these
applied in order. Parsed and checked at load; applied per comparator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from promptci.errors import ComparatorError, PromptCIError
from promptci.types import Case, Comparator, Completion, Score

Transform = Callable[[str], str]
NAMED = ("strip_fence", "strip", "lower")
FENCE = re.compile(r"^\s*```[^\n`]*\n(.*?)\n?```\s*$", re.DOTALL)
HELP = "use strip_fence, strip, lower, json:PATH, {python: file.py:fn} or a list of them"


def strip_fence(text: str) -> str:
    """The body of a ``` code fence wrapping the whole text (the text itself when there is none)."""
    match = FENCE.match(text)
    return match.group(1) if match else text


def _json_path(expression: str) -> Transform:
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        compiled = jmespath.compile(expression)
    except JMESPathError as exc:
        raise ComparatorError(f"transform 'json:{expression}': invalid JMESPath: {exc}") from None

    def take(text: str) -> str:
        found = compiled.search(json.loads(text))
        return found if isinstance(found, str) else json.dumps(found, ensure_ascii=False)

    return take


def _python(spec: Any, root: Path | None) -> Transform:
    from promptci.usercode import load_function

    if not isinstance(spec, str):
        raise ComparatorError(f"transform `python` must be 'file.py:fn', got {spec!r}")
    function = load_function(spec, root, "transform")

    def call(text: str) -> str:
        result = function(text)
        if not isinstance(result, str):
            raise ValueError(f"{spec} returned {type(result).__name__}, not text")
        return result

    from promptci.usercode import code_dependencies

    call.depends_on = code_dependencies(spec)  # type: ignore[attr-defined]

    return call


def parse_transform(value: Any, root: Path | None) -> list[tuple[str, Transform]]:
    """A `transform:` value -> (label, function) steps; ComparatorError for anything else."""
    items = value if isinstance(value, list) else [value]
    steps: list[tuple[str, Transform]] = []
    for item in items:
        if item == "strip_fence":
            steps.append(("strip_fence", strip_fence))
        elif item == "strip":
            steps.append(("strip", str.strip))
        elif item == "lower":
            steps.append(("lower", str.lower))
        elif isinstance(item, str) and item.startswith("json:") and item[5:].strip():
            steps.append((item, _json_path(item[5:].strip())))
        elif isinstance(item, dict) and set(item) == {"python"}:
            steps.append((f"python:{item['python']}", _python(item["python"], root)))
        else:
            raise ComparatorError(f"unknown transform {item!r}: {HELP}")
    if not steps:
        raise ComparatorError(f"`transform` is empty: {HELP}")
    return steps


def apply_transform(steps: list[tuple[str, Transform]], text: str) -> str:
    for label, step in steps:
        try:
            text = step(text)
        except Exception as exc:
            raise TransformFailed(f"transform {label} failed: {type(exc).__name__}: {exc}") from None
    return text


class TransformFailed(PromptCIError):
    pass


def with_transform(comparator: Comparator, steps: list[tuple[str, Transform]], name: str) -> Comparator:
    """The comparator scoring the transformed output; a failing transform is a failing score."""

    async def score(case: Case, completion: Completion) -> Score:
        if completion.text is None:
            return await comparator(case, completion)
        try:
            text = apply_transform(steps, completion.text)
        except TransformFailed as exc:
            return Score(name, 0.0, False, exc.message)
        return await comparator(case, replace(completion, text=text, chunks=()))

    check = getattr(comparator, "check_case", None)
    if check is not None:
        score.check_case = check  # type: ignore[attr-defined]
    # what the comparator declares holds through a transform
    for declared in ("helper_models", "judge_request", "reads_expected"):
        if hasattr(comparator, declared):
            setattr(score, declared, getattr(comparator, declared))
    score.depends_on = (*getattr(comparator, "depends_on", ()),  # type: ignore[attr-defined]
                        *(path for _, step in steps for path in getattr(step, "depends_on", ())))
    return score
