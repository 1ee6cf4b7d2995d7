"""The bundled demo suite and examples/echo-suite pass: rendered here with a small stand-in for the
loader, answered by app.py (or echoed), and scored with the comparator semantics of SPEC section 2."""

from __future__ import annotations

import importlib.util
import json
import re
import string
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml
from deepdiff import DeepDiff
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

ROOT = Path(__file__).resolve().parents[1]
ECHO_ROOT = ROOT / "examples" / "echo-suite"
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.DOTALL)
JSON_OPTIONS = ("ignore_order", "math_epsilon", "significant_digits", "exclude_paths", "exclude_regex_paths")


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("promptci_demo_app", ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


APP = load_app()


def read_prompt(project: Path, name: str) -> tuple[dict[str, Any], str]:
    """Front matter and template body of prompts/<name>.txt."""
    text = (project / "prompts" / f"{name}.txt").read_text(encoding="utf-8")
    match = FRONT_MATTER.match(text)
    return (yaml.safe_load(match.group(1)), match.group(2)) if match else ({}, text)


def render_messages(project: Path, name: str, variables: dict[str, Any],
                    trim_blocks: bool = False) -> list[dict[str, str]]:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(project / "prompts"), undefined=StrictUndefined, autoescape=False,
        keep_trailing_newline=True, trim_blocks=trim_blocks, lstrip_blocks=trim_blocks,
    )
    front, body = read_prompt(project, name)
    messages = []
    if "system" in front:
        messages.append({"role": "system", "content": env.from_string(front["system"]).render(variables)})
    messages.append({"role": "user", "content": env.from_string(body).render(variables)})
    return messages


def golden_cases(project: Path) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for path in sorted((project / "goldens").rglob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in document["cases"]:
            yield path.relative_to(project).as_posix(), document, case


def comparators_for(project: Path, document: dict[str, Any], case: dict[str, Any]) -> list[dict[str, Any]]:
    config = yaml.safe_load((project / "promptci.yaml").read_text(encoding="utf-8"))
    named = case.get("comparators") or document.get("comparators") or config.get("comparators") or ["exact"]
    return [{"type": c} if isinstance(c, str) else c for c in named]


def normalize(text: str, comparator: dict[str, Any]) -> str:
    """The `normalized` comparator's options, with its defaults (case and whitespace on, punctuation off)."""
    if comparator.get("punctuation", False):
        text = text.translate(str.maketrans("", "", string.punctuation))
    if comparator.get("case", True):
        text = text.casefold()
    return " ".join(text.split()) if comparator.get("whitespace", True) else text


def failure(comparator: dict[str, Any], case: dict[str, Any], output: str, project: Path) -> str | None:
    """Why `output` fails `comparator`, or None when it passes."""
    kind, expected = comparator["type"], case.get("expected")
    if kind == "exact":
        return None if output.strip() == str(expected).strip() else f"{output!r} != {expected!r}"
    if kind == "normalized":
        same = normalize(output, comparator) == normalize(str(expected), comparator)
        return None if same else f"{output!r} !~ {expected!r}"
    if kind == "json":
        options = {k: v for k, v in comparator.items() if k in JSON_OPTIONS}
        diff = DeepDiff(expected, json.loads(output), **options)
        return diff.pretty() if diff else None
    if kind == "json_schema":
        schema = json.loads((project / comparator["schema"]).read_text(encoding="utf-8"))
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(json.loads(output)))
        return "; ".join(e.message for e in errors) or None
    raise AssertionError(f"this test does not know comparator {kind!r}: add it or keep the demo simple")


DEMO_CASES = list(golden_cases(ROOT))
ECHO_CASES = list(golden_cases(ECHO_ROOT))


def test_demo_config_runs_the_stand_in_app_and_names_the_real_model_switch() -> None:
    text = (ROOT / "promptci.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(text)["models"] == ["python:app:answer"]
    assert "models: [openai:gpt-4o-mini]" in text
    assert "stand-in" in (ROOT / "app.py").read_text(encoding="utf-8").lower()


@pytest.mark.parametrize("prompt", ["clinical/summarize", "triage/route"])
def test_each_demo_prompt_has_8_to_20_cases_with_unique_ids(prompt: str) -> None:
    cases = [(file, case["id"]) for file, document, case in DEMO_CASES if document["prompt"] == prompt]
    assert 8 <= len(cases) <= 20
    assert len(set(cases)) == len(cases)


@pytest.mark.parametrize(("file", "document", "case"), DEMO_CASES,
                         ids=[f"{file}::{case['id']}" for file, _, case in DEMO_CASES])
def test_demo_case_passes_against_the_stand_in_app(file: str, document: dict[str, Any],
                                                   case: dict[str, Any]) -> None:
    messages = render_messages(ROOT, document["prompt"], case["input"])
    output = APP.answer(messages, {"temperature": 0})
    for comparator in comparators_for(ROOT, document, case):
        assert failure(comparator, case, output, ROOT) is None, f"{file}::{case['id']} {comparator['type']}"


def test_the_json_check_catches_a_wrong_urgency() -> None:
    _file, document, case = next(c for c in DEMO_CASES if c[2]["id"] == "ed-chest-pain")
    output = APP.answer(render_messages(ROOT, document["prompt"], case["input"]), {})
    json_comparator = comparators_for(ROOT, document, case)[0]
    wrong = {**case, "expected": {**case["expected"], "urgency": "routine"}}
    assert "urgency" in (failure(json_comparator, wrong, output, ROOT) or "")


def test_summary_leaves_out_red_flags_the_note_denies() -> None:
    note = "Patient: 50-year-old male\nCC: Headache.\nHPI: Denies chest pain or syncope. Reports vision loss."
    summary = APP.summarize_note(note)
    assert summary["red_flags"] == ["vision loss"]
    assert summary["urgency"] == "emergent"
    assert summary["vitals"] == {"bp": None, "hr": None, "rr": None, "temp_c": None, "spo2": None}


def test_hl7_routing_reads_carriage_return_segments_and_critical_flags() -> None:
    message = ("MSH|^~\\&|LAB|H|R|H|20250101||ORU^R01^ORU_R01|1|P|2.5.1\r"
               "OBX|1|NM|2951-2^Sodium^LN||118|mmol/L|135-145|LL|||F\r")
    assert APP.route_hl7(message) == "urgent-clinical"
    assert APP.route_hl7(message.replace("|LL|", "|L|")) == "lab-result"
    assert APP.route_hl7("PID|1||X") == "other"


def test_ticket_labels_compare_without_case_spacing_or_a_final_full_stop() -> None:
    _file, document, case = next(c for c in DEMO_CASES if c[2]["id"] == "reschedule-mri")
    comparator = comparators_for(ROOT, document, case)[0]
    assert failure(comparator, case, " Appointment.\n", ROOT) is None
    assert failure(comparator, case, "lab-result", ROOT) is not None


def test_app_refuses_a_prompt_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="neither a <note> nor a <message>"):
        APP.answer([{"role": "user", "content": "Translate this."}], {})


def test_echo_suite_config_uses_echo_and_has_4_to_8_cases() -> None:
    config = yaml.safe_load((ECHO_ROOT / "promptci.yaml").read_text(encoding="utf-8"))
    assert config["models"] == ["echo"]
    assert 4 <= len(ECHO_CASES) <= 8


@pytest.mark.parametrize("trim_blocks", [False, True], ids=["default-env", "trim-blocks"])
@pytest.mark.parametrize(("file", "document", "case"), ECHO_CASES,
                         ids=[case["id"] for _, _, case in ECHO_CASES])
def test_echo_suite_golden_pins_the_rendered_prompt(file: str, document: dict[str, Any],
                                                    case: dict[str, Any], trim_blocks: bool) -> None:
    # The template's whitespace control makes the text the same whatever block trimming the loader uses.
    echoed = render_messages(ECHO_ROOT, document["prompt"], case["input"], trim_blocks)[-1]["content"]
    for comparator in comparators_for(ECHO_ROOT, document, case):
        assert failure(comparator, case, echoed, ECHO_ROOT) is None, f"{file}::{case['id']}"
