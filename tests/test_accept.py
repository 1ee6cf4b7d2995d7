"""accept: outputs written into goldens, every byte outside the changed values kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers_project import make_project

from promptci.accept import accept_run, set_expected
from promptci.config import load_settings
from promptci.errors import PromptCIError
from promptci.loading.suite import load_suite
from promptci.types import CaseResult, GitInfo, Run, summarize

GOLDEN = """\
# Greeting cases: keep them short.~~~
prompt: greet

comparators: [exact]   # exact on purpose
cases:
  # --- the happy path ---
  - id: ada   # first
    input: {name: Ada}
    expected: 'Hello Ada'  # keep this comment

  - id: bob
    input:
      name: Bob
    expected: |
      Hello
      Bob

    # trailing comment in case bob, indented like the keys

  - id: "cy"
    input: {name: Cy}
    tags: [smoke]
  - {id: dee, input: {name: Dee}, expected: "old"}
  - id: eve
    input: {name: Eve}
    expected: "Hello Eve"
# the end
""".replace("~~~", "   ")  # trailing blanks on the first line must survive too

EXPECTED_AFTER = """\
# Greeting cases: keep them short.~~~
prompt: greet

comparators: [exact]   # exact on purpose
cases:
  # --- the happy path ---
  - id: ada   # first
    input: {name: Ada}
    expected: 'Hi Ada, it''s you'  # keep this comment

  - id: bob
    input:
      name: Bob
    expected: |-
      Hi
      Bob, welcome

    # trailing comment in case bob, indented like the keys

  - id: "cy"
    input: {name: Cy}
    tags: [smoke]
    expected: Hi Cy
  - {id: dee, input: {name: Dee}, expected: "Hi \\"Dee\\""}
  - id: eve
    input: {name: Eve}
    expected: "Hello Eve"
# the end
""".replace("~~~", "   ")  # trailing blanks on the first line must survive too


def failed(case_id: str, output: str | None, *, model: str = "echo", repeat: int = 0, status: str = "failed",
           file: str = "goldens/greet.yaml", prompt: str = "greet", tags: tuple[str, ...] = ()) -> CaseResult:
    return CaseResult(prompt=prompt, case_id=case_id, file=file, line=1, model=model, status=status,  # type: ignore[arg-type]
                      repeat=repeat, output=output, tags=tags)


def run_of(*results: CaseResult, models: tuple[str, ...] = ("echo",), interrupted: bool = False) -> Run:
    return Run(run_id="run1", started_at="2026-12-01T00:00:00Z", finished_at="2026-12-01T00:00:01Z",
               git=GitInfo(), models=models, results=results, summary=summarize(results), interrupted=interrupted)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_project(tmp_path / "p", {"prompts/greet.txt": "Hello {{ name }}\n", "prompts/shape.txt": "{{ q }}",
                                         "goldens/greet.yaml": GOLDEN})


def golden(root: Path) -> str:
    return (root / "goldens/greet.yaml").read_text(encoding="utf-8")


def test_comments_order_quoting_and_blank_lines_kept_byte_for_byte(root: Path) -> None:
    run = run_of(failed("ada", "Hi Ada, it's you"), failed("bob", "Hi\nBob, welcome"), failed("cy", "Hi Cy"),
                 failed("dee", 'Hi "Dee"'), failed("eve", "Hello Eve", status="passed"))
    result = accept_run(root, run)
    assert golden(root) == EXPECTED_AFTER
    assert [a.case_id for a in result.accepted] == ["ada", "bob", "cy", "dee"]
    assert result.diff.startswith("--- a/goldens/greet.yaml\n+++ b/goldens/greet.yaml\n")
    assert "+    expected: Hi Cy\n" in result.diff
    suite = load_suite(load_settings(root))
    assert {c.id: c.expected for c in suite.cases} == {
        "ada": "Hi Ada, it's you", "bob": "Hi\nBob, welcome", "cy": "Hi Cy", "dee": 'Hi "Dee"', "eve": "Hello Eve"}


def test_only_the_changed_lines_differ(root: Path) -> None:
    accept_run(root, run_of(failed("eve", "Bye Eve")))
    before, after = GOLDEN.splitlines(), golden(root).splitlines()
    assert len(before) == len(after)
    assert [(b, a) for b, a in zip(before, after, strict=True) if a != b] == [
        ('    expected: "Hello Eve"', '    expected: "Bye Eve"')]


def test_json_output_written_as_a_mapping(root: Path) -> None:
    (root / "goldens/shape.yaml").write_text(
        "cases:\n  - id: s   # shaped\n    input: {q: x}\n    expected: '{}'\n    tags: [j]\n", encoding="utf-8")
    output = '{"urgency": "high", "codes": ["I21", "R07"], "score": 0.5}'
    accept_run(root, run_of(failed("s", output, file="goldens/shape.yaml", prompt="shape")), json_prompts={"shape"})
    assert (root / "goldens/shape.yaml").read_text() == (
        "cases:\n  - id: s   # shaped\n    input: {q: x}\n    expected:\n      urgency: high\n"
        "      codes:\n        - I21\n        - R07\n      score: 0.5\n    tags: [j]\n")


def test_crlf_line_endings_kept(root: Path) -> None:
    (root / "goldens/greet.yaml").write_bytes(GOLDEN.replace("\n", "\r\n").encode())
    accept_run(root, run_of(failed("eve", "Bye Eve"), failed("bob", "B\nO")))
    written = (root / "goldens/greet.yaml").read_bytes().decode()
    assert written.count("\r\n") == written.count("\n")
    assert written.replace("\r\n", "\n") == GOLDEN.replace('"Hello Eve"', '"Bye Eve"').replace(
        "|\n      Hello\n      Bob\n", "|-\n      B\n      O\n")


def test_select_by_path_and_keyword(root: Path) -> None:
    run = run_of(failed("ada", "A"), failed("cy", "C", tags=("smoke",)))
    assert accept_run(root, run, keyword="smoke", write=False).accepted[0].case_id == "cy"
    assert accept_run(root, run, paths=["goldens/other"], write=False).accepted == ()
    assert len(accept_run(root, run, paths=["goldens/"], write=False).accepted) == 2
    assert golden(root) == GOLDEN  # write=False leaves the file alone


def test_refuses_errors_interruptions_and_disagreeing_repeats(root: Path) -> None:
    with pytest.raises(PromptCIError, match=r"1 result\(s\) with errors.*--force"):
        accept_run(root, run_of(failed("ada", "A"), failed("bob", None, status="error")))
    with pytest.raises(PromptCIError, match="interrupted"):
        accept_run(root, run_of(failed("ada", "A"), interrupted=True))
    repeats = run_of(failed("ada", "A1"), failed("ada", "A2", repeat=1))
    with pytest.raises(PromptCIError, match="'ada' has 2 outputs that disagree"):
        accept_run(root, repeats)
    assert golden(root) == GOLDEN
    forced = accept_run(root, repeats, force=True)
    assert forced.accepted[0].value == "A1"


def test_agreeing_repeats_and_models_are_fine(root: Path) -> None:
    run = run_of(failed("ada", "Same"), failed("ada", "Same", repeat=1), failed("ada", "Same", model="m2"),
                 models=("echo", "m2"))
    assert [a.value for a in accept_run(root, run).accepted] == ["Same"]


def test_cases_from_data_files_are_a_note(root: Path) -> None:
    (root / "data").mkdir()
    (root / "data/rows.csv").write_text("id,name\nr1,Ann\n", encoding="utf-8")
    result = accept_run(root, run_of(failed("r1", "Hi Ann", file="data/rows.csv")))
    assert result.accepted == () and result.notes == (
        "data/rows.csv: 1 case read with `cases_from:` not changed: accept writes golden YAML files only; "
        "update that file by hand",)
    assert (root / "data/rows.csv").read_text() == "id,name\nr1,Ann\n"


def test_a_case_gone_since_the_run_is_a_note(root: Path) -> None:
    result = accept_run(root, run_of(failed("zed", "Z")))
    assert result.accepted == () and "no case 'zed'" in result.notes[0]
    assert golden(root) == GOLDEN


@pytest.mark.parametrize("value", ["yes", "0012", "a: b", "- x", "#hash", "  padded  ", "", "null", "tab\there",
                                   "ünïcode ✓", "trailing newline\n", "two\n\nblank lines\n\n", {"a": [1, None]}])
def test_awkward_values_read_back_exactly(value: Any) -> None:
    text, done, _ = set_expected(GOLDEN, "goldens/greet.yaml", [("eve", value), ("ada", value), ("cy", value)])
    assert [d[0] for d in done] == ["eve", "ada", "cy"]  # set_expected reads its work back and raises otherwise
    assert text.endswith("# the end\n") and "# keep this comment" in text


def test_cli_accept_after_a_real_run_then_the_run_passes(project: Any, cli: Any) -> None:
    root = project({"promptci.yaml": "models: [echo]\n", "prompts/greet.txt": "Hello {{ name }}!\n",
                    "goldens/greet.yaml": "cases:\n  # who\n  - id: ada  # keep\n    input: {name: Ada}\n"
                                          "    expected: Hi Ada\n  - id: bob\n    input: {name: Bob}\n"
                                          "    expected: Hello Bob!\n    tags: [smoke]\n"})
    first = cli("run", "--root", root)
    assert first.exit_code == 1, first.output
    accepted = cli("accept", "--root", root)
    assert accepted.exit_code == 0, accepted.output
    # echo keeps the template's trailing newline; a `|` block holds exactly that text
    assert "-    expected: Hi Ada\n+    expected: |\n+      Hello Ada!\n" in accepted.stdout
    assert "accepted 1 case in 1 file" in accepted.stderr
    assert (root / "goldens/greet.yaml").read_text() == (
        "cases:\n  # who\n  - id: ada  # keep\n    input: {name: Ada}\n    expected: |\n      Hello Ada!\n"
        "  - id: bob\n    input: {name: Bob}\n    expected: Hello Bob!\n    tags: [smoke]\n")
    assert cli("run", "--root", root).exit_code == 0
    again = cli("accept", "--root", root)
    assert again.exit_code == 0 and "nothing to accept" in again.stderr


def test_cli_accept_refusals_exit_2(project: Any, cli: Any) -> None:
    root = project(with_greet=True)
    missing = cli("accept", "--root", root)
    assert missing.exit_code == 2 and "no runs stored yet" in missing.stderr
    outside = cli("accept", "/elsewhere", "--root", root)
    assert outside.exit_code == 2


def test_empty_and_null_expected_replaced_in_place() -> None:
    text = "cases:\n  - id: a\n    expected:\n    input: {x: 1}\n  - id: b\n    expected: ~  # none\n"
    out, _, _ = set_expected(text, "g.yaml", [("a", "two\nlines"), ("b", "hi")])
    assert out == ("cases:\n  - id: a\n    expected: |-\n      two\n      lines\n    input: {x: 1}\n"
                   "  - id: b\n    expected: hi  # none\n")
