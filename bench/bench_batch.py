"""Batch mode (issue 22): a 10,000-request `promptci run --batch` built and submitted to the fake server.

    python bench/bench_batch.py [--cases N]

The fake server runs as its own process (tests/fakeserver.py, its CPU not counted). promptci is the console
script as a subprocess, start-up included: it loads and renders N cases, finds none in the cache, builds the
JSONL input file, uploads it through the Files API, creates the batch, stores its id and the N request rows, and
exits 3 (no verdict while the batch is open). Wall time, CPU and peak RSS are the child's own (os.wait4); the
batches created come from the server's /_stats. A second run (the batch still open) shows the cost of finding
it again instead of resubmitting.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fakeserver_process import fake_server_process, server_stats

KEY_ENV = "PROMPTCI_BENCH_KEY"
TARGET_S = 10.0  # "a few seconds", start-up included


def make_project(root: Path, url: str, cases: int) -> None:
    (root / "prompts").mkdir(parents=True)
    (root / "goldens").mkdir()
    (root / "prompts" / "classify.txt").write_text("Classify this ticket as billing, bug or other: {{ text }}\n")
    lines = ["cases:"]
    for n in range(cases):
        lines += [f"  - id: t{n}", f"    input: {{text: 'ticket {n}: my invoice {n} was charged twice'}}",
                  "    expected: billing"]
    (root / "goldens" / "classify.yaml").write_text("\n".join(lines) + "\n")
    (root / "promptci.yaml").write_text(
        f"providers:\n  fake: {{type: openai, base_url: '{url}/v1', api_key_env: {KEY_ENV}}}\n"
        "pricing:\n  'fake:gpt-4o-mini': {input: 0.15, output: 0.60}\n")


def measured(command: list[str], cwd: Path) -> tuple[float, float, float, int, str]:
    env = {**os.environ, KEY_ENV: "sk-bench-not-a-real-key"}
    with tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        err.seek(0)
        return (wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status),
                err.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=10_000)
    args = parser.parse_args()
    script = str(Path(sys.executable).parent / "promptci")
    with tempfile.TemporaryDirectory() as folder, fake_server_process(0.0, "--batch-polls", "1000000") as url:
        root = Path(folder) / "project"
        make_project(root, url, args.cases)
        command = [script, "run", "--root", str(root), "-m", "fake:gpt-4o-mini", "--batch"]
        wall, cpu, rss, code, err = measured(command, root)
        with sqlite3.connect(root / ".promptci" / "promptci.db") as db:
            stored = db.execute("SELECT COUNT(*) FROM batch_requests").fetchone()[0]
        stats = server_stats(url)
        verdict = "PASS" if wall <= TARGET_S and code == 3 and stats["batches_created"] == 1 else "MISS"
        print(f"submit {args.cases} requests: wall {wall:.2f} s, cpu {cpu:.2f} s, peak RSS {rss:.0f} MiB, exit {code}, "
              f"batches created {stats['batches_created']}, request rows stored {stored}, model requests "
              f"{stats['total']} (target <= {TARGET_S:g} s) {verdict}")
        if code != 3:
            print(err[-2000:], file=sys.stderr)
        wall, cpu, rss, code, _ = measured(command, root)
        stats = server_stats(url)
        print(f"re-run with the batch open: wall {wall:.2f} s, cpu {cpu:.2f} s, peak RSS {rss:.0f} MiB, exit {code}, "
              f"batches created {stats['batches_created']} (never a second)")


if __name__ == "__main__":
    main()
