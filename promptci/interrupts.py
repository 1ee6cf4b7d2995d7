"""Interrupts held off while a write must finish whole. A signal handler hands its action to deliver(); inside
a held() block (a store commit) the action waits for the end of the outermost block. Main thread only: that
is where Python runs signal handlers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class _Held:
    depth = 0
    pending: Callable[[], None] | None = None


@contextmanager
def held() -> Iterator[None]:
    """Run the block whole; an interrupt delivered inside it acts when the block ends (raising from there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _Held.depth += 1
    try:
        yield
    finally:
        _Held.depth -= 1
        if _Held.depth == 0 and _Held.pending is not None:
            action, _Held.pending = _Held.pending, None
            action()


def deliver(action: Callable[[], None]) -> None:
    """Act on an interrupt now, or when the held block running now ends."""
    if _Held.depth:
        _Held.pending = action
    else:
        action()
