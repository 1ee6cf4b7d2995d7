"""One promptfoo assertion -> one promptci comparator spec (a plain mapping), or the reason it does not map."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptci.importers.jschecks import (
    CHECKS_FILE,
    CheckFile,
    add_file_javascript,
    add_inline_javascript,
    add_inline_python,
)
from promptci.importers.jstranslate import Untranslatable
from promptci.loading.yamlfile import read_text

NO_EXPECTED: Any = object()  # the comparator compares with nothing from the case
JUDGED = ("model-graded-closedqa", "model-graded-factuality", "factuality", "g-eval",
          "answer-relevance", "context-faithfulness", "context-recall", "context-relevance", "select-best",
          "moderation", "classifier", "pi")
JUDGE_REASON = ("a check graded by a judge model, with no one-to-one promptci comparator; write its criteria as an "
                "`llm_judge` rubric by hand")
# CSV `__expected` prefixes that promptfoo reads as another assertion type.
CSV_ALIASES = {"fn": "javascript", "eval": "javascript", "grade": "llm-rubric"}
CSV_PREFIX = re.compile(r"^(?P<type>[a-z][a-z-]*)(?:\((?P<threshold>[\d.]+)\))?:(?P<value>.*)$", re.DOTALL)
KNOWN_TYPES = frozenset({"equals", "contains", "icontains", "contains-all", "contains-any", "icontains-all",
                         "icontains-any", "starts-with", "regex", "is-json", "contains-json", "javascript", "python",
                         "similar", "levenshtein", "latency", "cost", "llm-rubric", *JUDGED, *CSV_ALIASES})
_VAR = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")


DEFAULT_EMBEDDING_MODEL = "openai:text-embedding-3-large"  # promptfoo's default embedding provider


@dataclass
class Grading:
    """What the converted comparators share: the generated checks.py, where code files are found, the
    grading models of `defaultTest.options.provider`, and the output transform that applies."""

    checks: CheckFile = field(default_factory=CheckFile)
    base: Path = field(default_factory=Path.cwd)
    judge_model: str | None = None
    embedding_model: str | None = None
    hint: str = "check"
    transform: str | None = None  # a checks.py function name: the test's `options.transform`


@dataclass(frozen=True)
class Mapped:
    """A converted assertion: the comparator spec and the value it needs as the case's `expected`."""

    spec: dict[str, Any]
    expected: Any = NO_EXPECTED
    fallback: dict[str, Any] | None = None  # the same check without `expected`, when the case has another


@dataclass(frozen=True)
class Unmapped:
    type: str
    reason: str
    source: list[str] = field(default_factory=list)  # the original, for the TODO comment


def resolve_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """A Nunjucks-templated assertion value with the case's vars filled in; Unresolved if it cannot be."""
    if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
        return value
    whole = _VAR.fullmatch(value.strip())
    if whole and whole.group(1) in variables:
        return variables[whole.group(1)]
    filled = _VAR.sub(lambda m: str(variables[m.group(1)]) if m.group(1) in variables else m.group(0), value)
    return Unresolved if ("{{" in filled or "{%" in filled) else filled


class Unresolved:
    """Marker: the value is a template this converter cannot fill."""


def parse_csv_expected(text: str) -> dict[str, Any]:
    """A promptfoo CSV `__expected` cell -> an assertion mapping (plain text means equals)."""
    stripped = text.strip()
    negated = stripped.startswith("not-")
    body = stripped[4:] if negated else stripped
    if body in ("is-json", "contains-json"):
        return {"type": ("not-" if negated else "") + body}
    match = CSV_PREFIX.match(body)
    if not match or match.group("type") not in KNOWN_TYPES:
        return {"type": "equals", "value": text}
    kind = CSV_ALIASES.get(match.group("type"), match.group("type"))
    assertion: dict[str, Any] = {"type": ("not-" if negated else "") + kind, "value": match.group("value").strip()}
    if match.group("threshold"):
        assertion["threshold"] = float(match.group("threshold"))
    if kind.startswith(("contains-", "icontains-")):
        assertion["value"] = [part.strip() for part in assertion["value"].split(",") if part.strip()]
    return assertion


def map_assertion(assertion: Mapping[str, Any], variables: Mapping[str, Any], grading: Grading | None = None
                  ) -> Mapped | Unmapped:
    """The promptci comparator for one promptfoo assertion, with its metric and weight kept."""
    grading = grading or Grading()
    kind = str(assertion.get("type", ""))
    source = [f"{kind}: {_short(assertion.get('value'))}"] if "value" in assertion else [kind]
    transform = grading.transform
    if "transform" in assertion:
        try:
            transform = add_transform(grading, assertion["transform"], base=transform)
        except Untranslatable as exc:
            return Unmapped(kind, f"its `transform` does not translate: {exc.reason} (line {exc.line} of the "
                                  "transform)", [*source, f"transform: {_short(assertion['transform'])}"])
    value = resolve_value(assertion.get("value"), variables)
    if value is Unresolved:
        return Unmapped(kind, "its value is a template this converter cannot fill from the case's vars", source)
    assertion_grading = grading if transform == grading.transform else _with_transform(grading, transform)
    mapped = _map(kind, value, assertion.get("threshold"), assertion, assertion_grading)
    if isinstance(mapped, str):
        return Unmapped(kind, mapped, source)
    extras = {key: assertion[key] for key in ("metric", "weight") if key in assertion}
    if transform is not None and mapped.spec.get("type") != "python":
        extras["transform"] = {"python": f"{CHECKS_FILE}:{transform}"}
    mapped.spec.update(extras)
    if mapped.fallback is not None:
        mapped.fallback.update(extras)
    return mapped


def _with_transform(grading: Grading, transform: str | None) -> Grading:
    return Grading(grading.checks, grading.base, grading.judge_model, grading.embedding_model, grading.hint,
                   transform)


def add_transform(grading: Grading, source: Any, base: str | None = None) -> str:
    """A promptfoo `transform` (JavaScript over output and context) as a checks.py function; Untranslatable."""
    from promptci.importers.jschecks import add_transform_function

    if not isinstance(source, str) or not source.strip():
        raise Untranslatable("a transform must be JavaScript text", 1)
    if source.strip().startswith("file://"):
        raise Untranslatable("a transform from a file is not converted", 1)
    return add_transform_function(grading.checks, source, grading.hint, base)


def _map(kind: str, value: Any, threshold: Any, assertion: Mapping[str, Any], grading: Grading) -> Mapped | str:
    negated = kind.startswith("not-")
    base = kind[4:] if negated else kind
    if base in JUDGED:
        return JUDGE_REASON
    if base in ("javascript", "python"):
        return _map_code(base, value, threshold, negated, grading)
    if negated:
        return _map_negated(base, value)
    if base == "similar":
        model = _grading_model(assertion.get("provider"), "embedding") or grading.embedding_model
        limit = 0.75 if threshold is None else threshold
        return Mapped({"type": "similarity", "method": "embedding", "threshold": limit,
                       "model": model or DEFAULT_EMBEDDING_MODEL}, str(value))
    if base == "llm-rubric":
        if not isinstance(value, str) or not value.strip():
            return "llm-rubric without a rubric"
        # promptfoo passes on the judge's own `pass`; a threshold, when given, also bounds its score
        spec: dict[str, Any] = {"type": "llm_judge", "rubric": value.strip(),
                                "threshold": 0 if threshold is None else threshold}
        model = _grading_model(assertion.get("provider"), "text") or grading.judge_model
        return Mapped({**spec, "model": model} if model else spec)
    return _map_plain(base, value, threshold)


def _grading_model(provider: Any, purpose: str) -> str | None:
    """The promptci model name of a grading provider (`openai:gpt-4o`, {id}, {text: {id}, embedding: {id}})."""
    from promptci.importers.promptfoo_setup import model_name

    if purpose == "embedding" and not (isinstance(provider, Mapping) and "embedding" in provider):
        return None  # a plain grading provider is a text model; promptfoo keeps its embedding default
    if isinstance(provider, Mapping):
        provider = provider.get(purpose, provider) if purpose in provider else provider
        provider = provider.get("id") if isinstance(provider, Mapping) else provider
    return model_name(provider) if isinstance(provider, str) else None


def _map_plain(kind: str, value: Any, threshold: Any) -> Mapped | str:
    if kind == "equals":
        if isinstance(value, (dict, list)):
            return Mapped({"type": "json"}, value, {"type": "expr", "expr": f"json == {value!r}"})
        # promptfoo compares the whole output, white space included (src/assertions/equals.ts)
        return Mapped({"type": "exact", "strip": False}, str(value),
                      {"type": "expr", "expr": f"output == {str(value)!r}"})
    if kind in ("contains", "icontains"):
        return Mapped(_ignore_case({"type": "contains", "value": str(value)}, kind))
    if kind in ("contains-all", "icontains-all"):
        return Mapped(_ignore_case({"type": "contains", "values": _strings(value)}, kind))
    if kind in ("contains-any", "icontains-any"):
        return Mapped({"type": "expr", "expr": _any_of(_strings(value), kind.startswith("i"))})
    if kind == "starts-with":
        return Mapped({"type": "starts_with", "value": str(value)})
    if kind == "regex":
        return Mapped({"type": "regex", "pattern": str(value)})
    if kind == "is-json":
        return Mapped({"type": "json_schema", "schema": value} if isinstance(value, dict) else {"type": "is_json"})
    if kind == "levenshtein":
        distance = int(5 if threshold is None else threshold)
        return Mapped({"type": "levenshtein", "max_distance": distance}, str(value))
    if kind == "latency":  # promptfoo's threshold is in milliseconds
        return Mapped({"type": "latency", "max_ms": threshold}) if threshold is not None else "no threshold"
    if kind == "cost":
        return Mapped({"type": "cost", "max_usd": threshold}) if threshold is not None else "cost without threshold"
    if kind == "contains-json":
        return ("contains-json (a JSON value anywhere in the text) has no one-to-one comparator; "
                "is_json with `transform: strip_fence` is the nearest")
    return f"promptci has no comparator for {kind!r}"


def _map_negated(kind: str, value: Any) -> Mapped | str:
    if kind in ("contains", "icontains"):
        return Mapped(_ignore_case({"type": "not_contains", "value": str(value)}, kind))
    if kind in ("contains-any", "icontains-any"):
        return Mapped(_ignore_case({"type": "not_contains", "values": _strings(value)}, kind))
    if kind in ("contains-all", "icontains-all"):
        return Mapped({"type": "expr", "expr": f"not {_all_of(_strings(value), kind.startswith('i'))}"})
    if kind == "regex":
        return Mapped({"type": "not_regex", "pattern": str(value)})
    if kind == "equals":
        return Mapped({"type": "expr", "expr": f"output != {str(value)!r}"})
    if kind == "starts-with":
        return Mapped({"type": "expr", "expr": f"not output.startswith({str(value)!r})"})
    if kind == "is-json":
        return Mapped({"type": "expr", "expr": "json is None"})
    return f"promptci has no comparator for 'not-{kind}'"


def _map_code(kind: str, value: Any, threshold: Any, negated: bool, grading: Grading) -> Mapped | str:
    """A javascript or python assertion -> a python comparator in the generated checks.py."""
    if not isinstance(value, str) or not value.strip():
        return f"{kind} assertion without code"
    try:
        if value.strip().startswith("file://"):
            name = _code_file(kind, value.strip(), threshold, negated, grading)
        elif kind == "javascript":
            name = add_inline_javascript(grading.checks, value, grading.hint, threshold, negated, grading.transform)
        else:
            name = add_inline_python(grading.checks, value, grading.hint, threshold, negated, grading.transform)
    except Untranslatable as exc:
        where = f" (line {exc.line} of the code)" if exc.line and "\n" in value.strip() else ""
        return f"{kind} that does not translate: {exc.reason}{where}"
    return Mapped({"type": "python", "function": f"{CHECKS_FILE}:{name}"})


def _code_file(kind: str, reference: str, threshold: Any, negated: bool, grading: Grading) -> str:
    target = reference.removeprefix("file://")
    path_text, _, function = target.partition(":")
    path = grading.base / path_text
    if kind == "python" or not path_text.endswith((".js", ".cjs")):
        raise Untranslatable(f"a {kind} file assertion ({path_text}) is not converted: port it to checks.py by hand",
                             0)
    if not path.is_file():
        raise Untranslatable(f"{path_text} does not exist (paths are relative to the config's folder)", 0)
    read_text(path, grading.base)  # inside the project, UTF-8 text: a ConfigError naming the file otherwise
    try:
        return add_file_javascript(grading.checks, path, path_text, function or None, grading.hint, threshold,
                                   negated, grading.transform)
    except Untranslatable as exc:
        raise Untranslatable(f"{path_text}:{exc.line}: {exc.reason}", 0) from None


def _ignore_case(spec: dict[str, Any], kind: str) -> dict[str, Any]:
    return {**spec, "ignore_case": True} if kind.startswith("i") else spec


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(item) for item in value or ()]


def _any_of(needles: list[str], ignore_case: bool) -> str:
    # Spelled out, not any(... for s in ...): a generator body cannot see eval()'s local names.
    subject = "output.lower()" if ignore_case else "output"
    return " or ".join(f"{(n.lower() if ignore_case else n)!r} in {subject}" for n in needles) or "False"


def _all_of(needles: list[str], ignore_case: bool) -> str:
    subject = "output.lower()" if ignore_case else "output"
    return "(" + (" and ".join(f"{(n.lower() if ignore_case else n)!r} in {subject}" for n in needles) or "True") + ")"


def _short(value: Any) -> str:
    text = str(value).strip()
    return text if len(text) <= 300 else text[:297] + "..."
