"""The exact drop tests at large --repeat K (issue 16, item 11): seconds per table, each computed cold.

    python bench/bench_stats.py          # K = 100, 520, 1,000; the slowest table of each K is the figure
"""

from __future__ import annotations

import time

from promptci import stats

TABLES = {  # (passes at A, passes at B) per K: a drop, no change, exact ties in every other row, the edges
    k: [(int(0.6 * k), int(0.56 * k)), (k // 2, k // 2), (k, k - 1), (k - 10, k - 11), (k, 0), (5, 0)]
    for k in (100, 520, 1000)
}


def cold_seconds(a: int, k: int, b: int) -> float:
    stats.boschloo_drop_p.cache_clear()
    stats._fisher_tail.cache_clear()
    started = time.perf_counter()
    stats.boschloo_drop_p(a, k, b, k)
    return time.perf_counter() - started


def main() -> None:
    for k, tables in TABLES.items():
        timings = [(cold_seconds(a, k, b), a, b) for a, b in tables]
        worst, a, b = max(timings)
        print(f"K = {k:>5}: slowest table {a}/{k} vs {b}/{k}: {worst:.3f} s "
              f"(all {len(tables)}: {sum(t for t, _, _ in timings):.3f} s)")


if __name__ == "__main__":
    main()
