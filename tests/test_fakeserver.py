"""The fake model server itself: both dialects, plain and streamed, timing, faults, bookkeeping."""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import openai
import pytest
from fakeserver import CHAT_PATH, FAULTS, MESSAGES_PATH, FakeServer, running_fake_server

USER = [{"role": "user", "content": "say the magic words"}]


def post(server: FakeServer, path: str, body: dict[str, Any],
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", path, json.dumps(body), {"content-type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def sse_data(raw: bytes) -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body."""
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields.get("event"), fields["data"]))
    return events


def test_plain_chat_echoes_the_last_user_message_with_exact_usage() -> None:
    with running_fake_server() as server:
        messages = [{"role": "system", "content": "be brief"}, *USER]
        status, _, body = post(server, CHAT_PATH, {"model": "m", "messages": messages})
    answer = json.loads(body)
    assert status == 200
    assert answer["choices"][0]["message"]["content"] == "say the magic words"
    assert answer["usage"] == {"prompt_tokens": 6, "completion_tokens": 4, "total_tokens": 10,
                               "prompt_tokens_details": {"cached_tokens": 0}}
    assert answer["model"] == "m-2024-07-18"


def test_plain_messages_count_the_system_prompt_and_honour_max_tokens() -> None:
    with running_fake_server(cached_tokens=2) as server:
        _, _, body = post(server, MESSAGES_PATH, {"model": "c", "max_tokens": 2, "system": "be brief",
                                                  "messages": USER})
    answer = json.loads(body)
    assert answer["content"] == [{"type": "text", "text": "say the"}]
    assert answer["stop_reason"] == "max_tokens"
    assert answer["usage"]["input_tokens"] == 4  # 6 words, 2 of them "read from the cache", as Anthropic counts
    assert answer["usage"]["output_tokens"] == 2
    assert answer["usage"]["cache_read_input_tokens"] == 2


def test_openai_stream_sends_chunks_then_finish_then_usage_then_done() -> None:
    with running_fake_server(chunks=3) as server:
        status, headers, body = post(server, CHAT_PATH, {"model": "m", "messages": USER, "stream": True,
                                                         "stream_options": {"include_usage": True}})
    assert status == 200 and headers["content-type"] == "text/event-stream"
    data = [d for _, d in sse_data(body)]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    texts = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert [t for t in texts if t] == ["say the", " magic", " words"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4


def test_anthropic_stream_sends_the_event_sequence() -> None:
    with running_fake_server(chunks=2) as server:
        _, _, body = post(server, MESSAGES_PATH, {"model": "c", "max_tokens": 10, "messages": USER,
                                                  "stream": True})
    events = sse_data(body)
    assert [e for e, _ in events] == ["message_start", "content_block_start", "content_block_delta",
                                      "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    assert json.loads(events[0][1])["message"]["usage"]["input_tokens"] == 4
    assert json.loads(events[5][1])["usage"]["output_tokens"] == 4


def test_custom_responder_and_model_suffix() -> None:
    with running_fake_server(responder=lambda body: f"{len(body['messages'])} messages", model_suffix="-v2") as s:
        _, _, body = post(s, CHAT_PATH, {"model": "m", "messages": USER})
    answer = json.loads(body)
    assert answer["choices"][0]["message"]["content"] == "1 messages"
    assert answer["model"] == "m-v2"


def test_latency_and_time_to_first_chunk_are_respected() -> None:
    """The server waits ttft before the first text chunk and the rest of the latency spread over the others:
    its waits are recorded (not slept), each only once the client holds the chunks before it, so the client
    sees how many waits preceded each chunk."""
    waits: list[float] = []
    received = [threading.Event() for _ in range(5)]  # received[n]: the client holds n text chunks
    received[0].set()

    async def record_wait(seconds: float) -> None:
        assert await asyncio.to_thread(received[len(waits)].wait, 30), "the client never got the chunk before"
        waits.append(seconds)

    async def waits_seen_at_each_chunk(url: str) -> list[int]:
        client = openai.AsyncOpenAI(base_url=url, api_key="k", max_retries=0, timeout=60)
        seen: list[int] = []
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)  # type: ignore[arg-type]
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                seen.append(len(waits))
                received[len(seen)].set()
        await client.close()
        return seen

    with running_fake_server(latency_s=0.2, ttft_s=0.1, chunks=4, sleep=record_wait) as server:
        seen = asyncio.run(waits_seen_at_each_chunk(server.openai_base_url))
    assert waits == pytest.approx([0.1, 0.1 / 3, 0.1 / 3, 0.1 / 3])  # ttft first, the last chunk at latency_s
    assert seen == [1, 2, 3, 4]  # every chunk sent after its wait, never before


@pytest.mark.parametrize(("fault", "status"), [("429", 429), ("500", 500), ("529", 529), ("401", 401),
                                               ("404", 404)])
def test_scripted_error_faults_answer_with_their_status(fault: str, status: int) -> None:
    with running_fake_server(retry_after="0.5", retry_after_ms="500") as server:
        server.script(fault)
        first = post(server, CHAT_PATH, {"model": "m", "messages": USER})
        second = post(server, CHAT_PATH, {"model": "m", "messages": USER})
    assert first[0] == status
    assert second[0] == 200
    if status == 429:
        assert first[1]["retry-after"] == "0.5" and first[1]["retry-after-ms"] == "500"


def test_unknown_fault_name_is_refused() -> None:
    server = FakeServer()
    with pytest.raises(ValueError, match="unknown fault"):
        server.script("teapot")
    assert "cut" in FAULTS


def test_rate_limit_share_is_seeded_and_reproducible() -> None:
    def pattern() -> list[int]:
        with running_fake_server(rate_limit_p=0.3, seed=7) as server:
            return [post(server, CHAT_PATH, {"model": "m", "messages": USER})[0] for _ in range(40)]

    first, second = pattern(), pattern()
    assert first == second
    assert 4 <= first.count(429) <= 20


def test_unauthorized_and_unknown_models() -> None:
    with running_fake_server(unknown_models=("gone",)) as server:
        assert post(server, CHAT_PATH, {"model": "gone", "messages": USER})[0] == 404
        assert post(server, CHAT_PATH, {"model": "here", "messages": USER})[0] == 200
        server.config.unauthorized = True
        assert post(server, MESSAGES_PATH, {"model": "here", "messages": USER})[0] == 401


def test_counts_records_and_stats() -> None:
    with running_fake_server() as server:
        post(server, CHAT_PATH, {"model": "m", "messages": USER}, {"authorization": "Bearer sk-abc"})
        post(server, MESSAGES_PATH, {"model": "c", "messages": USER})
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("GET", "/_stats")
        stats = json.loads(conn.getresponse().read())
        conn.close()
        assert post(server, "/v1/nowhere", {})[0] == 404
    assert stats == {"total": 2, "by_path": {CHAT_PATH: 1, MESSAGES_PATH: 1}, "refused": 0, "batches_created": 0}
    assert server.total == 2
    assert server.requests[0].headers["authorization"] == "Bearer sk-abc"
    assert server.requests[1].body["model"] == "c"


def test_stopped_server_refuses_connections() -> None:
    with running_fake_server() as server:
        port = server.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    with pytest.raises(ConnectionRefusedError):
        conn.request("GET", "/_stats")


def test_64_concurrent_sdk_streams_are_served_in_parallel() -> None:
    """Every request's latency is a wait that lasts until all 64 are in the server at once: a server answering
    one at a time would never get there (each wait gives up after a generous 60 s, and the count says so)."""
    everyone_in = asyncio.Event()  # created on the test's loop, used only on the server's: set below there
    waiting = {"now": 0, "peak": 0}

    async def wait_for_the_others(seconds: float) -> None:
        waiting["now"] += 1
        waiting["peak"] = max(waiting["peak"], waiting["now"])
        if waiting["peak"] == 64:
            everyone_in.set()
        try:
            await asyncio.wait_for(everyone_in.wait(), timeout=60)
        except TimeoutError:
            everyone_in.set()  # no one else waits: the assertion below reports the peak
        finally:
            waiting["now"] -= 1

    async def run(url: str) -> list[str]:
        client = openai.AsyncOpenAI(base_url=url, api_key="k", max_retries=0, timeout=60)

        async def one() -> str:
            stream = await client.chat.completions.create(model="m", messages=USER, stream=True)  # type: ignore[arg-type]
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        answers = await asyncio.gather(*(one() for _ in range(64)))
        await client.close()
        return answers

    with running_fake_server(latency_s=0.2, chunks=1, sleep=wait_for_the_others) as server:
        answers = asyncio.run(run(server.openai_base_url))
        assert server.total == 64
    assert set(answers) == {"say the magic words"}
    assert waiting["peak"] == 64


def test_runs_as_a_script_for_benchmarks() -> None:
    script = Path(__file__).with_name("fakeserver.py")
    process = subprocess.Popen([sys.executable, str(script), "--latency", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
        conn.request("GET", "/_stats")
        assert json.loads(conn.getresponse().read())["total"] == 0
        conn.close()
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_a_taken_port_fails_fast_and_a_stopped_server_restarts_on_its_port() -> None:
    with running_fake_server() as server:
        with pytest.raises(RuntimeError, match="did not start"):
            FakeServer(port=server.port).start()
        port = server.port
    server.start()
    try:
        assert server.port == port
        assert post(server, CHAT_PATH, {"model": "m", "messages": USER})[0] == 200
    finally:
        server.stop()
