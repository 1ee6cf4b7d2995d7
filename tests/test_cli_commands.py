"""`init`, `lint`, `comparators`, plugins through entry points, and the pinned public surface."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import promptci
from promptci.registry import BUILTIN_COMPARATORS, Registry, build_comparator


def test_init_scaffolds_a_project_that_passes_at_once(cli, tmp_path: Path) -> None:
    root = tmp_path / "new"
    result = cli("init", root)
    assert result.exit_code == 0, result.output
    assert (root / "promptci.yaml").exists() and (root / ".github" / "workflows" / "promptci.yml").exists()
    assert cli("run", "--root", root).exit_code == 0
    assert cli("lint", "--root", root).exit_code == 0
    again = cli("init", root)
    assert again.exit_code == 2 and "--force" in again.stderr


def test_lint_reports_errors_with_exit_2_and_warnings_with_exit_0(cli, project) -> None:
    root = project({
        "prompts/greet.txt": "Hi {{ name }} {{ extra }}\n",
        "goldens/greet.yaml": "cases:\n  - id: a\n    input: {name: A, extra: 1, unused: 2}\n    expected: Hi A 1\n",
    })
    result = cli("lint", "--root", root)
    assert result.exit_code == 0, result.output
    assert "goldens/greet.yaml:2: case 'a' supplies 'unused'" in result.stderr and "[warning]" in result.stderr
    (root / "goldens" / "greet.yaml").write_text("cases:\n  - id: a\n    input: {name: A}\n    expected: Hi A\n")
    result = cli("lint", "--root", root)
    assert result.exit_code == 2
    assert "variable 'extra' is undefined" in result.stderr and "[error]" in result.stderr


def test_comparators_lists_the_built_ins(cli) -> None:
    result = cli("comparators")
    assert result.exit_code == 0
    assert set(result.stdout.split()) >= set(BUILTIN_COMPARATORS)


def write_plugin(site: Path) -> None:
    """A tiny installed distribution that registers a comparator through the entry-point group."""
    info = site / "promptci_shout-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: promptci-shout\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[promptci.comparators]\nshouted = promptci_shout:shouted\n")
    (site / "promptci_shout.py").write_text(
        "from promptci.types import Score\n\n"
        "def shouted(min_length: int = 1):\n"
        "    async def score(case, completion):\n"
        "        ok = bool(completion.text) and completion.text.isupper() and len(completion.text) >= min_length\n"
        "        return Score('shouted', float(ok), ok, 'all caps' if ok else 'not all caps')\n"
        "    return score\n"
    )


def test_a_third_party_comparator_loads_through_its_entry_point(tmp_path: Path, monkeypatch) -> None:
    site = tmp_path / "site"
    write_plugin(site)
    monkeypatch.syspath_prepend(str(site))
    registry = Registry("promptci.comparators", BUILTIN_COMPARATORS, "comparator")
    assert "shouted" in registry.names()
    factory = registry.get("shouted")
    assert factory.__module__ == "promptci_shout"
    monkeypatch.setattr("promptci.registry.comparators", registry)
    build_comparator("shouted", {"min_length": 2})
    done = subprocess.run([sys.executable, "-m", "promptci.cli", "comparators"], capture_output=True, text=True,
                          env={"PYTHONPATH": str(site), "PATH": ""}, timeout=60)
    assert done.returncode == 0 and "shouted" in done.stdout.split(), done.stderr


def test_the_public_surface_is_pinned() -> None:
    assert promptci.__all__ == [
        "__version__", "Case", "CaseResult", "Completion", "ConfigError", "ExitCode", "Plan", "Project",
        "PromptCIError", "ProviderError", "Request", "Run", "RunOptions", "RunOutcome", "Score", "Session", "ToolCall",
        "Usage",
        "build_plan", "discover", "run",
    ]
    for name in promptci.__all__:
        assert getattr(promptci, name) is not None
    exported: dict[str, object] = {}
    exec("from promptci import *", exported)  # what a user gets is exactly the pinned surface
    assert sorted(n for n in exported if n != "__builtins__") == sorted(promptci.__all__)
    assert [int(code) for code in promptci.ExitCode] == [0, 1, 2, 3, 4, 130]
