"""One error family, rendered at the CLI edge as `path:line: what is wrong (how to fix it)`.

    PromptCIError                 exit 2 unless said otherwise
    ├── ConfigError               promptci.yaml, golden or prompt file problems; may carry many Problems
    │   └── TemplateError         a template that does not parse or render
    ├── ComparatorError           bad comparator name or options
    ├── ProviderError             a request that failed; providers classify, the runner retries
    │   ├── RateLimited           429 (retryable, may carry retry_after)
    │   ├── ServerError           5xx (retryable)
    │   ├── Timeout               no answer in time (retryable)
    │   ├── ConnectionFailed      could not connect, or a stream cut mid-way (retryable)
    │   ├── AuthError             401/403: stops the model's remaining cases
    │   ├── ModelNotFound         404: stops the model's remaining cases
    │   ├── BadRequest            other 4xx (not retried)
    │   └── ReplayMiss            --replay found no recorded answer
    ├── MissingKey                an API key variable is not set (exit 2 before any request)
    ├── CorruptState              the database is damaged or not promptci's (exit 2: move it away)
    └── EnvironmentFailure        the machine refused: a full disk, a read-only folder, a lock held too
                                  long, an unwritable -o target (exit 4, shown without a traceback)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from promptci.types import ErrorInfo, Location


class ExitCode(IntEnum):
    """SPEC section 4. A signal other than SIGINT exits 128 + its number (143 SIGTERM, 129 SIGHUP)."""

    OK = 0
    REGRESSION = 1
    USAGE = 2
    NO_VERDICT = 3
    INTERNAL_ERROR = 4  # a bug in promptci or a plugin: never confused with a regression
    INTERRUPTED = 130


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one place."""

    message: str
    location: Location | None = None

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class PromptCIError(Exception):
    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ConfigError(PromptCIError):
    """Bad input. Carries every problem found, so the user fixes them in one pass."""

    def __init__(self, message: str, location: Location | None = None,
                 problems: Iterable[Problem] = ()) -> None:
        super().__init__(message, location)
        self.problems: tuple[Problem, ...] = tuple(problems) or (Problem(message, location),)

    @classmethod
    def from_problems(cls, problems: Iterable[Problem]) -> ConfigError:
        found = tuple(problems)
        return cls(f"{len(found)} problem(s) found", problems=found)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class TemplateError(ConfigError):
    pass


class ComparatorError(PromptCIError):
    pass


class UserCodeFailed(Exception):
    """The user's own code (a python comparator's function) raised, or called sys.exit, while scoring.
    Not a PromptCIError: the runner makes the case an `error` result. The message names the function;
    `frames` is a short traceback of the user's code."""

    def __init__(self, message: str, frames: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.frames = frames

    def describe(self) -> str:
        return f"{self.message}\n{self.frames}" if self.frames else self.message


class MissingKey(PromptCIError):
    pass


class CorruptState(PromptCIError):
    """The state database is damaged or not promptci's: the message says what and how to recover."""


class EnvironmentFailure(PromptCIError):
    """Not a bug and not bad input: the disk, the file system or another process refused."""

    exit_code = ExitCode.INTERNAL_ERROR


class ProviderError(PromptCIError):
    """A failed request, classified by the provider so the runner can decide what to do."""

    exit_code = ExitCode.NO_VERDICT
    kind = "provider"
    retryable = False
    stops_model = False  # True: the model's remaining cases would fail the same way

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.attempts = 1  # set by the retry policy when it gives up
        self.headers: Mapping[str, str] = {}  # the answer's rate-limit headers, for the limiter (never stored)

    def info(self) -> ErrorInfo:
        return ErrorInfo(kind=self.kind, message=self.message, status=self.status, retryable=self.retryable)


class RateLimited(ProviderError):
    kind = "rate_limited"
    retryable = True


class ServerError(ProviderError):
    kind = "server"
    retryable = True


class Timeout(ProviderError):
    kind = "timeout"
    retryable = True


class ConnectionFailed(ProviderError):
    kind = "connection"
    retryable = True


class AuthError(ProviderError):
    kind = "auth"
    stops_model = True


class ModelNotFound(ProviderError):
    kind = "not_found"
    stops_model = True


class BadRequest(ProviderError):
    kind = "bad_request"


class ReplayMiss(ProviderError):
    kind = "replay_miss"
