"""Core benchmark: `promptci --help` start-up time and a 1,000-case `echo` run, end to end.

    python bench/bench_core.py [--cases 1000] [--repeats 7]

Runs the installed console script in subprocesses (what a user or a pre-commit hook pays) and
prints medians. Targets (issue 2): --help under 0.3 s wall.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def promptci_command() -> list[str]:
    script = shutil.which("promptci")
    return [script] if script else [sys.executable, "-m", "promptci.cli"]


def timed(command: list[str], cwd: Path | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of the child, exit code."""
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, done.returncode


def write_echo_project(root: Path, cases: int) -> None:
    (root / "prompts").mkdir(parents=True)
    (root / "goldens").mkdir()
    (root / "promptci.yaml").write_text("models: [echo]\nconcurrency: 16\n")
    (root / "prompts" / "greet.txt").write_text("Hello {{ name }}, your ticket {{ ticket }} is {{ state }}.\n")
    lines = ["prompt: greet", "cases:"]
    for i in range(cases):
        lines += [
            f"  - id: case-{i}",
            f"    input: {{name: user{i}, ticket: T-{i}, state: open}}",
            f"    expected: Hello user{i}, your ticket T-{i} is open.",
        ]
    (root / "goldens" / "greet.yaml").write_text("\n".join(lines) + "\n")


def median_of(command: list[str], repeats: int, cwd: Path | None = None) -> tuple[float, float, int]:
    runs = [timed(command, cwd) for _ in range(repeats)]
    codes = {code for _, _, code in runs}
    return statistics.median(w for w, _, _ in runs), statistics.median(c for _, c, _ in runs), max(codes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    command = promptci_command()

    wall, cpu, code = median_of([*command, "--help"], args.repeats)
    print(f"promptci --help: median {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU "
          f"over {args.repeats} runs (exit {code}); target < 300 ms")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_echo_project(root, args.cases)
        repeats = max(3, args.repeats // 2)
        wall, cpu, code = median_of([*command, "run", "-q", "--root", str(root)], repeats)
        print(f"promptci run, {args.cases} echo cases: median {wall:.2f} s wall, {cpu:.2f} s CPU "
              f"over {repeats} runs (exit {code})")


if __name__ == "__main__":
    main()
