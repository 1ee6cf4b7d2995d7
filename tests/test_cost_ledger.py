"""Ledger aggregation for `promptci cost`: grouping, unknown costs, --since, daily budgets, CSV/JSON."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from promptci.cost.ledger import (
    aggregate,
    days_over_budget,
    parse_since,
    percentile,
    render_csv,
    rows_to_json,
)
from promptci.errors import PromptCIError
from promptci.store import LedgerEntry

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def row(at: str, **changes: object) -> LedgerEntry:
    base = LedgerEntry(at=at, run_id="r1", git_commit="abc", prompt="route", case_id="c1",
                       model="openai:gpt-4o-mini", provider="openai", input_tokens=100, output_tokens=10,
                       cached_input_tokens=0, cost_usd=0.01, saved_usd=None, latency_ms=100.0, ttft_ms=50.0,
                       status="ok", attempts=1, kind="case", error_kind=None)
    return replace(base, **changes)  # type: ignore[arg-type]


LEDGER = [
    row("2026-11-01T09:00:00Z"),
    row("2026-11-01T10:00:00Z", latency_ms=300.0),
    row("2026-11-01T11:00:00Z", status="cached", cost_usd=0.0, saved_usd=0.01, latency_ms=0.5),
    row("2026-11-01T23:30:00-02:00", model="local:llama3", cost_usd=None),  # 2026-11-02 01:30 UTC
    row("2026-11-02T08:00:00Z", prompt="summarize", run_id="r2", kind="judge", cost_usd=0.02),
    row("2026-11-02T09:00:00Z", prompt="summarize", run_id="r2", status="error", error_kind="server",
        input_tokens=None, output_tokens=None, cost_usd=None, latency_ms=None, ttft_ms=None),
]


def test_total_row_without_grouping() -> None:
    (total,) = aggregate(LEDGER, [])
    assert total.group == ()
    assert total.requests == 6
    assert total.cost_usd == pytest.approx(0.04)
    assert total.cost_unknown == 1  # the local model, never counted as 0
    assert total.saved_usd == pytest.approx(0.01)
    assert (total.cache_hits, total.errors, total.judge_requests) == (1, 1, 1)
    assert total.input_tokens == 400  # the cache hit and the error billed nothing
    assert (total.p50_latency_ms, total.p95_latency_ms) == (100.0, pytest.approx(270.0))


def test_empty_ledger_gives_one_zero_total_or_no_rows() -> None:
    (total,) = aggregate([], [])
    assert total.requests == 0 and total.p50_latency_ms is None
    assert aggregate([], ["day"]) == []


def test_group_by_day_uses_utc() -> None:
    rows = aggregate(LEDGER, ["day"])
    assert [r.value("day") for r in rows] == ["2026-11-01", "2026-11-02"]
    assert [r.requests for r in rows] == [3, 3]
    assert rows[0].cost_usd == pytest.approx(0.02)
    assert rows[1].cost_unknown == 1


def test_group_by_several_keys_at_once() -> None:
    rows = aggregate(LEDGER, ["prompt", "model"])
    assert [(r.value("prompt"), r.value("model"), r.requests) for r in rows] == [
        ("route", "local:llama3", 1),
        ("route", "openai:gpt-4o-mini", 3),
        ("summarize", "openai:gpt-4o-mini", 2),
    ]
    by_run_day = aggregate(LEDGER, ["run", "day"])
    assert [(r.value("run"), r.value("day")) for r in by_run_day] == [
        ("r1", "2026-11-01"), ("r1", "2026-11-02"), ("r2", "2026-11-02")]


def test_unknown_dimension_is_an_error() -> None:
    with pytest.raises(PromptCIError, match="day, prompt, model, run"):
        aggregate(LEDGER, ["week"])


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile(list(map(float, range(1, 101))), 95) == pytest.approx(95.05)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)),
        ("24h", datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)),
        ("30m", datetime(2026, 11, 27, 11, 30, tzinfo=timezone.utc)),
        ("2w", datetime(2026, 11, 13, 12, 0, tzinfo=timezone.utc)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=timezone.utc)),
        ("2026-11-01T06:00:00Z", datetime(2026, 11, 1, 6, tzinfo=timezone.utc)),
    ],
)
def test_parse_since_forms(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


def test_parse_since_naive_now_is_utc() -> None:
    assert parse_since("1h", NOW.replace(tzinfo=None)) == datetime(2026, 11, 27, 11, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["", "7", "7y", "yesterday", "2026-13-01", "-3d"])
def test_parse_since_errors_list_accepted_forms(text: str) -> None:
    with pytest.raises(PromptCIError) as caught:
        parse_since(text, NOW)
    assert "7d, 24h, 30m" in str(caught.value) and "2026-11-01" in str(caught.value)


def test_days_over_budget() -> None:
    assert days_over_budget(LEDGER, daily_usd=0.015) == [("2026-11-01", pytest.approx(0.02)),
                                                          ("2026-11-02", pytest.approx(0.02))]
    assert days_over_budget(LEDGER, daily_usd=0.02) == []  # equal is not over
    assert days_over_budget([], daily_usd=0.0) == []


def test_json_and_csv_rows() -> None:
    rows = aggregate(LEDGER, ["day", "model"])
    records = rows_to_json(rows)
    assert list(records[0])[:3] == ["day", "model", "requests"]
    assert records[0]["day"] == "2026-11-01" and records[0]["cost_usd"] == pytest.approx(0.02)

    parsed = list(csv.reader(io.StringIO(render_csv(rows))))
    assert parsed[0][:3] == ["day", "model", "requests"]
    assert len(parsed) == len(rows) + 1
    unknown = next(r for r in parsed[1:] if r[1] == "local:llama3")
    assert unknown[parsed[0].index("cost_unknown")] == "1"
    error_row = rows_to_json(aggregate(LEDGER[-1:], ["day"]))[0]
    assert error_row["p50_latency_ms"] is None
    assert render_csv(aggregate(LEDGER[-1:], ["day"])).splitlines()[1].split(",")[-4:] == ["", "", "", ""]
