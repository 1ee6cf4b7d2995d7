"""changes: `--changed-since REV` picks exactly the affected cases, in a real git repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitrepo import commit, git, new_repo, snapshot, write

from promptci.changes import ChangeSelection, changed_config_keys, changed_since
from promptci.config import load_settings
from promptci.loading.suite import load_suite

FILES = {
    "promptci.yaml": "models: [echo]\nconcurrency: 4\n",
    "prompts/ask.txt": "{% include '_partials/header.j2' %}\nQ: {{ q }}\n",
    "prompts/_partials/header.j2": "{% include '_partials/tone.j2' %} Answer briefly.",
    "prompts/_partials/tone.j2": "Be kind.",
    "prompts/other.txt": "Say {{ word }}\n",
    "prompts/shaped.txt": "{{ q }}\n",
    "schemas/answer.json": '{"type": "object"}\n',
    "checks.py": "def polite(output):\n    return 'please' in output\n",
    "goldens/ask.yaml": "cases:\n  - id: a\n    input: {q: one}\n  - id: b\n    input: {q: two}\n"
                        "comparators: [{type: regex, pattern: '.'}]\n",
    "goldens/other.yaml": (
        "# greetings, kept short\n"
        "comparators: [{type: regex, pattern: '.'}]\n"
        "cases:\n"
        "  - id: x\n    input: {word: hi}\n"
        "  - id: y  # the second\n    input: {word: yo}\n"
        "  - id: z\n    input: {word: hey}\n"
        "    comparators: ['checks.py:polite']\n"
    ),
    "goldens/shaped.yaml": "cases:\n  - id: s\n    input: {q: one}\n"
                           "    comparators: [{type: json_schema, schema: schemas/answer.json}]\n"
                           "  - id: t\n    input: {q: two}\n    comparators: [{type: regex, pattern: '.'}]\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = new_repo(tmp_path / "repo")
    commit(root, FILES, "base")
    return root


def select(root: Path, since: str = "HEAD") -> ChangeSelection:
    settings = load_settings(root)
    suite = load_suite(settings)
    return changed_since(root, since, suite, settings.models)


def chosen(root: Path, since: str = "HEAD") -> set[str]:
    settings = load_settings(root)
    suite = load_suite(settings)
    selection = changed_since(root, since, suite, settings.models)
    return {c.key for c in selection.apply(suite).cases}


def test_nothing_changed_selects_nothing(repo: Path) -> None:
    assert chosen(repo) == set()


def test_a_partial_two_includes_deep_selects_its_prompt(repo: Path) -> None:
    before = snapshot(repo)
    write(repo, {"prompts/_partials/tone.j2": "Be very kind."})
    assert chosen(repo) == {"goldens/ask.yaml::a", "goldens/ask.yaml::b"}
    reasons = select(repo).reasons["ask"]
    assert reasons == ("prompts/ask.txt uses prompts/_partials/tone.j2, which changed",)
    write(repo, {"prompts/_partials/tone.j2": FILES["prompts/_partials/tone.j2"]})
    assert snapshot(repo) == before


def test_a_committed_prompt_edit_since_an_older_revision(repo: Path) -> None:
    commit(repo, {"prompts/other.txt": "Please say {{ word }}\n"}, "edit other")
    assert chosen(repo, "HEAD~1") == {"goldens/other.yaml::x", "goldens/other.yaml::y", "goldens/other.yaml::z"}
    assert chosen(repo, "HEAD") == set()


def test_one_golden_case_edit_selects_that_case_only(repo: Path) -> None:
    text = FILES["goldens/other.yaml"].replace("{word: yo}", "{word: yoo}").replace("kept short", "short")
    write(repo, {"goldens/other.yaml": text})
    assert chosen(repo) == {"goldens/other.yaml::y"}
    assert select(repo).reasons == {"other": ("goldens/other.yaml: case 'y' changed",)}


def test_a_comment_or_blank_line_selects_nothing(repo: Path) -> None:
    write(repo, {"goldens/other.yaml": "\n" + FILES["goldens/other.yaml"].replace("the second", "2nd")})
    assert chosen(repo) == set()


def test_a_new_case_and_shared_keys(repo: Path) -> None:
    write(repo, {"goldens/ask.yaml": FILES["goldens/ask.yaml"].replace(
        "comparators:", "  - id: c\n    input: {q: three}\ncomparators:")})
    assert chosen(repo) == {"goldens/ask.yaml::c"}
    write(repo, {"goldens/ask.yaml": FILES["goldens/ask.yaml"].replace("'.'", "'..'")})
    assert chosen(repo) == {"goldens/ask.yaml::a", "goldens/ask.yaml::b"}


def test_a_new_golden_file_is_all_new(repo: Path) -> None:
    write(repo, {"goldens/more.yaml": "prompt: other\ncases:\n  - id: m\n    input: {word: m}\n"
                                      "comparators: [{type: regex, pattern: '.'}]\n"})
    assert chosen(repo) == {"goldens/more.yaml::m"}


def test_schema_and_python_comparator_files(repo: Path) -> None:
    write(repo, {"schemas/answer.json": '{"type": "array"}\n'})
    assert chosen(repo) == {"goldens/shaped.yaml::s"}
    git(repo, "checkout", "--", "schemas/answer.json")
    write(repo, {"checks.py": "def polite(output):\n    return 'thanks' in output\n"})
    assert chosen(repo) == {"goldens/other.yaml::z"}
    assert select(repo).reasons["other"] == ("case 'z': python comparator's checks.py changed",)


def test_python_provider_code_selects_everything(repo: Path) -> None:
    write(repo, {"promptci.yaml": "models: ['python:app:answer']\n", "app.py": "def answer(m, p):\n    return 'x'\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "python provider")
    write(repo, {"app.py": "def answer(m, p):\n    return 'y'\n"})
    selection = select(repo)
    assert selection.everything is not None and "app.py" in selection.everything
    assert len(chosen(repo)) == 7


def test_config_keys(repo: Path) -> None:
    write(repo, {"promptci.yaml": "models: [echo]\nconcurrency: 2\nbudgets: {run_usd: 1}\n"})
    assert chosen(repo) == set()
    write(repo, {"promptci.yaml": "models: [echo, 'openai:gpt-4o-mini']\nconcurrency: 2\n"})
    selection = select(repo)
    assert selection.everything == "promptci.yaml changed: models"
    assert len(chosen(repo)) == 7


def test_changed_config_keys_edges() -> None:
    assert changed_config_keys(None, "models: [echo]\n") == {"models"}
    assert changed_config_keys("models: [", "models: [echo]\n") == {"(the whole file)"}
    assert changed_config_keys("retries: 2\n", "retries: 3\n") == set()


def test_extends_imports_in_a_chat_prompt_and_dynamic_includes() -> None:
    from promptci.changes import select_changed
    from promptci.types import Case, Location, MessageTemplate, Prompt, Suite

    chat = Prompt("chat", "prompts/chat.yaml", (
        MessageTemplate("system", "{% extends '_base.j2' %}"),
        MessageTemplate("user", "{% from '_macros.j2' import m %}{{ m(q) }}")))
    dynamic = Prompt("dyn", "prompts/dyn.txt", (MessageTemplate("user", "{% include name ~ '.j2' %}"),))
    files = {"prompts/_base.j2": "{% block b %}{% endblock %}", "prompts/_macros.j2": "{% import '_deep.j2' as d %}"}
    suite = Suite(prompts={"chat": chat, "dyn": dynamic},
                  cases=(Case("c1", "chat", Location("goldens/chat.yaml", 2), {}),
                         Case("d1", "dyn", Location("goldens/dyn.yaml", 2), {})))

    def pick(*changed: str) -> dict[str, tuple[str, ...]]:
        return dict(select_changed(suite, changed, lambda p: None, files.get, ["echo"]).reasons)

    assert pick("prompts/_deep.j2") == {
        "chat": ("prompts/chat.yaml uses prompts/_deep.j2, which changed",),
        "dyn": ("prompts/dyn.txt includes a template chosen at render time, and prompts/ changed",)}
    assert list(pick("prompts/_base.j2")) == ["chat", "dyn"]
    assert pick("README.md") == {}


def test_cases_from_a_data_file(repo: Path) -> None:
    commit(repo, {"goldens/rows.yaml": "prompt: other\ncases_from: data/rows.csv\n"
                                       "comparators: [{type: regex, pattern: '.'}]\n",
                  "data/rows.csv": "id,word\nr1,hi\nr2,yo\n"}, "rows")
    write(repo, {"data/rows.csv": "id,word\nr1,hi\nr2,yoo\n"})
    assert chosen(repo) == {"data/rows.csv::r1", "data/rows.csv::r2"}
    git(repo, "checkout", "--", "data/rows.csv")
    write(repo, {"goldens/rows.yaml": "prompt: other\ncases_from: data/rows.csv\n"
                                      "comparators: [{type: regex, pattern: '..'}]\n"})
    assert chosen(repo) == {"data/rows.csv::r1", "data/rows.csv::r2"}
    assert select(repo).reasons["other"] == ("goldens/rows.yaml changed in keys shared by its cases",)


def test_a_judges_calibration_file_selects_the_cases_it_gates(repo: Path) -> None:
    """A calibration file decides whether an llm_judge can fail its cases: adding, editing or removing it changes
    their verdicts, so a changed-only run must run them."""
    commit(repo, {"prompts/judged.txt": "{{ q }}\n",
                  "goldens/judged.yaml": "comparators: [{type: llm_judge, rubric: is kind, model: 'local:judge'}]\n"
                                         "cases:\n  - id: j1\n    input: {q: one}\n  - id: j2\n    input: {q: two}\n"},
           "a judged prompt")
    assert chosen(repo) == set()
    write(repo, {"calibration/judged.llm_judge.yaml": "schema_version: 1\n"})
    assert chosen(repo) == {"goldens/judged.yaml::j1", "goldens/judged.yaml::j2"}
    assert select(repo).reasons["judged"] == (
        "case 'j1': llm_judge comparator's calibration/judged.llm_judge.yaml changed",
        "case 'j2': llm_judge comparator's calibration/judged.llm_judge.yaml changed")
    write(repo, {"calibration/other.llm_judge.yaml": "schema_version: 1\n"})  # another prompt's judge: not these
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "calibrated")
    write(repo, {"calibration/other.llm_judge.yaml": "schema_version: 2\n"})
    assert chosen(repo) == set()
