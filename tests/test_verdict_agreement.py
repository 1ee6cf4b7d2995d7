"""One verdict, every report: for each gate kind, the exit code == the JSON report's verdict == the Markdown
verdict line (the PR comment), through the real CLI. A report renders the verdict; it never decides one."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeServer, running_fake_server
from gitrepo import commit, new_repo

KEY = "sk-test-AGREE-1234567890"
LABELS = {0: "PASSED", 1: "FAILED", 3: "NO VERDICT"}
CASES = "".join(f"  - id: c{n:02d}\n    input: {{n: {n}}}\n    expected: A\n" for n in range(12))


def agrees(result: Any, markdown: Path, gate: str | None, key: str = "verdict") -> None:
    """The exit code, the JSON's verdict and the Markdown's verdict line say the same; `gate` is among the
    findings (None: no finding at all)."""
    document = json.loads(result.stdout)
    verdict = document[key]
    code = result.exit_code
    assert verdict["exit_code"] == code, (verdict, result.stderr)
    assert f"verdict: {LABELS[code]} (exit {code})" in markdown.read_text()
    junit = markdown.with_suffix(".xml")
    if junit.exists():  # run writes JUnit too: every testsuite carries the verdict as a property
        assert f'name="verdict" value="verdict: {LABELS[code]} (exit {code})' in junit.read_text()
    gates = [finding["gate"] for finding in verdict["findings"]]
    assert (gates == []) if gate is None else (gate in gates), gates


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AGREE_KEY", KEY)
    correct = {"base": 12, "worse": 2, "pricey": 12, "slow": 12}
    with running_fake_server(responder=lambda body: "A" if int(body["messages"][-1]["content"].split()[-1])
                             < correct.get(body["model"], 12) else "B") as fake:
        yield fake


def config(server: FakeServer, extra: str = "", prices: str = "") -> str:
    return (f"timeout_s: 5\nretries: 1\nproviders:\n  local: {{type: openai, base_url: '{server.openai_base_url}', "
            "api_key_env: AGREE_KEY}\npricing:\n" + (prices or "".join(
                f"  local:{m}: {{input: 1.0, output: 1.0}}\n" for m in ("base", "worse", "slow", "m")))
            + "  local:pricey: {input: 9.0, output: 9.0}\n" + extra)


def served(project, server: FakeServer, extra: str = "") -> Path:
    return project({"prompts/route.txt": "route case {{ n }}\n", "goldens/route.yaml": "cases:\n" + CASES,
                    "promptci.yaml": config(server, extra)})


def run(cli, root: Path, tmp_path: Path, *args: str) -> tuple[Any, Path]:
    markdown = tmp_path / "report.md"
    return cli("run", "--root", root, "--format", "json", "--no-github", "-o", f"markdown={markdown}",
               "-o", f"junit={markdown.with_suffix('.xml')}", *args), markdown


def upgrade(candidate: str, *gates: str) -> tuple[str, ...]:
    return ("-m", "local:base", "-m", f"local:{candidate}", "--baseline-model", "local:base",
            *(a for g in gates for a in ("--gate", g)))


def test_pass(cli, project, server: FakeServer, tmp_path: Path) -> None:
    result, markdown = run(cli, served(project, server), tmp_path, "-m", "local:base")
    assert result.exit_code == 0
    agrees(result, markdown, None)


def test_pass_rate(cli, project, tmp_path: Path) -> None:
    root = project({"prompts/greet.txt": "Hello {{ name }}!\n", "promptci.yaml": "models: [echo]\n",
                    "goldens/greet.yaml": "cases:\n  - {id: a, input: {name: A}, expected: Hello A!}\n"
                                          "  - {id: b, input: {name: B}, expected: Hi B!}\n"})
    result, markdown = run(cli, root, tmp_path)
    assert result.exit_code == 1
    agrees(result, markdown, "pass_rate")


def test_metric(cli, project, tmp_path: Path) -> None:
    root = project({"prompts/echo.txt": "{{ out }}\n", "promptci.yaml": "models: [echo]\ngate:\n  min_pass_rate: 0\n"
                    "  metrics:\n    accuracy: 0.9\n", "goldens/echo.yaml": (
                        "comparators: [{type: exact, metric: accuracy}]\n"
                        "cases:\n  - {id: a, input: {out: x}, expected: x}\n"
                        "  - {id: b, input: {out: y}, expected: x}\n")})
    result, markdown = run(cli, root, tmp_path)
    assert result.exit_code == 1
    agrees(result, markdown, "metric")


def test_errors(cli, project, tmp_path: Path) -> None:
    root = project({"prompts/greet.txt": "{{ name }}\n", "promptci.yaml": "models: ['python:down:answer']\n",
                    "down.py": "def answer(messages, params):\n    raise RuntimeError('down')\n",
                    "goldens/greet.yaml": "cases:\n  - {id: a, input: {name: A}, expected: A}\n"})
    result, markdown = run(cli, root, tmp_path)
    assert result.exit_code == 3
    agrees(result, markdown, "errors")


def test_budget(cli, project, server: FakeServer, tmp_path: Path) -> None:
    root = served(project, server, "budgets: {run_usd: 0.0000001}\n")
    result, markdown = run(cli, root, tmp_path, "-m", "local:m")
    assert result.exit_code == 1
    agrees(result, markdown, "budget")


def test_upgrade(cli, project, server: FakeServer, tmp_path: Path) -> None:
    result, markdown = run(cli, served(project, server), tmp_path, *upgrade("worse"))
    assert result.exit_code == 1
    agrees(result, markdown, "upgrade")


def test_cost(cli, project, server: FakeServer, tmp_path: Path) -> None:
    result, markdown = run(cli, served(project, server), tmp_path, *upgrade("pricey", "cost"))
    assert result.exit_code == 1
    agrees(result, markdown, "cost")
    assert json.loads(result.stdout)["matrix"]["verdict"]["fails"] is True


def test_latency(cli, project, server: FakeServer, tmp_path: Path) -> None:
    root = served(project, server)
    assert run(cli, root, tmp_path, *upgrade("slow", "latency"))[0].exit_code == 0
    with sqlite3.connect(root / ".promptci" / "promptci.db") as db:  # slow when it answered
        db.execute("UPDATE cache SET latency_ms = CASE WHEN identity LIKE '%\"local:slow\"%' THEN 3000 ELSE 300 END")
    result, markdown = run(cli, root, tmp_path, *upgrade("slow", "latency"))
    assert result.exit_code == 1
    agrees(result, markdown, "latency")


def test_drift(cli, project, server: FakeServer, tmp_path: Path) -> None:
    root = served(project, server)
    assert run(cli, root, tmp_path, "-m", "local:base")[0].exit_code == 0
    server.config.model_suffix = "-2025-02-02"
    result, markdown = run(cli, root, tmp_path, "-m", "local:base", "--no-cache", "--fail-on-drift")
    assert result.exit_code == 1
    agrees(result, markdown, "drift")


def test_shards(cli, project, tmp_path: Path) -> None:
    cases = "".join(f"  - {{id: c{i}, input: {{name: n{i}}}, expected: Hello n{i}!}}\n" for i in range(9))
    root = project({"prompts/greet.txt": "Hello {{ name }}!", "goldens/greet.yaml": "cases:\n" + cases,
                    "promptci.yaml": "models: [echo]\n"})
    first = tmp_path / "shard1.json"
    assert cli("run", "--root", root, "--shard", "1/2", "-q", "--no-github", "-o", f"json={first}").exit_code == 0
    markdown = tmp_path / "merged.md"
    result = cli("merge", "--root", root, "--format", "json", "--no-github", "-o", f"markdown={markdown}", first)
    assert result.exit_code == 3
    agrees(result, markdown, "shards")


@pytest.mark.parametrize(("second", "code", "gate"), [
    ("def answer(messages, params):\n    return 'nope'\n", 1, "regression"),
    ("def answer(messages, params):\n    return 'Hello ' + 'Ada!'\n", 0, None),
])
def test_diff(cli, tmp_path: Path, second: str, code: int, gate: str | None) -> None:
    repo = new_repo(tmp_path / "repo")
    commit(repo, {".gitignore": ".promptci/\n", "promptci.yaml": "models: ['python:app:answer']\n",
                  "prompts/greet.txt": "{{ name }}\n",
                  "app.py": "def answer(messages, params):\n    return 'Hello Ada!'\n",
                  "goldens/greet.yaml": "cases:\n  - {id: ada, input: {name: Ada}, expected: Hello Ada!}\n"}, "a")
    commit(repo, {"app.py": second}, "b")
    markdown = tmp_path / "diff.md"
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--format", "json", "--no-github", "-o",
                 f"markdown={markdown}")
    assert result.exit_code == code
    agrees(result, markdown, gate, key="decision")


def test_diff_no_baseline(cli, tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    commit(repo, {".gitignore": ".promptci/\n", "promptci.yaml": "models: ['python:app:answer']\n",
                  "prompts/greet.txt": "{{ name }}\n",
                  "app.py": "def answer(messages, params):\n    raise RuntimeError('down')\n",
                  "goldens/greet.yaml": "cases:\n  - {id: ada, input: {name: Ada}, expected: Hello Ada!}\n"}, "a")
    commit(repo, {"app.py": "def answer(messages, params):\n    return 'nope'\n"}, "b")
    markdown = tmp_path / "diff.md"
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--format", "json", "--no-github", "-o",
                 f"markdown={markdown}")
    assert result.exit_code == 3  # errored at A, failing at B: no baseline, never a pass
    agrees(result, markdown, "no_baseline", key="decision")


def test_show_renders_the_verdict_the_run_was_given(cli, project, server: FakeServer, tmp_path: Path) -> None:
    root = served(project, server)
    result, _ = run(cli, root, tmp_path, *upgrade("pricey", "cost"))
    shown = cli("show", "last", "--root", root, "--format", "json")
    assert shown.exit_code == 0  # show shows; it does not gate
    assert json.loads(shown.stdout)["verdict"] == json.loads(result.stdout)["verdict"]  # the gates it ran with
