"""`promptci cost` summed by the store (SQL, both stores) against the Python aggregation over every row it replaced:
the same report, field for field, and the same JSON, CSV, table, --check verdict and alert text."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers_project import make_project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptci.cost.alert import alert_text
from promptci.cost.ledger import aggregate, days_over_budget, group_order, parse_since, render_csv, top_spenders
from promptci.cost.report import SPENDER_DIMENSIONS, CostReport, cost_report, ledger_report
from promptci.gc import GcPolicy
from promptci.reporting.costsummary import daily_budget_verdict
from promptci.reporting.costtable import print_cost
from promptci.stats import percentile, percentile_of_counts
from promptci.store import (
    LedgerEntry,
    LedgerSummary,
    LedgerTotals,
    Store,
    Timings,
    joined_summaries,
    parse_iso,
    usd_units,
    whole_ms,
)

BASE = LedgerEntry(at="2026-11-01T09:00:00Z", run_id="r1", git_commit="abc", prompt="route", case_id="c1",
                   model="openai:gpt-4o-mini", provider="openai", input_tokens=100, output_tokens=10,
                   cached_input_tokens=5, cost_usd=0.1, saved_usd=None, latency_ms=100.0, ttft_ms=40.0,
                   branch="main", actor="ci")
VARIED = [
    BASE,
    replace(BASE, at="2026-11-01T10:00:00.250Z", cost_usd=0.2, latency_ms=300.5, ttft_ms=None),
    replace(BASE, at="2026-11-01T11:00:00Z", status="cached", cost_usd=0.0, saved_usd=0.3, latency_ms=0.5),
    replace(BASE, at="2026-11-01T12:00:00Z", model="local:llama3", provider="local", cost_usd=None, branch=None),
    replace(BASE, at="2026-11-01T23:59:59.999999Z", prompt="summarize", kind="judge", cost_usd=0.000013,
            actor=None),
    replace(BASE, at="2026-11-02T00:00:00Z", prompt="summarize", run_id="r2", cost_usd=1.7, branch=""),
    replace(BASE, at="2026-11-01T23:30:00-02:00", run_id="r2", cost_usd=0.45, latency_ms=812.25),  # 11-02 01:30Z
    replace(BASE, at="2026-11-02T05:00:00+05:30", status="error", error_kind="server", input_tokens=None,
            output_tokens=None, cached_input_tokens=None, cost_usd=None, latency_ms=None, ttft_ms=None),
    replace(BASE, at="2026-11-02T10:00:00", status="error", error_kind="timeout", cost_usd=0.05,  # naive: UTC
            latency_ms=5000.0),
    replace(BASE, at="2026-11-02T11:00:00Z", status="cached", cost_usd=None, saved_usd=None, actor="dev"),
    replace(BASE, at="2026-11-03T08:00:00Z", model="other:x", cost_usd=2.25, branch="feature", actor="dev",
            latency_ms=None, ttft_ms=12.0),
    replace(BASE, at="2026-11-03T08:00:00Z", model="other:x", cost_usd=0.0, branch="feature", actor="dev"),
    replace(BASE, at="2026-11-03T09:00:00Z", kind="judge", cost_usd=3.1e-07, input_tokens=0, output_tokens=0),
]
DIMENSION_SETS = [("day",), ("prompt",), ("model",), ("run",), ("branch",), ("actor",), ("day", "model"),
                  ("branch", "actor", "prompt"), ("actor", "day", "run", "model")]


def in_whole_ms(entry: LedgerEntry) -> LedgerEntry:
    return replace(entry, latency_ms=None if entry.latency_ms is None else whole_ms(entry.latency_ms),
                   ttft_ms=None if entry.ttft_ms is None else whole_ms(entry.ttft_ms))


def python_report(store: Store, start: datetime, dimensions: tuple[str, ...], daily_usd: float | None) -> CostReport:
    """The report as `cost` made it before the store summed it: every row of the period read into Python; the timings
    rounded to whole milliseconds first, as `cost` now rounds them (store.whole_ms)."""
    day_start = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    with_whole_days = store.ledger(since=day_start.isoformat())
    entries = [in_whole_ms(e) for e in with_whole_days if parse_iso(e.at) >= start]
    unknown = sorted({e.model for e in entries if e.status == "ok" and e.cost_usd is None})
    over = days_over_budget(with_whole_days, daily_usd) if daily_usd is not None else []
    top = tuple((dimension, tuple(top_spenders(with_whole_days, over[-1][0], dimension)))
                for dimension in SPENDER_DIMENSIONS) if over else ()
    return CostReport(since=start, dimensions=dimensions, rows=tuple(aggregate(entries, dimensions)),
                      total=aggregate(entries, [])[0], unknown_price_models=tuple(unknown), daily_usd=daily_usd,
                      daily_spend=tuple(days_over_budget(with_whole_days, 0.0)), top_spenders=top)


def rendered(report: CostReport) -> dict[str, str]:
    """Everything `cost` prints from a report: JSON, CSV, the table, the --check verdict and the alert."""
    table = io.StringIO()
    if not report.is_empty:
        print_cost(report.rows, report.total, report.dimensions, "Cost", stream=table)
    shown = {"json": json.dumps(report.to_dict(), indent=2), "csv": render_csv(report.rows), "table": table.getvalue()}
    if report.daily_usd is not None:
        shown["check"] = daily_budget_verdict(report, report.daily_usd).message
        shown["alert"] = alert_text(report) if report.days_over else ""
    return shown


def assert_same(store: Store, start: datetime, dimensions: tuple[str, ...], daily_usd: float | None) -> CostReport:
    expected = python_report(store, start, dimensions, daily_usd)
    summed = ledger_report(store, start, dimensions, daily_usd)
    assert summed == expected
    assert rendered(summed) == rendered(expected)
    return summed


def record(store: Store, entries: Sequence[LedgerEntry]) -> None:
    for entry in entries:
        store.record_request(entry)


@pytest.mark.parametrize("dimensions", DIMENSION_SETS)
def test_the_store_sums_the_varied_ledger_as_python_did(store: Store, dimensions: tuple[str, ...]) -> None:
    record(store, VARIED)
    for since in ("2026-10-01", "2026-11-01T10:00:00.250Z", "2026-11-02", "2026-11-03T08:00:00Z", "2026-12-01"):
        for daily_usd in (None, 0.0, 0.5, 2.0, 100.0):
            assert_same(store, parse_since(since, datetime(2026, 11, 4, tzinfo=timezone.utc)), dimensions, daily_usd)


def test_the_varied_ledger_is_varied(store: Store) -> None:
    """What the equivalence above covers: days across the boundary, unknown prices, hits, errors, NULL names."""
    record(store, VARIED)
    report = assert_same(store, datetime(2026, 10, 1, tzinfo=timezone.utc), ("day",), 0.5)
    assert [day for day, _ in report.daily_spend] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert [r.value("day") for r in report.rows] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    first, second, _ = report.rows
    assert (first.requests, first.cost_unknown, first.cache_hits, first.judge_requests, first.errors) == (6, 1, 1, 1, 1)
    assert second.requests == 4 and second.errors == 1 and second.cost_usd == 2.2  # 1.7 + 0.45 + 0.05
    assert report.unknown_price_models == ("local:llama3",)
    assert dict(report.top_spenders)["branch"] == (("feature", 2.25), ("main", 3.1e-07))
    branches = ledger_report(store, report.since, ("branch",), None).rows
    assert [r.value("branch") for r in branches] == ["", None, "feature", "main"]  # "" and NULL apart


def test_an_empty_ledger_and_no_store(store: Store) -> None:
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    for dimensions in DIMENSION_SETS:
        report = assert_same(store, start, dimensions, 1.0)
        assert report.rows == () and report.is_empty and report.total.p50_latency_ms is None
    assert ledger_report(None, start, ("day",), 1.0) == python_report_of_nothing(start)


def python_report_of_nothing(start: datetime) -> CostReport:
    return CostReport(since=start, dimensions=("day",), rows=(), total=aggregate([], [])[0], unknown_price_models=(),
                      daily_usd=1.0, daily_spend=())


def test_percentiles_over_many_values_match_the_python_ones(store: Store) -> None:
    """p50/p95 over many values per group and in total (the total merges the groups' sorted timings)."""
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    entries = [replace(BASE, at=(start + timedelta(minutes=7 * i)).isoformat(), latency_ms=float((i * 37) % 101),
                       ttft_ms=(i * 0.1) if i % 4 else None, prompt=f"p{i % 3}", status="ok" if i % 5 else "cached")
               for i in range(400)]
    record(store, entries)
    for dimensions in (("day",), ("prompt",), ("day", "prompt")):
        report = assert_same(store, start, dimensions, None)
        assert all(row.p95_latency_ms is not None for row in report.rows)


def test_money_sums_do_not_depend_on_the_order_rows_were_stored(tmp_path: Path) -> None:
    """A float sum changes in its last digit with the order: (0.1 + 0.2) + 0.3 != 0.1 + (0.2 + 0.3). Two runners
    storing the same requests in another order see the same report, to the last digit of the JSON."""
    same_time = [replace(BASE, cost_usd=usd) for usd in (0.1, 0.2, 0.3)]
    reports = []
    for name, entries in (("a", same_time), ("b", same_time[::-1])):
        root = make_project(tmp_path / name, {"promptci.yaml": "models: [echo]\n"})
        with Store.open(root / ".promptci" / "promptci.db") as store:
            record(store, entries)
        reports.append(cost_report(root, ["day"], "2026-11-01", now=datetime(2026, 11, 2, tzinfo=timezone.utc)))
    assert reports[0].to_dict() == reports[1].to_dict()
    assert reports[0].total.cost_usd == 0.6


def test_exact_sums_print_the_cents_a_float_sum_printed(store: Store) -> None:
    """The exact sum differs from the old running float sum only below what `cost` prints."""
    from promptci.cost.totals import format_usd

    entries = [replace(BASE, at=f"2026-11-01T{h:02d}:{m:02d}:00Z", cost_usd=usd)
               for h in range(24) for m, usd in enumerate((0.000013, 0.1, 0.2, 1.3e-05 * 7, 0.0123))]
    record(store, entries)
    report = ledger_report(store, datetime(2026, 11, 1, tzinfo=timezone.utc), ("day",), None)
    running = 0.0
    for entry in entries:
        running += entry.cost_usd or 0.0
    assert running != report.total.cost_usd  # the float sum's error shows in its last digits
    assert format_usd(running) == format_usd(report.total.cost_usd) == "$7.50"  # 24 x 0.312404


def test_usd_units_round_half_away_from_zero_as_the_sql_does(store: Store) -> None:
    amounts = [0.1, 1.5e-12, 2.5e-12, -2.5e-12, -0.1, 0.0, 1e-13, 123456.789012345678]
    record(store, [replace(BASE, at=f"2026-11-01T00:00:{i:02d}Z", cost_usd=usd) for i, usd in enumerate(amounts)])
    found = dict(store._read(f"SELECT ts, {store.usd_units_sql('cost_usd')} FROM ledger"))  # the SQL of the sums
    assert [int(found[min(found) + i]) for i in range(len(amounts))] == [usd_units(a) for a in amounts]
    assert [usd_units(a) for a in amounts[:6]] == [100_000_000_000, 2, 3, -3, -100_000_000_000, 0]


def test_the_day_of_a_row_before_1970_rounds_down(store: Store) -> None:
    record(store, [replace(BASE, at="1969-12-31T12:00:00Z"), replace(BASE, at="1970-01-01T00:00:00Z")])
    totals, _ = store.ledger_summary(-86_400 * 2, ["day"])
    assert sorted(t.group for t in totals) == [("1969-12-31",), ("1970-01-01",)]


TIMES = st.builds(lambda day, micro, offset: (datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(
                      days=day, microseconds=micro)).astimezone(timezone(timedelta(minutes=offset))),
                  st.integers(0, 3), st.integers(0, 86_400 * 10**6 - 1), st.sampled_from([0, -120, 330, 60]))
ENTRIES = st.builds(
    lambda at, naive, status, kind, cost, saved, latency, ttft, tokens, names: replace(
        BASE, at=at.replace(tzinfo=None).isoformat() if naive and at.utcoffset() == timedelta(0) else at.isoformat(),
        status=status, kind=kind, cost_usd=cost, saved_usd=saved, latency_ms=latency, ttft_ms=ttft,
        input_tokens=tokens, prompt=names[0], model=names[1], run_id=names[2], branch=names[3], actor=names[4]),
    TIMES, st.booleans(), st.sampled_from(["ok", "ok", "cached", "error"]), st.sampled_from(["case", "judge"]),
    st.one_of(st.none(), st.just(0.0), st.integers(1, 5000).map(lambda n: n * 2.5e-06),
              st.floats(0, 5, allow_nan=False)),
    st.one_of(st.none(), st.floats(0, 1, allow_nan=False)),
    st.one_of(st.none(), st.floats(0, 10_000, allow_nan=False, allow_infinity=False)),
    st.one_of(st.none(), st.sampled_from([10.0, 20.5, 20.5, 99.0])),
    st.one_of(st.none(), st.integers(0, 10_000)),
    st.tuples(*(st.sampled_from(["a", "b", ""]) for _ in range(3)), *(st.sampled_from([None, "", "x", "y"])
                                                                       for _ in range(2))),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(ENTRIES, max_size=25), dimensions=st.sampled_from(DIMENSION_SETS),
       since=st.builds(lambda hours: datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(hours=hours),
                       st.integers(-24, 90)),
       daily_usd=st.one_of(st.none(), st.floats(0, 12, allow_nan=False)))
def test_any_ledger_sums_alike(store: Store, entries: list[LedgerEntry], dimensions: tuple[str, ...],
                               since: datetime, daily_usd: float | None) -> None:
    store._write("DELETE FROM ledger", ())
    record(store, entries)
    assert_same(store, since, dimensions, daily_usd)


def test_timings_are_rounded_to_whole_ms_in_sql_as_in_python(store: Store) -> None:
    """The store rounds half up, below zero too, and leaves alone what has no fraction left (whole_ms)."""
    values = [0.0, 0.49, 0.5, 1.5, 2.5, 812.25, 999.999, -0.5, -0.51, -1.5, -2.7, 4503599627370497.0, 1e17 + 0.0,
              3.9e18, 5e18, 1e300, -1e300]
    record(store, [replace(BASE, at=f"2026-11-01T00:00:{i:02d}Z", latency_ms=value, ttft_ms=value)
                   for i, value in enumerate(values)])
    counts = store.ledger_summary(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp(), [])[1][()]
    expected = sorted(Counter(whole_ms(v) for v in values).items())
    assert counts == (expected, expected)
    assert [whole_ms(v) for v in values[:11]] == [0, 0, 1, 2, 3, 812, 1000, 0, -1, -1, -3]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=60), st.sampled_from([0, 50, 95, 100, 33.3]))
def test_whole_ms_percentiles_are_within_half_a_ms_of_the_unrounded(values: list[float], q: float) -> None:
    """What the rounding costs: each percentile moves by at most 0.5 ms (under 1 ms, what `cost` prints)."""
    rounded = percentile_of_counts(sorted(Counter(whole_ms(v) for v in values).items()), q)
    exact = percentile(values, q)
    assert rounded is not None and exact is not None
    assert abs(rounded - exact) <= 0.5 + 1e-9 * max(1.0, abs(exact))


def test_cost_starts_without_the_run_machinery(tmp_path: Path) -> None:
    """`promptci cost` imports the cost report alone, not promptci.api (the runner, the clients, the loaders)."""
    import subprocess
    import sys

    root = make_project(tmp_path / "p", {"promptci.yaml": "models: [echo]\n"})
    code = ("import sys, atexit; from promptci.cli import main;"
            " atexit.register(lambda: print(sorted(m for m in ('promptci.api', 'promptci.client', 'asyncio')"
            " if m in sys.modules), file=sys.stderr)); sys.argv = ['promptci', 'cost', '--root', sys.argv[1]]; main()")
    done = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr


# The day sums (migration 11): kept by triggers as rows are inserted, deleted and changed, they are always the rows
# summed; `cost` reads them for whole days and reads the rows only for since's own day (and for --by run).

DAY_SUM_SETS = [("day",), ("prompt",), ("model", "branch"), ("day", "actor", "prompt", "model", "branch"), ()]


def normal(summary: LedgerSummary) -> tuple[list[LedgerTotals], dict[tuple[str | None, ...], Timings]]:
    totals, timings = summary
    return sorted(totals, key=lambda t: group_order(t.group)), dict(timings)


def assert_day_sums_are_the_rows(store: Store) -> None:
    for dimensions in DAY_SUM_SETS:
        scanned = joined_summaries(len(dimensions), [store._scanned_summary(dimensions, store._scan_range(-1e12))])
        assert normal(store._day_sums_summary(dimensions, -10**7)) == normal(scanned), dimensions
    assert store._read("SELECT count(*) FROM ledger_days WHERE requests <= 0") == [(0,)]
    assert store._read("SELECT count(*) FROM ledger_day_timings WHERE requests <= 0") == [(0,)]


WRITES = st.lists(st.one_of(
    st.tuples(st.just("insert"), ENTRIES, st.sampled_from([None, "r1", "r2"])),
    st.tuples(st.just("delete"), st.integers(0, 30), st.just(None)),
    st.tuples(st.just("update"), st.integers(0, 30), st.sampled_from(["cost_usd = 0.25", "prompt = 'moved'",
                                                                      "ts = ts + 86400", "status = 'error'",
                                                                      "latency_ms = NULL", "branch = NULL"])),
), max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=WRITES)
def test_the_day_sums_are_the_rows_summed_after_any_writes(store: Store, writes: list[tuple[str, object, object]]
                                                            ) -> None:
    """Inserts (one a request id already stored: ignored, counted once), deletes and updates in any order."""
    store._write("DELETE FROM ledger", ())
    for action, what, detail in writes:
        if action == "insert":
            assert isinstance(what, LedgerEntry)
            store.record_request(replace(what, request_id=detail))  # type: ignore[arg-type]
            continue
        ids = [row[0] for row in store._read("SELECT id FROM ledger ORDER BY id")]
        if ids:
            chosen = ids[int(what) % len(ids)]  # type: ignore[call-overload]
            store._write("DELETE FROM ledger WHERE id = ?" if action == "delete"
                         else f"UPDATE ledger SET {detail} WHERE id = ?", (chosen,))
    assert_day_sums_are_the_rows(store)


def test_gc_and_store_copy_keep_the_day_sums(tmp_path: Path, postgres_url: str) -> None:
    """Rows `gc` deletes leave the day sums with them; rows `store copy` brings in are added (the triggers)."""
    from promptci.gc import prune
    from promptci.pgstore import PostgresStore
    from promptci.storecopy import copy_store

    local = Store.open(tmp_path / "a.db")
    record(local, VARIED)
    before = normal(local._day_sums_summary(("day", "prompt"), -10**7))
    with PostgresStore.open(postgres_url) as team:
        copy_store(local, team)
        copy_store(local, team)  # idempotent: nothing counted twice
        assert normal(team._day_sums_summary(("day", "prompt"), -10**7)) == before
        assert_day_sums_are_the_rows(team)
    with local:
        prune(local, GcPolicy(runs=0), None, set(), billed_before=parse_iso("2026-11-02T06:00:00Z").timestamp())
        assert 0 < local._read("SELECT count(*) FROM ledger")[0][0] < len(VARIED)
        assert_day_sums_are_the_rows(local)


def test_the_migration_sums_the_rows_stored_before_it(tmp_path: Path) -> None:
    """A store at schema 10 with ledger rows: opening it adds the day sums of every row (migration 11)."""
    from olddb import database_at_schema

    from promptci.store import ledger_insert

    db = tmp_path / ".promptci" / "promptci.db"
    db.parent.mkdir()
    conn = database_at_schema(db, 10)
    for entry in VARIED:
        conn.execute(*ledger_insert(entry))
    conn.close()
    with Store.open(db) as store:
        assert store._read("SELECT count(*) FROM ledger_days")[0][0] > 0
        assert_day_sums_are_the_rows(store)
        for dimensions in DIMENSION_SETS:
            assert_same(store, datetime(2026, 10, 1, tzinfo=timezone.utc), dimensions, 0.5)


def test_the_backfill_of_each_store_sums_the_rows(store: Store) -> None:
    """The migration's INSERT ... SELECT of each dialect (PostgreSQL's runs only on stores created empty)."""
    from promptci.migrations import MIGRATIONS, postgres_script, split_statements
    from promptci.pgstore import PostgresStore

    record(store, VARIED)
    backfill = (postgres_script(11) if isinstance(store, PostgresStore) else list(split_statements(MIGRATIONS[10])))
    store._write_together([("DELETE FROM ledger_days", ()), ("DELETE FROM ledger_day_timings", ()),
                           *((statement, ()) for statement in backfill[-3:])])
    assert_day_sums_are_the_rows(store)


@pytest.mark.parametrize("hour", [3, 21])
def test_since_within_a_day_reads_the_smaller_part_of_it(store: Store, hour: int) -> None:
    """Since's own day: at 03:00 its 3 earlier rows are read and taken from the day's sums; at 21:00 the 3 later
    rows are read. Either way the report is the rows from `since`, to the last digit, and the day's spend whole."""
    record(store, [replace(BASE, at=f"2026-11-01T{h:02d}:30:00Z", cost_usd=0.01 * (h + 1), latency_ms=10.0 * h,
                           prompt=f"p{h % 3}", status="cached" if h % 7 == 0 else "ok") for h in range(24)])
    record(store, [replace(BASE, at="2026-11-02T05:00:00Z", cost_usd=0.5)])
    start = datetime(2026, 11, 1, hour, tzinfo=timezone.utc)
    for dimensions in (("day",), ("prompt",), ("day", "prompt"), ()):
        report = assert_same(store, start, dimensions, 1.0)
    assert report.total.requests == 24 - hour + 1
    assert dict(report.daily_spend)["2026-11-01"] == pytest.approx(sum(0.01 * (h + 1) for h in range(24)))
