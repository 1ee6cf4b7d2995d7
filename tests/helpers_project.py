"""Builds small promptci projects on disk for tests (importable as a plain module, not a fixture)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

GREET_PROMPT = "Hello {{ name }}!\n"
GREET_GOLDEN = """\
cases:
  - id: ada
    input: {name: Ada}
    expected: Hello Ada!
"""


def make_project(root: Path, files: Mapping[str, str | bytes] | None = None, *, with_greet: bool = False) -> Path:
    """Write `files` (relative path -> text, dedented; bytes written as is) under root with prompts/ and
    goldens/ folders. with_greet adds prompts/greet.txt and goldens/greet.yaml."""
    (root / "prompts").mkdir(parents=True, exist_ok=True)
    (root / "goldens").mkdir(parents=True, exist_ok=True)
    all_files: dict[str, str | bytes] = {}
    if with_greet:
        all_files.update({"prompts/greet.txt": GREET_PROMPT, "goldens/greet.yaml": GREET_GOLDEN})
    all_files.update(files or {})
    for relative, content in all_files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")
    return root
