"""The fake server's rate limits: token buckets for requests and tokens, and the rate-limit headers
OpenAI (x-ratelimit-*, Go durations) and Anthropic (anthropic-ratelimit-*, RFC 3339 times) send."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol


class LimitSettings(Protocol):
    limit_rps: float | None
    limit_burst: float | None
    limit_tpm: float | None


class Bucket:
    """A token bucket: `size` units, refilled at `rate` a second, full at the start."""

    def __init__(self, rate: float, size: float, now: float) -> None:
        self.rate, self.size = rate, size
        self.level, self.updated = size, now

    def refill(self, now: float) -> None:
        self.level = min(self.size, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, units: float) -> float:
        """Seconds until `units` are in the bucket (0 when they are now)."""
        return max(0.0, (min(units, self.size) - self.level) / self.rate)

    def reset_in(self) -> float:
        """Seconds until the bucket is full again, as the providers' reset headers mean it."""
        return (self.size - self.level) / self.rate


@dataclass(frozen=True)
class Admission:
    """The buckets' answer to one request, and the rate-limit headers that go with it."""

    admitted: bool
    retry_in_s: float  # when refused: seconds until enough is back in every bucket
    requests: Bucket | None
    tokens: Bucket | None

    def headers(self, is_anthropic: bool, now_epoch: float) -> dict[str, str]:
        kinds = (("requests", self.requests), ("tokens", self.tokens))
        headers: dict[str, str] = {}
        for kind, bucket in kinds:
            if bucket is None:
                continue
            limit, remaining, reset = int(bucket.size), max(0, math.floor(bucket.level)), bucket.reset_in()
            if is_anthropic:
                headers[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
                headers[f"anthropic-ratelimit-{kind}-remaining"] = str(remaining)
                headers[f"anthropic-ratelimit-{kind}-reset"] = rfc3339(now_epoch + reset)
            else:
                headers[f"x-ratelimit-limit-{kind}"] = str(limit)
                headers[f"x-ratelimit-remaining-{kind}"] = str(remaining)
                headers[f"x-ratelimit-reset-{kind}"] = go_duration(reset)
        return headers


class RateBuckets:
    """The server's limits: a requests bucket and a tokens bucket, either optional. A request is admitted
    only when both have room, and then takes one request and its tokens (input + output)."""

    def __init__(self, config: LimitSettings, clock: Callable[[], float]) -> None:
        self.config, self.clock = config, clock
        self._requests: Bucket | None = None
        self._tokens: Bucket | None = None

    def admit(self, tokens: int) -> Admission:
        now = self.clock()
        requests, token_bucket = self._bucket_for_requests(now), self._bucket_for_tokens(now)
        waits = [bucket.wait_for(units) for bucket, units in ((requests, 1), (token_bucket, tokens))
                 if bucket is not None]
        retry_in = max(waits, default=0.0)
        if retry_in > 0:
            return Admission(False, retry_in, requests, token_bucket)
        if requests is not None:
            requests.level -= 1
        if token_bucket is not None:
            token_bucket.level -= min(tokens, token_bucket.size)
        return Admission(True, 0.0, requests, token_bucket)

    def _bucket_for_requests(self, now: float) -> Bucket | None:
        rps = self.config.limit_rps
        if not rps:
            self._requests = None
            return None
        if self._requests is None or self._requests.rate != rps:
            self._requests = Bucket(rps, self.config.limit_burst or rps, now)
        self._requests.refill(now)
        return self._requests

    def _bucket_for_tokens(self, now: float) -> Bucket | None:
        tpm = self.config.limit_tpm
        if not tpm:
            self._tokens = None
            return None
        if self._tokens is None or self._tokens.rate != tpm / 60.0:
            self._tokens = Bucket(tpm / 60.0, tpm, now)
        self._tokens.refill(now)
        return self._tokens


def go_duration(seconds: float) -> str:
    """Seconds as OpenAI writes them in x-ratelimit-reset-*: "20ms", "1.5s", "6m0s"."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


def rfc3339(epoch: float) -> str:
    """A moment as Anthropic writes it in anthropic-ratelimit-*-reset: 2026-12-01T14:05:34.250Z."""
    stamp = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
