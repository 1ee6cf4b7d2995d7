"""`promptci diff` and `promptci bisect`: the project as it stood at git revisions (its config, prompts,
goldens and Python code, read with git archive into temp folders) run with the project's own state, so
every side shares one Session, one store and one cache: a request that did not change is not sent again."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

from promptci import gitrev
from promptci.changes import ChangeSelection, changed_since
from promptci.client import Endpoint, ModelCall, call_key
from promptci.codeimports import SeparateImports, separate_imports
from promptci.compare import Comparison, PairKey, SampleCounts, compare_runs, pair_label, pair_results
from promptci.config import Gate as GateSettings
from promptci.errors import ExitCode, PromptCIError
from promptci.plan import Job, Plan, RunOptions
from promptci.planning import Selector, build_plan
from promptci.project import Project, discover
from promptci.seqtarget import sequential_drop_verdict
from promptci.sequential import Design, Outcome, run_sequential
from promptci.session import Session
from promptci.stats import DropVerdict
from promptci.store import PLAIN_RUN
from promptci.types import CaseResult, GitInfo, Run, Suite, case_status_of, now_iso, summarize
from promptci.variation import cached_other_samples, find_variations, variation_notes
from promptci.verdict.diff import judge_comparison
from promptci.verdict.gates import judge_run
from promptci.verdict.judges import diff_judge_notes
from promptci.verdict.policy import SEVERITY, Gate

OnStart = Callable[[int], None]
OnResult = Callable[[CaseResult], None]


@dataclass(frozen=True)
class DiffOptions:
    run: RunOptions  # what selects and runs the cases at both sides (-m, -k, --repeat, --changed-since, ...)
    before: str  # REV_A
    after: str | None = gitrev.WORKING_TREE  # REV_B; None: the working tree, uncommitted edits included
    alpha: float = 0.05
    allow_new_failures: bool = False  # a new case failing at B is reported but does not fail the diff
    sequential: Design | None = None  # --repeat auto: sample in rounds where undecided (sequential.py)
    detect: float | None = None  # --detect DROP: choose the design's MAX (seqtarget.choose_design) for this suite


@dataclass(frozen=True)
class DiffOutcome:
    comparison: Comparison
    before: Run
    after: Run
    exit_code: ExitCode
    selection: ChangeSelection | None = None  # with --changed-since: the affected cases and why
    notes: tuple[str, ...] = ()
    stops: tuple[str, ...] = ()  # --repeat auto: why sampling stopped at each case (printed with -v)


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
        code = stack.enter_context(separate_imports())  # each side imports its own modules, helpers included
        with code.of(side_b.source):
            plan_b = build_plan(options.run, side_b, _after_selector(project, options, side_b), allow_empty=True)
        with code.of(side_a.source):
            plan_a = build_plan(options.run, side_a, _before_selector(plan_b.selection, renames), allow_empty=True)
        notes = _empty_sides(plan_a, plan_b, options)
        options, design_notes = _with_chosen_design(options, plan_b)
        with Session(project, concurrency=options.run.concurrency) as session:
            sequential: SequentialSides | None = None
            if options.sequential is not None:
                sides = (RoundSide(plan_a, f"diff A: {side_name(options.before)} (--repeat auto)", side_a.source,
                                   revision_git(project, options.before)),
                         RoundSide(plan_b, f"diff B: {side_name(options.after)} (--repeat auto)", side_b.source,
                                   revision_git(project, options.after)))
                sequential = run_sequential_sides(session, sides, revision_pairing(renames), options.sequential,
                                                  on_start, on_result, code)
                run_a, run_b = sequential.runs
                notes += sequential.notes
            else:
                with code.of(side_a.source):
                    plan_a = with_baseline_pool(session, plan_a)
                    run_a = session.run(plan_a, on_start, on_result, git=revision_git(project, options.before),
                                        command=f"diff A: {side_name(options.before)}")
                with code.of(side_b.source):
                    run_b = (_unrun(plan_b) if run_a.interrupted else
                             session.run(plan_b, on_start, on_result, git=revision_git(project, options.after),
                                         command=f"diff B: {side_name(options.after)}"))
            if not (run_a.interrupted or run_b.interrupted) and sequential is None:
                notes += variation_notes(find_variations(run_a, run_b, cached_other_samples(session, plan_b)))
    comparison = compare_runs(run_a, run_b, renames, options.alpha,
                              revisions=(side_name(options.before), side_name(options.after)),
                              allow_new_failures=options.allow_new_failures,
                              verdict=sequential.verdict if sequential else None)
    warnings = ([f"--alpha {options.alpha:g} does nothing without --repeat: with one sample a side, any case that "
                 "passed at A and fails at B is a regression"]
                if options.alpha != 0.05 and options.run.repeat < 2 and options.sequential is None else [])
    decision = judge_comparison(comparison, options.alpha, run_a.interrupted or run_b.interrupted,
                                [*warnings, *design_notes, *diff_judge_notes(run_a.results, run_b.results)])
    comparison = replace(comparison, decision=decision)
    notes += [p for p in run_b.problems if p not in plan_b.problems]  # models stopped at B
    return DiffOutcome(comparison, run_a, run_b, decision.exit_code, plan_b.selection, tuple(notes),
                       sequential.stops if sequential else ())


# --repeat auto: sequential rounds -------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundSide:
    """One side of a sequential comparison: its plan (one job a case and model), what its stored run is
    called ("diff A: main (--repeat auto)"), the source its code is imported from (None: the process's own),
    git state, and the stored run its rounds go into (sides sharing one are one run)."""

    plan: Plan
    command: str
    source: Path | None = None
    git: GitInfo | None = None
    rounds: Rounds = field(default_factory=lambda: Rounds())


@dataclass(eq=False)
class Rounds:
    """The rounds of --repeat auto as one stored run: the first round starts it, each later one adds its samples
    to it (Session.run's `into`), so the run `show` reads back has every sample the verdict was drawn from."""

    run: Run | None = None

    def add(self, session: Session, side: RoundSide, jobs: Sequence[Job], on_start: OnStart | None,
            on_result: OnResult | None) -> Sequence[CaseResult]:
        """Run `jobs` of `side` into the stored run; the results this round added."""
        before = len(self.run.results) if self.run else 0
        self.run = session.run(replace(side.plan, jobs=tuple(jobs)), on_start, on_result, git=side.git,
                               command=side.command, into=self.run)
        return self.run.results[before:]


# A's and B's results so far -> (label, A's key, B's key) of every case sampled at both sides: git revisions pair
# a case with itself (renames followed), an upgrade check pairs the baseline model's case with the candidate's.
Pairing = Callable[[Sequence[CaseResult], Sequence[CaseResult]], list[tuple[str, PairKey, PairKey]]]
Drawn = dict[tuple[PairKey, int], CaseResult]  # a side's results by (case key, sample index)


@dataclass(frozen=True)
class SequentialSides:
    runs: tuple[Run, Run]  # each side's stored run, every round in it
    verdict: DropVerdict | None  # None when interrupted: no verdict is drawn from a stopped design
    notes: tuple[str, ...]
    stops: tuple[str, ...]
    paired: Mapping[str, tuple[PairKey, PairKey]] = field(default_factory=dict)  # label -> (A's key, B's key)


class _Interrupted(Exception):
    pass


def revision_pairing(renames: Sequence[gitrev.Rename]) -> Pairing:
    """Two revisions: a case pairs with itself as compare.pair_results finds it (renames followed)."""
    def pair(a: Sequence[CaseResult], b: Sequence[CaseResult]) -> list[tuple[str, PairKey, PairKey]]:
        return [(pair_label(k), _result_key(x[0]), _result_key(y[0])) for k, x, y in pair_results(a, b, renames)
                if x and y]
    return pair


def model_pairing(a: Sequence[CaseResult], b: Sequence[CaseResult]) -> list[tuple[str, PairKey, PairKey]]:
    """Two models of one run: a case at the baseline pairs with the same case (file, prompt, id) at the other."""
    baseline = {_result_key(r)[:3]: _result_key(r) for r in a}
    found = {_result_key(r): None for r in b}
    return [(pair_label(key), baseline[key[:3]], key) for key in found if key[:3] in baseline]


def run_sequential_sides(session: Session, sides: tuple[RoundSide, RoundSide], pairing: Pairing, design: Design,
                         on_start: OnStart | None, on_result: OnResult | None, code: SeparateImports | None = None,
                         drawn_a: Drawn | None = None) -> SequentialSides:
    """Both sides' first `design.first` samples of every case, then rounds of more samples for the paired
    cases still undecided (sequential.run_sequential), each round's jobs sent together through the Session
    (cache, ledger, budget and -j apply; the sample index is in the cache key, so each is a fresh request) and
    stored into its side's run (RoundSide.rounds). `drawn_a`: A's samples already drawn (one baseline against
    several models), reused and added to; the requests-spent note counts only what this call ran."""
    ran: tuple[list[CaseResult], list[CaseResult]] = ([], [])
    done: tuple[Drawn, Drawn] = (drawn_a if drawn_a is not None else {}, {})

    def run_round(wanted: Sequence[Sequence[Job]]) -> None:
        for index, (side, jobs) in enumerate(zip(sides, wanted, strict=True)):
            jobs = [job for job in jobs if (_job_key(job), job.repeat) not in done[index]]
            if not jobs:
                continue
            with code.of(side.source) if code and side.source else nullcontext():
                added = side.rounds.add(session, side, jobs, on_start, on_result)
            ran[index].extend(added)
            done[index].update({(_result_key(r), r.repeat): r for r in added})
            if side.rounds.run is not None and side.rounds.run.interrupted:
                raise _Interrupted

    verdict: DropVerdict | None = None
    notes: list[str] = []
    stops: list[str] = []
    paired: dict[str, tuple[PairKey, PairKey]] = {}
    try:
        run_round([[replace(job, repeat=i) for job in side.plan.jobs for i in range(design.first)]
                   for side in sides])
        side_jobs = tuple({_job_key(j) for j in side.plan.jobs} for side in sides)
        paired = {label: (a, b) for label, a, b in pairing(
            [r for (key, _), r in done[0].items() if key in side_jobs[0]], list(done[1].values()))}
        jobs = tuple({_job_key(j): j for j in side.plan.jobs} for side in sides)

        def draw(request: Mapping[str, range]) -> dict[str, tuple[list[Outcome], list[Outcome]]]:
            keys = {label: paired[label] for label in request}
            run_round([[replace(jobs[side][keys[label][side]], repeat=i) for label, indices in request.items()
                        for i in indices if (keys[label][side], i) not in done[side]] for side in (0, 1)])
            return {label: tuple([_outcome(done[side].get((keys[label][side], i))) for i in indices]  # type: ignore[misc]
                                 for side in (0, 1)) for label, indices in request.items()}

        final = run_sequential(list(paired), draw, design)
        verdict = sequential_drop_verdict(final, design)
        stops = [f"{c.key}: {c.stop.value if c.stop else 'open'} after {final.samples[c.key]} samples a side "
                 f"({c.wins} A-pass/B-fail, {c.losses} A-fail/B-pass; e = {c.e_value:.3g}, flagged at "
                 f"{c.threshold:.3g})" for c in final.cases]
        notes.append(f"--repeat auto: {final.rounds} rounds, {len(paired)} paired cases")
    except _Interrupted:
        pass
    notes.append(spent_note(ran[0], ran[1], len(sides[1].plan.jobs)))
    runs = tuple(side.rounds.run or _unrun(side.plan, interrupted=False) for side in sides)
    return SequentialSides((runs[0], runs[1]), verdict, tuple(notes), tuple(stops), paired)


@dataclass(frozen=True)
class SequentialUpgrade:
    """`run --baseline-model M --repeat auto`: every round of every model as one Run, with each candidate's
    sequential test against the baseline in run.sequential."""

    run: Run
    notes: tuple[str, ...]
    stops: tuple[str, ...]


def run_upgrade_sequential(session: Session, plan: Plan, baseline: str, design: Design,
                           on_start: OnStart | None = None, on_result: OnResult | None = None) -> SequentialUpgrade:
    """Each other model of the plan against `baseline` by the sequential procedure of `diff --repeat auto`
    (run_sequential_sides), one family a candidate at `design.alpha`; the baseline's samples are drawn once and
    shared by every candidate."""
    def of_model(model: str) -> Plan:
        return replace(plan, jobs=tuple(job for job in plan.jobs if job.request.model == model))

    stored = Rounds()  # every model's rounds are the one run the user asked for
    base = RoundSide(of_model(baseline), PLAIN_RUN, rounds=stored)
    drawn: Drawn = {}
    verdicts: dict[str, DropVerdict] = {}
    notes: list[str] = []
    stops: list[str] = []
    for model in (m for m in plan.models if m != baseline):
        sides = (base, RoundSide(of_model(model), PLAIN_RUN, rounds=stored))
        found = run_sequential_sides(session, sides, model_pairing, design, on_start, on_result, drawn_a=drawn)
        notes += [f"{model} vs {baseline}: {note}" for note in found.notes]
        stops += list(found.stops)
        if found.verdict is None:  # interrupted: no verdict, no further candidate
            break
        verdicts[model] = found.verdict
    run = replace(stored.run or _unrun(plan, interrupted=False), models=plan.models, sequential=verdicts)
    return SequentialUpgrade(run, tuple(notes), tuple(stops))


def spent_note(ran_a: Sequence[CaseResult], ran_b: Sequence[CaseResult], cases: int) -> str:
    a, b = SampleCounts.of(ran_a), SampleCounts.of(ran_b)
    return (f"requests spent: A {a.fresh} (+{a.cached} cached), B {b.fresh} (+{b.cached} cached); fixed "
            f"--repeat 10 would take {10 * cases} a side")


def _job_key(job: Job) -> PairKey:
    return (job.case.location.file, job.prompt.name, job.case.id, job.request.model)


def _result_key(result: CaseResult) -> PairKey:
    return (result.file, result.prompt, result.case_id, result.model)


def _outcome(result: CaseResult | None) -> Outcome:
    if result is None or result.status not in ("passed", "failed"):
        return None
    return result.status == "passed"


# With --repeat K, side A of a case is a pool of samples: each diff adds K fresh ones to those the cache holds,
# up to POOL_FACTOR x K (and at least K, at most POOL_MAX), and uses all of them. Reusing one draw of A for
# every later diff fixes its luck: a draw whose pass rates came out high makes every later PR look worse
# (simulated with a pool of K: 1 draw in 10 gave later PRs a false-alarm rate above 10%, the worst 40%). The
# pool's error shrinks as K / (K + pool); at 8 K the 95th percentile over draws stays under 10%
# (tests/test_baseline_pool.py).
POOL_FACTOR = 8
POOL_MAX = 2_000


def baseline_pool_size(is_cached: Callable[[int], bool], repeat: int) -> int:
    """How many samples side A runs of a case: up to the one where `repeat` uncached samples are included,
    at most the pool's cap. `is_cached(i)`: whether sample i's answer is in the cache."""
    if repeat < 2:
        return repeat
    cap = max(repeat, min(POOL_FACTOR * repeat, POOL_MAX))
    fresh = 0
    for index in range(cap):
        fresh += not is_cached(index)
        if fresh == repeat:
            return index + 1
    return cap


def with_baseline_pool(session: Session, plan: Plan) -> Plan:
    """Side A's plan with each case's samples widened to its baseline pool (see POOL_FACTOR). Without --repeat,
    with --no-cache, and for models the cache does not keep (python:, echo, --replay) it is unchanged."""
    repeat = plan.options.repeat
    if repeat < 2 or not plan.options.use_cache:
        return plan
    endpoints = session.endpoints(plan)
    jobs: list[Job] = []
    for job in plan.jobs:
        if job.repeat != 0:
            continue
        endpoint = endpoints[job.request.model]
        if not endpoint.provider.is_cacheable or endpoint.replay_only:
            size = repeat
        else:
            size = baseline_pool_size(_cache_probe(session, endpoint, job, repeat), repeat)
        jobs += [replace(job, repeat=sample) for sample in range(size)]
    return replace(plan, jobs=tuple(jobs))


def _cache_probe(session: Session, endpoint: Endpoint, job: Job, batch: int) -> Callable[[int], bool]:
    """is_cached(i) for the job's samples, asking the store for `batch` keys at a time."""
    known: dict[int, bool] = {}

    def is_cached(index: int) -> bool:
        if index not in known:
            samples = range(index, index + batch)
            keys = [call_key(endpoint.identity, ModelCall(job.request, sample=s)) for s in samples]
            cached = session.store.cached_keys(keys)
            known.update({s: key in cached for s, key in zip(samples, keys, strict=True)})
        return known[index]

    return is_cached


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


def _with_chosen_design(options: DiffOptions, plan_b: Plan) -> tuple[DiffOptions, list[str]]:
    """--repeat auto --detect DROP: the design seqtarget.choose_design picks for B's cases, and a line saying so."""
    if options.sequential is None or options.detect is None:
        return options, []
    from promptci.seqtarget import choose_design

    choice = choose_design(options.sequential, len(plan_b.jobs), options.detect)
    return replace(options, sequential=choice.design), [choice.line()]


def _empty_sides(plan_a: Plan, plan_b: Plan, options: DiffOptions) -> list[str]:
    if plan_a.jobs or plan_b.jobs:
        return []
    if options.run.changed_since is not None:
        return [nothing_changed_note(options.run.changed_since)]
    keyword = options.run.keyword
    raise PromptCIError(f"no case matches -k {keyword!r} at either revision" if keyword else
                        "no case to run at either revision")


def _unrun(plan: Plan, interrupted: bool = True) -> Run:
    """B's side when Ctrl-C stopped A (or a side with nothing to run): nothing was run, nothing is stored."""
    started = now_iso()
    return Run(run_id="", started_at=started, finished_at=started, git=GitInfo(), models=plan.models, results=(),
               summary=summarize(()), interrupted=interrupted)


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
    with Session(project, concurrency=options.concurrency) as session, separate_imports() as code:

        def check(commit: str) -> BisectStep:
            step = _bisect_step(session, code, project, options, commit)
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


def _bisect_step(session: Session, code: SeparateImports, project: Project, options: RunOptions,
                 commit: str) -> BisectStep:
    with at_revision(project, commit) as side, code.of(side.source):
        plan = build_plan(options, side, allow_empty=True)
        run = session.run(plan, git=GitInfo(commit=commit, dirty=False, branch=None),
                          command=f"bisect step {commit[:12]}")
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
    cases: dict[str, list[CaseResult]] = {}
    for r in run.results:
        cases.setdefault(f"{r.file}::{r.case_id} [{r.model}]", []).append(r)
    failing = tuple(name for name, samples in cases.items() if case_status_of(samples) == "failed")  # as `run`
    return BisectStep(commit, bool(failing), run.run_id, failing)


class BisectNoVerdict(PromptCIError):
    exit_code = ExitCode.NO_VERDICT
