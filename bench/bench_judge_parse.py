"""Reading a judge's verdict from hostile answers (issue 24): 200,000 `{`, deep nesting, a long answer with many
objects. Prints the seconds of parse_verdict per answer, best of 3; the old scan decoded from every `{`
(quadratic: ~7 s for 200,000 `{`). Run: python bench/bench_judge_parse.py"""

from __future__ import annotations

import contextlib
import time

from promptci.comparators.judge import JudgeVerdictError, parse_verdict

ANSWERS = {
    "200,000 '{'": "{" * 200_000,
    "100,000 '{' then 100,000 '}'": "{" * 100_000 + "}" * 100_000,
    "20,000 small objects, then the verdict": '{"a": 1} ' * 20_000 + '{"score": 0.5, "pass": false}',
    "1 MB of prose, then the verdict": "lorem ipsum " * 90_000 + '{"score": 0.5, "pass": false}',
}


def seconds(answer: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        with contextlib.suppress(JudgeVerdictError):
            parse_verdict(answer)
        best = min(best, time.perf_counter() - started)
    return best


if __name__ == "__main__":
    for name, answer in ANSWERS.items():
        print(f"{name:45} {len(answer):>9,} chars  {seconds(answer) * 1000:8.1f} ms")
