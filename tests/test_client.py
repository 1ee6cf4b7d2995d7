"""The model client through `promptci run` against the fake server: repeats are fresh samples, recordings key
on what identifies the answer (never the base_url), replay misses say why, a full --record drops stale
entries, and a budget stop is explained once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeServer, running_fake_server

KEY = "sk-test-client-0123456789"
NAMES = ("Ada", "Bob", "Cy")
PROMPT = "---\nparams: {temperature: 0}\n---\nHello {{ name }}!\n"


def golden(names: tuple[str, ...] = NAMES) -> str:
    body = "".join(f"  - id: {n.lower()}\n    input: {{name: {n}}}\n    expected: Hello {n}!\n" for n in names)
    return "cases:\n" + body


def config(server: FakeServer, extra: str = "") -> str:
    return ("retries: 0\nproviders:\n"
            f"  local: {{type: openai, base_url: '{server.openai_base_url}', api_key_env: CLIENT_KEY}}\n" + extra)


@pytest.fixture
def root(project, fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLIENT_KEY", KEY)
    return project({"prompts/greet.txt": PROMPT, "goldens/greet.yaml": golden(),
                    "promptci.yaml": config(fake_server)})


def run_json(cli, root: Path, *args: str) -> tuple[Any, dict[str, Any]]:
    result = cli("run", "--root", root, "-m", "local:m", "--format", "json", *args)
    assert "Traceback" not in result.output, result.output
    return result, json.loads(result.stdout) if result.stdout.strip() else {}


def recorded_lines(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / "recordings" / "greet.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("jobs", ["1", "8"])
def test_repeats_are_fresh_samples_and_a_rerun_reuses_each_sample(cli, root: Path, fake_server: FakeServer,
                                                                  jobs: str) -> None:
    first, document = run_json(cli, root, "--repeat", "3", "-j", jobs, "--record")
    assert first.exit_code == 0, first.output
    assert fake_server.total == 9, "3 cases x 3 repeats are 9 samples, none answered by another's"
    assert sorted(r["repeat"] for r in document["results"]) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert not any(r["cached"] for r in document["results"])
    again, document = run_json(cli, root, "--repeat", "3", "-j", jobs)
    assert again.exit_code == 0 and fake_server.total == 9, "a re-run re-uses sample k for sample k"
    assert all(r["cached"] for r in document["results"])
    lines = recorded_lines(root)
    assert len(lines) == 9 and sorted(line["request"].get("sample", 0) for line in lines) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_a_single_sample_keeps_the_keys_made_before_samples_existed(cli, root: Path) -> None:
    from promptci.store import Store
    from promptci.types import Request

    run_json(cli, root, "--record")
    line = next(line for line in recorded_lines(root) if "Ada" in line["output"])
    assert "sample" not in line["request"] and "kind" not in line["request"]
    request = Request(**{**line["request"]["request"], "messages": tuple(line["request"]["request"]["messages"])})
    with Store.open(root / ".promptci" / "promptci.db") as store:
        old_style = Store.cache_key({"type": "openai", "base_url": line_base_url(root)}, request)
        assert store.cache_get(old_style) is not None


def line_base_url(root: Path) -> str:
    text = (root / "promptci.yaml").read_text()
    return text.split("base_url: '")[1].split("'")[0].rstrip("/")


def test_recordings_survive_a_server_moving_to_another_port(cli, root: Path, fake_server: FakeServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    recorded, _ = run_json(cli, root, "--record")
    assert recorded.exit_code == 0, recorded.output
    assert all("base_url" not in line["request"]["provider"] for line in recorded_lines(root))
    with running_fake_server() as moved:
        (root / "promptci.yaml").write_text(config(moved))
        replayed, document = run_json(cli, root, "--replay")
        assert replayed.exit_code == 0, replayed.output
        assert [r["status"] for r in document["results"]] == ["passed"] * 3 and moved.total == 0


def test_a_replay_miss_says_what_the_recordings_hold_and_how_the_closest_differs(cli, root: Path) -> None:
    run_json(cli, root, "--record")
    (root / "prompts" / "greet.txt").write_text(PROMPT.replace("temperature: 0", "temperature: 0.5"))
    missed, document = run_json(cli, root, "--replay")
    assert missed.exit_code == 3, missed.output
    error = document["results"][0]["error"]
    assert "recordings/greet.jsonl holds 3 entries, none for this request" in error
    assert "params.temperature" in error and "goldens/greet.yaml:" in error


def test_a_full_record_run_drops_stale_entries_and_a_subset_keeps_them(cli, root: Path) -> None:
    run_json(cli, root, "--record")
    assert len(recorded_lines(root)) == 3
    (root / "goldens" / "greet.yaml").write_text(golden(("Ada", "Bob", "Dee")))
    subset, _ = run_json(cli, root, "--record", "-k", "dee")
    assert subset.exit_code == 0, subset.output
    assert len(recorded_lines(root)) == 4, "-k records its cases and keeps the others"
    full, _ = run_json(cli, root, "--record")
    assert full.exit_code == 0, full.output
    assert sorted(line["output"].strip() for line in recorded_lines(root)) == ["Hello Ada!", "Hello Bob!", "Hello Dee!"]


def test_a_budget_stop_names_the_budget_as_given(cli, root: Path, fake_server: FakeServer) -> None:
    (root / "promptci.yaml").write_text(config(fake_server, "concurrency: 1\npricing:\n  'local:m': "
                                                            "{input: 1000, output: 1000}\n"))
    result, document = run_json(cli, root, "--max-cost", "0.004")
    assert result.exit_code == 1, result.output
    skipped = [r for r in document["results"] if r["status"] == "skipped"]
    assert skipped and fake_server.total == 3 - len(skipped)
    assert {r["skip_reason"] for r in skipped} == {"budget: sending it would pass the run budget of $0.004"}
    table = cli("run", "--root", root, "-m", "local:m", "--max-cost", "0.004", "--no-cache")
    assert table.output.count("would pass the run budget of $0.004") == 1, table.output


class SlowThenLimited:
    """A provider (the seam) whose first answer is a 429 with Retry-After; it notes when each attempt starts."""

    name = "fake"
    is_cacheable = True

    def __init__(self) -> None:
        import asyncio

        self.events: list[str] = []
        self.b_answered = asyncio.Event()

    async def complete(self, request):
        import asyncio

        from promptci.errors import RateLimited
        from promptci.types import Completion

        who = request.messages[0]["content"]
        self.events.append(f"start {who}")
        if who == "a" and self.events.count("start a") == 1:
            raise RateLimited("slow down", 429, retry_after=0.3)
        await asyncio.sleep(0)  # the other call may run meanwhile
        self.events.append(f"end {who}")
        if who == "b":
            self.b_answered.set()
        return Completion(text=who)

    async def aclose(self) -> None:
        return None


def test_the_in_flight_limit_is_released_while_a_retry_waits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import contextlib

    from promptci.client import CallLimits, Endpoint, ModelCall, ModelClient
    from promptci.recordings import Recordings
    from promptci.retrying import RetryPolicy
    from promptci.store import Store
    from promptci.types import Request

    provider = SlowThenLimited()
    endpoint = Endpoint(provider, {"type": "fake", "base_url": ""}, "fake", is_free=True)  # type: ignore[arg-type]
    waits: list[float] = []

    async def wait_until_b_is_answered(seconds: float) -> None:
        """a's Retry-After wait lasts until b has its answer, however loaded the machine: b can only be answered
        meanwhile if a's slot was let go (if not, the wait ends after a minute and the order below is wrong)."""
        waits.append(seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(provider.b_answered.wait(), 60)

    monkeypatch.setattr("promptci.retrying.default_sleep", wait_until_b_is_answered)

    async def both() -> list:
        client = ModelClient(store, {"fake:m": endpoint}, CallLimits(1), Recordings(), RetryPolicy(retries=2), 5.0)
        calls = [ModelCall(Request("fake:m", ({"role": "user", "content": who},))) for who in "ab"]
        return await asyncio.gather(*(client.complete(call) for call in calls))

    with Store.open(tmp_path / "db") as store:
        answers = asyncio.run(both())
    assert [a.completion.text for a in answers] == ["a", "b"] and answers[0].attempts == 2
    # b is sent while a waits out its Retry-After: the slot is free during the wait
    assert provider.events == ["start a", "start b", "end b", "start a", "end a"]
    assert len(waits) == 1 and waits[0] >= 0.3  # one wait, at least the Retry-After


class Counting:
    """A free provider that counts the requests in flight at once."""

    name = "count"
    is_cacheable = False

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0

    async def complete(self, request: Any) -> Any:
        import asyncio

        from promptci.types import Completion

        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.005)
        self.in_flight -= 1
        return Completion(text="ok")

    async def aclose(self) -> None:
        return None


def test_several_models_together_keep_at_most_j_requests_in_flight(tmp_path: Path) -> None:
    import asyncio

    from promptci.client import CallLimits, Endpoint, ModelCall, ModelClient
    from promptci.recordings import Recordings
    from promptci.retrying import RetryPolicy
    from promptci.store import Store
    from promptci.types import Request

    provider = Counting()
    models = ("count:a", "count:b", "other:c")
    endpoints = {m: Endpoint(provider, {"type": "count", "base_url": ""}, "count", is_free=True)  # type: ignore[arg-type]
                 for m in models}
    limits = CallLimits(3)

    async def many() -> list:
        client = ModelClient(store, endpoints, limits, Recordings(), RetryPolicy(), 5.0)
        calls = [ModelCall(Request(m, ({"role": "user", "content": str(i)},))) for i in range(10) for m in models]
        return await asyncio.gather(*(client.complete(call) for call in calls))

    with Store.open(tmp_path / "db") as store:
        answers = asyncio.run(many())
    assert all(a.completion is not None for a in answers)
    assert provider.peak == 3  # each model's limiter admits 3; the run's -j holds them to 3 together
    assert limits.tally().sent == 30 and set(limits.pool.stats()) == {("count", "count:a"), ("count", "count:b"),
                                                                      ("other", "other:c")}


def test_the_rate_limit_note_counts_refusals_and_waiting_and_is_absent_when_nothing_held_the_run_back() -> None:
    from promptci.client import RateTally
    from promptci.session import rate_limit_notes

    assert rate_limit_notes(RateTally(sent=100)) == []
    assert rate_limit_notes(RateTally(sent=600, refused=14, waited_s=3.14)) == [
        "rate limits: 14 requests refused (2.3%), 3.1 s spent waiting"]
    assert rate_limit_notes(RateTally(sent=10, refused=1, waited_s=0.0)) == [
        "rate limits: 1 request refused (10.0%), 0.0 s spent waiting"]
    assert rate_limit_notes(RateTally(sent=10, waited_s=2.0)) == [
        "rate limits: 0 requests refused (0.0%), 2.0 s spent waiting"]
    assert RateTally(10, 2, 1.0).since(RateTally(4, 1, 0.25)) == RateTally(6, 1, 0.75)
