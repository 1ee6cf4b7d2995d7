"""What moved down from the CLI: -o targets and their errors, the cost --check verdict, and why --changed-since
selected a prompt. The commands themselves are tested through the CLI in test_cli_*.py."""

from __future__ import annotations

import errno
from datetime import datetime, timezone
from pathlib import Path

import pytest

from promptci.changes import ChangeSelection
from promptci.cost.ledger import CostRow
from promptci.cost.report import CostReport
from promptci.errors import ExitCode, PromptCIError
from promptci.reporting.costsummary import daily_budget_verdict
from promptci.reporting.targets import comparison_targets, parse_outputs, report_targets, report_write_error


def test_a_suffix_names_the_format_and_format_equals_file_overrides_it(tmp_path: Path) -> None:
    targets = parse_outputs([str(tmp_path / "r.json"), f"markdown={tmp_path / 'r.txt'}", str(tmp_path / "j.xml")])
    assert targets == [("json", tmp_path / "r.json"), ("markdown", tmp_path / "r.txt"), ("junit", tmp_path / "j.xml")]


@pytest.mark.parametrize("item, says", [
    ("report.txt", "the suffix does not say which format"), ("pdf=r.pdf", "unknown format 'pdf'"),
    ("json=", "no file after json="),
])
def test_bad_targets_say_what_to_write_instead(item: str, says: str) -> None:
    with pytest.raises(PromptCIError, match=says) as caught:
        parse_outputs([item])
    assert caught.value.exit_code == ExitCode.USAGE


def test_a_folder_or_a_path_under_a_file_is_refused_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(PromptCIError, match="is a folder"):
        parse_outputs([f"json={tmp_path}"])
    with pytest.raises(PromptCIError, match="is a file, so"):
        parse_outputs([f"json={tmp_path / 'file' / 'r.json'}"])


def test_format_and_diff_formats_are_checked() -> None:
    with pytest.raises(PromptCIError, match="--format 'pdf' is not known"):
        report_targets("pdf", None)
    with pytest.raises(PromptCIError, match="format 'junit' has no report of a diff"):
        comparison_targets("junit", None)
    assert comparison_targets("markdown", None) == []


def test_a_bad_path_is_usage_and_a_full_disk_is_the_environment(tmp_path: Path) -> None:
    usage = report_write_error(tmp_path, "json", OSError(errno.EISDIR, "Is a directory"))
    full = report_write_error(tmp_path / "r.json", "json", OSError(errno.ENOSPC, "No space left on device"))
    assert usage.exit_code == ExitCode.USAGE and "Is a directory" in str(usage)
    assert full.exit_code == ExitCode.INTERNAL_ERROR and "No space left" in str(full)


def cost_report(daily_spend: tuple[tuple[str, float], ...], cost_unknown: int = 0) -> CostReport:
    total = CostRow(group=(), requests=3, cost_usd=sum(spent for _, spent in daily_spend), cost_unknown=cost_unknown)
    return CostReport(since=datetime(2026, 11, 1, tzinfo=timezone.utc), dimensions=("day",), rows=(total,),
                      total=total, unknown_price_models=(), daily_usd=1.0, daily_spend=daily_spend)


def test_the_budget_verdict_names_every_day_over_and_the_amount_over() -> None:
    verdict = daily_budget_verdict(cost_report((("2026-11-01", 0.5), ("2026-11-02", 1.25)), cost_unknown=2), 1.0)
    assert verdict.is_over
    assert verdict.message.splitlines() == [
        "promptci cost --check: 1 day(s) over the daily budget of $1.00 (2 request(s) with no price are not counted):",
        "  2026-11-02: spent $1.25 ($0.25 over)"]


def test_within_budget_names_the_highest_day() -> None:
    verdict = daily_budget_verdict(cost_report((("2026-11-01", 0.5), ("2026-11-02", 0.75))), 1.0)
    assert not verdict.is_over
    assert verdict.message == ("promptci cost --check: every day since 2026-11-01 stayed within the daily budget "
                               "of $1.00; highest 2026-11-02: $0.75")


def test_a_selection_explains_itself_per_prompt_in_order_or_once_for_everything() -> None:
    selection = ChangeSelection(frozenset({"b:1", "a:1"}), {"b": ("golden changed",), "a": ("prompt changed", "x")})
    assert selection.explain("main") == ["changed since main: a: prompt changed; x",
                                         "changed since main: b: golden changed"]
    everything = ChangeSelection(frozenset(), everything="promptci.yaml changed: models")
    assert everything.explain("HEAD~1") == ["changed since HEAD~1: every case, as promptci.yaml changed: models"]
