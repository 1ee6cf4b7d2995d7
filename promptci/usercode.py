"""The one way promptci loads and calls the user's own code (python providers, comparators, transforms): off the main
event loop, under a deadline, every exception it raises (BaseException too: sys.exit, CancelledError, a
KeyboardInterrupt it raises itself) turned into UserCodeFailed, so it is that case's error and the run goes on.

Sync code runs in a daemon thread of its own (a stuck call cannot hold the process at exit); async code runs
on one shared event loop in a daemon thread, so an `async def` that blocks (time.sleep, a busy loop) blocks
that loop, not promptci's: the caller's deadline still fires. A real Ctrl-C or SIGTERM reaches only the main
thread, where no user code runs, so it still interrupts the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from promptci.errors import ComparatorError, ConfigError, PromptCIError, UserCodeFailed
from promptci.loading.yamlfile import resolve_inside

DEFAULT_TIMEOUT_S = 60.0  # Settings.timeout_s's default, for a caller outside a run
TRACEBACK_FRAMES = 5

# The run's timeout_s, set by the runner for every job: each call of user code gets that long.
USER_TIMEOUT_S: contextvars.ContextVar[float | None] = contextvars.ContextVar("promptci_user_timeout_s",
                                                                              default=None)

Outcome = tuple[bool, Any]  # (True, value) or (False, the BaseException raised)


class UserCodeTimedOut(UserCodeFailed):
    """The user's code did not return within the case's deadline."""


def run_timeout_s() -> float:
    """How long one call of user code may take: the run's timeout_s."""
    return USER_TIMEOUT_S.get() or DEFAULT_TIMEOUT_S


async def call_user_code(function: Callable[..., Any], *args: Any, label: str, timeout_s: float | None,
                         **kwargs: Any) -> Any:
    """function(*args, **kwargs), awaited if it returns an awaitable, off the main loop and within timeout_s
    (None: the caller bounds it). UserCodeFailed when it raises anything or overruns; a cancellation of the
    caller (Ctrl-C) still propagates as CancelledError."""
    try:
        async with asyncio.timeout(timeout_s):
            if inspect.iscoroutinefunction(function):
                outcome = await on_user_loop(function(*args, **kwargs))
            else:
                outcome = await in_daemon_thread(function, *args, **kwargs)
                if outcome[0] and inspect.isawaitable(outcome[1]):
                    outcome = await on_user_loop(outcome[1])
    except TimeoutError:
        raise UserCodeTimedOut(f"{label} did not return within timeout_s={timeout_s:g}") from None
    succeeded, value = outcome
    if succeeded:
        return value
    raise failure(label, value) from (value if isinstance(value, Exception) else None)


def failure(label: str, error: BaseException) -> UserCodeFailed:
    """What the user's code raised, as that case's error: its type, message and short traceback."""
    if isinstance(error, SystemExit):
        return UserCodeFailed(shown(lambda: f"{label} called sys.exit({error.code!r})"))
    own_frame = error.__traceback__  # where promptci called it: the user's frames follow
    user_frames = own_frame.tb_next if own_frame is not None else None
    message = shown(lambda: " ".join(str(error).split()))
    frames = shown(lambda: "".join(traceback.format_exception(type(error), error, user_frames,
                                                             limit=-TRACEBACK_FRAMES)).rstrip())
    return UserCodeFailed(f"{label} raised {type(error).__name__}: {message}", frames)


def shown(render: Callable[[], str]) -> str:
    """render()'s text, storable; the user's __str__ or __repr__ may raise too."""
    try:
        return storable(render())
    except Exception as exc:
        return f"<not printable: its {type(exc).__name__}>"


def storable(text: str) -> str:
    """Text the user's code made, with any lone UTF-16 surrogate (which no UTF-8 file or database can hold)
    shown as U+FFFD."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def lone_surrogate_in(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


async def in_daemon_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
    """function's outcome, from a thread of its own that cannot hold the process: the default executor's
    threads are joined at exit, so a function that never returns would keep promptci alive."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Outcome] = loop.create_future()

    def settle(outcome: Outcome) -> None:
        if not future.done():  # else the case timed out or was cancelled meanwhile
            future.set_result(outcome)

    context = contextvars.copy_context()  # as asyncio.to_thread does

    def work() -> None:
        try:
            outcome: Outcome = (True, context.run(function, *args, **kwargs))
        except BaseException as exc:  # SystemExit too: a thread would swallow it silently
            outcome = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits for this answer
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=work, name=f"promptci-user-{getattr(function, '__name__', 'function')}",
                     daemon=True).start()
    return await future


BEAT_S = 0.1  # how often the user loop notes that it is alive
STUCK_AFTER_S = 2.0  # a loop silent that long after one of its calls timed out is blocked by user code


class UserLoop:
    """An event loop in a daemon thread that notes the time every BEAT_S, so a loop that user code has
    blocked (time.sleep in an `async def`) can be told from one that is merely busy."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.loop = asyncio.new_event_loop()
        self.last_beat = clock()
        self.timed_out_at: float | None = None  # when a call on it last overran its deadline
        threading.Thread(target=self._run, name="promptci-user-async", daemon=True).start()

    def _run(self) -> None:
        self.loop.call_soon(self._beat)
        self.loop.run_forever()

    def _beat(self) -> None:
        self.last_beat = self.clock()
        self.loop.call_later(BEAT_S, self._beat)

    def is_blocked(self) -> bool:
        """Silent for STUCK_AFTER_S, with a call that overran: nothing more sent to it can finish."""
        now = self.clock()
        return self.timed_out_at is not None and now - self.last_beat > STUCK_AFTER_S


_user_loop: UserLoop | None = None
_user_loop_lock = threading.Lock()


def user_loop() -> UserLoop:
    """The event loop user async code runs on: one for the process, so a client the user's module keeps
    between calls (an httpx.AsyncClient) stays on the loop it was made on; replaced only when user code has
    blocked it for good (the old one is left to its daemon thread)."""
    global _user_loop
    with _user_loop_lock:
        if _user_loop is None or _user_loop.is_blocked():
            _user_loop = UserLoop()
        return _user_loop


async def _outcome_of(awaitable: Awaitable[Any]) -> Outcome:
    try:
        return True, await awaitable
    except BaseException as exc:  # never let it reach the user loop's own machinery, which re-raises some
        return False, exc


async def on_user_loop(awaitable: Awaitable[Any]) -> Outcome:
    """The awaitable's outcome, run on the user loop with the caller's context variables; cancelling the
    caller (a deadline, Ctrl-C) cancels it there too."""
    where = user_loop()
    running = asyncio.run_coroutine_threadsafe(_outcome_of(awaitable), where.loop)
    try:
        return await asyncio.wrap_future(running)
    except asyncio.CancelledError:
        where.timed_out_at = where.clock()
        raise


def check_inside_root(spec: str, root: Path | None) -> None:
    target = spec.rpartition(":")[0]
    if target.endswith(".py"):
        try:
            resolve_inside(root or Path.cwd(), target)
        except ConfigError as exc:
            raise ComparatorError(exc.message) from None


def load_function(spec: str, root: Path | None, what: str = "comparator 'python'") -> Callable[..., Any]:
    """The function named "path/file.py:fn" (inside root) or "pkg.mod:fn"; ComparatorError naming `what`."""
    from promptci.registry import load_object

    check_inside_root(spec, root)
    try:
        function = load_object(spec, root)
    except PromptCIError as exc:
        raise ComparatorError(f"{what}: {exc.message}") from exc
    except Exception as exc:  # the user's module failed while importing
        raise ComparatorError(f"{what}: importing {spec!r} failed: {type(exc).__name__}: {exc}") from exc
    except SystemExit as exc:
        raise ComparatorError(f"{what}: importing {spec!r} called sys.exit({exc.code!r})") from None
    if not callable(function):
        raise ComparatorError(f"{what}: {spec!r} is not a function")
    return function


# What user Python code depends on (see promptci.changes): every Python file of the project, as imports are
# not followed.
PYTHON_CODE = ("*.py",)


def code_dependencies(spec: str) -> tuple[str, ...]:
    """"checks.py:fn" -> ("checks.py", "*.py"); "pkg.mod:fn" -> ("*.py",): a project-relative posix path."""
    import posixpath

    target = spec.rpartition(":")[0]
    if not target.endswith(".py"):
        return PYTHON_CODE
    return (posixpath.normpath(target.replace("\\", "/")).removeprefix("./"), *PYTHON_CODE)
