"""The Session: providers prepared before the first request (a model matrix keeps honest latencies), several
plans in one session sharing cache and providers, another folder's source with this project's state, and
Ctrl-C keeping what finished."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakeserver import FakeServer, running_fake_server

from promptci.plan import RunOptions
from promptci.planning import build_plan
from promptci.project import Project, discover
from promptci.session import Session
from promptci.store import Store

OPENAI_KEY = "sk-test-session-openai-0123"
ANTHROPIC_KEY = "sk-ant-test-session-0123"


def matrix_project(project, server: FakeServer, cases: int, comparators: str = "[exact]") -> Path:
    config = ("retries: 0\nconcurrency: 8\nproviders:\n"
              f"  local: {{type: openai, base_url: '{server.openai_base_url}', api_key_env: S_OPENAI_KEY}}\n"
              f"  claude: {{type: anthropic, base_url: '{server.anthropic_base_url}', api_key_env: S_ANTHROPIC_KEY}}\n")
    body = "".join(f"  - id: c{n}\n    input: {{name: N{n}}}\n    expected: Hello N{n}!\n"
                   f"    comparators: {comparators}\n" for n in range(cases))
    return project({"promptci.yaml": config, "prompts/greet.txt": "Hello {{ name }}!\n",
                    "goldens/greet.yaml": "cases:\n" + body})


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S_OPENAI_KEY", OPENAI_KEY)
    monkeypatch.setenv("S_ANTHROPIC_KEY", ANTHROPIC_KEY)


SDKS_AT_FIRST_SEND = """\
import sys

import promptci.client
from promptci.cli import main

send_to, ready = promptci.client.send_to, []


def first_send(*args, **kwargs):
    \"\"\"At the first request handed to a provider: are both SDKs imported, their clients' classes built?\"\"\"
    if not ready:
        ready.append([name for name, cls in (("openai", "AsyncOpenAI"), ("anthropic", "AsyncAnthropic"))
                      if getattr(sys.modules.get(name), cls, None) is not None])
        sys.stderr.write(f"ready at the first send: {ready[0]}\\n")
    return send_to(*args, **kwargs)


promptci.client.send_to = first_send
sys.argv = ["promptci", *sys.argv[1:]]
main()
"""


def test_a_model_matrix_in_a_fresh_interpreter_keeps_honest_latencies(project, keys) -> None:
    """Importing an SDK takes a second; done while requests are in flight, it inflates their latency. So both
    SDKs are imported before the first request is sent (an event order, not a latency a loaded machine blurs)."""
    with running_fake_server(latency_s=0.05, record=False) as server:
        root = matrix_project(project, server, cases=6)
        done = subprocess.run(
            [sys.executable, "-c", SDKS_AT_FIRST_SEND, "run", "--root", str(root),
             "-m", "local:m", "-m", "claude:m", "--format", "json", "--no-cache"],
            capture_output=True, text=True, timeout=120, env={**os.environ},
        )
    assert done.returncode == 0, done.stderr + done.stdout
    results = json.loads(done.stdout)["results"]
    assert len(results) == 12 and {r["status"] for r in results} == {"passed"}
    assert "ready at the first send: ['openai', 'anthropic']" in done.stderr, done.stderr


def test_two_plans_in_one_session_share_the_cache_and_the_providers(project, keys, fake_server: FakeServer) -> None:
    root = matrix_project(project, fake_server, cases=3)
    project_ = Project.at(root)
    openai_plan = build_plan(RunOptions(models=("local:m",)), project_)
    both_plan = build_plan(RunOptions(models=("local:m", "claude:m")), project_)
    with Session(project_) as session:
        first = session.run(openai_plan)
        providers = {id(e.provider) for e in session.endpoints(openai_plan).values()}
        second = session.run(both_plan)
        assert {id(e.provider) for e in session.endpoints(openai_plan).values()} == providers
    assert first.summary.passed == 3 and second.summary.passed == 6
    assert [r.cached for r in second.results if r.model == "local:m"] == [True] * 3
    assert fake_server.total == 6  # 3 openai, then only the 3 anthropic ones
    with Store.open(project_.db_path) as store:
        assert [info.run_id for info in store.list_runs()] == [second.run_id, first.run_id]


def test_another_folder_runs_with_this_projects_state(project, tmp_path: Path) -> None:
    root = project({"promptci.yaml": "models: [python:app:answer]\n", "prompts/greet.txt": "Hello {{ name }}!\n",
                    "goldens/greet.yaml": "cases:\n  - id: a\n    input: {name: Ada}\n    expected: Hello Ada!\n",
                    "app.py": "def answer(messages, params):\n    return 'Hello Ada!'\n"})
    other = tmp_path / "checkout"
    (other / "prompts").mkdir(parents=True)
    (other / "goldens").mkdir()
    for name in ("promptci.yaml", "prompts/greet.txt", "goldens/greet.yaml"):
        (other / name).write_text((root / name).read_text())
    (other / "app.py").write_text("def answer(messages, params):\n    return 'Goodbye'\n")

    here = discover(root)
    there = here.with_source(other)
    assert there.db_path == here.db_path and there.prompts_dir == other.resolve() / "prompts"
    with Session(here) as session:
        mine = session.run(build_plan(RunOptions(), here))
        theirs = session.run(build_plan(RunOptions(), there))
    assert mine.results[0].output == "Hello Ada!" and theirs.results[0].output == "Goodbye"
    assert not (other / ".promptci").exists()
    with Store.open(here.db_path) as store:
        assert len(store.list_runs()) == 2


def test_ctrl_c_marks_the_run_interrupted_and_keeps_what_finished(project) -> None:
    body = "".join(f"  - id: c{n}\n    input: {{name: N{n}}}\n    expected: Hello N{n}!\n" for n in range(6))
    root = project({"promptci.yaml": "models: [echo]\nconcurrency: 1\n", "prompts/greet.txt": "Hello {{ name }}!\n",
                    "goldens/greet.yaml": "cases:\n" + body})
    here = Project.at(root)
    seen: list[str] = []

    def interrupt_after_two(result) -> None:
        seen.append(result.case_id)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with Session(here) as session:
        run = session.run(build_plan(RunOptions(), here), on_result=interrupt_after_two)
        again = session.run(build_plan(RunOptions(), here))  # the session still works after Ctrl-C
    assert run.interrupted and [r.case_id for r in run.results] == ["c0", "c1"]
    assert not again.interrupted and again.summary.passed == 6
    with Store.open(here.db_path) as store:
        stored = store.load_run(run.run_id)
    assert stored is not None and stored.interrupted and len(stored.results) == 2


def test_a_plan_run_into_a_stored_run_adds_to_it(project, keys, fake_server: FakeServer) -> None:
    """`into` (a later round of --repeat auto): the results join the stored run under its id, after its own (none
    lost to a clash of positions), its summary counts both, and the run is one row of `runs`."""
    from dataclasses import replace

    root = matrix_project(project, fake_server, cases=3)
    project_ = Project.at(root)
    plan = build_plan(RunOptions(models=("local:m",)), project_)
    with Session(project_) as session:
        first = session.run(replace(plan, jobs=plan.jobs[:2]), command="diff A: main (--repeat auto)")
        both = session.run(replace(plan, jobs=plan.jobs[2:]), into=first, command="ignored")
    assert (both.run_id, both.command, both.started_at) == (first.run_id, first.command, first.started_at)
    assert [r.case_id for r in both.results] == ["c0", "c1", "c2"] and both.summary.passed == 3
    with Store.open(project_.db_path) as store:
        stored = store.load_run(first.run_id)
        assert [info.run_id for info in store.list_runs()] == [first.run_id]
    assert stored is not None and [r.case_id for r in stored.results] == ["c0", "c1", "c2"]
    assert stored.summary == both.summary and stored.finished_at == both.finished_at
