"""What a run will do, as plain data: the options it was asked with, and the plan built from them (jobs,
models, the problems --keep-going skipped). planning.py builds plans; a Session runs them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptci.config import Settings
from promptci.project import Project
from promptci.types import BrokenCase, Case, Prompt, Request, canonical_json, content_hash

if TYPE_CHECKING:  # changes.py imports git and YAML helpers: not at `promptci --help`
    from promptci.changes import ChangeSelection


@dataclass(frozen=True)
class RunOptions:
    """What selects the cases (root, paths, models, -k, --shard, --changed-since, --repeat) and how they are
    executed (concurrency, cache, replay, record, environment, budget). What judges the result is not here:
    verdict.gates.Judging, so planning and the Session never carry a gate setting."""

    root: Path | None = None
    paths: tuple[Path, ...] = ()
    models: tuple[str, ...] = ()
    keyword: str | None = None
    concurrency: int | None = None
    keep_going: bool = False
    use_cache: bool = True
    replay: bool = False
    record: bool = False
    environment: str | None = None
    max_cost: float | None = None
    repeat: int = 1
    shard: tuple[int, int] | None = None  # --shard I/N as (I, N): only this share of the selected cases
    changed_since: str | None = None  # --changed-since REV: only the cases changes since REV can affect
    # run --batch --batch-errors report: (cache key, why its batch gave no answer) of requests not to send live
    batch_unanswered: tuple[tuple[str, str], ...] = ()

    @property
    def is_whole_suite(self) -> bool:
        """No -k, no path subset, no shard and no --changed-since: every case of every prompt is in the run."""
        return not self.keyword and not self.paths and self.shard is None and self.changed_since is None

    def to_record(self) -> dict[str, Any]:
        """As stored with the run."""
        return {
            "models": list(self.models), "keyword": self.keyword, "concurrency": self.concurrency,
            "use_cache": self.use_cache, "replay": self.replay, "record": self.record,
            "environment": self.environment, "max_cost": self.max_cost, "repeat": self.repeat,
            "paths": [str(p) for p in self.paths], "shard": list(self.shard) if self.shard else None,
            "changed_since": self.changed_since,
        }


@dataclass(frozen=True)
class Job:
    """One request to make and score: a case on a model, sample `repeat` of --repeat K."""

    case: Case
    prompt: Prompt
    request: Request
    repeat: int = 0
    user_turns: tuple[str, ...] = ()  # the case's `turns:`, rendered: sent one by one after the model's replies


@dataclass(frozen=True)
class Plan:
    """A run loaded and rendered up to its jobs, before any provider is built: what a run and a dry run
    share. `problems` are the broken cases --keep-going skipped, each "path:line: message"."""

    project: Project
    settings: Settings
    options: RunOptions
    jobs: tuple[Job, ...]
    models: tuple[str, ...]
    problems: tuple[str, ...] = ()
    selection: ChangeSelection | None = None  # with --changed-since: the affected cases, and why
    broken: tuple[BrokenCase, ...] = ()  # `problems` as data: where and why each case was left out

    @property
    def budget_usd(self) -> float | None:
        return self.options.max_cost if self.options.max_cost is not None else self.settings.budgets.run_usd


def config_fingerprint(settings: Settings, options: RunOptions) -> str:
    """What must be equal for two shards to be parts of one run: promptci.yaml's bytes and the options
    that choose cases, models and samples. Goldens and prompts are pinned by the git commit."""
    config = settings.config_path
    identity = {
        "config": config.read_bytes().hex() if config is not None and config.is_file() else None,
        "models": list(options.models), "keyword": options.keyword, "repeat": options.repeat,
        "environment": options.environment, "replay": options.replay,
        "paths": sorted(str(p) for p in options.paths),
    }
    return content_hash(canonical_json(identity))[:16]
