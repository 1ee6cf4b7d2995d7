"""promptci: prompts as code. The library surface is promptci.api; the names below are stable.

Names load lazily so `import promptci` (and `promptci --help`) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "run": "promptci.api",
    "RunOptions": "promptci.api",
    "RunOutcome": "promptci.api",
    "Project": "promptci.project",
    "discover": "promptci.project",
    "Plan": "promptci.plan",
    "build_plan": "promptci.planning",
    "Session": "promptci.session",
    "Case": "promptci.types",
    "CaseResult": "promptci.types",
    "Completion": "promptci.types",
    "Request": "promptci.types",
    "Run": "promptci.types",
    "Score": "promptci.types",
    "ToolCall": "promptci.types",
    "Usage": "promptci.types",
    "ExitCode": "promptci.errors",
    "PromptCIError": "promptci.errors",
    "ConfigError": "promptci.errors",
    "ProviderError": "promptci.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'promptci' has no attribute {name!r}")
