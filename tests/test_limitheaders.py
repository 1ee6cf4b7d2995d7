"""Reading the providers' rate-limit headers: both dialects, Retry-After, and garbage read as not said."""

from __future__ import annotations

import pytest
from fakelimits import go_duration, rfc3339

from promptci.limitheaders import (
    LimitHeaders,
    parse_anthropic_headers,
    parse_count,
    parse_duration,
    parse_limit_headers,
    parse_openai_headers,
    parse_retry_after,
    parse_rfc3339_wait,
)

NOW_EPOCH = 1_800_000_000.0  # 2027-01-15T08:00:00Z



def test_openai_headers() -> None:
    said = parse_openai_headers({
        "x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms", "x-ratelimit-limit-tokens": "200000",
        "x-ratelimit-remaining-tokens": "199000", "x-ratelimit-reset-tokens": "6m0s", "retry-after": "2",
    }, NOW_EPOCH)
    assert said == LimitHeaders(500, 499, 0.12, 200000, 199000, 360.0, 2.0)


def test_anthropic_headers() -> None:
    said = parse_anthropic_headers({
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2027-01-15T08:00:01.5Z",
        "anthropic-ratelimit-tokens-limit": "40000", "anthropic-ratelimit-tokens-remaining": "39000",
        "anthropic-ratelimit-tokens-reset": "2027-01-15T08:00:00+00:00", "retry-after-ms": "1500",
    }, NOW_EPOCH)
    assert said == LimitHeaders(50, 0, 1.5, 40000, 39000, 0.0, 1.5)  # NOW_EPOCH is 2027-01-15T08:00:00Z
    assert parse_rfc3339_wait("2027-01-15T07:59:00Z", NOW_EPOCH) == 0.0  # a reset in the past: now


def test_the_dialect_is_told_apart_by_header_names_in_any_case() -> None:
    assert parse_limit_headers({"X-RateLimit-Remaining-Requests": "7"}, NOW_EPOCH).requests_remaining == 7
    assert parse_limit_headers({"Anthropic-RateLimit-Requests-Remaining": "9"}, NOW_EPOCH).requests_remaining == 9
    assert parse_limit_headers(None) == LimitHeaders()
    assert parse_limit_headers({}) == LimitHeaders()


@pytest.mark.parametrize(("text", "seconds"), [
    ("20ms", 0.02), ("1s", 1.0), ("6m0s", 360.0), ("1h2m3.5s", 3723.5), ("0s", 0.0), ("1.5s", 1.5),
    ("250us", 0.00025), ("7m12.345s", 432.345),
    ("", None), ("abc", None), ("-1s", None), ("1", None), ("1s garbage", None), ("s", None),
    ("25h", None), ("1e9s", None), ("nan", None), ("inf", None), ("9" * 50 + "s", None), (None, None),
])
def test_go_durations_and_garbage(text: str | None, seconds: float | None) -> None:
    if seconds is None:
        assert parse_duration(text) is None
    else:
        assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["0", "7", "200000", " 42 "])
def test_counts(text: str) -> None:
    assert parse_count(text) == int(text)


@pytest.mark.parametrize("text", ["", "-1", "1.5", "abc", "1e3", "nan", "١٢", "9" * 20, None])
def test_garbage_counts_are_dropped(text: str | None) -> None:
    assert parse_count(text) is None


@pytest.mark.parametrize("text", ["tomorrow", "2027-01-15T08:00:00", "2027-13-45T99:00:00Z", "", "x" * 100,
                                  "9999-12-31T23:59:59Z", None])
def test_garbage_rfc3339_resets_are_dropped(text: str | None) -> None:
    assert parse_rfc3339_wait(text, NOW_EPOCH) is None


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"retry-after": "3"}, 3.0),
    ({"retry-after-ms": "20"}, 0.02),
    ({"retry-after-ms": "garbage", "retry-after": "2"}, 2.0),
    ({"retry-after-ms": "-5", "retry-after": "1"}, 1.0),
    ({"retry-after": "Fri, 15 Jan 2027 08:00:05 GMT"}, 5.0),
    ({"retry-after": "nan"}, None), ({"retry-after": "inf"}, None), ({"retry-after": "-3"}, None),
    ({"retry-after": "99999999"}, None), ({"retry-after": "soon"}, None), ({}, None),
])
def test_retry_after_and_garbage(headers: dict[str, str], seconds: float | None) -> None:
    said = parse_retry_after(headers, NOW_EPOCH)
    assert said == (None if seconds is None else pytest.approx(seconds))


@pytest.mark.parametrize("seconds", [0.0004, 0.02, 0.999, 1.0, 1.5, 59.9, 360.0, 61.25])
def test_the_fake_servers_reset_headers_read_back(seconds: float) -> None:
    assert parse_duration(go_duration(seconds)) == pytest.approx(seconds, abs=0.001)
    assert parse_rfc3339_wait(rfc3339(NOW_EPOCH + seconds), NOW_EPOCH) == pytest.approx(seconds, abs=0.001)
