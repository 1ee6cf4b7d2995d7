"""Model drift: a model alias (gpt-4o-mini) that now resolves to a different version than it did in the last
stored run of that model. Every report says so at the top; `--fail-on-drift` makes the run exit 1."""

from __future__ import annotations

from dataclasses import dataclass

from promptci.store import Store
from promptci.types import Run


@dataclass(frozen=True)
class Drift:
    model: str
    now: tuple[str, ...]  # versions the model resolved to in this run
    before: tuple[str, ...]  # ... in the last stored run of the model
    before_run_id: str

    def note(self) -> str:
        return (f"model drift: {self.model} now resolves to {', '.join(self.now)}; in run {self.before_run_id} "
                f"it resolved to {', '.join(self.before)} (its answers may change without any prompt change)")


def resolved_versions(run: Run, model: str) -> set[str]:
    return {r.resolved_model for r in run.results if r.model == model and r.resolved_model}


def find_drift(store: Store, run: Run) -> list[Drift]:
    """Models of `run` whose resolved versions differ from the last stored run that resolved them."""
    found = []
    for model in run.models:
        now = resolved_versions(run, model)
        previous = store.last_resolved_models(model, run.run_id)
        if not now or previous is None:
            continue
        before_run_id, before = previous
        if now != before:
            found.append(Drift(model, tuple(sorted(now)), tuple(sorted(before)), before_run_id))
    return found
