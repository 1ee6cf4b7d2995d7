"""Beside the sequential library (sequential.py): its verdict as the reports name it, and the design chosen
from a target (`--repeat auto --detect DROP`), found by simulating the library's own procedure."""

from __future__ import annotations

from dataclasses import replace

from promptci.sequential import Design, SequentialVerdict, as_drop_verdict
from promptci.stats import DropVerdict

# The adjusted p-value of the sequential test is 1/(E x weight): the anytime-valid p-value 1/E under the
# weighted Bonferroni split of alpha (no Holm step-down).
ADJUSTMENT = "Bonferroni-adjusted 1/(E x w)"


def sequential_drop_verdict(verdict: SequentialVerdict, design: Design) -> DropVerdict:
    """as_drop_verdict, with the reports' column naming the adjustment it used."""
    return replace(as_drop_verdict(verdict, design), adjustment=ADJUSTMENT)
