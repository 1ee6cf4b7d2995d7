"""llm_judge: a judge model grades the output against a rubric (and expected, when the case has one).

The judge request goes through the run's ModelClient (kind "judge": cached per sample, retried, budgeted, in
the ledger; its cost is added to the result). The verdict is asked as a JSON object {score, pass, reason}
(OpenAI: response_format json_object) and read by that format: the judge's own verdict is the LAST JSON object of
exactly that shape in its answer (code fences and prose around it are skipped), so a verdict the graded output
carries and the judge quotes back comes before the judge's own and is never taken. The scan is linear in the
answer's length. A verdict that cannot be read, or a refusal, raises, so the result is an error naming the
judge's raw answer: never a pass.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptci.comparators._common import check_inputs, expected_text, one_line, require_fraction, snippet
from promptci.errors import ComparatorError
from promptci.types import Case, Comparator, Completion, Location, Message, Request, Score

DEFAULT_JUDGE_MODEL = "openai:gpt-4o-mini"
JUDGE_PARAMS = {"max_tokens": 400}
RAW_SHOWN_CHARS = 200
VERDICT_KEYS = frozenset({"score", "pass", "reason"})
FENCE_TAGS = ("output", "expected")

JUDGE_SYSTEM = (
    "You are a strict grader of a language model's output. Grade the output against the rubric"
    " (and the expected answer, when one is given). Reply with only a JSON object, no other text:"
    ' {"score": <number from 0 to 1>, "pass": <true or false>, "reason": "<one sentence>"}'
)


class JudgeVerdictError(ComparatorError):
    """The judge's answer is not a usable verdict."""


@dataclass(frozen=True)
class JudgeSetup:
    """What a judge's verdicts depend on, as `promptci calibrate` records it (calibration.py)."""

    name: str  # names its calibration file: calibration/<prompt>.<name>.yaml
    model: str
    rubric: str
    threshold: float
    template: str | None  # a prompt under prompts/; None: the built-in judge prompt (JUDGE_SYSTEM)

    def calibration_file(self, prompt: str) -> str:
        """Whether this judge gates depends on this file (promptci.changes selects its cases when it changes)."""
        return calibration_file(prompt, self.name)


def calibration_file(prompt: str, judge: str) -> str:
    """calibration/<prompt>.<judge>.yaml, as a project-relative path."""
    return f"{CALIBRATION_DIR}/{prompt}.{judge}.yaml"


CALIBRATION_DIR = "calibration"
JUDGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Verdict:
    score: float
    passed: bool
    reason: str


def judge_messages(rubric: str, output: str, expected: str | None) -> tuple[Message, ...]:
    """The built-in judge prompt. The output is fenced in tags: it is data to grade, not instructions."""
    parts = [f"Rubric:\n{rubric}"]
    if expected is not None:
        parts.append(f"Expected answer:\n<expected>\n{fenced(expected)}\n</expected>")
    parts.append(f"Output to grade:\n<output>\n{fenced(output)}\n</output>")
    return ({"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)})


def fenced(text: str) -> str:
    """Text to put between the fence tags: a closing tag inside it cannot end the fence early."""
    return CLOSING_TAG.sub(lambda m: "&lt;" + m.group(0)[1:], text)


CLOSING_TAG = re.compile(r"</\s*(?:" + "|".join(FENCE_TAGS) + ")", re.IGNORECASE)


def parse_verdict(raw: str) -> Verdict:
    """The judge's verdict: the last JSON object of the verdict's shape in its answer (see the module
    docstring); JudgeVerdictError naming the raw answer."""
    found = last_verdict_object(raw)
    if found is None:
        raise JudgeVerdictError(f"the judge gave no JSON verdict (a refusal?): {shown_raw(raw)}")
    score = found.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score) \
            or not 0 <= score <= 1:
        raise JudgeVerdictError(f"the judge's score must be a number from 0 to 1, got {score!r}: {shown_raw(raw)}")
    verdict_pass = found.get("pass", True)
    if not isinstance(verdict_pass, bool):
        raise JudgeVerdictError(f"the judge's pass must be true or false, got {verdict_pass!r}: {shown_raw(raw)}")
    reason = found.get("reason", "")
    return Verdict(float(score), verdict_pass, one_line(reason if isinstance(reason, str) else json.dumps(reason)))


def last_verdict_object(raw: str) -> Mapping[str, Any] | None:
    """The last top-level JSON object holding a score and no key a verdict does not have."""
    found = None
    for start, end in outermost_objects(raw):
        value = decoded(raw[start:end])
        if isinstance(value, dict) and "score" in value and value.keys() <= VERDICT_KEYS:
            found = value
    return found


SCAN_TOKENS = re.compile(r'[{}"\\]')


def outermost_objects(raw: str) -> list[tuple[int, int]]:
    """(start, end) of each balanced {...} not inside another, in order. One pass over the text; the spans do
    not overlap, so decoding them all reads each character once at most (a run of `{` costs nothing)."""
    spans: list[tuple[int, int]] = []
    opens: list[int] = []
    in_string = False
    escaped_at = -1  # in a string, the position a backslash escapes
    for match in SCAN_TOKENS.finditer(raw):
        at, token = match.start(), match.group()
        if in_string:
            if at == escaped_at:
                continue
            if token == "\\":
                escaped_at = at + 1
            elif token == '"':
                in_string = False
        elif token == '"':
            in_string = bool(opens)  # quotes in prose outside any object are prose
        elif token == "{":
            opens.append(at)
        elif token == "}" and opens:
            start = opens.pop()
            while spans and spans[-1][0] > start:  # closed inside this one
                spans.pop()
            spans.append((start, at + 1))
    return spans


def decoded(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return None


def shown_raw(raw: str) -> str:
    return f"raw answer {snippet(raw, RAW_SHOWN_CHARS)}"


def llm_judge(*, rubric: str | None = None, model: str = DEFAULT_JUDGE_MODEL, threshold: float = 0.5,
              template: str | None = None, name: str = "llm_judge", root: Path | None = None) -> Comparator:
    """Passes when the judge's score >= threshold and the judge says pass.

    template: a prompt name under prompts/ (e.g. judge/strict) rendered instead of the built-in judge prompt,
    with the variables rubric, output, expected (None when the case has none) and input (the case's).
    name: the judge's name in calibration/<prompt>.<name>.yaml (a prompt with two judges names them apart)."""
    if not isinstance(name, str) or not JUDGE_NAME.match(name):
        raise ComparatorError(f"comparator 'llm_judge': name {name!r} must be letters, digits, '-' or '_' "
                              "(it names the file calibration/<prompt>.<name>.yaml)")
    if not isinstance(rubric, str) or not rubric.strip():
        raise ComparatorError("comparator 'llm_judge' needs a rubric: what a good output does, in words")
    if not isinstance(model, str) or ":" not in model:
        raise ComparatorError(f"comparator 'llm_judge': model {model!r} must be PROVIDER:MODEL "
                              f"(e.g. {DEFAULT_JUDGE_MODEL})")
    threshold = require_fraction("llm_judge", "threshold", threshold)
    render = template_renderer(template, root) if template is not None else None

    def request_for(case: Case, output: str) -> Request:
        expected = expected_text(case.expected) if case.has_expected else None
        messages = render(rubric, output, expected, case) if render else judge_messages(rubric, output, expected)
        return Request(model=model, messages=messages, params=dict(JUDGE_PARAMS), output="json")

    async def score(case: Case, completion: Completion) -> Score:
        from promptci.modelcalls import current_calls

        failed = check_inputs("llm_judge", case, completion, needs_expected=False)
        if failed:
            return failed
        answer = await current_calls("llm_judge").call(request_for(case, completion.text or ""), "judge")
        verdict = parse_verdict(answer.text or "")
        passed = verdict.passed and verdict.score >= threshold
        relation = ">=" if verdict.score >= threshold else "<"
        said = "" if verdict.passed else ", judge said fail"
        return Score("llm_judge", verdict.score, passed,
                     f"judge {model}: score {verdict.score:.2f} {relation} threshold {threshold:g}{said}: "
                     f"{verdict.reason}")

    score.helper_models = (model,)  # type: ignore[attr-defined]
    score.judge_request = request_for  # type: ignore[attr-defined]  # --dry-run estimates with it
    score.depends_on = getattr(render, "depends_on", ())  # type: ignore[attr-defined]  # its template
    score.judge = JudgeSetup(name, model, rubric, threshold, template)  # type: ignore[attr-defined]  # calibration
    return score


def template_renderer(name: str, root: Path | None) -> Any:
    """A function rendering prompts/<name> into judge messages; unknown names fail at load."""
    from promptci.loading.prompts import discover_prompts
    from promptci.loading.render import Renderer

    base = root or Path.cwd()
    prompts = discover_prompts(base)
    if name not in prompts:
        known = ", ".join(sorted(prompts)) or "none"
        raise ComparatorError(f"comparator 'llm_judge': template {name!r} is not a prompt under prompts/ "
                              f"(known: {known})")
    prompt = prompts[name]
    renderer = Renderer(base)

    def render(rubric: str, output: str, expected: str | None, case: Case) -> tuple[Message, ...]:
        variables = {"rubric": rubric, "output": output, "expected": expected, "input": dict(case.input)}
        judge_case = Case(id=case.id, prompt=name, location=Location(prompt.path), input=variables)
        return renderer.render(prompt, judge_case)

    render.depends_on = (prompt.path,)  # type: ignore[attr-defined]  # and what it includes (promptci.changes)
    return render
