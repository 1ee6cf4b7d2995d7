"""The ranges of run options, checked the same way by the CLI and the pytest plugin. Imports nothing heavy."""

from __future__ import annotations

from promptci.errors import PromptCIError

MAX_REPEAT = 1000  # samples per case


def check_repeat(repeat: int, option: str = "--repeat") -> None:
    """A usage error unless 1 <= repeat <= MAX_REPEAT, naming the option it came from."""
    if not 1 <= repeat <= MAX_REPEAT:
        raise PromptCIError(f"{option} {repeat}: give a number of samples from 1 to {MAX_REPEAT}")
