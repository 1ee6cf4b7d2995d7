"""Which reports a command writes: --format and the -o targets, checked before anything is spent, and the
shape of a run or a comparison for a format (GitHub paths are relative to the repository root)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import TYPE_CHECKING

from promptci.errors import EnvironmentFailure, PromptCIError
from promptci.reporting import COMPARISON_FORMATS, FORMATS, format_for_suffix, known_suffixes
from promptci.types import Run

if TYPE_CHECKING:
    from promptci.compare import Comparison

Target = tuple[str, Path]
USAGE_ERRNOS = frozenset({"EISDIR", "ENOTDIR", "EEXIST", "ENOENT", "ENAMETOOLONG", "EINVAL"})


def parse_outputs(outputs: list[str]) -> list[Target]:
    """`-o FORMAT=FILE`, or `-o FILE` whose suffix names the format (.json, .xml, .md)."""
    parsed = []
    for item in outputs:
        fmt, sep, path = item.partition("=")
        if not sep:
            implied = format_for_suffix(Path(item))
            if implied is None:
                raise PromptCIError(
                    f"-o {item!r}: the suffix does not say which format to write (known suffixes: "
                    f"{', '.join(known_suffixes())}); name it as FORMAT=FILE, e.g. -o json={item} "
                    f"(formats: {', '.join(FORMATS)})")
            fmt, path = implied, item
        if fmt not in FORMATS:
            raise PromptCIError(f"-o {item!r}: unknown format {fmt!r} (known: {', '.join(FORMATS)})")
        if not path:
            raise PromptCIError(f"-o {item!r}: no file after {fmt}= (write -o {fmt}=FILE)")
        check_report_target(Path(path), item)
        parsed.append((fmt, Path(path)))
    return parsed


def report_targets(fmt: str, outputs: list[str] | None) -> list[Target]:
    """Check --format and parse the -o targets."""
    if fmt not in FORMATS:
        raise PromptCIError(f"--format {fmt!r} is not known (known: {', '.join(FORMATS)})")
    return parse_outputs(outputs or [])


def comparison_targets(fmt: str, outputs: list[str] | None) -> list[Target]:
    """Check --format and -o against the formats a diff is written in."""
    targets = report_targets(fmt, outputs)
    for name in (fmt, *(f for f, _ in targets)):
        if name not in COMPARISON_FORMATS:
            raise PromptCIError(f"format {name!r} has no report of a diff "
                                f"(diff writes: {', '.join(COMPARISON_FORMATS)})")
    return targets


def check_report_target(path: Path, option: str) -> None:
    """Before a run spends anything: a target that is a folder, or under a file, can never be written."""
    if path.is_dir():
        raise PromptCIError(f"-o {option!r}: {path} is a folder; give a file path (e.g. {path / 'report.json'})")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise PromptCIError(f"-o {option!r}: {parent} is a file, so {path} cannot be created; give another "
                                    "path")
            return


def report_write_error(path: Path, report_format: str, error: OSError) -> PromptCIError:
    """A path that cannot be a file is a usage error (2); a disk or folder that refuses is the environment's (4)."""
    reason = error.strerror or str(error)
    if errno.errorcode.get(error.errno or 0) in USAGE_ERRNOS:
        return PromptCIError(f"-o {path}: cannot write the {report_format} report there ({reason}); "
                             "give a file path whose folders exist or can be created")
    return EnvironmentFailure(f"-o {path}: cannot write the {report_format} report ({reason}); free space or "
                              "make the folder writable, or write it elsewhere")


def run_for_format(run: Run, fmt: str, project_root: Path | None) -> Run:
    """GitHub resolves annotation paths from the repository root, which may sit above the project."""
    if fmt != "github" or project_root is None:
        return run
    from promptci.reporting.github import repository_prefix, with_repository_paths

    return with_repository_paths(run, repository_prefix(project_root))


def comparison_for_format(comparison: Comparison, fmt: str, project_root: Path) -> Comparison:
    """run_for_format() for what `promptci diff` found."""
    if fmt != "github":
        return comparison
    from promptci.reporting.diff_github import repository_prefix, with_repository_paths

    return with_repository_paths(comparison, repository_prefix(project_root))
