"""The OpenAI provider's own SSE reading: event framing, [DONE], and a body left open after it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from ratelimit_sim import VirtualLoop

from promptci.providers.openai import DRAIN_S, end_events, sse_data


class Body:
    """The one method sse_data uses of an httpx2.Response: the body in blocks, optionally never ending."""

    def __init__(self, *blocks: bytes, hang: bool = False) -> None:
        self.blocks = blocks
        self.hang = hang

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for block in self.blocks:
            yield block
        if self.hang:
            await asyncio.sleep(3600)


async def collect(body: Body) -> list[bytes]:
    return [event async for event in sse_data(body)]  # type: ignore[arg-type]


def events(*blocks: bytes, hang: bool = False) -> list[bytes]:
    return asyncio.run(collect(Body(*blocks, hang=hang)))


def test_framing_lf_crlf_comments_and_multi_line_data() -> None:
    data: list[bytes] = []
    assert end_events([b": keep-alive", b"data: {\"a\":", b"data: 1}", b""], data) == [b'{"a":\n1}']
    assert end_events([b"event: x\r", b"data:{}\r", b"\r"], data) == [b"{}"]
    assert end_events([b"data: [DONE]", b""], data) == [b"[DONE]"]


def test_events_split_across_blocks_and_a_last_event_without_its_blank_line() -> None:
    assert events(b"data: {\"n\"", b": 1}\n\ndata: {\"n\": 2}\n\ndata: {\"n\": 3}") == [
        b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']


def test_done_ends_the_stream_even_if_the_server_keeps_the_body_open() -> None:
    """On a loop whose clock moves only by waits: the body's hour-long silence after [DONE] is waited DRAIN_S."""
    loop = VirtualLoop()
    try:
        collected = loop.run_until_complete(collect(Body(b"data: {}\n\ndata: [DONE]\n\n", hang=True)))
        assert collected == [b"{}"]
        assert loop.time() == pytest.approx(DRAIN_S)
    finally:
        loop.close()


def test_events_after_done_are_ignored() -> None:
    assert events(b"data: {}\n\ndata: [DONE]\n\ndata: {\"late\": 1}\n\n") == [b"{}"]
