"""Hostile world, round two (issue 24), verdicts: what a model or an embeddings API sends back can never turn
into a pass it did not earn."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from fakeserver import FakeServer, running_fake_server

KEY = "sk-test-verdicts-0123456789"
OUTPUT = "Tea is a hot drink, thank you."
EXPECTED = "Coffee beans grow on shrubs."


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("FAKE_KEY", KEY)
    with running_fake_server(responder=lambda body: OUTPUT) as fake:
        yield fake


def config(server: FakeServer) -> str:
    return (f"timeout_s: 5\nretries: 0\nproviders:\n"
            f"  local: {{type: openai, base_url: '{server.openai_base_url}', api_key_env: FAKE_KEY}}\n"
            "pricing:\n  local:sut: {input: 1.0, output: 2.0}\n  local:embed: {input: 0.5, output: 0}\n")


EMBED_GOLDEN = f"""\
comparators:
  - {{type: similarity, method: embedding, model: local:embed, threshold: 0.9}}
cases:
  - id: c
    input: {{}}
    expected: {EXPECTED}
"""

BIG = 1e200  # finite, but its square overflows


@pytest.mark.parametrize(("expected_vector", "output_vector", "named"), [
    ([1.0, 0.0], [math.nan, 1.0], "not a finite number"),
    ([1.0, 0.0], [math.inf, 0.0], "not a finite number"),
    ([1.0, 1.0], [-math.inf, -math.inf], "not a finite number"),
    ([1.0, 0.0], [], "empty"),
    ([1.0, 0.0, 0.0], [1.0, 0.0], "different lengths"),
    ([1.0, 0.0], {"vector": [1.0, 0.0]}, "not a list of numbers"),
    ([1.0, 0.0], [True, 0.0], "not a list of numbers"),
])
def test_a_broken_embedding_is_a_named_error_never_a_pass(cli, project, server: FakeServer, expected_vector: Any,
                                                          output_vector: Any, named: str) -> None:
    server.config.embedder = lambda text: expected_vector if text == EXPECTED else output_vector
    root = project({"prompts/ask.txt": "ask", "goldens/ask.yaml": EMBED_GOLDEN, "promptci.yaml": config(server)})
    result = cli("run", "--root", root, "-m", "local:sut", "--format", "json")
    assert result.exit_code == 3, result.output
    case = json.loads(result.stdout)["results"][0]
    assert case["status"] == "error"
    assert named in json.dumps(case)


def test_overflowing_vectors_are_scored_by_their_direction(cli, project, server: FakeServer) -> None:
    """Huge finite components: the cosine of [1, 1] and [1, -1] is 0, however large they are (it was NaN,
    clamped to 1.0: a pass)."""
    server.config.embedder = lambda text: [BIG, BIG] if text == EXPECTED else [BIG, -BIG]
    root = project({"prompts/ask.txt": "ask", "goldens/ask.yaml": EMBED_GOLDEN, "promptci.yaml": config(server)})
    result = cli("run", "--root", root, "-m", "local:sut", "--format", "json")
    assert result.exit_code == 1, result.output
    case = json.loads(result.stdout)["results"][0]
    assert case["status"] == "failed" and case["scores"][0]["value"] == pytest.approx(0.0, abs=1e-12)


def test_cosine_is_finite_bounded_and_scale_free() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from promptci.comparators.text import cosine

    finite = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False)

    @given(st.lists(st.tuples(finite, finite), min_size=1, max_size=16), st.sampled_from([2.0 ** -20, 2.0 ** 20]))
    def check(pairs: list[tuple[float, float]], scale: float) -> None:
        a, b = [x for x, _ in pairs], [y for _, y in pairs]
        value = cosine(a, b)
        assert math.isfinite(value) and 0.0 <= value <= 1.0
        scaled = [x * scale for x in a]
        if all(math.isfinite(x) and (x == 0) == (y == 0) for x, y in zip(scaled, a, strict=True)):
            assert cosine(scaled, b) == pytest.approx(value, abs=1e-9)

    check()
