"""`promptci diff` and `promptci bisect`: the project as it stood at git revisions (its config, prompts,
goldens and Python code, read with git archive into temp folders) run with the project's own state, so
every side shares one Session, one store and one cache: a request that did not change is not sent again."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace

from promptci import gitrev
from promptci.changes import ChangeSelection, changed_since
from promptci.compare import Comparison, compare_runs
from promptci.config import Gate as GateSettings
from promptci.errors import ExitCode, PromptCIError
from promptci.plan import Plan, RunOptions
from promptci.planning import Selector, build_plan
from promptci.project import Project, discover
from promptci.session import Session
from promptci.types import CaseResult, GitInfo, Run, Suite, now_iso, summarize
from promptci.verdict.diff import judge_comparison
from promptci.verdict.gates import judge_run
from promptci.verdict.policy import SEVERITY, Gate

OnStart = Callable[[int], None]
OnResult = Callable[[CaseResult], None]


@dataclass(frozen=True)
class DiffOptions:
    run: RunOptions  # what selects and runs the cases at both sides (-m, -k, --repeat, --changed-since, ...)
    before: str  # REV_A
    after: str | None = gitrev.WORKING_TREE  # REV_B; None: the working tree, uncommitted edits included
    alpha: float = 0.05


@dataclass(frozen=True)
class DiffOutcome:
    comparison: Comparison
    before: Run
    after: Run
    exit_code: ExitCode
    selection: ChangeSelection | None = None  # with --changed-since: the affected cases and why
    notes: tuple[str, ...] = ()


def nothing_changed_note(since: str) -> str:
    return f"nothing changed since {since} that affects a case: nothing to run"


def side_name(revision: str | None) -> str:
    return "working tree" if revision is gitrev.WORKING_TREE else revision


def revision_git(project: Project, name: str | None) -> GitInfo | None:
    """What a side's run records as its git state: the revision's commit (None: the working tree's own)."""
    if name is gitrev.WORKING_TREE:
        return None
    return GitInfo(commit=gitrev.resolve(project.source, name).commit, dirty=False, branch=None)


@contextmanager
def at_revision(project: Project, name: str | None) -> Iterator[Project]:
    """The project's source as it stood at revision `name` (None: the working tree), with its state."""
    with gitrev.materialised(project.source, name) as folder:
        yield project.with_source(folder)


def diff(options: DiffOptions, on_start: OnStart | None = None, on_result: OnResult | None = None) -> DiffOutcome:
    """Run the suite at both revisions in one Session and compare the runs case by case."""
    project = discover(options.run.root)
    for name in (options.before, options.after):  # every revision error before anything is extracted
        if name is not gitrev.WORKING_TREE:
            gitrev.resolve(project.source, name)
    renames = gitrev.renames(project.source, options.before, options.after)
    with ExitStack() as stack:
        side_a = stack.enter_context(at_revision(project, options.before))
        side_b = stack.enter_context(at_revision(project, options.after))
        plan_b = build_plan(options.run, side_b, _after_selector(project, options, side_b), allow_empty=True)
        plan_a = build_plan(options.run, side_a, _before_selector(plan_b.selection, renames), allow_empty=True)
        notes = _empty_sides(plan_a, plan_b, options)
        with Session(project, concurrency=options.run.concurrency) as session:
            run_a = session.run(plan_a, on_start, on_result, git=revision_git(project, options.before))
            run_b = (_unrun(plan_b) if run_a.interrupted else
                     session.run(plan_b, on_start, on_result, git=revision_git(project, options.after)))
    comparison = compare_runs(run_a, run_b, renames, options.alpha,
                              revisions=(side_name(options.before), side_name(options.after)))
    warnings = ([f"--alpha {options.alpha:g} does nothing without --repeat: with one sample a side, any case that "
                 "passed at A and fails at B is a regression"] if options.alpha != 0.05 and options.run.repeat < 2
                else [])
    decision = judge_comparison(comparison, options.alpha, run_a.interrupted or run_b.interrupted, warnings)
    comparison = replace(comparison, decision=decision)
    notes += [p for p in run_b.problems if p not in plan_b.problems]  # models stopped at B
    return DiffOutcome(comparison, run_a, run_b, decision.exit_code, plan_b.selection, tuple(notes))


def _after_selector(project: Project, options: DiffOptions, side_b: Project) -> Selector | None:
    since = options.run.changed_since
    if since is None:
        return None

    def select(suite: Suite, models: Sequence[str]) -> ChangeSelection:
        return changed_since(project.source, since, suite, models, until=options.after, source=side_b.source)
    return select


def _before_selector(selection: ChangeSelection | None, renames: Sequence[gitrev.Rename]) -> Selector | None:
    """A's cases are selected by B's selection, their golden files followed back through renames."""
    if selection is None:
        return None
    old_name = {r.new: r.old for r in renames}

    def at_before(key: str) -> str:
        file, sep, rest = key.partition("::")
        return f"{old_name.get(file, file)}{sep}{rest}"

    translated = replace(selection, case_keys=selection.case_keys | {at_before(k) for k in selection.case_keys})
    return lambda suite, models: translated


def _empty_sides(plan_a: Plan, plan_b: Plan, options: DiffOptions) -> list[str]:
    if plan_a.jobs or plan_b.jobs:
        return []
    if options.run.changed_since is not None:
        return [nothing_changed_note(options.run.changed_since)]
    keyword = options.run.keyword
    raise PromptCIError(f"no case matches -k {keyword!r} at either revision" if keyword else
                        "no case to run at either revision")


def _unrun(plan: Plan) -> Run:
    """B's side when Ctrl-C stopped A: nothing was run, nothing is stored."""
    started = now_iso()
    return Run(run_id="", started_at=started, finished_at=started, git=GitInfo(), models=plan.models, results=(),
               summary=summarize(()), interrupted=True)


# bisect ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BisectStep:
    commit: str
    is_bad: bool
    run_id: str
    failing: tuple[str, ...]  # "file::case [model]" of the selected cases failing there


@dataclass(frozen=True)
class BisectOutcome:
    first_bad: str  # the commit's full sha
    subject: str
    changes: str  # `git show --stat` and the diff of prompts/ and goldens/
    steps: tuple[BisectStep, ...]  # in the order they ran

    @property
    def failing(self) -> tuple[str, ...]:
        return next(s.failing for s in self.steps if s.commit == self.first_bad)


def bisect(options: RunOptions, good: str, bad: str, on_step: Callable[[BisectStep], None] | None = None
           ) -> BisectOutcome:
    """The first commit on bad's first-parent line after good where a selected case fails, by binary search;
    each step a run of the project materialised at that commit, all in one Session (every step cached)."""
    project = discover(options.root)
    good_revision, bad_revision = gitrev.resolve(project.source, good), gitrev.resolve(project.source, bad)
    commits = gitrev.first_parent_commits(project.source, good_revision, bad_revision)
    if not commits:
        raise PromptCIError(f"no commit leads from GOOD {good!r} to BAD {bad!r} along BAD's first parents: give "
                            "GOOD older than BAD (an ancestor of it)")
    steps: list[BisectStep] = []
    with Session(project, concurrency=options.concurrency) as session:

        def check(commit: str) -> BisectStep:
            step = _bisect_step(session, project, options, commit)
            steps.append(step)
            if on_step is not None:
                on_step(step)
            return step

        if check(good_revision.commit).is_bad:
            raise PromptCIError(f"GOOD {good!r} already fails ({', '.join(steps[-1].failing)}): give an older "
                                "revision where the selected cases pass")
        if not check(bad_revision.commit).is_bad:
            raise PromptCIError(f"BAD {bad!r} passes: every selected case passes there, so there is nothing to "
                                "find (check -k and -m, or give a revision where a case fails)")
        first_bad = first_failing(commits, lambda commit: check(commit).is_bad)
    return BisectOutcome(first_bad, gitrev.commit_subject(project.source, first_bad),
                         gitrev.commit_changes(project.source, first_bad), tuple(steps))


def first_failing(commits: Sequence[str], is_bad: Callable[[str], bool]) -> str:
    """Binary search over commits (oldest first) whose last is known bad and whose parent of the first is
    known good: the first bad one, asking is_bad about log2(n) commits."""
    low, high = 0, len(commits) - 1  # commits[high] is bad; every commit before `low` is good
    while low < high:
        middle = (low + high) // 2
        if is_bad(commits[middle]):
            high = middle
        else:
            low = middle + 1
    return commits[high]


def _bisect_step(session: Session, project: Project, options: RunOptions, commit: str) -> BisectStep:
    with at_revision(project, commit) as side:
        plan = build_plan(options, side, allow_empty=True)
        run = session.run(plan, git=GitInfo(commit=commit, dirty=False, branch=None))
    if run.interrupted:
        raise KeyboardInterrupt
    blocking = [f for f in judge_run(run, GateSettings()).findings if f.gate in (Gate.ERRORS, Gate.BUDGET)]
    if blocking:  # the one policy: errors are no verdict (3), a budget that held cases back is 1
        errors = [r for r in run.results if r.status == "error"]
        first = f" (first: {errors[0].case_id}: {errors[0].error})" if errors else ""
        stop = BisectNoVerdict(f"commit {commit[:12]}: {blocking[0].message}, so it cannot be called good or "
                               f"bad{first}; see `promptci show {run.run_id}`")
        stop.exit_code = max((f.exit_code for f in blocking), key=SEVERITY.__getitem__)
        raise stop
    failing = tuple(dict.fromkeys(f"{r.file}::{r.case_id} [{r.model}]" for r in run.results if r.status == "failed"))
    return BisectStep(commit, bool(failing), run.run_id, failing)


class BisectNoVerdict(PromptCIError):
    exit_code = ExitCode.NO_VERDICT
