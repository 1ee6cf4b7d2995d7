"""The pull-request check's own steps (action.yml): which model keys the run lacks, before any request, and the
comment for every outcome of the check, from the files the promptci step wrote.

`python -m promptci.prcheck missing-keys` prints the key variables the project's models and judges need that
are not set. `python -m promptci.prcheck comment ...` writes the comment (and job summary) and prints the exit
code the check ends with. Everything read here (reports, the log) is data: escaped, never executed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPLAY_MISS = "--replay: no recorded response"
LOG_LINES = 20  # of promptci's own messages, for a comment on exit 2, 3 or 4
HEADLINES = {
    0: ":white_check_mark: **promptci: all clear**",
    1: ":x: **promptci: regressions**",
    2: ":no_entry: **promptci: bad input** (exit 2)",
    3: ":warning: **promptci: no verdict** (exit 3)",
    4: ":boom: **promptci: internal error** (exit 4)",
}
POLICIES = ("fail", "warn")


@dataclass(frozen=True)
class CheckContext:
    """What the action knows about this run of the check."""

    exit_code: int
    head_sha: str
    base: str = ""  # the base branch's name
    base_sha: str = ""
    artifact_url: str = ""
    run_url: str = ""
    project: str = "."  # the working directory, for a monorepo's section
    offline: bool = False  # the run had no key for some model and answered from recordings and the cache
    missing_keys: tuple[str, ...] = ()
    fork: bool = False
    policy: str = "fail"  # offline cases that need a live model: fail (exit 3) or warn (exit 0)
    pr_number: int | None = None


@dataclass
class Spend:
    requests: int = 0
    usd: float = 0.0
    unpriced: int = 0  # requests with no known price


@dataclass
class ReportFacts:
    """What the JSON report says, for the comment's lines."""

    found: bool = False
    spend: Spend = field(default_factory=Spend)
    needs_live: list[str] = field(default_factory=list)  # "case (file:line) on model"
    live_ids: list[str] = field(default_factory=list)  # their case ids, for `-k`
    other_errors: int = 0


def dicts_in(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a JSON list; nothing for anything else."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def result_dicts(report: Any) -> Iterable[Mapping[str, Any]]:
    """Every result of a run document, or both sides' results of a comparison document."""
    if not isinstance(report, dict):
        return
    if report.get("kind") == "comparison":
        for change in dicts_in(report.get("changes")):
            for side in ("before", "after"):
                yield from dicts_in(change.get(side))
        return
    yield from dicts_in(report.get("results"))


def plain(value: Any) -> str:
    """A report's value on one line of Markdown: no backticks, brackets or angle brackets, bounded."""
    return re.sub(r"[`<>\[\]\s]+", " ", str(value)).strip()[:120]


def code_span(value: Any) -> str:
    return f"`{plain(value)}`"


def read_facts(path: Path) -> ReportFacts:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return ReportFacts()
    facts = ReportFacts(found=True)
    seen: set[str] = set()
    for result in result_dicts(report):
        error = str(result.get("error") or "")
        if error.startswith(REPLAY_MISS):
            where = (f"{code_span(result.get('case_id'))} ({plain(result.get('file'))}:{plain(result.get('line'))})"
                     f" on {plain(result.get('model'))}")
            if where not in seen:
                seen.add(where)
                facts.needs_live.append(where)
                facts.live_ids.append(str(result.get("case_id")))
            continue
        if result.get("status") == "error":
            facts.other_errors += 1
        if result.get("cached") or result.get("status") == "skipped":
            continue
        attempts = result.get("attempts")
        facts.spend.requests += attempts if isinstance(attempts, int) and attempts > 0 else 1
        cost = result.get("cost_usd")
        if isinstance(cost, (int, float)):
            facts.spend.usd += float(cost)
        else:
            facts.spend.unpriced += 1
    return facts


def promptci_messages(log: str) -> list[str]:
    """promptci's own lines of the log (errors and notes), or its last lines when it wrote none."""
    lines = [line.rstrip() for line in log.splitlines() if line.strip()]
    own = [line for line in lines if line.startswith(("promptci:", "error:", "  "))]
    return (own or lines)[-LOG_LINES:]


def fenced(text: str) -> str:
    """A code block no content can close early (a fence longer than any backtick run in it)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def short(sha: str) -> str:
    return sha[:12] if re.fullmatch(r"[0-9a-fA-F]{7,64}", sha) else "unknown"


def spend_line(facts: ReportFacts) -> str:
    if not facts.found:
        return "spent: 0 requests"
    spend = facts.spend
    unpriced = f" ({spend.unpriced} at an unknown price)" if spend.unpriced and spend.requests else ""
    return f"spent: {spend.requests} request{'s' if spend.requests != 1 else ''}, ${spend.usd:.4f}{unpriced}"


def final_exit_code(context: CheckContext, facts: ReportFacts) -> int:
    """The check's exit code: promptci's, except that an offline run whose only missing evidence is cases
    needing a live model passes with a warning when the policy says warn."""
    if (context.offline and context.exit_code == 3 and context.policy == "warn" and facts.needs_live
            and not facts.other_errors):
        return 0
    return context.exit_code


def headline(context: CheckContext, facts: ReportFacts, markdown: str | None) -> str:
    code = context.exit_code
    if code == 0 and not facts.found and markdown is None:
        base = f"`{context.base}` at `{short(context.base_sha)}`" if context.base else "the base"
        return (f":white_check_mark: **promptci: nothing to run**: no prompt-affecting change since {base}")
    if code == 3 and context.offline and facts.needs_live:
        return (f":warning: **promptci: {len(facts.needs_live)} case(s) need a live model** (no key in this run)"
                + (": passing with a warning, as `missing-secrets: warn` asks" if final_exit_code(context, facts) == 0
                   else " (exit 3)"))
    return HEADLINES.get(code, f":stop_sign: **promptci: interrupted** (exit {code})")


def offline_section(context: CheckContext, facts: ReportFacts) -> list[str]:
    if not context.offline:
        return []
    why = ("this pull request comes from a fork, and GitHub gives a fork's workflow no secrets" if context.fork
           else f"{', '.join(f'`{k}`' for k in context.missing_keys) or 'a key'} is not set")
    lines = [f"Ran offline (`--replay`: committed recordings and the cache restored from the base branch): {why}."]
    if facts.needs_live:
        lines += ["", "These cases need a live model:", "", *(f"- {case}" for case in facts.needs_live[:50])]
        if len(facts.needs_live) > 50:
            lines.append(f"- … and {len(facts.needs_live) - 50} more (see the HTML report)")
        checkout = f"gh pr checkout {context.pr_number}" if context.pr_number else "check out the pull request"
        lines += ["", f"A maintainer who has read the change gets them run: `{checkout} && promptci run --record"
                      f"{selection(facts.live_ids)}`, "
                      "then commits `recordings/` to the pull request (this check replays them), or pushes the branch "
                      "to this repository, where the check has the secrets."]
    return lines


def selection(case_ids: Sequence[str]) -> str:
    """` -k 'a or b'` for a few plain ids (ids are data from the report: anything else is left out)."""
    ids = sorted(set(case_ids))
    if not ids or len(ids) > 20 or not all(re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", i) for i in ids):
        return ""
    return f" -k '{' or '.join(ids)}'"


def compose(context: CheckContext, reports: Path) -> tuple[str, int]:
    """(the comment's Markdown, the check's exit code) from the files in `reports`."""
    facts = read_facts(reports / "report.json")
    markdown_path = reports / "report.md"
    markdown = markdown_path.read_text(encoding="utf-8", errors="replace") if markdown_path.is_file() else None
    log_path = reports / "promptci.log"
    log = log_path.read_text(encoding="utf-8", errors="replace") if log_path.is_file() else ""
    title = headline(context, facts, markdown)
    section = f" — `{context.project}`" if context.project not in ("", ".") else ""
    links = [f"head `{short(context.head_sha)}`"]
    if context.artifact_url:
        links.append(f"[HTML report]({context.artifact_url})")
    if context.run_url:
        links.append(f"[run]({context.run_url})")
    links.append(spend_line(facts))
    lines = [f"{title}{section}", "", " · ".join(links), ""]
    lines += offline_section(context, facts)
    if context.exit_code in (2, 3, 4) or (context.exit_code not in (0, 1) and markdown is None):
        messages = promptci_messages(log)
        if messages and not (context.offline and facts.needs_live and not facts.other_errors):
            lines += ["", fenced("\n".join(messages))]
    if markdown is not None and markdown.strip():
        lines += ["", "<details open><summary>Report</summary>", "", markdown.strip(), "", "</details>"]
    return "\n".join(lines).rstrip() + "\n", final_exit_code(context, facts)


def missing_key_variables(root: Path | None) -> list[str]:
    """Key variables the project's models and judges need that are not set; [] when the project does not
    load (the run reports that itself)."""
    from promptci.errors import PromptCIError
    from promptci.modelcalls import helper_models
    from promptci.plan import RunOptions
    from promptci.planning import build_plan, missing_keys

    try:
        plan = build_plan(RunOptions(root=root))
        return sorted(missing_keys((*plan.models, *helper_models(plan.jobs)), plan.settings, False))
    except PromptCIError:
        return []


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m promptci.prcheck", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("missing-keys", help="Print the key variables the run needs and lacks")
    keys.add_argument("--root", type=Path, default=None)
    comment = commands.add_parser("comment", help="Write the comment for this outcome; print the exit code")
    comment.add_argument("--reports", type=Path, required=True)
    comment.add_argument("--out", type=Path, required=True)
    comment.add_argument("--exit-code", type=int, default=4)
    for name in ("head-sha", "base", "base-sha", "artifact-url", "run-url", "project", "missing-keys"):
        comment.add_argument(f"--{name}", default="")
    comment.add_argument("--offline", action="store_true")
    comment.add_argument("--fork", action="store_true")
    comment.add_argument("--policy", choices=POLICIES, default="fail")
    comment.add_argument("--pr", type=int, default=None)
    args = parser.parse_args(argv)
    if args.command == "missing-keys":
        print(" ".join(missing_key_variables(args.root)))
        return 0
    context = CheckContext(exit_code=args.exit_code, head_sha=args.head_sha, base=args.base, base_sha=args.base_sha,
                           artifact_url=args.artifact_url, run_url=args.run_url, project=args.project or ".",
                           offline=args.offline, missing_keys=tuple(args.missing_keys.split()), fork=args.fork,
                           policy=args.policy, pr_number=args.pr)
    body, code = compose(context, args.reports)
    args.out.write_text(body, encoding="utf-8")
    print(code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
