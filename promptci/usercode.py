"""A user's own function named by "path/file.py:fn" (inside the project) or "pkg.mod:fn": what the python
comparator and the python transform call. Below both, so a transform needs nothing of the comparators."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptci.errors import ComparatorError, ConfigError, PromptCIError
from promptci.loading.yamlfile import resolve_inside


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
