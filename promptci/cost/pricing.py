"""Built-in list prices (USD per million tokens) and the cost of one request's usage.

The figures below are the providers' public list prices for standard (not batch, not priority)
processing as known on 2026-11-27, the date they were checked against stored copies of
https://developers.openai.com/api/docs/pricing and https://platform.claude.com/docs/en/about-claude/pricing
(and third-party tables quoting them). Prices change: `pricing:` in promptci.yaml overrides any row
here and adds models that are missing (a local model at 0, a gateway's own rates).

Token convention: Usage.input_tokens counts every prompt token, and Usage.cached_input_tokens is
the part of them read from the provider's prompt cache (OpenAI's prompt_tokens and
cached_tokens; for Anthropic, input_tokens + cache_read_input_tokens + cache_creation_input_tokens
and cache_read_input_tokens). Anthropic's cache writes are billed here at the base input rate,
below their real 1.25x, because Usage does not carry them apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TypeVar

from promptci.config import Price
from promptci.providers.base import split_model
from promptci.types import Usage

T = TypeVar("T")

PRICES_CHECKED_ON = "2026-11-27"

UNKNOWN_PRICE_HINT = (
    "add a price under `pricing:` in promptci.yaml, e.g. "
    "pricing: {\"openai:my-model\": {input: 0.15, output: 0.60, cached_input: 0.075}} "
    "(USD per million tokens; 0 for a local model)"
)

# Both providers bill a request sent through their batch APIs (OpenAI Batch API, Anthropic Message Batches) at
# half the standard price of every token, cached input included.
BATCH_DISCOUNT = 0.5

# "provider_type:model" -> Price(input, output, cached_input). A dated or "-latest" version of a
# name below gets its price ("gpt-4o-mini-2024-07-18" -> gpt-4o-mini).
BUILTIN_PRICES: dict[str, Price] = {
    # OpenAI
    "openai:gpt-5.4": Price(2.50, 15.00, 0.25),
    "openai:gpt-5.4-mini": Price(0.75, 4.50, 0.075),
    "openai:gpt-5.2": Price(1.75, 14.00, 0.175),
    "openai:gpt-5.1": Price(1.25, 10.00, 0.125),
    "openai:gpt-5": Price(1.25, 10.00, 0.125),
    "openai:gpt-5-chat-latest": Price(1.25, 10.00, 0.125),
    "openai:gpt-5-mini": Price(0.25, 2.00, 0.025),
    "openai:gpt-5-nano": Price(0.05, 0.40, 0.005),
    "openai:gpt-5-pro": Price(15.00, 120.00),
    "openai:gpt-4.1": Price(2.00, 8.00, 0.50),
    "openai:gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "openai:gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "openai:gpt-4o": Price(2.50, 10.00, 1.25),
    "openai:gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "openai:o3": Price(2.00, 8.00, 0.50),
    "openai:o3-mini": Price(1.10, 4.40, 0.55),
    "openai:o4-mini": Price(1.10, 4.40, 0.275),
    "openai:o1": Price(15.00, 60.00, 7.50),
    # Anthropic (cached_input = cache hits and refreshes)
    "anthropic:claude-opus-5": Price(5.00, 25.00, 0.50),
    "anthropic:claude-opus-4-8": Price(5.00, 25.00, 0.50),
    "anthropic:claude-opus-4-7": Price(5.00, 25.00, 0.50),
    "anthropic:claude-opus-4-6": Price(5.00, 25.00, 0.50),
    "anthropic:claude-opus-4-5": Price(5.00, 25.00, 0.50),
    "anthropic:claude-opus-4-1": Price(15.00, 75.00, 1.50),
    "anthropic:claude-opus-4-0": Price(15.00, 75.00, 1.50),
    "anthropic:claude-opus-4": Price(15.00, 75.00, 1.50),
    "anthropic:claude-sonnet-4-6": Price(3.00, 15.00, 0.30),
    "anthropic:claude-sonnet-4-5": Price(3.00, 15.00, 0.30),
    "anthropic:claude-sonnet-4-0": Price(3.00, 15.00, 0.30),
    "anthropic:claude-sonnet-4": Price(3.00, 15.00, 0.30),
    "anthropic:claude-3-7-sonnet": Price(3.00, 15.00, 0.30),
    "anthropic:claude-haiku-4-5": Price(1.00, 5.00, 0.10),
    "anthropic:claude-3-5-haiku": Price(0.80, 4.00, 0.08),
    "anthropic:claude-3-haiku": Price(0.25, 1.25, 0.03),
}

# "provider_type:model" -> the longest answer the model can give (its maximum output tokens), as the providers'
# model pages state it: the --max-cost guard holds this much per request in flight when a request has no max_tokens.
MAX_OUTPUT_TOKENS: dict[str, int] = {
    "openai:gpt-5.4": 128_000, "openai:gpt-5.4-mini": 128_000, "openai:gpt-5.2": 128_000,
    "openai:gpt-5.1": 128_000, "openai:gpt-5": 128_000, "openai:gpt-5-chat-latest": 16_384,
    "openai:gpt-5-mini": 128_000, "openai:gpt-5-nano": 128_000, "openai:gpt-5-pro": 272_000,
    "openai:gpt-4.1": 32_768, "openai:gpt-4.1-mini": 32_768, "openai:gpt-4.1-nano": 32_768,
    "openai:gpt-4o": 16_384, "openai:gpt-4o-mini": 16_384,
    "openai:o3": 100_000, "openai:o3-mini": 100_000, "openai:o4-mini": 100_000, "openai:o1": 100_000,
    "anthropic:claude-opus-5": 128_000, "anthropic:claude-opus-4-8": 128_000, "anthropic:claude-opus-4-7": 128_000,
    "anthropic:claude-opus-4-6": 128_000, "anthropic:claude-opus-4-5": 64_000, "anthropic:claude-opus-4-1": 32_000,
    "anthropic:claude-opus-4-0": 32_000, "anthropic:claude-opus-4": 32_000, "anthropic:claude-sonnet-4-6": 128_000,
    "anthropic:claude-sonnet-4-5": 64_000, "anthropic:claude-sonnet-4-0": 64_000, "anthropic:claude-sonnet-4": 64_000,
    "anthropic:claude-3-7-sonnet": 64_000, "anthropic:claude-haiku-4-5": 64_000, "anthropic:claude-3-5-haiku": 8_192,
    "anthropic:claude-3-haiku": 4_096,
}

# What may follow a table name and still be the same model: a date snapshot or "-latest".
VERSION_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


def price_for(model: str, overrides: Mapping[str, Price], provider_type: str | None = None) -> Price | None:
    """The price of `model` as -m writes it ("openai:gpt-4o-mini", "local:llama3"): an override of that
    exact name first, then the built-in table under the provider's type. None: unknown."""
    provider, name = split_model(model)
    if model in overrides:
        price = overrides[model]
        if price.max_output_tokens is None and provider_type is not None:  # the model's own limit still holds
            price = replace(price, max_output_tokens=table_entry(MAX_OUTPUT_TOKENS, provider_type, name))
        return price
    if provider == "replay" and name:  # "replay:openai:gpt-4o-mini" answers for openai:gpt-4o-mini
        return price_for(name, overrides)
    return builtin_price(provider_type or provider, name)


def builtin_price(provider_type: str, name: str) -> Price | None:
    price = table_entry(BUILTIN_PRICES, provider_type, name)
    if price is None:
        return None
    return replace(price, max_output_tokens=table_entry(MAX_OUTPUT_TOKENS, provider_type, name))


def table_entry(table: Mapping[str, T], provider_type: str, name: str) -> T | None:
    """The row of `name` (or of the name without its date snapshot or "-latest")."""
    exact = table.get(f"{provider_type}:{name}")
    if exact is not None:
        return exact
    suffix = VERSION_SUFFIX.search(name)
    if suffix is None:
        return None
    return table.get(f"{provider_type}:{name[:suffix.start()]}")


def cost_usd(usage: Usage | None, price: Price | None) -> float | None:
    """USD for one request. Cached input tokens (a part of input_tokens) are billed at cached_input
    when the price has one, else at the input rate. None when the price or the usage is unknown."""
    if price is None or usage is None:
        return None
    cached = min(max(usage.cached_input_tokens, 0), usage.input_tokens)
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    micro_usd = ((usage.input_tokens - cached) * price.input + cached * cached_rate
                 + usage.output_tokens * price.output)
    return micro_usd / 1_000_000


def batch_cost_usd(usage: Usage | None, price: Price | None) -> float | None:
    """USD for one request answered through a provider's batch API: the standard cost at BATCH_DISCOUNT."""
    live = cost_usd(usage, price)
    return None if live is None else live * BATCH_DISCOUNT
