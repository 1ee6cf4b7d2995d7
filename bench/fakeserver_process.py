"""tests/fakeserver.py as its own process for the benchmarks (its CPU is not counted as promptci's), its
request counters, and the one-prompt project the store benchmarks run against it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FAKE_SERVER = Path(__file__).resolve().parents[1] / "tests" / "fakeserver.py"


@contextmanager
def fake_server_process(latency_s: float, *options: str) -> Iterator[str]:
    """The fake server with this latency and these command-line options; yields its URL."""
    command = [sys.executable, str(FAKE_SERVER), "--latency", str(latency_s), *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the fake server did not start: {url!r}")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def server_stats(url: str) -> dict[str, Any]:
    """The server's counters so far: `total` requests received, `refused` by its rate-limit bucket, …"""
    with urllib.request.urlopen(f"{url}/_stats", timeout=10) as answer:
        stats: dict[str, Any] = json.load(answer)
    return stats


def requests_served(url: str) -> int:
    return int(server_stats(url)["total"])


def write_greet_project(root: Path, cases: int, url: str, extra_config: str = "") -> None:
    """One prompt and `cases` passing cases against the echoing fake server at `url` (a named, priced provider)."""
    (root / "prompts").mkdir(parents=True)
    (root / "goldens").mkdir()
    (root / "prompts" / "greet.txt").write_text("Say hello to {{ name }} from the {{ team }} team.\n")
    lines = ["cases:"]
    for i in range(cases):
        lines += [f"  - id: case-{i:05d}", f"    input: {{name: Person {i}, team: Team {i % 37}}}",
                  f"    expected: Say hello to Person {i} from the Team {i % 37} team."]
    (root / "goldens" / "greet.yaml").write_text("\n".join(lines) + "\n")
    (root / "promptci.yaml").write_text(
        f"providers:\n  bench: {{type: openai, base_url: '{url}/v1', api_key_env: BENCH_KEY}}\n"
        "models: ['bench:m']\nconcurrency: 32\npricing:\n  bench:m: {input: 0.15, output: 0.6}\n" + extra_config)
