"""The distribution is `promptci-cli`: no install line anywhere may install the unrelated `promptci`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from promptci.scaffold import FILES

REPO = Path(__file__).resolve().parent.parent
# "promptci" then anything but "-" (or the end): the bare name, which is someone else's package.
BARE_INSTALL = re.compile(r"pip3?\s+install\s+(?:-U\s+|--upgrade\s+)?['\"]?" + "prompt" + r"ci(?!-)")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [REPO / name for name in listed.splitlines() if (REPO / name).is_file()]


def test_the_pattern_catches_the_bare_name_and_spares_ours() -> None:
    assert BARE_INSTALL.search("pip install " + "promptci")
    assert BARE_INSTALL.search("pip install " + "promptci==1.0")
    assert BARE_INSTALL.search("  - run: pip install " + "'promptci'\n")
    assert not BARE_INSTALL.search("pip install promptci-cli")
    assert not BARE_INSTALL.search("pip install -e '.[test]'")


def test_no_file_in_the_repository_installs_the_bare_name() -> None:
    offenders = []
    for path in tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [f"{path.relative_to(REPO)}:{text.count(chr(10), 0, m.start()) + 1}"
                      for m in BARE_INSTALL.finditer(text)]
    assert offenders == []


def test_the_scaffold_installs_this_project() -> None:
    for name, content in FILES.items():
        assert not BARE_INSTALL.search(content), name
    assert "uses: OWNER/promptci@v1" in FILES[".github/workflows/promptci.yml"]  # installs from its checkout


def test_the_distribution_is_named_promptci_cli_and_the_command_promptci() -> None:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^name = "promptci-cli"$', text, re.MULTILINE)
    assert re.search(r'^promptci = "promptci.cli:main"$', text, re.MULTILINE)
