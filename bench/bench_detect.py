"""`--repeat auto --detect DROP` (issue 19): the design seqtarget.choose_design picks for a few suite sizes and
target drops, its simulated power, and how long the choice takes (the CLI pays it once before sending anything).

    python bench/bench_detect.py
"""

from __future__ import annotations

import time
from dataclasses import replace

from promptci.errors import PromptCIError
from promptci.seqtarget import DETECT_CAP, choose_design
from promptci.sequential import Design

TARGETS = ((4, 0.5), (4, 0.3), (20, 0.5), (20, 0.3), (20, 0.15), (50, 0.3))


def main() -> None:
    print(f"{'cases':>5} {'drop':>5}  {'first':>5} {'max':>4} {'sized for':>9} {'power':>6} {'seconds':>8}")
    for cases, drop in TARGETS:
        started = time.perf_counter()
        try:
            choice = choose_design(replace(Design(), maximum=DETECT_CAP), cases, drop)
            design = choice.design
            row = f"{design.first:>5} {design.maximum:>4} {design.drop:>9g} {choice.power:>6.0%}"
        except PromptCIError:
            row = f"{'out of reach at MAX ' + str(DETECT_CAP):>26}"
        print(f"{cases:>5} {drop:>5g}  {row} {time.perf_counter() - started:>8.1f}")


if __name__ == "__main__":
    main()
