"""What the CLI wraps around every command: internal errors get exit 4 and a log file, SIGTERM/SIGHUP act
like Ctrl-C, and user code's prints are kept out of the report stream. Imports nothing heavy."""

from __future__ import annotations

import functools
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar

import typer

from promptci.errors import EnvironmentFailure, ExitCode, PromptCIError

RAISE_VARIABLE = "PROMPTCI_RAISE"  # "1": let an unexpected exception propagate (for tests and debugging)
HANDLED_SIGNALS = ("SIGTERM", "SIGHUP")  # how CI runners cancel a job; treated like Ctrl-C

Command = TypeVar("Command", bound=Callable[..., Any])


def redact(text: str) -> str:
    """Replace the value of every secret-looking environment variable, in every form: a last line of defence."""
    from promptci.secrets import redact_environment

    return redact_environment(text)


def fail(error: PromptCIError) -> typer.Exit:
    """Print a known error (one line, or a list under a heading) and return the Exit to raise."""
    text = str(error)
    typer.echo(redact(f"promptci: error:\n{text}" if "\n" in text else f"promptci: error: {text}"), err=True)
    return typer.Exit(code=int(error.exit_code))


class SignalState:
    """The last handled signal, so an interrupted run exits 128 + its number (143 SIGTERM, 129 SIGHUP)."""

    received: int | None = None


def interrupt(signum: int, frame: Any) -> None:
    """Record the signal, then do what Ctrl-C does, but never inside a store commit (promptci.interrupts)."""
    from promptci.interrupts import deliver

    SignalState.received = signum
    deliver(functools.partial(act_as_ctrl_c, frame))


def act_as_ctrl_c(frame: Any) -> None:
    """Inside asyncio.Runner.run, the Runner's SIGINT handler: it cancels the main task, so the run loop stops
    between steps (never inside one) and run() raises KeyboardInterrupt; elsewhere, KeyboardInterrupt now."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not signal.default_int_handler:
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt


@contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Make SIGTERM and SIGHUP act like Ctrl-C in the main thread: the run loop stops, the run is kept."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for name in HANDLED_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, interrupt)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def interrupted_exit_code() -> int:
    received = SignalState.received
    return 128 + received if received else int(ExitCode.INTERRUPTED)


def state_dir(root: Path | None) -> Path:
    """The project's .promptci/logs, or a temp folder when there is no project (or it is not writable)."""
    try:
        from promptci.project import discover

        logs = discover(root).state / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return logs
    except Exception:  # no project here, or a read-only one: the log still has to go somewhere
        logs = Path(tempfile.gettempdir()) / "promptci-logs"
        logs.mkdir(parents=True, exist_ok=True)
        return logs


def write_crash_log(error: BaseException, root: Path | None) -> Path:
    text = redact("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    path = state_dir(root) / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    path.write_text(f"promptci {' '.join(sys.argv[1:])}\n{text}", encoding="utf-8")
    return path


def report_internal_error(error: BaseException, root: Path | None, verbose: int) -> typer.Exit:
    """One line on stderr (the traceback too with -v), the traceback in a log file; exit 4."""
    try:
        where = f"full traceback in {write_crash_log(error, root)}"
    except OSError as log_error:
        where = f"no log written: {log_error}"
    if verbose > 0:
        typer.echo(redact("".join(traceback.format_exception(type(error), error, error.__traceback__))), err=True)
    message = redact(f"{type(error).__name__}: {error}")
    typer.echo(f"promptci: internal error: {message} (a bug in promptci or a plugin; {where}; -v shows it)",
               err=True)
    return typer.Exit(code=int(ExitCode.INTERNAL_ERROR))


ENVIRONMENT_ERRNOS = frozenset({"ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EFBIG", "EIO", "EMFILE", "ENFILE"})


def environment_failure(error: BaseException) -> EnvironmentFailure | None:
    """A disk or permission error no narrower place named: exit 4 with the file and the reason, no traceback."""
    import errno

    if not isinstance(error, OSError) or errno.errorcode.get(error.errno or 0) not in ENVIRONMENT_ERRNOS:
        return None
    where = f"{error.filename}: " if error.filename else ""
    return EnvironmentFailure(f"{where}{error.strerror or error} (the disk or the file system refused; free space "
                              "or fix the permissions, then run again)")


@contextmanager
def chosen_store(choice: str | None) -> Iterator[None]:
    """A command's --store (cli.common.StoreOption) for the stores it opens; nothing imported without one."""
    if choice is None:
        yield
        return
    from promptci.storechoice import store_chosen

    with store_chosen(choice):
        yield


def guarded(command: Command) -> Command:
    """The edge of every command: known errors print one message (exit 2/3), a signal or Ctrl-C exits
    130/143/129, anything else is an internal error (exit 4, never 1, the regression code)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        SignalState.received = None
        try:
            with signals_as_interrupt(), chosen_store(kwargs.get("store")):
                return command(*args, **kwargs)
        except typer.Exit as done:
            if done.exit_code == ExitCode.INTERRUPTED:
                raise typer.Exit(code=interrupted_exit_code()) from None
            raise
        except PromptCIError as error:
            raise fail(error) from None
        except KeyboardInterrupt:
            typer.echo("promptci: interrupted", err=True)
            raise typer.Exit(code=interrupted_exit_code()) from None
        except Exception as error:
            refused = environment_failure(error)
            if refused is not None:
                raise fail(refused) from None
            if os.environ.get(RAISE_VARIABLE) == "1":
                raise
            raise report_internal_error(error, kwargs.get("root"), kwargs.get("verbose") or 0) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def user_output_to_stderr() -> Iterator[TextIO]:
    """While user code (python providers, comparators, plugins) runs, stdout goes to stderr, at the file
    descriptor too (threads and C extensions write there); yields the stream reports should use after.

    Reports are written after this block, on the stdout restored here.
    """
    real_stdout = sys.stdout
    fd = stdout_fd(real_stdout)
    saved_fd = None
    real_stdout.flush()
    if fd is not None:
        sys.stderr.flush()
        saved_fd = os.dup(fd)
        os.dup2(sys.stderr.fileno(), fd)
    sys.stdout = sys.stderr
    try:
        yield real_stdout
    finally:
        sys.stdout.flush()
        sys.stdout = real_stdout
        if saved_fd is not None and fd is not None:
            os.dup2(saved_fd, fd)
            os.close(saved_fd)


def stdout_fd(stream: TextIO) -> int | None:
    """The descriptor behind stdout when it is a real one distinct from stderr's; None under capture."""
    try:
        fd, err_fd = stream.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if fd != err_fd else None
