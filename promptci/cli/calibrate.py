"""`promptci calibrate`: measure an llm_judge against human labels and write its calibration file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from promptci.cli.common import CacheOption, Command, ConcurrencyOption, EnvOption, RootOption, app, echo_lines
from promptci.cli.edge import guarded
from promptci.errors import PromptCIError

if TYPE_CHECKING:
    from promptci.calibrating import CalibrationOutcome


@app.command(cls=Command)
@guarded
def calibrate(
    prompt: Annotated[str, typer.Argument(metavar="PROMPT", help="The prompt whose judge to calibrate.")],
    judge: Annotated[str | None, typer.Option(
        "--judge", metavar="NAME", help="The judge's `name:` (default: the prompt's only llm_judge).")] = None,
    labels: Annotated[Path | None, typer.Option(
        "--labels", metavar="FILE", help="Labels: `labels: {CASE_ID: pass|fail}` (default: labels/PROMPT.yaml).")]
    = None,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="table|json")] = "table",
    root: RootOption = None,
    concurrency: ConcurrencyOption = None,
    env: EnvOption = None,
    cache: CacheOption = True,
) -> None:
    """Grade human-labelled outputs (labels file, reviews) with a judge; write calibration/PROMPT.JUDGE.yaml.
    Only a judge with a fresh calibration can fail a run. Exit 3 when the judge gave no verdict on some."""
    from promptci.calibrating import CalibrateOptions
    from promptci.calibrating import calibrate as run_calibration

    if fmt not in ("table", "json"):
        raise PromptCIError(f"--format {fmt!r} is not known for calibrate (known: table, json)")
    outcome = run_calibration(CalibrateOptions(prompt=prompt, root=root, judge=judge, labels=labels,
                                               concurrency=concurrency, environment=env, use_cache=cache))
    if fmt == "json":
        typer.echo(json.dumps(outcome_json(outcome), indent=2, ensure_ascii=False))
    else:
        typer.echo("\n".join(outcome_lines(outcome)))
    echo_lines(outcome.notes)
    raise typer.Exit(code=int(outcome.exit_code))


def outcome_json(outcome: CalibrationOutcome) -> dict[str, Any]:
    return {"calibration": outcome.document, "written": str(outcome.written) if outcome.written else None,
            "disagreements": [{"case_id": j.label.case_id, "label": "pass" if j.label.passes else "fail",
                               "judge": "pass" if j.judge_passes else "fail", "reason": j.reason,
                               "from": j.label.where} for j in outcome.disagreements()],
            "notes": outcome.notes, "exit_code": int(outcome.exit_code)}


def outcome_lines(outcome: CalibrationOutcome) -> list[str]:
    identity = outcome.identity
    lines = [f"judge {identity.prompt}.{identity.name} ({identity.model}, threshold {identity.threshold:g}): "
             f"{len(outcome.judged)} labelled outputs"]
    document = outcome.document
    if document is not None:
        figures = document["figures"]
        counts = figures["counts"]
        lines += [f"  counts: both pass {counts['tp']}, both fail {counts['tn']}, judge failed a human pass "
                  f"{counts['fn']}, judge passed a human fail {counts['fp']}",
                  f"  TPR (human pass -> judge pass): {figure(figures['tpr'])}",
                  f"  TNR (human fail -> judge fail): {figure(figures['tnr'])}",
                  f"  Cohen's kappa: {figure(figures['kappa'], rate=False)}"]
    for item in outcome.disagreements():
        lines.append(f"  disagrees: {item.label.case_id}: labelled {'pass' if item.label.passes else 'fail'} "
                     f"({item.label.where}), judge said {'pass' if item.judge_passes else 'fail'}: {item.reason}")
    if outcome.written is not None:
        lines.append(f"wrote {outcome.written}")
    return lines


def figure(value: dict[str, Any], rate: bool = True) -> str:
    if value["value"] is None:
        return "unknown (no label of that kind)" if rate else "undefined (one label for everything)"
    shown = (lambda x: f"{x:.0%}") if rate else (lambda x: f"{x:.2f}")
    return f"{shown(value['value'])} (95% CI {shown(value['low'])} to {shown(value['high'])})"
