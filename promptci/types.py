"""Plain data types shared by every layer, and the canonical hashing that gives them identity."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from promptci.reliability import clears_min_pass_rate
from promptci.verdict.money import spent

if TYPE_CHECKING:
    from promptci.stats import DropVerdict
    from promptci.verdict.policy import Verdict

OutputKind = Literal["text", "json"]
Status = Literal["passed", "failed", "error", "skipped"]
SkipKind = Literal["budget"]  # a skipped result's cause; the verdict policy decides from it
Role = Literal["system", "user", "assistant"]

RESULTS_SCHEMA_VERSION = 1


def expected_text(case: Case) -> str | None:
    """A case's expected value as reports show it: strings as they are, structures as indented JSON."""
    if not case.has_expected:
        return None
    if isinstance(case.expected, str):
        return case.expected
    return json.dumps(case.expected, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant white space: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(value: Any) -> str:
    """sha256 hex digest of canonical_json(value)."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def now_iso() -> str:
    """The current time as ISO 8601 UTC, the form every stored timestamp takes."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """ISO 8601 text -> aware datetime; a naive time is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Location:
    """A place in a project file: path relative to the project root, 1-based line."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class MessageTemplate:
    role: Role
    content: str  # Jinja2 source
    line: int = 0  # line of this message in the prompt file


@dataclass(frozen=True)
class Prompt:
    """One prompt file, parsed but not rendered."""

    name: str  # "triage/route": path under prompts/ without suffix
    path: str  # "prompts/triage/route.txt", relative to the project root
    messages: tuple[MessageTemplate, ...]  # system first when there is one
    output: OutputKind = "text"
    params: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None
    source_hash: str = ""  # content_hash of the file's text


@dataclass(frozen=True)
class ComparatorSpec:
    """A comparator as a golden file names it, with options already validated by its factory.

    `instance` is the comparator the loader built from the options (once, at load); None only for
    specs made in code, which the runner builds when first used.
    """

    type: str
    options: Mapping[str, Any]
    location: Location
    instance: Comparator | None = field(default=None, compare=False, repr=False)
    metric: str | None = None  # named metric this comparator's scores count towards
    weight: float = 1.0
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)
    # False: its scores are shown but cannot fail the case (an llm_judge without a fresh calibration);
    # gate_note says why it gates or not, for reports (calibration.py sets both)
    gating: bool = True
    gate_note: str | None = None


MockMatch = Literal["exact", "subset", "fields"]
MockOrder = Literal["any", "in_order"]


@dataclass(frozen=True)
class ToolMock:
    """One `tool_mocks:` entry: which calls it answers (tool name, arguments matched exactly, as a subset, or
    by json_fields checks; None: any arguments), what it answers, and how many times (None: any number)."""

    tool: str
    location: Location
    arguments: Mapping[str, Any] | None = None
    match: MockMatch = "exact"
    returns: Any = None
    times: int | None = 1
    python: str | None = None  # "tools.py:lookup": a function(arguments, state) answers instead of `returns`
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)  # loaded at load


@dataclass(frozen=True)
class ToolScript:
    """A case's tool loop: its mocks, whether they must be used in order, and the most model turns."""

    mocks: tuple[ToolMock, ...]
    order: MockOrder = "any"
    max_turns: int = 8


@dataclass(frozen=True)
class UserTurn:
    """One of a case's scripted `turns:`: a user message (Jinja2 source, rendered with the case's input) sent
    after the model's previous reply, and optional checks on the model's reply to it."""

    content: str
    location: Location
    expected: Any = None
    has_expected: bool = False
    comparators: tuple[ComparatorSpec, ...] = ()


@dataclass(frozen=True)
class Case:
    """One golden case."""

    id: str
    prompt: str  # prompt name
    location: Location  # the golden file and the line of the case
    input: Mapping[str, Any]
    expected: Any = None
    has_expected: bool = False
    comparators: tuple[ComparatorSpec, ...] = ()
    tags: tuple[str, ...] = ()
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)
    key_prefix: str = ""  # "summarize_v1::" when the golden file names several prompts
    tool_script: ToolScript | None = None  # `tool_mocks:`: the model's tool calls are answered, turn by turn
    user_turns: tuple[UserTurn, ...] = ()  # `turns:`: user messages sent after the model's replies
    min_pass_rate: float | None = None  # with --repeat: the share of samples that must pass (reliability.py)

    @property
    def is_conversation(self) -> bool:
        """More than one request: a tool loop, scripted user turns, or both (conversation.py)."""
        return self.tool_script is not None or bool(self.user_turns)

    @property
    def key(self) -> str:
        """Unique within a suite: golden file, the prompt when the file names several, and case id."""
        return f"{self.location.file}::{self.key_prefix}{self.id}"


# {"role": ..., "content": ...}; in a tool loop also OpenAI's assistant `tool_calls` and {"role": "tool",
# "tool_call_id", "content"} (providers/anthropic.py maps them to tool_use / tool_result blocks)
Message = Mapping[str, Any]


@dataclass(frozen=True)
class Request:
    """What is sent to a model: rendered messages and the parameters that change the answer."""

    model: str  # as -m writes it: "openai:gpt-4o-mini", "echo", "python:app:answer"
    messages: tuple[Message, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    output: OutputKind = "text"

    def identity(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [dict(m) for m in self.messages],
            "params": dict(self.params),
            "output": self.output,
        }


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0


@dataclass(frozen=True)
class ErrorInfo:
    """A provider failure kept as a value on the result instead of an exception."""

    kind: str  # "rate_limited", "server", "timeout", "connection", "auth", "not_found", "bad_request", ...
    message: str  # never holds a key
    status: int | None = None
    retryable: bool = False


@dataclass(frozen=True)
class ToolCall:
    """A tool (function) the model asked to call: its name and its arguments as the JSON text it wrote."""

    name: str
    arguments: str = "{}"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, d: Any) -> ToolCall:
        if not isinstance(d, Mapping) or not isinstance(d.get("name"), str):
            raise ValueError(f"a tool call is {{name, arguments}}, got {str(d)[:60]!r}")
        return cls(d["name"], str(d.get("arguments") or "{}"))


@dataclass(frozen=True)
class Completion:
    """A model's answer to one Request, with what it cost in tokens and time."""

    text: str | None
    usage: Usage | None = None  # None: the provider did not say
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    resolved_model: str | None = None
    finish_reason: str | None = None
    chunks: tuple[str, ...] = ()  # streamed text deltas, in order; empty when not streamed
    error: ErrorInfo | None = None
    cached: bool = False
    attempts: int = 1
    cost_usd: float | None = None  # None: unknown price (never shown as 0)
    tool_calls: tuple[ToolCall, ...] = ()  # in the order the model made them (in a tool loop: every turn's)
    turns: int = 1  # model requests behind it: more than one in a tool loop (conversation.py)
    # The answer's rate-limit headers, for the model client's limiter; never cached, recorded or stored.
    limit_headers: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


@dataclass(frozen=True)
class Score:
    comparator: str
    value: float  # in [0, 1]
    passed: bool
    reason: str = ""
    diff: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # of the comparator that gave this score
    metric: str | None = None  # the named metric its comparator counts towards (`metric:` in the golden)
    weight: float = 1.0  # the comparator's `weight:` within that metric
    gating: bool = True  # False: shown, but it cannot fail the case (its comparator's spec says why)
    gate_note: str | None = None  # why it gates or only reports, when that needs saying (judges)


Comparator = Callable[[Case, Completion], Awaitable[Score]]


@dataclass(frozen=True)
class CaseResult:
    prompt: str
    case_id: str
    file: str
    line: int
    model: str
    status: Status
    repeat: int = 0
    output: str | None = None
    scores: tuple[Score, ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cost_usd: float | None = None  # spent; 0 for a cache hit, None when the price is unknown
    saved_usd: float | None = None  # what a cache hit would have cost
    latency_ms: float | None = None
    ttft_ms: float | None = None
    cached: bool = False
    resolved_model: str | None = None
    error: str | None = None
    attempts: int = 0
    tags: tuple[str, ...] = ()
    skip_reason: str | None = None  # why it was skipped, for people
    skip_kind: SkipKind | None = None  # why it was skipped, for the verdict (never read from skip_reason's text)
    expected: str | None = None  # the golden's expected value as text (JSON for structures), for reports
    tool_calls: tuple[ToolCall, ...] = ()
    input_hash: str | None = None  # the case's input variables, hashed: pairs a renamed case across revisions
    request_hash: str | None = None  # content_hash of the request sent: `accept` tells a case edited since
    transcript: tuple[Mapping[str, Any], ...] = ()  # a tool loop's turns: {turn, text, tool_calls: [.. mock, result]}
    min_pass_rate: float | None = None  # the case's `min_pass_rate:` (reliability.py decides with it)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "case_id": self.case_id,
            "file": self.file,
            "line": self.line,
            "model": self.model,
            "repeat": self.repeat,
            "status": self.status,
            "output": self.output,
            "scores": [
                {"comparator": s.comparator, "value": s.value, "passed": s.passed, "reason": s.reason,
                 "diff": s.diff, "options": dict(s.options), "metric": s.metric, "weight": s.weight,
                 "gating": s.gating, "gate_note": s.gate_note}
                for s in self.scores
            ],
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cost_usd": self.cost_usd,
            "saved_usd": self.saved_usd,
            "latency_ms": self.latency_ms,
            "ttft_ms": self.ttft_ms,
            "cached": self.cached,
            "resolved_model": self.resolved_model,
            "error": self.error,
            "attempts": self.attempts,
            "tags": list(self.tags),
            "skip_reason": self.skip_reason,
            "skip_kind": self.skip_kind,
            "expected": self.expected,
            "tool_calls": [call.to_dict() for call in self.tool_calls],
            "input_hash": self.input_hash,
            "request_hash": self.request_hash,
            "transcript": [dict(turn) for turn in self.transcript],
            "min_pass_rate": self.min_pass_rate,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CaseResult:
        scores = tuple(
            Score(s["comparator"], float(s["value"]), bool(s["passed"]), s.get("reason", ""), s.get("diff"),
                  s.get("options") or {}, s.get("metric"), float(s.get("weight", 1.0)),
                  bool(s.get("gating", True)), s.get("gate_note"))
            for s in d.get("scores", ())
        )
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d and k not in ("scores", "tags", "tool_calls",
                                                                                  "transcript")}
        tool_calls = tuple(ToolCall.from_dict(call) for call in d.get("tool_calls") or ())
        return cls(**known, scores=scores, tags=tuple(d.get("tags", ())), tool_calls=tool_calls,
                   transcript=tuple(d.get("transcript") or ()))


@dataclass(frozen=True)
class GitInfo:
    commit: str | None = None
    dirty: bool = False
    branch: str | None = None


@dataclass(frozen=True)
class Summary:
    total: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    cost_usd: float = 0.0
    cost_unknown: int = 0  # results whose price is unknown
    saved_usd: float = 0.0  # cost the cache saved
    cached: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class BrokenCase:
    """A case --keep-going left out, as data: where (None when the problem names no file) and why."""

    location: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message

    def to_dict(self) -> dict[str, Any]:
        return {"location": self.location, "message": self.message}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BrokenCase:
        return cls(d.get("location"), str(d.get("message", "")))


@dataclass(frozen=True)
class Review:
    """A human's verdict on one output, kept in reviews/<prompt>.yaml (read and written by viewer/reviews.py)."""

    verdict: str  # "good" | "bad"
    note: str
    by: str
    at: str  # ISO 8601 UTC
    model: str | None = None
    run: str | None = None


ResultKey = tuple[str, str, str, int]  # prompt, case id, model, repeat: one result of a run


@dataclass(frozen=True)
class Run:
    run_id: str
    started_at: str  # ISO 8601 UTC
    finished_at: str | None
    git: GitInfo
    models: tuple[str, ...]
    results: tuple[CaseResult, ...]
    summary: Summary
    interrupted: bool = False
    problems: tuple[str, ...] = ()  # broken cases --keep-going skipped ("path:line: message"), stopped models
    config_hash: str | None = None  # promptci.yaml + the options that choose cases: shards must agree to merge
    shard: str | None = None  # "I/N" when the run was one shard of N
    notes: tuple[str, ...] = ()  # what every report says at the top: model drift, the upgrade verdict
    baseline_model: str | None = None  # --baseline-model: the matrix's other models are compared with it
    command: str | None = None  # what made the run: "run", "run --shard 2/4", "diff A: main", "bisect step …", …
    environment: str | None = None  # the --env it ran with: the requests it sent depend on it
    decision: Verdict | None = None  # what the gates decided (verdict/): every report renders it
    broken: tuple[BrokenCase, ...] = ()  # the cases --keep-going left out (their lines are among `problems`)
    # the human reviews of this run's outputs, by result (viewer/reviews.py's with_reviews fills it)
    reviews: Mapping[ResultKey, Review] = field(default_factory=dict, hash=False, compare=False)
    # --baseline-model with --repeat auto: each candidate model's sequential test, stored with the run
    sequential: Mapping[str, DropVerdict] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Suite:
    """Everything a run needs from disk: prompts by name and the cases that use them."""

    prompts: Mapping[str, Prompt]
    cases: tuple[Case, ...]
    problems: tuple[str, ...] = ()  # rendered "path:line: message" lines skipped under --keep-going
    broken: tuple[BrokenCase, ...] = ()  # the same problems as data


def summarize(results: Iterable[CaseResult], broken: int = 0) -> Summary:
    """Totals over results, and `broken` cases --keep-going skipped (counted as skipped). Tokens count what
    was billed: a cache hit billed none. The status counts are of cases (case x model), not samples: with
    --repeat K a case's K samples count once, as case_status says."""
    results = list(results)
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": broken}
    for status in case_statuses(results):
        counts[status] = counts.get(status, 0) + 1
    cached = input_tokens = output_tokens = 0
    saved = 0.0
    for result in results:
        cached += result.cached
        saved += result.saved_usd or 0.0
        if not result.cached:  # a cache hit billed no tokens
            input_tokens += result.input_tokens or 0
            output_tokens += result.output_tokens or 0
    cost = spent(results)
    return Summary(total=sum(counts.values()), passed=counts["passed"], failed=counts["failed"],
                   errors=counts["error"], skipped=counts["skipped"], cost_usd=cost.known, cost_unknown=cost.unknown,
                   saved_usd=saved, cached=cached, input_tokens=input_tokens, output_tokens=output_tokens)


def case_statuses(results: Sequence[CaseResult]) -> list[str]:
    """One status per case x model: a result's own, or over repeated samples case_status_of them."""
    if not any(r.repeat for r in results):
        return [r.status for r in results]
    samples: dict[tuple[str, str, str, str], list[CaseResult]] = {}
    for r in results:
        samples.setdefault((r.file, r.prompt, r.case_id, r.model), []).append(r)
    return [case_status_of(group) for group in samples.values()]


def case_status_of(samples: Sequence[CaseResult]) -> str:
    """One case x model's status over its samples, by its `min_pass_rate` when it has one."""
    thresholds = [r.min_pass_rate for r in samples if r.min_pass_rate is not None]
    return case_status((r.status for r in samples), min(thresholds) if thresholds else None)


def case_status(statuses: Iterable[str], min_pass_rate: float | None = None) -> str:
    """A repeated case's status: error when a sample errored (no verdict), skipped when all were, passed when
    every sample that ran passed, else failed (flaky cases, some samples passing, are among the failed) unless
    the case's min_pass_rate accepts its rate (reliability.clears_min_pass_rate)."""
    found = list(statuses)
    if "error" in found:
        return "error"
    if set(found) <= {"skipped"}:
        return "skipped"
    if min_pass_rate is None:
        return "passed" if set(found) <= {"passed", "skipped"} else "failed"
    passes, scored = found.count("passed"), found.count("passed") + found.count("failed")
    return "passed" if clears_min_pass_rate(passes, scored, min_pass_rate) else "failed"
