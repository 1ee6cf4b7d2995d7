"""examples/plugin installed for real (pip install --no-deps --no-build-isolation -e, offline) into a temporary
venv that sees this environment's packages, then listed by `promptci comparators` / `promptci providers` and
used in a run."""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "examples" / "plugin"


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv without pip of its own: this environment's site-packages (promptci, pip, setuptools) are
    reached through a .pth file, and the plugin is installed into the venv itself."""
    pytest.importorskip("setuptools", minversion="70.1")  # builds an editable wheel without the `wheel` package
    home = tmp_path_factory.mktemp("plugin-venv") / "venv"
    venv.EnvBuilder(with_pip=False).create(home)
    python = home / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-e", PLUGIN],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PIP_NO_INDEX": "1"})
    assert installed.returncode == 0, installed.stderr
    return python


def promptci(python: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-m", "promptci", *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})


def test_the_plugin_is_listed_with_its_description_and_options(plugin_python: Path) -> None:
    comparators = promptci(plugin_python, "comparators")
    assert comparators.returncode == 0, comparators.stderr
    line = next(row for row in comparators.stdout.splitlines() if row.startswith("word_count "))
    assert "Passes when the output has between min_words and max_words words." in line
    assert "(options: min_words, max_words)" in line
    providers = promptci(plugin_python, "providers")
    line = next(row for row in providers.stdout.splitlines() if row.startswith("reverse "))
    assert "Offline: answers with the words of the last user message in reverse order" in line
    assert "(options: uppercase)" in line


def test_the_plugin_runs_a_suite(plugin_python: Path, project) -> None:
    root = project({
        "prompts/greet.txt": "Hello {{ name }}!\n",
        "goldens/greet.yaml": ("comparators:\n  - exact\n  - {type: word_count, min_words: 2, max_words: 2}\n"
                               "cases:\n  - id: ada\n    input: {name: Ada}\n    expected: Ada! Hello\n"
                               "  - id: bob\n    input: {name: Bob}\n    expected: BOB! HELLO\n"),
        "promptci.yaml": "providers:\n  shouty: {type: reverse, uppercase: true}\n",
    })
    plain = promptci(plugin_python, "run", "--root", str(root), "-m", "reverse:any", "--format", "json")
    statuses = {r["case_id"]: r["status"] for r in json.loads(plain.stdout)["results"]}
    assert statuses == {"ada": "passed", "bob": "failed"} and plain.returncode == 1
    loud = promptci(plugin_python, "run", "--root", str(root), "-m", "shouty:any", "-k", "bob", "--format", "json")
    assert loud.returncode == 0, loud.stdout + loud.stderr


def test_not_installed_here(cli) -> None:
    """The plugin is installed only in the temporary venv: this environment does not list it."""
    assert "word_count" not in cli("comparators").stdout
