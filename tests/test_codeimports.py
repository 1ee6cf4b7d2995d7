"""codeimports.SeparateImports: each folder's code sees only its own modules; installed code is never touched."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import yaml

import promptci.compare
from promptci.codeimports import separate_imports


def folder_with_helper(root: Path, word: str) -> Path:
    root.mkdir()
    (root / "helper_for_usercode.py").write_text(f"WORD = {word!r}\n", encoding="utf-8")
    return root


def imported_word(folder: Path) -> str:
    sys.path.insert(0, str(folder))  # as promptci's loaders do; restored when the folder's turn ends
    return str(importlib.import_module("helper_for_usercode").WORD)


def test_each_folder_keeps_its_own_modules_and_finds_them_again(tmp_path: Path) -> None:
    a, b = folder_with_helper(tmp_path / "a", "A"), folder_with_helper(tmp_path / "b", "B")
    with separate_imports() as code:
        with code.of(a):
            assert imported_word(a) == "A"
            first = sys.modules["helper_for_usercode"]
        with code.of(b):
            assert imported_word(b) == "B"
        with code.of(a):
            assert sys.modules["helper_for_usercode"] is first  # a's module state lives on between its turns
    assert "helper_for_usercode" not in sys.modules


def test_installed_code_inside_a_project_folder_is_left_alone() -> None:
    # promptci's own checkout is a project (promptci.yaml, app.py) holding the promptci package, and often a
    # .venv: neither may be purged as the project's code, or promptci would import itself twice.
    checkout = Path(promptci.compare.__file__).resolve().parent.parent
    compare, yaml_module = sys.modules["promptci.compare"], sys.modules["yaml"]
    with separate_imports() as code, code.of(checkout):
        assert sys.modules["promptci.compare"] is compare
    assert sys.modules["promptci.compare"] is compare and sys.modules["yaml"] is yaml_module is yaml
