"""The fake server's token buckets: refusals with Retry-After, both dialects' rate-limit headers, /_stats."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import openai
import pytest
from fakelimits import go_duration, rfc3339
from fakeserver import CHAT_PATH, MESSAGES_PATH, FakeConfig, FakeServer
from test_fakeserver import USER, post


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def limited_server(**options: object) -> Iterator[tuple[FakeServer, ManualClock]]:
    clock = ManualClock()
    server = FakeServer(FakeConfig(**options), clock=clock).start()  # type: ignore[arg-type]
    try:
        yield server, clock
    finally:
        server.stop()


def stats(server: FakeServer) -> dict[str, object]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", "/_stats")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def chat(server: FakeServer, **extra: object) -> tuple[int, dict[str, str], bytes]:
    return post(server, CHAT_PATH, {"model": "m", "messages": USER, **extra})


def test_the_bucket_admits_its_burst_then_refuses_with_retry_after_until_it_refills() -> None:
    with limited_server(limit_rps=5) as (server, clock):
        answers = [chat(server) for _ in range(5)]
        status, headers, body = chat(server)
        clock.now += 0.2  # one request's worth comes back
        after, _, _ = chat(server)
        again, _, _ = chat(server)
        seen = stats(server)
    assert [a[0] for a in answers] == [200] * 5
    assert [a[1]["x-ratelimit-remaining-requests"] for a in answers] == ["4", "3", "2", "1", "0"]
    assert answers[0][1]["x-ratelimit-limit-requests"] == "5"
    assert answers[0][1]["x-ratelimit-reset-requests"] == "200ms"
    assert answers[4][1]["x-ratelimit-reset-requests"] == "1s"
    assert status == 429
    assert json.loads(body)["error"]["type"] == "rate_limit_error"
    assert headers["retry-after"] == "1" and headers["retry-after-ms"] == "200"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert (after, again) == (200, 429)
    assert seen == {"total": 8, "by_path": {CHAT_PATH: 8}, "refused": 2, "batches_created": 0}
    assert server.refused == 2


def test_headers_on_429s_only_leave_the_admitted_answers_bare() -> None:
    with limited_server(limit_rps=2, limit_headers_on="429") as (server, _):
        answers = [chat(server) for _ in range(3)]
        streamed = chat(server, stream=True)
    assert [a[0] for a in answers] == [200, 200, 429] and streamed[0] == 429
    assert not any(name.startswith("x-ratelimit") for name in answers[0][1])
    assert answers[2][1]["x-ratelimit-remaining-requests"] == "0" and answers[2][1]["retry-after-ms"] == "500"


def test_a_burst_size_apart_from_the_rate() -> None:
    with limited_server(limit_rps=10, limit_burst=2) as (server, _):
        codes = [chat(server)[0] for _ in range(3)]
    assert codes == [200, 200, 429]


def test_anthropic_answers_carry_anthropic_headers_with_rfc3339_resets() -> None:
    with limited_server(limit_rps=4, limit_tpm=600) as (server, _):
        status, headers, _ = post(server, MESSAGES_PATH, {"model": "c", "max_tokens": 10, "messages": USER})
    assert status == 200
    assert headers["anthropic-ratelimit-requests-limit"] == "4"
    assert headers["anthropic-ratelimit-requests-remaining"] == "3"
    assert headers["anthropic-ratelimit-tokens-limit"] == "600"
    assert headers["anthropic-ratelimit-tokens-remaining"] == "592"  # 4 words in, 4 words out
    reset = datetime.fromisoformat(headers["anthropic-ratelimit-requests-reset"].replace("Z", "+00:00"))
    assert reset.tzinfo is not None
    assert not any(name.startswith("x-ratelimit") for name in headers)


def test_the_tokens_bucket_refuses_what_does_not_fit_in_a_minute() -> None:
    with limited_server(limit_tpm=12) as (server, clock):
        first = chat(server)  # 4 words in, 4 out: 8 tokens
        second = chat(server)
        clock.now += 20  # 4 tokens a minute come back in 20 s
        third = chat(server)
    assert first[0] == 200
    assert first[1]["x-ratelimit-remaining-tokens"] == "4"
    assert first[1]["x-ratelimit-reset-tokens"] == "40s"
    assert second[0] == 429 and second[1]["retry-after-ms"] == "20000"
    assert "x-ratelimit-remaining-requests" not in first[1]  # no requests limit was set
    assert third[0] == 200


def test_streamed_answers_carry_the_headers_too() -> None:
    with limited_server(limit_rps=3) as (server, _):
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="m", messages=USER, stream=True)
        headers = raw.headers
        list(raw.parse())
    assert headers["x-ratelimit-remaining-requests"] == "2"


def test_the_sdk_sees_a_refusal_as_a_rate_limit_error_with_the_headers() -> None:
    with limited_server(limit_rps=1) as (server, _):
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)
        client.chat.completions.create(model="m", messages=USER)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="m", messages=USER)
    assert caught.value.response.headers["retry-after-ms"] == "1000"
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_without_limits_no_rate_limit_headers_and_nothing_refused() -> None:
    with limited_server() as (server, _):
        answers = [chat(server) for _ in range(20)]
    assert {a[0] for a in answers} == {200}
    assert not any("ratelimit" in name for a in answers for name in a[1])
    assert server.refused == 0


def test_random_faults_come_from_the_mix_reproducibly() -> None:
    def codes() -> list[int]:
        with limited_server(fault_p=0.5, fault_mix=("500", "429"), seed=3) as (server, _):
            return [chat(server)[0] for _ in range(40)]

    first = codes()
    assert first == codes()
    assert set(first) == {200, 500, 429}


def test_the_fault_mix_refuses_unknown_faults_on_the_command_line() -> None:
    from fakeserver import main

    with pytest.raises(SystemExit) as caught:
        main(["--fault-mix", "429,teapot"])
    assert caught.value.code == 2


@pytest.mark.parametrize(("seconds", "text"), [(0.02, "20ms"), (0.0004, "1ms"), (1.0, "1s"), (1.5, "1.5s"),
                                                (360.0, "6m0s"), (61.25, "1m1.25s")])
def test_resets_are_written_as_go_durations(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_rfc3339_keeps_milliseconds_in_utc() -> None:
    assert rfc3339(1_700_000_000.25) == "2023-11-14T22:13:20.250Z"
