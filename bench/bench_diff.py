"""`promptci diff` benchmark: a 1,000-case suite (10 prompts x 100 cases) in a temp git repository, served by
tests/fakeserver.py in its own process.

    python bench/bench_diff.py [--latency 0.075] [--prompts 10] [--cases 100] [-j 16]

Steps: `run` once (the cache is warm), edit one prompt in the working tree, then `diff HEAD`. Targets
(issue 8): the diff sends only the edited prompt's requests (100), and its wall time is within 1.5x of
`run -k <that prompt> --no-cache` (the same 100 requests, fresh) measured on the same tree.
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

from fakeserver_process import fake_server_process, requests_served

REPO = Path(__file__).resolve().parent.parent
KEY_ENV = "BENCH_DIFF_KEY"
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def promptci_command() -> list[str]:
    script = shutil.which("promptci")
    return [script] if script else [sys.executable, "-m", "promptci.cli"]


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def write_project(root: Path, url: str, prompts: int, cases: int, concurrency: int) -> None:
    """prompts x cases, committed; a contains comparator every answer of the fake server passes."""
    (root / "prompts").mkdir(parents=True)
    (root / "goldens").mkdir()
    (root / ".gitignore").write_text(".promptci/\n")
    (root / "promptci.yaml").write_text(
        f"models: ['bench:m']\nconcurrency: {concurrency}\nretries: 4\n"
        f"providers:\n  bench: {{type: openai, base_url: '{url}/v1', api_key_env: {KEY_ENV}}}\n"
        "pricing:\n  'bench:m': {input: 0.15, output: 0.60}\n")
    for p in range(prompts):
        (root / "prompts" / f"p{p}.txt").write_text(f"Prompt {p}: answer about {{{{ topic }}}} briefly.\n")
        lines = ["comparators: [{type: regex, pattern: '.'}]", "cases:"]
        lines += [f"  - id: c{i}\n    input: {{topic: topic-{p}-{i}}}" for i in range(cases)]
        (root / "goldens" / f"p{p}.yaml").write_text("\n".join(lines) + "\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "bench suite")


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    return time.perf_counter() - started, done.returncode


def measure(url: str, root: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    """One round in a fresh repository: warm run, edit p3, diff HEAD, then the reference run of p3's cases."""
    command = promptci_command()
    write_project(root, url, args.prompts, args.cases, args.concurrency)
    served = requests_served(url)
    first, _ = timed([*command, "run", "-q", "--no-github", "--root", str(root)], env)
    sent_run = requests_served(url) - served
    edited = root / "prompts" / "p3.txt"
    edited.write_text(edited.read_text().replace("briefly", "in one sentence"))
    diff_wall, diff_code = timed([*command, "diff", "HEAD", "-q", "--no-github", "--root", str(root)], env)
    sent_diff = requests_served(url) - served - sent_run
    # After the diff, so its fresh answers cannot come from this run's cache entries.
    reference, _ = timed([*command, "run", "-q", "--no-github", "-k", "p3", "--no-cache", "--root", str(root)], env)
    sent_reference = requests_served(url) - served - sent_run - sent_diff
    return {"first": first, "sent_run": sent_run, "diff": diff_wall, "diff_code": diff_code, "sent_diff": sent_diff,
            "reference": reference, "sent_reference": sent_reference, "ratio": diff_wall / reference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.075, help="fake server seconds per request")
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("-j", "--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="fresh repositories measured; medians printed")
    args = parser.parse_args()
    env = {**os.environ, KEY_ENV: "sk-bench-not-a-real-key"}
    rounds = []
    with tempfile.TemporaryDirectory() as tmp, fake_server_process(args.latency) as url:
        for number in range(args.rounds):
            rounds.append(measure(url, Path(tmp) / f"suite{number}", args, env))
    total = args.prompts * args.cases

    def median(name: str) -> float:
        return statistics.median(r[name] for r in rounds)

    sent_diff = sorted({int(r["sent_diff"]) for r in rounds})
    ratio = median("ratio")
    print(f"{args.rounds} rounds, fake server latency {args.latency * 1000:.0f} ms, -j {args.concurrency}; medians:")
    print(f"run, {total} cases, cold cache: {median('first'):.2f} s, {int(median('sent_run'))} requests")
    print(f"run -k p3 --no-cache ({args.cases} cases, the reference): {median('reference'):.2f} s, "
          f"{int(median('sent_reference'))} requests")
    print(f"diff HEAD after editing p3: {median('diff'):.2f} s, requests per round {sent_diff} "
          f"(exit {int(median('diff_code'))}); target: {args.cases} -> "
          f"{'met' if sent_diff == [args.cases] else 'MISSED'}")
    each = ", ".join(f"{r['ratio']:.2f}" for r in rounds)
    print(f"diff / reference: median {ratio:.2f}x (rounds: {each}); "
          f"target <= 1.5x -> {'met' if ratio <= 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
