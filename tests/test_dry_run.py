"""`promptci run --dry-run` through the real CLI, and the token counting behind it (promptci.cost.estimate)."""

from __future__ import annotations

import hashlib
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptci.cost import estimate
from promptci.cost.estimate import DEFAULT_OUTPUT_TOKENS, count_tokens, estimate_request_cost, expected_output_tokens

PROMPT = "---\nsystem: You are terse.\nparams: {max_tokens: 50}\n---\n{{ text }}\n"
GOLDEN = """\
comparators: [{type: regex, pattern: "."}]
cases:
  - id: short
    input: {text: "abcdefgh"}
  - id: long
    input: {text: "%s"}
""" % ("x" * 100)
# system "You are terse." (14 chars): ceil(14/4) + 4 = 8 tokens. user "abcdefgh\n" (9): 3 + 4 = 7;
# user 100 x's and a newline (101): 26 + 4 = 30. So 15 + 38 = 53 input tokens, and 2 x 50 output tokens.
INPUT_TOKENS = 53
OUTPUT_TOKENS = 100


@pytest.fixture(autouse=True)
def heuristic_tokens(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Reproducible counts whether or not tiktoken is installed on the machine running the tests."""
    monkeypatch.setenv("PROMPTCI_TIKTOKEN", "0")
    estimate.offline_encoding.cache_clear()
    yield
    estimate.offline_encoding.cache_clear()


def suite(project, config: str) -> Path:
    return project({"prompts/p.txt": PROMPT, "goldens/p.yaml": GOLDEN, "promptci.yaml": config})


def dry_json(cli, root: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    result = cli("run", "--root", root, "--dry-run", "--format", "json", *args, env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_known_length_gives_the_documented_estimate_and_exact_cost(cli, project) -> None:
    root = suite(project, "models: [openai:gpt-4o-mini]\npricing:\n  openai:gpt-4o-mini: {input: 1.0, output: 2.0}\n")
    document = dry_json(cli, root)
    (row,) = document["rows"]
    assert (row["prompt"], row["model"], row["cases"], row["requests"]) == ("p", "openai:gpt-4o-mini", 2, 2)
    assert (row["input_tokens"], row["output_tokens"]) == (INPUT_TOKENS, OUTPUT_TOKENS)
    assert row["output_tokens_are_upper_bound"] is True
    assert row["cost_usd"] == pytest.approx((INPUT_TOKENS * 1.0 + OUTPUT_TOKENS * 2.0) / 1_000_000)
    assert document["total"]["cost_usd"] == pytest.approx(253e-6)
    assert row["token_count_methods"] == [estimate.HEURISTIC_METHOD]


def test_table_shows_rows_totals_and_method(cli, project) -> None:
    root = suite(project, "models: [openai:gpt-4o-mini]\npricing:\n  openai:gpt-4o-mini: {input: 1.0, output: 2.0}\n")
    result = cli("run", "--root", root, "--dry-run", "--repeat", "3")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if "openai:gpt-4o-mini" in x)
    assert line.split()[:6] == ["p", "openai:gpt-4o-mini", "2", "6", "0", str(3 * INPUT_TOKENS)]
    assert "$0.000759" in line  # three times $0.000253
    assert "Dry run: nothing was sent" in result.stdout and "ceil(chars/4)" in result.stdout
    assert "upper bound" in result.stdout
    assert not (root / ".promptci").exists()  # a dry run leaves no state behind


def test_dry_run_sends_nothing_and_builds_no_provider(cli, project, fake_server) -> None:
    config = ("models: [local:llama3]\nproviders:\n  local:\n    type: openai\n"
              f"    base_url: {fake_server.openai_base_url}\n    api_key_env: LOCAL_KEY\n")
    root = suite(project, config)
    real = cli("run", "--root", root)
    assert real.exit_code == 2 and "LOCAL_KEY" in real.output  # a real run cannot even build the provider
    dry = cli("run", "--root", root, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "unknown price" in dry.stdout  # no price for local:llama3
    assert "LOCAL_KEY is not set" in dry.stdout
    assert fake_server.total == 0


def test_cached_requests_are_not_counted_as_spend(cli, project, fake_server) -> None:
    config = ("models: [local:m]\nproviders:\n  local:\n    type: openai\n"
              f"    base_url: {fake_server.openai_base_url}\n    api_key_env: LOCAL_KEY\n"
              "pricing:\n  local:m: {input: 1.0, output: 2.0}\n")
    root = suite(project, config)
    before = dry_json(cli, root)["rows"][0]
    assert (before["cached"], before["input_tokens"]) == (0, INPUT_TOKENS)
    real = cli("run", "--root", root, env={"LOCAL_KEY": "sk-test-1234567890"})
    assert real.exit_code == 0, real.output
    sent = fake_server.total
    after = dry_json(cli, root)["rows"][0]
    assert (after["cached"], after["input_tokens"], after["cost_usd"]) == (2, 0, 0.0)
    assert dry_json(cli, root, "--no-cache")["rows"][0]["cached"] == 0
    assert fake_server.total == sent == 2


def test_no_max_tokens_uses_the_default_and_says_it_is_no_bound(cli, project) -> None:
    root = project({"prompts/p.txt": "{{ text }}\n", "goldens/p.yaml": GOLDEN,
                    "promptci.yaml": "models: [openai:gpt-4o-mini]\n"})
    (row,) = dry_json(cli, root)["rows"]
    assert row["output_tokens"] == 2 * DEFAULT_OUTPUT_TOKENS and row["output_tokens_are_upper_bound"] is False
    price_in, price_out = 0.15, 0.60  # the built-in gpt-4o-mini list price
    assert row["cost_usd"] == pytest.approx((row["input_tokens"] * price_in + 1024 * price_out) / 1e6)
    table = cli("run", "--root", root, "--dry-run").stdout
    assert f"{2 * DEFAULT_OUTPUT_TOKENS:,}*" in table and "not a bound" in table


def test_unknown_price_is_never_zero_and_says_how_to_add_one(cli, project) -> None:
    root = suite(project, "models: [openai:gpt-4o-mini, openai:house-model, echo]\n")
    document = dry_json(cli, root)
    rows = {row["model"]: row for row in document["rows"]}
    assert rows["openai:house-model"]["cost_usd"] is None and rows["openai:house-model"]["price_known"] is False
    assert rows["echo"]["cost_usd"] == 0.0 and rows["echo"]["free"] is True
    assert document["total"]["unknown_price_models"] == ["openai:house-model"]
    assert any("pricing:" in note and "openai:house-model" in note for note in document["notes"])
    table = cli("run", "--root", root, "--dry-run").stdout
    assert "unknown price" in next(x for x in table.splitlines() if "openai:house-model" in x)
    assert "free (local)" in table and "+ 1 unknown" in table


def test_budget_note_and_formats(cli, project) -> None:
    root = suite(project, "models: [openai:gpt-4o-mini]\npricing:\n  openai:gpt-4o-mini: {input: 1.0, output: 2.0}\n")
    document = dry_json(cli, root, "--max-cost", "0.0001")
    assert document["budget_usd"] == 0.0001
    assert any("passes the run budget" in note for note in document["notes"])
    wrong = cli("run", "--root", root, "--dry-run", "--format", "junit")
    assert wrong.exit_code == 2 and "--dry-run writes --format table or json" in wrong.output


def test_a_template_error_stops_the_dry_run_like_a_real_run(cli, project) -> None:
    root = project({"prompts/p.txt": "{{ missing }}\n", "goldens/p.yaml": GOLDEN, "promptci.yaml": "models: [echo]\n"})
    result = cli("run", "--root", root, "--dry-run")
    assert result.exit_code == 2 and "missing" in result.output


def test_dry_run_respects_the_selection(cli, project) -> None:
    root = suite(project, "models: [echo]\n")
    (row,) = dry_json(cli, root, "-k", "short", "-m", "openai:gpt-4o-mini")["rows"]
    assert (row["cases"], row["input_tokens"]) == (1, 15)


# promptci.cost.estimate --------------------------------------------------------------------------------

def test_count_tokens_heuristic() -> None:
    messages = ({"role": "system", "content": "x" * 8}, {"role": "user", "content": "y" * 9})
    assert count_tokens(messages, "openai:gpt-4o-mini") == (2 + 4 + 3 + 4, estimate.HEURISTIC_METHOD)
    assert count_tokens((), "echo")[0] == 0


def test_expected_output_tokens() -> None:
    assert expected_output_tokens({"max_tokens": 300}) == (300, True)
    assert expected_output_tokens({"max_completion_tokens": 40}) == (40, True)
    assert expected_output_tokens({"temperature": 0}) == (DEFAULT_OUTPUT_TOKENS, False)
    assert expected_output_tokens({"max_tokens": True}) == (DEFAULT_OUTPUT_TOKENS, False)


def test_estimate_request_cost_unknown_price_is_none() -> None:
    from promptci.config import Price

    messages = ({"role": "user", "content": "abcd"},)
    assert estimate_request_cost(messages, {}, "x:y", None).cost_usd is None
    known = estimate_request_cost(messages, {"max_tokens": 10}, "x:y", Price(input=2.0, output=3.0))
    assert (known.input_tokens, known.output_tokens) == (5, 10)
    assert known.cost_usd == pytest.approx((5 * 2.0 + 10 * 3.0) / 1e6)


class FakeEncoding:
    def encode(self, text: str, disallowed_special: object = ()) -> list[int]:
        return list(range(len(text.split())))  # one token a word


@pytest.fixture
def fake_tiktoken(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """A stand-in tiktoken module that records which encodings were asked for, with an empty cache dir."""
    asked: list[str] = []
    module = types.ModuleType("tiktoken")

    def get_encoding(name: str) -> FakeEncoding:
        asked.append(name)
        return FakeEncoding()

    module.get_encoding = get_encoding  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tiktoken", module)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("PROMPTCI_TIKTOKEN")
    estimate.offline_encoding.cache_clear()
    return asked


def cache_file(cache_dir: Path, name: str, content: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    url = estimate.TIKTOKEN_BLOB_URL.format(name=name)
    (cache_dir / hashlib.sha1(url.encode()).hexdigest()).write_bytes(content)
    monkeypatch.setitem(estimate.TIKTOKEN_FILE_SHA256, name, hashlib.sha256(content).hexdigest())


MESSAGES = ({"role": "user", "content": "one two three"},)


def test_tiktoken_is_not_asked_without_its_cached_encoding(fake_tiktoken: list[str]) -> None:
    assert count_tokens(MESSAGES, "openai:gpt-4o") == (4 + 4, estimate.HEURISTIC_METHOD)
    assert fake_tiktoken == []  # so it never had a chance to download anything


def test_tiktoken_is_used_when_its_encoding_is_cached(fake_tiktoken: list[str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cache_file(tmp_path, "o200k_base", b"ranks", monkeypatch)
    assert count_tokens(MESSAGES, "openai:gpt-4o") == (3 + 4, "tiktoken:o200k_base")
    assert fake_tiktoken == ["o200k_base"]
    assert count_tokens(MESSAGES, "openai:gpt-4")[1] == estimate.HEURISTIC_METHOD  # cl100k_base is not cached


def test_a_corrupt_cached_encoding_is_not_used(fake_tiktoken: list[str], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cache_file(tmp_path, "o200k_base", b"ranks", monkeypatch)
    monkeypatch.setitem(estimate.TIKTOKEN_FILE_SHA256, "o200k_base", "0" * 64)  # tiktoken would re-download
    assert count_tokens(MESSAGES, "openai:gpt-4o")[1] == estimate.HEURISTIC_METHOD
    assert fake_tiktoken == []


def test_promptci_tiktoken_0_turns_it_off(fake_tiktoken: list[str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cache_file(tmp_path, "o200k_base", b"ranks", monkeypatch)
    monkeypatch.setenv("PROMPTCI_TIKTOKEN", "0")
    estimate.offline_encoding.cache_clear()
    assert count_tokens(MESSAGES, "openai:gpt-4o")[1] == estimate.HEURISTIC_METHOD
    assert fake_tiktoken == []


def test_encoding_names() -> None:
    assert estimate.encoding_name("openai:gpt-4o-mini") == "o200k_base"
    assert estimate.encoding_name("openai:gpt-4.1") == "o200k_base"
    assert estimate.encoding_name("openai:gpt-4-turbo") == "cl100k_base"
    assert estimate.encoding_name("openai:gpt-3.5-turbo") == "cl100k_base"
    assert estimate.encoding_name("anthropic:claude-sonnet-4-5") == "o200k_base"


def test_dry_run_refuses_report_files_instead_of_ignoring_them(cli, project, tmp_path) -> None:
    root = project({"prompts/p.txt": "hi", "goldens/p.yaml": "cases:\n  - input: {}\n    expected: hi\n"})
    result = cli("run", "--root", root, "-m", "echo", "--dry-run", "-o", tmp_path / "x.json")
    assert result.exit_code == 2 and "--dry-run prints its estimate on stdout" in result.stderr
    assert not (tmp_path / "x.json").exists()
