"""THE exit-code policy of every command (`run`, `diff`, `merge`, `bisect`, `show`, `pytest --promptci`): a
Verdict is the findings of every gate, and its exit code is decided here and nowhere else.

A finding is a regression (exit 1), missing evidence (exit 3: no verdict, never a pass) or an interruption
(130). The worst wins in that order: a regression found on the evidence there is stands even when other
evidence is missing. Notes change no exit code; every report prints them with the verdict line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from promptci.errors import ExitCode


class Gate(str, Enum):
    """What a finding is about: one member per gate kind, so reports and tests name them the same way."""

    PASS_RATE = "pass_rate"  # gate.min_pass_rate
    METRIC = "metric"  # gate.metrics
    REGRESSION = "regression"  # diff: a case that passed at A fails at B (or a significant drop)
    NO_BASELINE = "no_baseline"  # diff: a case with no valid sample at A cannot be compared
    ERRORS = "errors"  # errors left cases unscored
    BUDGET = "budget"  # the run budget stopped cases from being sent
    UPGRADE = "upgrade"  # --baseline-model: a candidate significantly worse on a prompt
    COST = "cost"  # --gate cost
    LATENCY = "latency"  # --gate latency
    DRIFT = "drift"  # --fail-on-drift
    SHARDS = "shards"  # merge: a shard is missing
    INTERRUPTED = "interrupted"


# How much each exit code weighs when findings disagree: the worst wins.
SEVERITY: Mapping[ExitCode, int] = {ExitCode.OK: 0, ExitCode.NO_VERDICT: 1, ExitCode.REGRESSION: 2,
                                    ExitCode.INTERRUPTED: 3}
LABELS: Mapping[ExitCode, str] = {ExitCode.OK: "PASSED", ExitCode.REGRESSION: "FAILED",
                                  ExitCode.NO_VERDICT: "NO VERDICT", ExitCode.INTERRUPTED: "INTERRUPTED"}


@dataclass(frozen=True)
class Finding:
    gate: Gate
    exit_code: ExitCode  # REGRESSION, NO_VERDICT or INTERRUPTED
    message: str
    subjects: tuple[str, ...] = ()  # the cases or models it is about, named in full

    def text(self) -> str:
        return f"{self.gate.value}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate.value, "exit_code": int(self.exit_code), "message": self.message,
                "subjects": list(self.subjects)}


def regression(gate: Gate, message: str, subjects: Iterable[str] = ()) -> Finding:
    return Finding(gate, ExitCode.REGRESSION, message, tuple(subjects))


def no_verdict(gate: Gate, message: str, subjects: Iterable[str] = ()) -> Finding:
    return Finding(gate, ExitCode.NO_VERDICT, message, tuple(subjects))


@dataclass(frozen=True)
class Verdict:
    """Everything a command decided. `gates` are the gates that were checked (passing ones included), so a
    report can say which gates passed, not only which failed."""

    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()
    gates: tuple[Gate, ...] = ()

    @property
    def exit_code(self) -> ExitCode:
        codes = [f.exit_code for f in self.findings]
        return max(codes, key=SEVERITY.__getitem__, default=ExitCode.OK)

    @property
    def label(self) -> str:
        return LABELS[self.exit_code]

    @property
    def fails(self) -> bool:
        return self.exit_code == ExitCode.REGRESSION

    def by_gate(self, *gates: Gate) -> list[Finding]:
        return [f for f in self.findings if f.gate in gates]

    def head(self) -> str:
        """`verdict: FAILED (exit 1)`: words promptci chose, safe to print anywhere as they are."""
        return f"verdict: {self.label} (exit {int(self.exit_code)})"

    def line(self) -> str:
        """The one verdict line every report prints: `verdict: FAILED (exit 1): cost: ...; latency: ...`."""
        head = self.head()
        worst = [f for f in self.findings if f.exit_code == self.exit_code]
        return f"{head}: {'; '.join(f.text() for f in worst)}" if worst else head

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.label, "exit_code": int(self.exit_code), "line": self.line(),
                "findings": [f.to_dict() for f in self.findings], "notes": list(self.notes),
                "gates": [g.value for g in self.gates]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """A stored verdict back (`show`); unknown gate names from a newer promptci are kept as errors."""
        findings = tuple(Finding(Gate(f["gate"]), ExitCode(int(f["exit_code"])), str(f["message"]),
                                 tuple(f.get("subjects") or ())) for f in data.get("findings") or ())
        return cls(findings, tuple(data.get("notes") or ()), tuple(Gate(g) for g in data.get("gates") or ()))


def combine(*verdicts: Verdict) -> Verdict:
    findings = tuple(f for v in verdicts for f in v.findings)
    notes = tuple(dict.fromkeys(n for v in verdicts for n in v.notes))
    gates = tuple(dict.fromkeys(g for v in verdicts for g in v.gates))
    return Verdict(findings, notes, gates)


def interrupted() -> Finding:
    return Finding(Gate.INTERRUPTED, ExitCode.INTERRUPTED, "interrupted before every case ran")
