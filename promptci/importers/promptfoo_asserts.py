"""One promptfoo assertion -> one promptci comparator spec (a plain mapping), or the reason it does not map."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from promptci.importers.fields import as_json_fields
from promptci.importers.jsexpr import Untranslatable, translate

NO_EXPECTED: Any = object()  # the comparator compares with nothing from the case
EXPR_NAMES = frozenset({"output", "expected", "json", "case", "vars", "re", "len", "min", "max", "abs", "sum", "any",
                        "all", "round", "sorted", "set", "str", "int", "float", "bool", "True", "False", "None"})
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


def map_assertion(assertion: Mapping[str, Any], variables: Mapping[str, Any]) -> Mapped | Unmapped:
    """The promptci comparator for one promptfoo assertion, with its metric and weight kept."""
    kind = str(assertion.get("type", ""))
    source = [f"{kind}: {_short(assertion.get('value'))}"] if "value" in assertion else [kind]
    if "transform" in assertion:
        return Unmapped(kind, "an assertion `transform` (JavaScript) is not converted; add a promptci "
                              "`transform:` to the comparator by hand", source)
    value = resolve_value(assertion.get("value"), variables)
    if value is Unresolved:
        return Unmapped(kind, "its value is a template this converter cannot fill from the case's vars", source)
    mapped = _map(kind, value, assertion.get("threshold"))
    if isinstance(mapped, str):
        return Unmapped(kind, mapped, source)
    extras = {key: assertion[key] for key in ("metric", "weight") if key in assertion}
    mapped.spec.update(extras)
    if mapped.fallback is not None:
        mapped.fallback.update(extras)
    return mapped


def _map(kind: str, value: Any, threshold: Any) -> Mapped | str:
    negated = kind.startswith("not-")
    base = kind[4:] if negated else kind
    if base in JUDGED:
        return JUDGE_REASON
    if base in ("javascript", "python"):
        return _map_code(base, value, threshold, negated)
    if negated:
        return _map_negated(base, value)
    return _map_plain(base, value, threshold)


def _map_plain(kind: str, value: Any, threshold: Any) -> Mapped | str:
    if kind == "equals":
        if isinstance(value, (dict, list)):
            return Mapped({"type": "json"}, value, {"type": "expr", "expr": f"json == {value!r}"})
        return Mapped({"type": "exact"}, str(value), {"type": "expr", "expr": f"output.strip() == {str(value)!r}"})
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
    if kind == "similar":
        limit = 0.75 if threshold is None else threshold
        return Mapped({"type": "similarity", "threshold": limit}, str(value))
    if kind == "levenshtein":
        distance = int(5 if threshold is None else threshold)
        return Mapped({"type": "levenshtein", "max_distance": distance}, str(value))
    if kind == "latency":  # promptfoo's threshold is in milliseconds
        return Mapped({"type": "latency", "max_ms": threshold}) if threshold is not None else "no threshold"
    if kind == "cost":
        return Mapped({"type": "cost", "max_usd": threshold}) if threshold is not None else "cost without threshold"
    if kind == "llm-rubric":  # the judge model is llm_judge's default unless the golden names one
        if not isinstance(value, str) or not value.strip():
            return "llm-rubric without a rubric"
        spec: dict[str, Any] = {"type": "llm_judge", "rubric": value.strip()}
        return Mapped(spec if threshold is None else {**spec, "threshold": threshold})
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
        return Mapped({"type": "expr", "expr": f"output.strip() != {str(value).strip()!r}"})
    if kind == "starts-with":
        return Mapped({"type": "expr", "expr": f"not output.startswith({str(value)!r})"})
    if kind == "is-json":
        return Mapped({"type": "expr", "expr": "json is None"})
    return f"promptci has no comparator for 'not-{kind}'"


def _map_code(kind: str, value: Any, threshold: Any, negated: bool) -> Mapped | str:
    if not isinstance(value, str) or not value.strip():
        return f"{kind} assertion without code"
    if value.strip().startswith("file://"):
        return (f"a {kind} file assertion; port it to a promptci python comparator "
                "(`- checks.py:fn`, fn(output, expected, case)) by hand")
    try:
        expression = translate(value) if kind == "javascript" else _python_expression(value)
    except Untranslatable as exc:
        return f"{kind} that does not translate to a Python expression ({exc}); kept as a TODO"
    if negated:
        return Mapped({"type": "expr", "expr": f"not ({expression})"})
    if threshold is not None:
        return Mapped({"type": "expr", "expr": expression, "threshold": threshold})
    return Mapped(as_json_fields(expression) or {"type": "expr", "expr": expression})


def _python_expression(code: str) -> str:
    """A promptfoo inline Python assertion as an `expr` (context['vars'] -> vars, json.loads(output) -> json)."""
    text = code.strip()
    if "\n" in text or text.startswith("return "):
        raise Untranslatable("more than one line")
    text = re.sub(r"""context\s*\[\s*['"]vars['"]\s*\]""", "vars", text)
    text = re.sub(r"json\.loads\(\s*output\s*\)", "json", text)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise Untranslatable(f"not a Python expression: {exc.msg}") from None
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    unknown = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
                     - EXPR_NAMES - bound)
    if unknown or any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "json"
                      for n in ast.walk(tree)):
        raise Untranslatable(f"uses {', '.join(unknown) or 'the json module'}")
    return text


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
