"""The pytest plugin (entry point `pytest11`): `pytest --promptci [PATHS]` collects each golden case x model as
a test item, `goldens/route.yaml::route-04[openai:gpt-4o-mini]`, whose failure text is the comparators' reasons
and diffs. -k, -x and --lf select items as usual.

The selected items' requests go out together, as one promptci run in one Session for the whole test session
(so the response cache, the ledger and `promptci runs` are the same as `promptci run`), when the first item
runs; each item then reports its own results. Nothing is imported from promptci until --promptci is given.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from promptci.plan import Job, Plan
    from promptci.session import Session
    from promptci.types import CaseResult

GOLDEN_SUFFIXES = (".yaml", ".yml")
ResultKey = tuple[str, str, str, str]  # golden file, prompt, case id, model


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("promptci", "promptci golden cases as tests")
    group.addoption("--promptci", action="store_true", default=False,
                    help="Collect promptci golden files (goldens/*.yaml) as tests: one item per case x model.")
    group.addoption("--promptci-model", action="append", default=[], metavar="MODEL",
                    help="PROVIDER:MODEL to run the cases on (repeatable; default: the project's models).")
    group.addoption("--promptci-repeat", type=int, default=1, metavar="K", help="Run each case K times.")
    group.addoption("--promptci-no-cache", action="store_true", default=False, help="Fresh answers, no cache.")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("promptci"):
        from promptci.errors import PromptCIError
        from promptci.ranges import check_repeat

        try:
            check_repeat(config.getoption("promptci_repeat"), "--promptci-repeat")
        except PromptCIError as exc:
            raise pytest.UsageError(f"promptci: {exc}") from None
        config.stash[STATE] = PromptciState(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """An unknown model is one usage error before anything is sent, not a traceback in every test."""
    if STATE not in config.stash:
        return
    from promptci.errors import PromptCIError
    from promptci.planning import provider_config

    checked: set[tuple[int, str]] = set()
    for item in items:
        if not isinstance(item, CaseItem):
            continue
        for model in item.plan.models:
            if (id(item.plan), model) in checked:
                continue
            checked.add((id(item.plan), model))
            try:
                provider_config(model, item.plan.settings)
            except PromptCIError as exc:
                raise pytest.UsageError(f"promptci: {exc}") from None


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.close()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    state = parent.config.stash.get(STATE, None)
    if state is None or file_path.suffix not in GOLDEN_SUFFIXES or "goldens" not in file_path.parts:
        return None
    return GoldenFile.from_parent(parent, path=file_path)


class PromptciFailure(Exception):
    """A case failed its comparators, or got no verdict."""


class PromptciState:
    """The one Session of the test session and the results of the items it ran."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: dict[ResultKey, list[CaseResult]] = {}
        self.sessions: dict[Path, Session] = {}
        self.ran: set[int] = set()  # ids of the items whose jobs were sent

    def options(self, golden: Path) -> Any:
        from promptci.api import RunOptions
        from promptci.project import find_root

        root = find_root(golden.parent)
        if root is None:
            raise PromptCIUsage(f"{golden}: no promptci project (promptci.yaml, or prompts/ and goldens/) holds it")
        return RunOptions(root=root, paths=(golden,), models=tuple(self.config.getoption("promptci_model")),
                          repeat=self.config.getoption("promptci_repeat"),
                          use_cache=not self.config.getoption("promptci_no_cache"))

    def session(self, plan: Plan) -> Session:
        from promptci.session import Session

        key = plan.project.source
        if key not in self.sessions:
            self.sessions[key] = Session(plan.project).__enter__()
        return self.sessions[key]

    def run(self, items: Sequence[CaseItem]) -> None:
        """Send the jobs of every item not yet run, as one run per project."""
        from dataclasses import replace

        pending = [item for item in items if id(item) not in self.ran]
        by_project: dict[Path, list[CaseItem]] = {}
        for item in pending:
            self.ran.add(id(item))
            by_project.setdefault(item.plan.project.source, []).append(item)
        for group in by_project.values():
            jobs = tuple(job for item in group for job in item.jobs)
            models = tuple(dict.fromkeys(job.request.model for job in jobs))
            plan = replace(group[0].plan, jobs=jobs, models=models, problems=())
            run = self.session(plan).run(plan, command="pytest")
            for result in run.results:
                self.results.setdefault(result_key(result), []).append(result)

    def close(self) -> None:
        for session in self.sessions.values():
            session.__exit__(None, None, None)
        self.sessions.clear()


class PromptCIUsage(Exception):
    pass


STATE = pytest.StashKey[PromptciState]()


def result_key(result: CaseResult) -> ResultKey:
    return (result.file, result.prompt, result.case_id, result.model)


class GoldenFile(pytest.File):
    """A golden file: its cases x models, loaded and rendered as `promptci run` would."""

    def collect(self) -> Iterator[CaseItem]:
        from promptci.errors import PromptCIError
        from promptci.planning import build_plan

        state = self.config.stash[STATE]
        try:
            plan = build_plan(state.options(self.path))
        except (PromptCIError, PromptCIUsage) as exc:
            raise self.CollectError(f"promptci: {exc}") from None
        grouped: dict[tuple[str, str], list[Job]] = {}
        for job in plan.jobs:
            grouped.setdefault((job.case.key, job.request.model), []).append(job)
        for (_, model), jobs in grouped.items():
            case = jobs[0].case
            name = f"{case.key_prefix}{case.id}"
            yield CaseItem.from_parent(self, name=f"{name}[{model}]", plan=plan, jobs=tuple(jobs),
                                       **node_id(self, name, model))


def node_id(parent: pytest.Collector, name: str, model: str) -> dict[str, Any]:
    """pytest 9.2 compares structured node ids, and reads `[...]` of a stored id (for --lf) as params: an item
    named "case[model]" must carry them as params too, or --lf never matches it. Older pytest: nothing."""
    parent_id = getattr(parent, "id", None)
    if parent_id is None or not hasattr(parent_id, "with_params"):
        return {}
    return {"nodeid": parent_id.child(name).with_params(model)}


class CaseItem(pytest.Item):
    def __init__(self, *, plan: Plan, jobs: tuple[Job, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.jobs = jobs
        case = jobs[0].case
        self.extra_keyword_matches.update(case.tags)  # -k smoke selects by tag, like promptci -k
        self.key: ResultKey = (case.location.file, case.prompt, case.id, jobs[0].request.model)

    def runtest(self) -> None:
        from promptci.errors import PromptCIError

        state = self.config.stash[STATE]
        is_xdist_worker = hasattr(self.config, "workerinput")
        try:
            state.run([self] if is_xdist_worker else [i for i in self.session.items if isinstance(i, CaseItem)])
        except PromptCIError as exc:  # the run could not start (a key, a budget...): one message, not one per test
            pytest.exit(f"promptci: {exc}", returncode=int(exc.exit_code))
        from promptci.verdict.gates import judge_case

        results = state.results.get(self.key, [])
        if not results:
            raise PromptciFailure("no result: the run stopped before this case (interrupted or over budget)")
        verdict = judge_case(results)  # the one policy: a failure, an error or a budget skip fails the item
        if verdict.findings:
            bad = [r for r in results if r.status in ("failed", "error")]
            raise PromptciFailure("\n\n".join([*(describe(r, len(results) > 1) for r in bad), verdict.line()]))
        if all(r.status == "skipped" for r in results):
            pytest.skip(results[0].skip_reason or "skipped")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, PromptciFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.jobs[0].case.location.line - 1, self.name


def describe(result: CaseResult, with_repeat: bool) -> str:
    """The failure text: where, the output, and every failing comparator's reason and diff; escaped as the CLI
    escapes them (controls, and `::` workflow commands a CI log would obey)."""
    from promptci.reporting.stats import neutralised

    sample = f" (sample {result.repeat + 1})" if with_repeat else ""
    lines = [f"{result.file}:{result.line}: {result.case_id} on {result.model} {result.status}{sample}"]
    if result.error:
        lines.append(f"error: {result.error}")
    for score in result.scores:
        if not score.passed:
            lines.append(f"{score.comparator}: {score.reason}")
            if score.diff:
                lines.append(score.diff)
    if result.output is not None:
        lines.append(f"output: {result.output}")
    return neutralised("\n".join(lines))
