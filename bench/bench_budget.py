"""The --max-cost guard against answers longer than any estimate (issue 24): 300 cases whose answers are 4,000
tokens, --max-cost 0.1, at -j 1, 8 and 64, with the model's longest answer unknown (requests go one at a time)
and known (pricing max_output_tokens: 16,384, requests held at that worst case). Prints what the ledger sums to,
the requests sent and the wall time. Run: python bench/bench_budget.py"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fakeserver import running_fake_server

CASES, ANSWER_TOKENS, BUDGET = 300, 4000, 0.1
PRICE = "input: 0.15, output: 0.60"


def project(folder: Path, base_url: str, pricing_extra: str) -> Path:
    (folder / "prompts").mkdir(parents=True)
    (folder / "goldens").mkdir()
    (folder / "promptci.yaml").write_text(
        f"models: ['local:m']\nproviders:\n  local: {{type: openai, base_url: '{base_url}', api_key_env: BENCH_KEY}}\n"
        f"pricing:\n  'local:m': {{{PRICE}{pricing_extra}}}\n")
    (folder / "prompts/p.txt").write_text("answer at length, case {{ n }}\n")
    (folder / "goldens/p.yaml").write_text("cases:\n" + "".join(
        f"  - id: c{n}\n    input: {{n: {n}}}\n    expected: x\n" for n in range(CASES)))
    return folder


def measure(base_url: str, jobs: int, pricing_extra: str) -> tuple[float, int, float]:
    with tempfile.TemporaryDirectory() as temp:
        root = project(Path(temp), base_url, pricing_extra)
        started = time.perf_counter()
        subprocess.run(["promptci", "run", "--root", str(root), "-q", "--max-cost", str(BUDGET), "-j", str(jobs)],
                       env={**os.environ, "BENCH_KEY": "sk-bench-0123456789"}, capture_output=True, check=False)
        wall = time.perf_counter() - started
        with sqlite3.connect(root / ".promptci" / "promptci.db") as db:
            costs = [row[0] for row in db.execute("SELECT cost_usd FROM ledger WHERE status = 'ok'")]
    return sum(costs), len(costs), wall


def main() -> None:
    worst = (5 * 0.15 + 16_384 * 0.60) / 1e6
    print(f"budget ${BUDGET}, one request's worst case (16,384 tokens out) ${worst:.4f}")
    with running_fake_server(responder=lambda body: "word " * ANSWER_TOKENS, latency_s=0.05) as server:
        for label, extra in (("longest answer unknown", ""), ("max_output_tokens 16384", ", max_output_tokens: 16384")):
            for jobs in (1, 8, 64):
                spent, sent, wall = measure(server.openai_base_url, jobs, extra)
                print(f"{label:24} -j {jobs:<3} ledger ${spent:.4f} ({spent / BUDGET:.2f}x budget), "
                      f"{sent} requests, {wall:.1f} s")


if __name__ == "__main__":
    main()
