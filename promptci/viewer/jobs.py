"""Two revisions that are not stored yet, compared from the viewer: `promptci diff` run in a background
thread, its progress read by the page, its two stored runs then compared like any others."""

from __future__ import annotations

import secrets
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptci.errors import PromptCIError
from promptci.types import CaseResult


@dataclass
class DiffJob:
    before: str
    after: str | None  # None: the working tree
    total: int = 0
    done: int = 0
    runs: tuple[str, str] | None = None
    error: str | None = None
    finished: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"before": self.before, "after": self.after, "total": self.total, "done": self.done,
                "runs": list(self.runs) if self.runs else None, "error": self.error, "finished": self.finished}


class DiffJobs:
    """The diffs one viewer started, by id."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.jobs: dict[str, DiffJob] = {}
        self._lock = threading.Lock()

    def start(self, before: str, after: str | None) -> str:
        from promptci import gitrev

        if not before.strip():
            raise PromptCIError("give revision A (a commit, branch or tag)")
        for name in (before, after):
            if name:
                gitrev.resolve(self.root, name)  # a bad revision is refused now, not in the thread
        job_id = secrets.token_hex(8)
        job = DiffJob(before, after or None)
        with self._lock:
            self.jobs[job_id] = job
        threading.Thread(target=self._run, args=(job,), name=f"promptci-view-diff-{job_id}", daemon=True).start()
        return job_id

    def _run(self, job: DiffJob) -> None:
        from promptci import gitrev
        from promptci.diffing import DiffOptions, diff
        from promptci.plan import RunOptions

        def started(total: int) -> None:
            job.total += total

        def finished_one(_: CaseResult) -> None:
            job.done += 1

        try:
            options = DiffOptions(RunOptions(root=self.root), job.before, job.after or gitrev.WORKING_TREE)
            outcome = diff(options, started, finished_one)
            job.runs = (outcome.before.run_id, outcome.after.run_id)
        except PromptCIError as error:
            job.error = str(error)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            job.error = "internal error (see the terminal)"
        finally:
            job.finished = True
