"""The providers' rate-limit headers, read: OpenAI's x-ratelimit-* (Go durations), Anthropic's
anthropic-ratelimit-* (RFC 3339 times) and Retry-After. Hostile or garbled values read as "not said"."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

MAX_HEADER_WAIT_S = 86400.0  # a reset or Retry-After beyond a day is taken as garbage, not obeyed
MAX_HEADER_COUNT = 10**12  # limits and remainders above this are garbage too


@dataclass(frozen=True)
class LimitHeaders:
    """What a provider's answer said about its limits. None: not said, or not believable."""

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset_s: float | None = None  # seconds until the requests limit is fully replenished
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset_s: float | None = None
    retry_after_s: float | None = None


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | None) -> float | None:
    """A Go duration as OpenAI writes resets ("20ms", "1s", "6m0s", "1h2m3.5s") in seconds; None if garbage."""
    if text is None:
        return None
    text = text.strip()
    if not text or len(text) > 40 or _DURATION_PART.sub("", text):
        return None
    seconds = sum(float(number) * _UNIT_S[unit] for number, unit in _DURATION_PART.findall(text))
    return _believable_wait(seconds)


def parse_rfc3339_wait(text: str | None, now_epoch: float) -> float | None:
    """Seconds from now until an RFC 3339 moment (Anthropic's resets); 0 if it has passed; None if garbage."""
    if text is None or len(text) > 64:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return _believable_wait(max(0.0, moment.timestamp() - now_epoch))


def parse_count(text: str | None) -> int | None:
    """A non-negative integer header (limit, remaining); None for anything else."""
    if text is None:
        return None
    text = text.strip()
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= MAX_HEADER_COUNT else None


def parse_retry_after(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """`retry-after-ms`, else `retry-after` (seconds or an HTTP date), in seconds; None if absent or garbage."""
    millis = _finite(headers.get("retry-after-ms"))
    if millis is not None:
        return _believable_wait(millis / 1000.0)
    value = headers.get("retry-after")
    seconds = _finite(value)
    if seconds is not None:
        return _believable_wait(seconds)
    if value is None or len(value) > 64:
        return None
    from email.utils import parsedate_to_datetime

    try:
        return _believable_wait(max(0.0, parsedate_to_datetime(value).timestamp() - now_epoch))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def parse_openai_headers(headers: Mapping[str, str], now_epoch: float) -> LimitHeaders:
    return LimitHeaders(
        requests_limit=parse_count(headers.get("x-ratelimit-limit-requests")),
        requests_remaining=parse_count(headers.get("x-ratelimit-remaining-requests")),
        requests_reset_s=parse_duration(headers.get("x-ratelimit-reset-requests")),
        tokens_limit=parse_count(headers.get("x-ratelimit-limit-tokens")),
        tokens_remaining=parse_count(headers.get("x-ratelimit-remaining-tokens")),
        tokens_reset_s=parse_duration(headers.get("x-ratelimit-reset-tokens")),
        retry_after_s=parse_retry_after(headers, now_epoch),
    )


def parse_anthropic_headers(headers: Mapping[str, str], now_epoch: float) -> LimitHeaders:
    return LimitHeaders(
        requests_limit=parse_count(headers.get("anthropic-ratelimit-requests-limit")),
        requests_remaining=parse_count(headers.get("anthropic-ratelimit-requests-remaining")),
        requests_reset_s=parse_rfc3339_wait(headers.get("anthropic-ratelimit-requests-reset"), now_epoch),
        tokens_limit=parse_count(headers.get("anthropic-ratelimit-tokens-limit")),
        tokens_remaining=parse_count(headers.get("anthropic-ratelimit-tokens-remaining")),
        tokens_reset_s=parse_rfc3339_wait(headers.get("anthropic-ratelimit-tokens-reset"), now_epoch),
        retry_after_s=parse_retry_after(headers, now_epoch),
    )


def parse_limit_headers(headers: Mapping[str, str] | None, now_epoch: float | None = None) -> LimitHeaders:
    """Either dialect's headers (names lower-cased or not), told apart by their names."""
    if not headers:
        return LimitHeaders()
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}
    now = time.time() if now_epoch is None else now_epoch
    if any(name.startswith("anthropic-ratelimit-") for name in lowered):
        return parse_anthropic_headers(lowered, now)
    return parse_openai_headers(lowered, now)


LIMIT_HEADER_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "retry-after")


def limit_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Only the headers that speak of rate limits (x-ratelimit-*, anthropic-ratelimit-*, retry-after*), names
    lower-cased: what a provider hands the limiter, and nothing that could identify an answer or an account."""
    if not headers:
        return {}
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lowered = str(name).lower()
        if lowered.startswith(LIMIT_HEADER_PREFIXES):
            kept[lowered] = str(value)
    return kept


def _finite(text: str | None) -> float | None:
    if text is None or len(text) > 32:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _believable_wait(seconds: float) -> float | None:
    return seconds if math.isfinite(seconds) and 0 <= seconds <= MAX_HEADER_WAIT_S else None
