"""What running user code off the event loop (issue 24) costs: an offline 1,000-case echo run scored by `exact`
alone, then by a sync python comparator (a thread per call), an async one (the user loop) and an `expr`
(the restricted evaluator), best of 3 wall times each. Give --promptci twice (this branch's console script and
another's) to compare them: the two take turns, so a busy machine slows both alike.

    python bench/bench_usercode.py [--cases N] [--promptci PATH ...]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECKS = """\
def check(output):
    return output.startswith("Hello")


async def check_async(output):
    return output.startswith("Hello")
"""
VARIANTS = {
    "exact only": "[{type: exact}]",
    "python (sync)": "[{type: exact}, {type: python, function: 'checks.py:check'}]",
    "python (async)": "[{type: exact}, {type: python, function: 'checks.py:check_async'}]",
    "expr": "[{type: exact}, {expr: \"len(output) < 300 and 'hello' in output.lower()\"}]",
}


def project(root: Path, cases: int, comparators: str) -> Path:
    (root / "prompts").mkdir(parents=True)
    (root / "goldens").mkdir()
    (root / "promptci.yaml").write_text("models: [echo]\n")
    (root / "checks.py").write_text(CHECKS)
    (root / "prompts" / "greet.txt").write_text("Hello {{ name }}!")
    body = "".join(f"  - id: c{n}\n    input: {{name: n{n}}}\n    expected: Hello n{n}!\n" for n in range(cases))
    (root / "goldens" / "greet.yaml").write_text(f"comparators: {comparators}\ncases:\n{body}")
    return root


def wall_time(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--promptci", action="append", default=[])
    parser.add_argument("--tries", type=int, default=3)
    args = parser.parse_args()
    scripts = args.promptci or [shutil.which("promptci", path=str(Path(sys.executable).parent))]
    with tempfile.TemporaryDirectory() as folder:
        for name, comparators in VARIANTS.items():
            root = project(Path(folder) / name.replace(" ", "_").strip("()"), args.cases, comparators)
            best = {script: float("inf") for script in scripts}
            for _ in range(args.tries):
                for script in scripts:  # in turns
                    command = [script, "run", "--root", str(root), "--no-cache", "--format", "json"]
                    best[script] = min(best[script], wall_time(command))
            for script, seconds in best.items():
                print(f"{name:16} {args.cases:,} cases  {seconds:6.2f} s  ({seconds / args.cases * 1000:.2f} ms/case)"
                      f"  {script}")


if __name__ == "__main__":
    main()
