"""`promptci calibrate` and calibrated judges, end to end: the system under test and the judge both answer from
tests/fakeserver.py through the real OpenAI SDK. A judge gates (can fail the run) only with a fresh calibration;
a missing or stale one makes it report-only, unless `judges.allow_uncalibrated`."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakeserver import FakeServer, running_fake_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptci.comparators.judge import JUDGE_SYSTEM
from promptci.stats import wilson_interval
from promptci.types import content_hash
from promptci.viewer.reviews import write_review

KEY = "sk-test-CALIBRATE-1234567890"
RUBRIC = "The answer is polite and on topic."
PROMPT = "Answer about {{ topic }}\n"
TOPICS = ("t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8")
# The judge passes t1-t4 and t8 (its verdict depends on the graded output's topic) and fails t5-t7. Against the
# human labels: t1-t3 both pass (tp 3), t5 the judge failed a human pass (fn 1), t4 and t8 the judge passed a
# human fail (fp 2), t6 and t7 both fail (tn 2).
JUDGE_PASSES = {"t1", "t2", "t3", "t4", "t8"}
LABELS = {"t1": "pass", "t2": "pass", "t3": "pass", "t4": "fail", "t5": "pass", "t6": "fail", "t7": "fail",
          "t8": "fail"}
COUNTS = {"tp": 3, "fn": 1, "fp": 2, "tn": 2}


def golden(rubric: str = RUBRIC, extra: str = "") -> str:
    cases = "".join(f"  - id: {t}\n    input: {{topic: {t}}}\n" for t in TOPICS)
    return f"comparators:\n  - type: llm_judge\n    rubric: {rubric}\n    model: local:judge\n{extra}cases:\n{cases}"


def config(server: FakeServer, extra: str = "") -> str:
    return (f"timeout_s: 5\nretries: 0\nproviders:\n"
            f"  local: {{type: openai, base_url: '{server.openai_base_url}', api_key_env: FAKE_KEY}}\n"
            "pricing:\n  local:sut: {input: 1.0, output: 2.0}\n  local:judge: {input: 10.0, output: 20.0}\n" + extra)


def responder(body: dict[str, Any]) -> str:
    user = body["messages"][-1]["content"]
    if body["model"].startswith("judge"):
        topic = next(t for t in TOPICS if f"answer about {t}." in user)
        passes = topic in JUDGE_PASSES
        return json.dumps({"score": 0.9 if passes else 0.1, "pass": passes, "reason": f"graded {topic}"})
    topic = next(t for t in TOPICS if t in user)
    return f"Polite answer about {topic}."


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("FAKE_KEY", KEY)
    with running_fake_server(responder=responder) as fake:
        yield fake


def labels_yaml(labels: dict[str, str]) -> str:
    return "labels:\n" + "".join(f"  {case}: {label}\n" for case, label in labels.items())


@pytest.fixture
def root(project, server: FakeServer) -> Path:
    return project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden(), "promptci.yaml": config(server),
                    "labels/ask.yaml": labels_yaml(LABELS)})


def run_json(cli, root: Path, *args: str) -> tuple[Any, dict[str, Any]]:
    result = cli("run", "--root", root, "-m", "local:sut", "--format", "json", *args)
    assert "Traceback" not in result.output, result.output
    return result, json.loads(result.stdout)


def calibrated(cli, root: Path, *args: str) -> Any:
    result = cli("calibrate", "ask", "--root", root, *args)
    assert "Traceback" not in result.output, result.output
    return result


def calibration(root: Path) -> dict[str, Any]:
    return yaml.safe_load((root / "calibration" / "ask.llm_judge.yaml").read_text(encoding="utf-8"))


def judge_notes(document: dict[str, Any]) -> list[str]:
    return [note for note in document["notes"] if note.startswith("judge ask.llm_judge")]


# --- calibrate -------------------------------------------------------------------------------------------------

def test_calibrate_writes_the_judge_identity_and_its_agreement(cli, root: Path, server: FakeServer) -> None:
    run_json(cli, root)  # the outputs the labels name are the stored ones
    sent = server.total
    result = calibrated(cli, root)
    assert server.total == sent  # the run's judge answers, cached, are the same requests
    assert result.exit_code == 0, result.output
    written = calibration(root)
    assert written["prompt"] == "ask" and written["judge"] == "llm_judge"
    assert written["model"] == "local:judge" and written["threshold"] == 0.5
    assert written["rubric_hash"] == "sha256:" + content_hash(RUBRIC)
    assert written["template_hash"] == "sha256:" + content_hash({"built-in": JUDGE_SYSTEM})
    figures = written["figures"]
    assert figures["n"] == 8 and figures["counts"] == COUNTS
    interval = wilson_interval(3, 4)
    assert figures["tpr"] == {"value": 0.75, "low": round(interval.low, 4), "high": round(interval.high, 4)}
    assert figures["tnr"]["value"] == 0.5
    # kappa by hand: observed 5/8; the human passed 4 of 8, the judge 5 of 8: chance 4/8*5/8 + 4/8*3/8 = 1/2
    assert figures["kappa"]["value"] == pytest.approx(0.25, abs=1e-4)
    assert "Fleiss, Cohen & Everitt (1969)" in figures["kappa"]["method"]
    assert written["labels"] == {"labels_file": 8, "reviews": 0}
    assert written["date"].endswith("Z") and written["promptci_version"]
    assert "TPR (human pass -> judge pass): 75%" in result.stdout
    assert "disagrees: t4: labelled fail" in result.stdout


def test_calibrate_json_names_the_disagreements(cli, root: Path) -> None:
    run_json(cli, root)
    result = calibrated(cli, root, "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert sorted(d["case_id"] for d in document["disagreements"]) == ["t4", "t5", "t8"]
    assert document["calibration"]["figures"]["counts"] == COUNTS


def test_a_label_may_carry_the_output_it_labels(cli, project, server: FakeServer) -> None:
    """No stored run needed: each label gives the text the human judged."""
    labels = "labels:\n" + "".join(f"  {t}: {{label: {LABELS[t]}, output: Polite answer about {t}.}}\n"
                                   for t in TOPICS)
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden(), "promptci.yaml": config(server),
                    "labels/ask.yaml": labels})
    result = calibrated(cli, root)
    assert result.exit_code == 0, result.output
    assert calibration(root)["figures"]["counts"] == COUNTS
    assert all(r.body["model"] == "judge" for r in server.requests)  # no case request was sent


def test_reviews_are_labels_of_the_outputs_they_reviewed(cli, project, server: FakeServer) -> None:
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden(), "promptci.yaml": config(server)})
    _, document = run_json(cli, root)
    for result in document["results"]:
        verdict = "good" if LABELS[result["case_id"]] == "pass" else "bad"
        write_review(root, "ask", result["case_id"], result["output"], verdict, run=document["run_id"])
    write_review(root, "ask", "t1", "an output no run produced", "bad")  # not in the store: left out, said
    result = calibrated(cli, root)
    assert result.exit_code == 0, result.output
    written = calibration(root)
    assert written["figures"]["counts"] == COUNTS
    assert written["labels"] == {"labels_file": 0, "reviews": 8}
    assert "left out: reviews/ask.yaml (bad by" in result.stderr


def test_a_labels_file_wins_over_a_review_of_the_same_output(cli, project, server: FakeServer) -> None:
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden(), "promptci.yaml": config(server),
                    "labels/ask.yaml": labels_yaml(LABELS)})
    _, document = run_json(cli, root)
    t1 = next(r for r in document["results"] if r["case_id"] == "t1")
    write_review(root, "ask", "t1", t1["output"], "bad")
    assert calibrated(cli, root).exit_code == 0
    assert calibration(root)["figures"]["n"] == 8 and calibration(root)["figures"]["counts"] == COUNTS


# --- the gate --------------------------------------------------------------------------------------------------

def test_a_fresh_calibration_lets_the_judge_fail_the_run(cli, root: Path) -> None:
    run_json(cli, root)
    assert calibrated(cli, root).exit_code == 0
    result, document = run_json(cli, root)
    assert result.exit_code == 1
    statuses = {r["case_id"]: r["status"] for r in document["results"]}
    assert statuses["t5"] == "failed" and statuses["t1"] == "passed"
    assert all(r["scores"][0]["gating"] for r in document["results"])
    [note] = judge_notes(document)
    assert "gated: calibrated (calibration/ask.llm_judge.yaml: kappa 0.25 on 8 labels)" in note


def test_without_a_calibration_the_judge_only_reports(cli, root: Path) -> None:
    result, document = run_json(cli, root)
    assert result.exit_code == 0, result.output
    t5 = next(r for r in document["results"] if r["case_id"] == "t5")
    assert t5["status"] == "passed"  # shown failing, but it cannot fail the case
    assert t5["scores"][0]["passed"] is False and t5["scores"][0]["gating"] is False
    [note] = judge_notes(document)
    assert "report-only, it cannot fail the run: no calibration" in note
    assert "it failed 3 of 8 outputs: t5 [local:sut], t6 [local:sut], t7 [local:sut]" in note


def test_a_stale_calibration_rubric_edited_makes_the_judge_report_only(cli, root: Path) -> None:
    run_json(cli, root)
    assert calibrated(cli, root).exit_code == 0
    (root / "goldens/ask.yaml").write_text(golden(RUBRIC + " And short."), encoding="utf-8")
    result, document = run_json(cli, root)
    assert result.exit_code == 0, result.output
    [note] = judge_notes(document)
    assert "report-only, it cannot fail the run: stale: rubric changed since calibration/ask.llm_judge.yaml" in note
    assert "it failed 3 of 8 outputs" in note


def test_a_stale_calibration_model_or_threshold_changed(cli, root: Path) -> None:
    run_json(cli, root)
    assert calibrated(cli, root).exit_code == 0
    text = golden().replace("model: local:judge", "model: local:judge2\n    threshold: 0.6")
    (root / "goldens/ask.yaml").write_text(text, encoding="utf-8")
    result, document = run_json(cli, root)
    assert result.exit_code == 0
    assert "stale: model changed, threshold changed" in judge_notes(document)[0]


def test_allow_uncalibrated_lets_the_judge_fail_the_run(cli, project, server: FakeServer) -> None:
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden(),
                    "promptci.yaml": config(server, "judges: {allow_uncalibrated: true}\n")})
    result, document = run_json(cli, root)
    assert result.exit_code == 1
    [note] = judge_notes(document)
    assert "gated, as judges.allow_uncalibrated allows: no calibration" in note


def test_min_kappa_keeps_a_poorly_agreeing_judge_report_only(cli, project, server: FakeServer) -> None:
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden(), "labels/ask.yaml": labels_yaml(LABELS),
                    "promptci.yaml": config(server, "judges: {min_kappa: 0.6}\n")})
    run_json(cli, root)
    assert calibrated(cli, root).exit_code == 0
    result, document = run_json(cli, root)
    assert result.exit_code == 0
    [note] = judge_notes(document)
    assert "kappa 0.25 in calibration/ask.llm_judge.yaml is under judges.min_kappa 0.6" in note


def test_an_edited_judge_template_include_makes_the_calibration_stale(cli, project, server: FakeServer) -> None:
    extra = "    template: judges/strict\n"
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden(extra=extra),
                    "prompts/judges/strict.txt": "{% include '_rules.txt' %} rubric={{ rubric }} output={{ output }}\n",
                    "prompts/_rules.txt": "Be strict.", "goldens/judges/strict.yaml": "cases: []\n",
                    "promptci.yaml": config(server), "labels/ask.yaml": labels_yaml(LABELS)})
    run_json(cli, root, "goldens/ask.yaml")
    assert calibrated(cli, root).exit_code == 0, "calibrated"
    assert calibration(root)["template_files"] == ["prompts/_rules.txt", "prompts/judges/strict.txt"]
    result, document = run_json(cli, root, "goldens/ask.yaml")
    assert result.exit_code == 1
    (root / "prompts/_rules.txt").write_text("Be very strict.", encoding="utf-8")
    result, document = run_json(cli, root, "goldens/ask.yaml")
    assert result.exit_code == 0
    assert "stale: template changed" in judge_notes(document)[0]


def test_every_report_says_which_judges_only_reported(cli, root: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    result = cli("run", "--root", root, "-m", "local:sut", "-o", f"markdown={out}.md", "-o", f"junit={out}.xml",
                 "-o", f"html={out}.html")
    assert result.exit_code == 0, result.output
    words = "report-only, it cannot fail the run: no calibration"
    assert words in result.stdout  # the terminal
    for suffix in (".md", ".xml", ".html"):
        assert words in Path(f"{out}{suffix}").read_text(encoding="utf-8"), suffix
    runs = cli("runs", "--root", root, "--format", "json")
    run_id = json.loads(runs.stdout)[0]["run_id"]
    shown = cli("show", run_id, "--root", root, "--format", "json")
    assert any(words in note for note in json.loads(shown.stdout)["notes"])


def test_a_report_only_judge_that_raises_leaves_the_case_its_verdict(cli, root: Path, server: FakeServer) -> None:
    def refusing(body: dict[str, Any]) -> str:
        return "I cannot grade this." if body["model"] == "judge" else responder(body)

    server.config.responder = refusing
    result, document = run_json(cli, root)
    assert result.exit_code == 0, result.output
    t1 = next(r for r in document["results"] if r["case_id"] == "t1")
    assert t1["status"] == "passed" and "raw answer" in t1["scores"][0]["reason"]


def test_a_report_only_judge_counts_towards_no_gated_metric(cli, project, server: FakeServer) -> None:
    text = golden().replace("    model: local:judge\n", "    model: local:judge\n    metric: quality\n")
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": text,
                    "promptci.yaml": config(server, "gate: {metrics: {quality: 0.9}}\n")})
    result, _ = run_json(cli, root)
    assert result.exit_code == 0, result.output


def test_a_judge_without_a_verdict_writes_no_calibration(cli, root: Path, server: FakeServer) -> None:
    run_json(cli, root)

    def refusing_t3(body: dict[str, Any]) -> str:
        if body["model"] == "judge" and "answer about t3." in body["messages"][-1]["content"]:
            return "I cannot grade this."
        return responder(body)

    server.config.responder = refusing_t3
    result = calibrated(cli, root, "--no-cache")  # the run's judge answers are cached: calibrate would reuse them
    assert result.exit_code == 3
    assert "no verdict for t3" in result.stderr and "nothing written" in result.stderr
    assert not (root / "calibration").exists()


# --- bad input -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("labels", "where", "message"), [
    ("labels:\n  t1: pass\n  t2: maybe\n", "labels/ask.yaml:3", "must be pass or fail, got 'maybe'"),
    ("labels:\n  t1: pass\n  nope: fail\n", "labels/ask.yaml:3", "no case 'nope' of this prompt has the judge"),
    ("labels:\n  t1: {label: pass, outptu: x}\n", "labels/ask.yaml:2", "unknown key 'outptu'"),
    ("labels: [t1, t2]\n", "labels/ask.yaml:1", "a labels file is a mapping"),
    ("labels:\n  t1: true\n", "labels/ask.yaml:2", "must be pass or fail, got True"),
    ("labels:\n  t1: {label: pass, output: [1]}\n", "labels/ask.yaml:2", "the output of 't1' must be text"),
])
def test_a_bad_labels_file_is_exit_2_naming_its_line(cli, root: Path, server: FakeServer, labels: str, where: str,
                                                     message: str) -> None:
    (root / "labels/ask.yaml").write_text(labels, encoding="utf-8")
    result = calibrated(cli, root)
    assert result.exit_code == 2, result.output
    assert where in result.stderr and message in result.stderr, result.stderr
    assert server.total == 0


def test_a_label_without_a_stored_output_is_exit_2_naming_its_line(cli, root: Path, server: FakeServer) -> None:
    result = calibrated(cli, root)
    assert result.exit_code == 2
    assert "labels/ask.yaml:2" in result.stderr and "no stored output of case 't1'" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--labels", "missing.yaml"), "no such labels file"),
    (("--judge", "other"), "has no llm_judge named 'other'"),
])
def test_bad_calibrate_options_are_exit_2(cli, root: Path, args: tuple[str, ...], message: str) -> None:
    result = calibrated(cli, root, *args)
    assert result.exit_code == 2 and message in result.stderr


def test_calibrate_names_an_unknown_prompt_or_one_without_a_judge(cli, root: Path) -> None:
    result = cli("calibrate", "nope", "--root", root)
    assert result.exit_code == 2 and "no prompt 'nope'" in result.stderr
    (root / "goldens/ask.yaml").write_text("cases:\n  - id: t1\n    input: {topic: t1}\n    expected: x\n")
    result = cli("calibrate", "ask", "--root", root)
    assert result.exit_code == 2 and "has no llm_judge comparator" in result.stderr


def test_one_judge_name_with_two_rubrics_is_refused(cli, root: Path) -> None:
    text = golden() + ("    comparators:\n      - {type: llm_judge, rubric: Other., model: 'local:judge'}\n")
    (root / "goldens/ask.yaml").write_text(text, encoding="utf-8")
    result = calibrated(cli, root)
    assert result.exit_code == 2 and "give them different `name:`s" in result.stderr


def test_a_damaged_calibration_file_is_exit_2_naming_it(cli, root: Path) -> None:
    (root / "calibration").mkdir()
    (root / "calibration/ask.llm_judge.yaml").write_text("model: local:judge\n", encoding="utf-8")
    result = cli("run", "--root", root, "-m", "local:sut")
    assert result.exit_code == 2
    assert "calibration/ask.llm_judge.yaml" in result.stderr and "`rubric_hash` is missing" in result.stderr


@pytest.mark.parametrize(("judges", "message"), [
    ("judges: {allow_uncalibrated: yes please}\n", "promptci.yaml:8: `judges.allow_uncalibrated` must be true or"),
    ("judges: {min_kappa: 2}\n", "promptci.yaml:8: `judges.min_kappa` must be a number between -1 and 1"),
    ("judges: {min_kapa: 0.5}\n", "unknown key 'min_kapa' in `judges` (did you mean 'min_kappa'?)"),
])
def test_bad_judges_settings_are_exit_2(cli, project, server: FakeServer, judges: str, message: str) -> None:
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden(), "promptci.yaml": config(server, judges)})
    result = cli("run", "--root", root, "-m", "local:sut")
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_a_bad_judge_name_is_a_load_error(cli, root: Path) -> None:
    (root / "goldens/ask.yaml").write_text(golden(extra="    name: ../x\n"), encoding="utf-8")
    result = cli("run", "--root", root, "-m", "local:sut")
    assert result.exit_code == 2 and "name '../x' must be letters, digits" in result.stderr


# --- the statistics ---------------------------------------------------------------------------------------------

def test_kappa_matches_a_hand_computed_table() -> None:
    from promptci.stats import Agreement

    # 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15: observed 0.7, chance 0.5, kappa 0.4
    kappa, interval = Agreement(tp=20, fn=5, fp=10, tn=15).kappa()
    assert kappa == pytest.approx(0.4)
    assert interval is not None and interval.low < 0.4 < interval.high


def delta_method_se(counts: tuple[int, int, int, int]) -> float:
    """The large-sample SE of kappa by the delta method, numerically: grad' (diag(p) - pp') grad / n."""
    n = sum(counts)
    p = [c / n for c in counts]

    def kappa_of(q: list[float]) -> float:
        tp, fn, fp, tn = q
        observed = tp + tn
        chance = (tp + fn) * (tp + fp) + (fp + tn) * (fn + tn)
        return (observed - chance) / (1 - chance)

    step = 1e-6
    grad = []
    for i in range(4):
        up, down = list(p), list(p)
        up[i] += step
        down[i] -= step
        grad.append((kappa_of(up) - kappa_of(down)) / (2 * step))
    mean = sum(g * q for g, q in zip(grad, p, strict=True))
    variance = sum(q * (g - mean) ** 2 for g, q in zip(grad, p, strict=True))
    return math.sqrt(variance / n)


@pytest.mark.parametrize("counts", [(20, 5, 10, 15), (3, 1, 2, 2), (40, 2, 7, 31), (9, 0, 1, 10)])
def test_the_kappa_interval_is_fleiss_cohen_everitts_large_sample_se(counts: tuple[int, int, int, int]) -> None:
    from scipy.stats import norm

    from promptci.stats import Agreement

    kappa, interval = Agreement(*counts).kappa()
    assert kappa is not None and interval is not None
    half = norm.ppf(0.975) * delta_method_se(counts)
    assert interval.low == pytest.approx(max(-1.0, kappa - half), abs=1e-6)
    assert interval.high == pytest.approx(min(1.0, kappa + half), abs=1e-6)


def test_rates_use_wilson_intervals_as_scipy_computes_them() -> None:
    from scipy.stats import binomtest

    from promptci.stats import Agreement

    agreement = Agreement(tp=7, fn=2, fp=3, tn=11)
    rate, interval = agreement.tpr()
    expected = binomtest(7, 9).proportion_ci(method="wilson")
    assert rate == pytest.approx(7 / 9)
    assert (interval.low, interval.high) == pytest.approx((expected.low, expected.high))
    rate, interval = agreement.tnr()
    expected = binomtest(11, 14).proportion_ci(method="wilson")
    assert (interval.low, interval.high) == pytest.approx((expected.low, expected.high))


def test_kappa_is_undefined_when_both_raters_gave_one_label_to_everything() -> None:
    from promptci.stats import Agreement

    assert Agreement(tp=5, fn=0, fp=0, tn=0).kappa() == (None, None)
    assert Agreement(tp=5, fn=0, fp=0, tn=0).tnr()[0] is None
    with pytest.raises(ValueError):
        Agreement(tp=-1, fn=0, fp=0, tn=0)


# --- diff -------------------------------------------------------------------------------------------------------

def rude_responder(body: dict[str, Any]) -> str:
    """As `responder`, but a prompt that asks for rudeness gets a rude answer, which the judge fails."""
    user = body["messages"][-1]["content"]
    if body["model"] == "judge" and "Rude answer" in user:
        return json.dumps({"score": 0.0, "pass": False, "reason": "rude"})
    if body["model"] != "judge" and user.startswith("Be rude"):
        topic = next(t for t in TOPICS if t in user)
        return f"Rude answer about {topic}."
    return responder(body)


@pytest.mark.parametrize(("judges", "exit_code", "words"), [
    ("", 0, "report-only, it cannot fail the run: no calibration"),
    ("judges: {allow_uncalibrated: true}\n", 1, "gated, as judges.allow_uncalibrated allows"),
])
def test_diff_gates_on_a_judge_only_when_it_may(cli, tmp_path: Path, server: FakeServer, judges: str,
                                                exit_code: int, words: str) -> None:
    from gitrepo import commit, new_repo

    server.config.responder = rude_responder
    repo = new_repo(tmp_path / "repo")
    commit(repo, {"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden(), "promptci.yaml": config(server, judges),
                  ".gitignore": ".promptci/\n"}, "A")
    commit(repo, {"prompts/ask.txt": "Be rude. " + PROMPT}, "B")
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "-m", "local:sut", "--no-github", "--format", "json")
    assert result.exit_code == exit_code, result.output
    assert any(words in note for note in json.loads(result.stdout)["decision"]["notes"])


# --- hostile files ----------------------------------------------------------------------------------------------

def yamlish(tokens: list[str]) -> st.SearchStrategy[str]:
    """Text made of YAML's punctuation and the words a file of that kind holds."""
    return st.lists(st.sampled_from([*"{}[]-,:\n '\"&*!|>#?%@`\t\\0.5", *tokens]), max_size=60).map("".join)


YAMLISH = yamlish(["labels", "output", "label", "t1", "t2", "pass", "fail", "  "])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=YAMLISH)
def test_any_labels_file_is_labels_or_a_located_problem(tmp_path: Path, text: str) -> None:
    from promptci.calibrating import read_labels
    from promptci.errors import PromptCIError

    path = tmp_path / "labels" / "ask.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    try:
        found = read_labels(path, tmp_path, {"t1", "t2"})
    except PromptCIError as error:
        assert "labels/ask.yaml" in str(error)
        return
    assert all(label.case_id in {"t1", "t2"} and isinstance(label.passes, bool) for label in found)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=yamlish(["model: x\n", "rubric_hash: x\n", "template_hash: x\n", "threshold: 0.5\n", "figures",
                     "kappa", "value", "n", "null", "true", "  "]))
def test_any_calibration_file_is_read_or_a_located_problem(tmp_path: Path, text: str) -> None:
    from promptci.calibration import read_calibration
    from promptci.errors import PromptCIError

    path = tmp_path / "calibration" / "ask.llm_judge.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    try:
        found = read_calibration(tmp_path, "ask", "llm_judge")
    except PromptCIError as error:
        assert "calibration/ask.llm_judge.yaml" in str(error)
        return
    assert found is not None and (found.kappa is None or isinstance(found.kappa, float))


def test_calibrate_without_the_judges_key_is_exit_2_and_sends_nothing(cli, project, server: FakeServer,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    labels = "labels:\n  t1: {label: pass, output: Polite answer about t1.}\n"
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden().replace("local:judge", "openai:gpt-4o"),
                    "promptci.yaml": config(server), "labels/ask.yaml": labels})
    result = calibrated(cli, root)
    assert result.exit_code == 2 and "OPENAI_API_KEY" in result.stderr, result.output
    assert server.total == 0 and not (root / "calibration").exists()


def test_calibrate_keeps_the_run_budget(cli, project, server: FakeServer) -> None:
    """budgets.run_usd holds calibrate's judge requests too: the ones it cannot afford give no verdict (exit 3)."""
    labels = "labels:\n" + "".join(f"  {t}: {{label: pass, output: Polite answer about {t}.}}\n" for t in TOPICS)
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden(), "labels/ask.yaml": labels,
                    "promptci.yaml": config(server, "budgets: {run_usd: 0.0005}\n")})
    result = calibrated(cli, root, "-j", "1")
    assert result.exit_code == 3, result.output
    assert "nothing written" in result.stderr and server.total < len(TOPICS)


def test_a_failed_case_marks_its_report_only_judge_among_the_reasons(cli, root: Path, tmp_path: Path) -> None:
    text = golden().replace("  - id: t5\n    input: {topic: t5}\n",
                            "  - id: t5\n    input: {topic: t5}\n    comparators+: [{type: regex, pattern: '^Rude'}]\n")
    (root / "goldens/ask.yaml").write_text(text, encoding="utf-8")
    report = tmp_path / "report.xml"
    result = cli("run", "--root", root, "-m", "local:sut", "-o", f"junit={report}", "-o", f"html={tmp_path}/r.html")
    assert result.exit_code == 1, result.output  # the regex failed t5; the judge's failure only reports
    for text in (result.stdout, report.read_text(encoding="utf-8"), (tmp_path / "r.html").read_text("utf-8")):
        assert "llm_judge (report-only): judge local:judge: score 0.10" in text


def test_labels_given_with_labels_may_live_outside_the_project(cli, project, server: FakeServer,
                                                                tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "labels.yaml"
    outside.parent.mkdir()
    outside.write_text("labels:\n" + "".join(f"  {t}: {{label: {LABELS[t]}, output: Polite answer about {t}.}}\n"
                                             for t in TOPICS), encoding="utf-8")
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden(), "promptci.yaml": config(server)})
    result = calibrated(cli, root, "--labels", str(outside))
    assert result.exit_code == 0, result.output
    assert calibration(root)["figures"]["counts"] == COUNTS
    outside.write_text("labels:\n  t1: maybe\n", encoding="utf-8")
    result = calibrated(cli, root, "--labels", str(outside))
    assert result.exit_code == 2 and f"{outside.as_posix()}:2" in result.stderr, result.stderr


# --- lint -------------------------------------------------------------------------------------------------------

def lint_warnings(cli, root: Path) -> tuple[Any, list[str]]:
    result = cli("lint", "--root", root)
    assert "Traceback" not in result.output, result.output
    return result, [line for line in result.stderr.splitlines() if "report-only" in line]


def test_lint_warns_of_a_judge_that_will_only_report_naming_why_and_the_fix(cli, root: Path) -> None:
    """Warnings keep lint's meaning: exit 0 (only errors are exit 2), each at the judge's golden line."""
    result, [warning] = lint_warnings(cli, root)
    assert result.exit_code == 0, result.output
    assert warning.startswith("goldens/ask.yaml:2: judge ask.llm_judge (local:judge): report-only, it cannot fail "
                              "the run: no calibration (calibration/ask.llm_judge.yaml"), warning
    assert "fix: `promptci calibrate ask --judge llm_judge`" in warning
    assert "judges: {allow_uncalibrated: true}" in warning and warning.endswith("[warning]")
    assert "promptci lint: ok (1 warning(s))" in result.stdout


def test_lint_is_quiet_about_a_fresh_calibration_and_names_a_stale_one(cli, root: Path) -> None:
    run_json(cli, root)
    assert calibrated(cli, root).exit_code == 0
    result, warnings = lint_warnings(cli, root)
    assert result.exit_code == 0 and warnings == [], result.output
    (root / "goldens/ask.yaml").write_text(golden(RUBRIC + " And short."), encoding="utf-8")
    result, [warning] = lint_warnings(cli, root)
    assert "stale: rubric changed since calibration/ask.llm_judge.yaml" in warning and result.exit_code == 0


def test_lint_names_a_calibration_under_min_kappa(cli, project, server: FakeServer) -> None:
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden(), "labels/ask.yaml": labels_yaml(LABELS),
                    "promptci.yaml": config(server, "judges: {min_kappa: 0.6}\n")})
    run_json(cli, root)
    assert calibrated(cli, root).exit_code == 0
    _, [warning] = lint_warnings(cli, root)
    assert "kappa 0.25 in calibration/ask.llm_judge.yaml is under judges.min_kappa 0.6" in warning
    assert "fix: `promptci calibrate ask --judge llm_judge`" in warning


def test_lint_says_nothing_when_uncalibrated_judges_may_gate(cli, project, server: FakeServer) -> None:
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden(),
                    "promptci.yaml": config(server, "judges: {allow_uncalibrated: true}\n")})
    result, warnings = lint_warnings(cli, root)
    assert result.exit_code == 0 and warnings == [], result.output
    assert "promptci lint: ok (0 warning(s))" in result.stdout


def test_lint_names_a_damaged_calibration_file_as_an_error(cli, root: Path) -> None:
    (root / "calibration").mkdir()
    (root / "calibration/ask.llm_judge.yaml").write_text("model: local:judge\n", encoding="utf-8")
    result = cli("lint", "--root", root)
    assert result.exit_code == 2, result.output
    assert "calibration/ask.llm_judge.yaml:1: `rubric_hash` is missing" in result.stderr
    assert "[error]" in result.stderr
