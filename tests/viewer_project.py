"""A project with stored runs for the viewer's tests: two commits of goldens/greet.yaml's cases, the second
regressing `ada`, and a ledger row per result."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from helpers_project import make_project

from promptci.project import discover
from promptci.store import LedgerEntry, Store
from promptci.types import CaseResult, GitInfo, Score, summarize

GOLDEN = """\
prompt: greet
cases:
  - id: ada
    input: {name: Ada}
    expected: Hello Ada!
  - id: bob
    input: {name: Bob}
    expected: Hello Bob!
"""
HOSTILE = '</script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
MODEL = "openai:gpt-4o-mini"


def result(case_id: str, output: str, expected: str, line: int, model: str = MODEL) -> CaseResult:
    passed = output == expected
    score = Score("exact", 1.0 if passed else 0.0, passed, "" if passed else "output differs from expected")
    return CaseResult(prompt="greet", case_id=case_id, file="goldens/greet.yaml", line=line, model=model,
                      status="passed" if passed else "failed", output=output, scores=(score,), expected=expected,
                      cost_usd=0.001, latency_ms=120.0, input_tokens=10, output_tokens=5)


def store_run(root: Path, run_id: str, started: str, commit: str, results: Sequence[CaseResult],
              branch: str = "main") -> None:
    with Store.open(discover(root).db_path) as store:
        store.start_run(run_id, started, GitInfo(commit=commit, dirty=False, branch=branch),
                        sorted({r.model for r in results}), {})
        for position, r in enumerate(results):
            entry = LedgerEntry(at=started, run_id=run_id, git_commit=commit, prompt=r.prompt, case_id=r.case_id,
                                model=r.model, provider="openai", input_tokens=10, output_tokens=5, cost_usd=0.001)
            store.add_result(run_id, r, [entry], position)
        store.finish_run(run_id, started.replace(":00Z", ":09Z"), summarize(results), False)


def viewer_project(tmp: Path, hostile: bool = False) -> Path:
    root = make_project(tmp / "project", {"promptci.yaml": "models: [openai:gpt-4o-mini]\n",
                                          "prompts/greet.txt": "Hello {{ name }}!\n", "goldens/greet.yaml": GOLDEN})
    store_run(root, "aaaa00000001", "2026-12-01T10:00:00Z", "a" * 40,
              [result("ada", "Hello Ada!", "Hello Ada!", 3), result("bob", "Hello Bob!", "Hello Bob!", 6)])
    ada = HOSTILE if hostile else "Hi Ada, welcome back"
    store_run(root, "bbbb00000002", "2026-12-02T10:00:00Z", "b" * 40,
              [result("bob", "Hello Bob!", "Hello Bob!", 6), result("ada", ada, "Hello Ada!", 3)], branch="feature")
    return root


def repeated_project(tmp: Path, samples: int = 8) -> Path:
    """Two runs of `ada` sampled `samples` times: all pass, then all fail."""
    from dataclasses import replace

    root = make_project(tmp / "repeated", {"prompts/greet.txt": "Hello {{ name }}!\n", "goldens/greet.yaml": GOLDEN})
    good = [replace(result("ada", "Hello Ada!", "Hello Ada!", 3), repeat=i) for i in range(samples)]
    bad = [replace(result("ada", f"Hi Ada {i}", "Hello Ada!", 3), repeat=i) for i in range(samples)]
    store_run(root, "cccc00000001", "2026-12-01T10:00:00Z", "c" * 40, good)
    store_run(root, "dddd00000002", "2026-12-02T10:00:00Z", "d" * 40, bad)
    return root
