"""`transform:` — what is done to a model's output before a comparator sees it.

A transform is a name (`strip_fence`, `strip`, `lower`), `json:PATH` (a JMESPath into the output parsed
as JSON, the result written back as text), `{python: file.py:fn}` (fn(text) -> text), or a list of these
applied in order. Parsed and checked at load; applied per comparator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from promptci.errors import ComparatorError, PromptCIError, UserCodeFailed
from promptci.types import Case, Comparator, Completion, Score
from promptci.usercode import call_user_code, lone_surrogate_in, run_timeout_s

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


@dataclass(frozen=True)
class UserTransform:
    """A `{python: file.py:fn}` step: the user's fn(text) -> text, called through usercode.py."""

    function: Callable[[str], Any]
    spec: str

    def __call__(self, text: str) -> str:
        return self.checked(self.function(text))

    def checked(self, result: Any) -> str:
        if not isinstance(result, str):
            raise ValueError(f"{self.spec} returned {type(result).__name__}, not text")
        if lone_surrogate_in(result):
            raise ValueError(f"{self.spec} returned a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text")
        return result

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The files its verdict depends on, for --changed-since."""
        from promptci.usercode import code_dependencies

        return code_dependencies(self.spec)

    async def call(self, text: str) -> str:
        """fn(text) off the event loop under the run's deadline; UserCodeFailed for sys.exit, a timeout..."""
        result = await call_user_code(self.function, text, label=f"transform python:{self.spec}",
                                      timeout_s=run_timeout_s())
        return self.checked(result)


def _python(spec: Any, root: Path | None) -> Transform:
    from promptci.usercode import load_function

    if not isinstance(spec, str):
        raise ComparatorError(f"transform `python` must be 'file.py:fn', got {spec!r}")
    return UserTransform(load_function(spec, root, "transform"), spec)


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


async def apply_transform(steps: list[tuple[str, Transform]], text: str) -> str:
    """The text after every step. An exception in a step is TransformFailed (a failing check); the user's
    code calling sys.exit, raising another BaseException or overrunning the deadline is UserCodeFailed
    (that case's error)."""
    for label, step in steps:
        try:
            text = await step.call(text) if isinstance(step, UserTransform) else step(text)
        except UserCodeFailed as exc:
            if not isinstance(exc.__cause__, Exception):
                raise
            raise transform_failed(label, exc.__cause__) from None
        except Exception as exc:
            raise transform_failed(label, exc) from None
    return text


class TransformFailed(PromptCIError):
    pass


def transform_failed(label: str, error: Exception) -> TransformFailed:
    return TransformFailed(f"transform {label} failed: {type(error).__name__}: {error}")


def with_transform(comparator: Comparator, steps: list[tuple[str, Transform]], name: str) -> Comparator:
    """The comparator scoring the transformed output; a failing transform is a failing score."""

    async def score(case: Case, completion: Completion) -> Score:
        if completion.text is None:
            return await comparator(case, completion)
        try:
            text = await apply_transform(steps, completion.text)
        except TransformFailed as exc:
            return Score(name, 0.0, False, exc.message)
        return await comparator(case, replace(completion, text=text, chunks=()))

    check = getattr(comparator, "check_case", None)
    if check is not None:
        score.check_case = check  # type: ignore[attr-defined]
    # what the comparator declares holds through a transform
    for declared in ("helper_models", "judge_request", "reads_expected", "judge"):
        if hasattr(comparator, declared):
            setattr(score, declared, getattr(comparator, declared))
    score.depends_on = (*getattr(comparator, "depends_on", ()),  # type: ignore[attr-defined]
                        *(path for _, step in steps for path in getattr(step, "depends_on", ())))
    return score
