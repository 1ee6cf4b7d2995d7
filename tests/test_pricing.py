"""The price table: lookup, dated versions, overrides, unknown prices, cost arithmetic."""

from __future__ import annotations

import pytest

from promptci.config import Price
from promptci.cost.pricing import BUILTIN_PRICES, PRICES_CHECKED_ON, UNKNOWN_PRICE_HINT, cost_usd, price_for
from promptci.types import Usage


def test_builtin_prices_by_name() -> None:
    assert price_for("openai:gpt-4o-mini", {}) == Price(0.15, 0.60, 0.075)
    assert price_for("anthropic:claude-haiku-4-5", {}) == Price(1.00, 5.00, 0.10)
    assert price_for("anthropic:claude-opus-4-1", {}) == Price(15.00, 75.00, 1.50)


@pytest.mark.parametrize(
    ("model", "base"),
    [
        ("openai:gpt-4o-mini-2024-07-18", "openai:gpt-4o-mini"),
        ("openai:gpt-4o-2024-08-06", "openai:gpt-4o"),
        ("openai:o3-2025-04-16", "openai:o3"),
        ("openai:gpt-5-mini-2025-08-07", "openai:gpt-5-mini"),
        ("anthropic:claude-sonnet-4-5-20250929", "anthropic:claude-sonnet-4-5"),
        ("anthropic:claude-opus-4-20250514", "anthropic:claude-opus-4"),
        ("anthropic:claude-3-5-haiku-latest", "anthropic:claude-3-5-haiku"),
    ],
)
def test_dated_versions_take_their_family_price(model: str, base: str) -> None:
    assert price_for(model, {}) == BUILTIN_PRICES[base]


def test_prefix_match_never_crosses_into_another_model() -> None:
    # "claude-opus-4-5" is not a dated claude-opus-4, and gpt-4o-audio is not gpt-4o
    assert price_for("anthropic:claude-opus-4-5", {}) == Price(5.00, 25.00, 0.50)
    assert price_for("openai:gpt-4o-audio-preview", {}) is None
    assert price_for("openai:gpt-4o-mini-tts", {}) is None


def test_overrides_win_and_add_models() -> None:
    overrides = {"openai:gpt-4o-mini": Price(1.0, 2.0), "local:llama3": Price(0.0, 0.0)}
    assert price_for("openai:gpt-4o-mini", overrides) == Price(1.0, 2.0)
    assert price_for("local:llama3", overrides, provider_type="openai") == Price(0.0, 0.0)
    assert price_for("openai:gpt-4o", overrides) == Price(2.50, 10.00, 1.25)


def test_named_provider_uses_its_type_for_the_builtin_table() -> None:
    assert price_for("gateway:gpt-4.1-nano", {}, provider_type="openai") == Price(0.10, 0.40, 0.025)
    assert price_for("local:llama3.1:8b", {}, provider_type="openai") is None
    assert price_for("gateway:gpt-4.1-nano", {}) is None


def test_unknown_and_offline_models_have_no_price() -> None:
    assert price_for("echo", {}) is None
    assert price_for("python:app:answer", {}) is None
    assert price_for("openai:not-a-model", {}) is None
    assert price_for("replay:openai:gpt-4o-mini", {}) == Price(0.15, 0.60, 0.075)


def test_cost_arithmetic() -> None:
    price = Price(input=2.0, output=8.0, cached_input=0.5)
    assert cost_usd(Usage(1_000_000, 0, 0), price) == pytest.approx(2.0)
    assert cost_usd(Usage(1000, 500, 0), price) == pytest.approx((1000 * 2 + 500 * 8) / 1e6)
    # 400 of the 1000 input tokens came from the provider's cache
    assert cost_usd(Usage(1000, 500, 400), price) == pytest.approx((600 * 2 + 400 * 0.5 + 500 * 8) / 1e6)


def test_cached_tokens_billed_at_input_rate_without_a_cached_price() -> None:
    price = Price(input=3.0, output=15.0)
    assert cost_usd(Usage(1000, 100, 400), price) == pytest.approx((1000 * 3 + 100 * 15) / 1e6)


def test_cached_count_larger_than_input_is_clamped() -> None:
    assert cost_usd(Usage(100, 0, 500), Price(1.0, 1.0, 0.0)) == 0.0


def test_unknown_price_or_usage_is_none_never_zero() -> None:
    assert cost_usd(Usage(10, 10, 0), None) is None
    assert cost_usd(None, Price(1.0, 1.0)) is None
    assert cost_usd(Usage(0, 0, 0), Price(1.0, 1.0)) == 0.0


def test_hint_and_date_are_there() -> None:
    assert "pricing:" in UNKNOWN_PRICE_HINT and "promptci.yaml" in UNKNOWN_PRICE_HINT
    assert PRICES_CHECKED_ON.startswith("20")


def test_table_is_sane() -> None:
    for name, price in BUILTIN_PRICES.items():
        assert name.split(":")[0] in ("openai", "anthropic")
        assert 0 < price.input <= price.output, name
        assert price.cached_input is None or price.cached_input < price.input, name
