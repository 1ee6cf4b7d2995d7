"""Token counts and cost estimates for requests not yet sent: what `promptci run --dry-run` shows.

Input tokens: tiktoken when it is installed AND its encoding file is already in tiktoken's cache with
the right checksum (so it never downloads); otherwise ceil(characters / 4) per message. Either way
each message adds MESSAGE_OVERHEAD_TOKENS for its role and separators. PROMPTCI_TIKTOKEN=0 turns
tiktoken off (reproducible estimates). Output tokens: params.max_tokens, an upper bound (the model
may stop earlier), or DEFAULT_OUTPUT_TOKENS per request when the prompt sets no max_tokens.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from promptci.config import Price
from promptci.types import Message
from promptci.verdict.money import Money

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4
DEFAULT_OUTPUT_TOKENS = 512  # the runner's budget guard assumes the same
OUTPUT_LIMIT_PARAMS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
HEURISTIC_METHOD = f"estimate: ceil(chars/{CHARS_PER_TOKEN}) + {MESSAGE_OVERHEAD_TOKENS} per message"
TIKTOKEN_SWITCH = "PROMPTCI_TIKTOKEN"
TIKTOKEN_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
# sha256 of each encoding file, as tiktoken_ext/openai_public.py pins them: a file that does not
# match would make tiktoken delete it and download it again, so such a file is not used.
TIKTOKEN_FILE_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
CL100K_MODELS = ("gpt-4-", "gpt-4", "gpt-3.5")  # older OpenAI models; newer ones use o200k_base


def encoding_name(model: str) -> str:
    name = model.rpartition(":")[2].lower()
    if name.startswith(CL100K_MODELS) and not name.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5")):
        return "cl100k_base"
    return "o200k_base"


def tiktoken_cache_dir() -> str:
    """The folder tiktoken reads its encodings from (tiktoken/load.py, read_file_cached)."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return os.environ["TIKTOKEN_CACHE_DIR"]
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return os.environ["DATA_GYM_CACHE_DIR"]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def is_encoding_cached(name: str) -> bool:
    """True when tiktoken would load `name` from its cache without touching the network."""
    cache_dir = tiktoken_cache_dir()
    expected = TIKTOKEN_FILE_SHA256.get(name)
    if not cache_dir or expected is None:  # an empty TIKTOKEN_CACHE_DIR turns tiktoken's cache off
        return False
    path = Path(cache_dir) / hashlib.sha1(TIKTOKEN_BLOB_URL.format(name=name).encode()).hexdigest()
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == expected
    except OSError:
        return False


@lru_cache(maxsize=8)
def offline_encoding(name: str) -> Any | None:
    """tiktoken's encoding when it can be had offline, else None. Never raises."""
    if os.environ.get(TIKTOKEN_SWITCH, "").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        import tiktoken
    except Exception:  # not installed, or broken: the estimate does without it
        return None
    if not is_encoding_cached(name):
        return None
    try:
        return tiktoken.get_encoding(name)
    except Exception:
        return None


def count_text_tokens(text: str, encoding: Any | None) -> int:
    if encoding is not None:
        try:
            return len(encoding.encode(text, disallowed_special=()))
        except Exception:
            pass
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def count_tokens(messages: Sequence[Message], model: str) -> tuple[int, str]:
    """Input tokens of rendered messages for `model`, and how they were counted
    ("tiktoken:o200k_base" or the estimate's formula)."""
    name = encoding_name(model)
    encoding = offline_encoding(name)
    total = sum(count_text_tokens(m["content"], encoding) + MESSAGE_OVERHEAD_TOKENS for m in messages)
    return total, f"tiktoken:{name}" if encoding is not None else HEURISTIC_METHOD


def output_limit(params: Mapping[str, Any]) -> int | None:
    """The request's max_tokens (or its other names); None when unset."""
    for key in OUTPUT_LIMIT_PARAMS:
        value = params.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def expected_output_tokens(params: Mapping[str, Any]) -> tuple[int, bool]:
    """(tokens, is_bound): the request's max_tokens, a bound, or the default, only an assumption."""
    limit = output_limit(params)
    return (DEFAULT_OUTPUT_TOKENS, False) if limit is None else (limit, True)


def price_tokens(input_tokens: int, output_tokens: int, price: Price | None) -> float | None:
    """USD at list price (no prompt-cache discount); None for an unknown price."""
    if price is None:
        return None
    return (input_tokens * price.input + output_tokens * price.output) / 1_000_000


def worst_case_cost(input_tokens: int, params: Mapping[str, Any], price: Price | None,
                    provider_default: int | None = None) -> float | None:
    """USD for `input_tokens` and the longest answer the request may get: its max_tokens, else the provider's
    default max_tokens (Anthropic's API needs one), else the model's maximum output. None: no bound known."""
    if price is not None and price.output == 0:  # a free answer: its length does not matter
        return price_tokens(input_tokens, 0, price)
    limit = output_limit(params) or provider_default or (price.max_output_tokens if price is not None else None)
    return price_tokens(input_tokens, limit, price) if limit is not None else None


@dataclass(frozen=True)
class RequestEstimate:
    input_tokens: int
    output_tokens: int
    is_output_bound: bool  # output_tokens came from max_tokens
    cost_usd: float | None  # None: unknown price
    method: str


def estimate_request_cost(messages: Sequence[Message], params: Mapping[str, Any], model: str,
                          price: Price | None) -> RequestEstimate:
    """What one request is expected to cost before it is sent: counted input tokens at the input
    price plus expected output tokens (see expected_output_tokens) at the output price."""
    input_tokens, method = count_tokens(messages, model)
    output_tokens, is_bound = expected_output_tokens(params)
    return RequestEstimate(input_tokens, output_tokens, is_bound, price_tokens(input_tokens, output_tokens, price),
                           method)


@dataclass
class DryRunRow:
    """The estimate for one prompt x model of a dry run."""

    prompt: str
    model: str
    price: Price | None
    is_free: bool  # echo, python:, replay: nothing is billed
    case_keys: set[str] = field(default_factory=set)
    requests: int = 0
    cached: int = 0  # requests the response cache would answer, at no cost
    input_tokens: int = 0  # of the requests that would be sent
    output_tokens: int = 0
    is_output_bound: bool = True  # every sent request has a max_tokens
    cost_usd: float | None = 0.0  # None: unknown price
    methods: set[str] = field(default_factory=set)
    max_tokens: int | None = None  # the effective max_tokens (prompt, provider and model params merged)

    @property
    def cases(self) -> int:
        return len(self.case_keys)

    def add(self, case_key: str, estimate: RequestEstimate, is_cached: bool) -> None:
        self.case_keys.add(case_key)
        self.requests += 1
        if is_cached:
            self.cached += 1
            return
        self.input_tokens += estimate.input_tokens
        self.output_tokens += estimate.output_tokens
        self.is_output_bound = self.is_output_bound and estimate.is_output_bound
        self.methods.add(estimate.method)
        if self.is_free:
            return
        self.cost_usd = None if self.cost_usd is None or estimate.cost_usd is None \
            else self.cost_usd + estimate.cost_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt, "model": self.model, "cases": self.cases, "requests": self.requests,
            "cached": self.cached, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "output_tokens_are_upper_bound": self.is_output_bound, "cost_usd": self.cost_usd,
            "price_known": self.price is not None or self.is_free, "free": self.is_free,
            "price_per_million": None if self.price is None else
            {"input": self.price.input, "output": self.price.output},
            "token_count_methods": sorted(self.methods), "max_tokens": self.max_tokens,
        }


@dataclass(frozen=True)
class DryRunReport:
    """Every prompt x model of a run that was rendered but not sent, with totals."""

    rows: tuple[DryRunRow, ...]
    problems: tuple[str, ...] = ()  # skipped broken cases (--keep-going)
    notes: tuple[str, ...] = ()  # what a real run would run into: a missing key, the budget
    budget_usd: float | None = None

    @property
    def cost_usd(self) -> float:
        """The known part of the estimate."""
        return Money.of(r.cost_usd for r in self.rows).known

    @property
    def unknown_price_models(self) -> list[str]:
        return sorted({r.model for r in self.rows if r.cost_usd is None})

    def total(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "rows": [r.to_dict() for r in self.rows],
            "total": {
                "cases": self.total("cases"), "requests": self.total("requests"), "cached": self.total("cached"),
                "input_tokens": self.total("input_tokens"), "output_tokens": self.total("output_tokens"),
                "cost_usd": self.cost_usd, "unknown_price_models": self.unknown_price_models,
            },
            "budget_usd": self.budget_usd,
            "method": {"input": sorted(set().union(*(r.methods for r in self.rows))), "output": (
                f"params.max_tokens (an upper bound) or {DEFAULT_OUTPUT_TOKENS} per request when unset")},
            "notes": list(self.notes),
            "problems": list(self.problems),
        }
