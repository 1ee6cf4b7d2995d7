"""Loading benchmark: a golden file backed by a 10,000-row CSV (`cases_from:`), loaded in-process and
linted end to end.

    python bench/bench_loading.py [--cases 10000] [--repeats 5]

Target (issue 9): the suite loads in under 2 s. Prints the median and best of the in-process
`load_suite` time, and the wall time of `promptci lint` (interpreter, imports, load, render of every case).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 2.0


def write_project(root: Path, cases: int) -> None:
    (root / "prompts").mkdir(parents=True)
    (root / "goldens").mkdir()
    (root / "data").mkdir()
    (root / "prompts" / "classify.txt").write_text("Classify this ticket: {{ ticket }} (from {{ customer }})\n")
    (root / "goldens" / "classify.yaml").write_text(
        "cases_from: data/cases.csv\n"
        "comparators:\n"
        "  - {type: one_of, values: [billing, bug, other]}\n"
        "  - {type: json_fields, fields: {label: {one_of: [billing, bug, other]}}, transform: strip_fence}\n"
        "  - {expr: \"len(output) < 400\"}\n"
        "  - exact\n"
    )
    with (root / "data" / "cases.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "ticket", "input.customer", "expected", "tags"])
        for number in range(cases):
            label = ("billing", "bug", "other")[number % 3]
            writer.writerow([f"t{number}", f"My invoice #{number} is wrong, please help", f"c{number % 97}",
                             label, f"{label},generated"])


def load_seconds(root: Path) -> tuple[float, int]:
    from promptci.config import load_settings
    from promptci.loading.suite import load_suite

    started = time.perf_counter()
    suite = load_suite(load_settings(root))
    return time.perf_counter() - started, len(suite.cases)


def lint_seconds(root: Path) -> float:
    script = shutil.which("promptci")
    command = [script] if script else [sys.executable, "-m", "promptci"]
    started = time.perf_counter()
    done = subprocess.run([*command, "lint", "--root", str(root)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"promptci lint failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "project"
        write_project(root, args.cases)
        first, _count = load_seconds(root)  # includes the comparators' imports, paid once per process
        loads = []
        for _ in range(args.repeats):
            seconds, count = load_seconds(root)
            loads.append(seconds)
        assert count == args.cases, count
        lints = [lint_seconds(root) for _ in range(max(1, args.repeats // 2))]
    median = statistics.median(loads)
    print(f"{args.cases:,} CSV-backed cases, 4 comparators each (one_of, json_fields+transform, expr, exact)")
    print(f"load_suite in-process: median {median:.3f} s, best {min(loads):.3f} s over {args.repeats} "
          f"({'OK' if median < TARGET_S else 'MISS'}: target < {TARGET_S:g} s)")
    print(f"first load_suite in the process (comparator imports included): {first:.3f} s")
    print(f"promptci lint end to end (imports, load, render every case): median {statistics.median(lints):.3f} s")


if __name__ == "__main__":
    main()
