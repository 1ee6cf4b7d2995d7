"""Planning a run without sending anything: the project's cases, models, rendered requests (a Plan), and
the endpoints that will answer them. A run and a dry run both start here, so a dry run sees exactly what a
run would send."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from promptci.client import Endpoint
from promptci.config import Price, ProviderSettings, Settings, suggest
from promptci.cost.pricing import price_for
from promptci.errors import ConfigError, PromptCIError
from promptci.loading.render import Renderer
from promptci.loading.suite import broken_cases, load_suite, render_suite
from promptci.plan import Job, Plan, RunOptions
from promptci.project import Project, discover
from promptci.providers.base import ProviderContext, api_key_env, provider_identity, split_model
from promptci.registry import providers as provider_registry
from promptci.selection import compile_expression, select_shard
from promptci.types import Case, Prompt, Request, Suite, canonical_json

if TYPE_CHECKING:
    from promptci.changes import ChangeSelection

LOCAL_PROVIDERS = ("echo", "python", "replay")


def select_cases(suite: Suite, keyword: str | None) -> list[Case]:
    if not keyword:
        return list(suite.cases)
    matches = compile_expression(keyword)
    return [case for case in suite.cases if matches(case)]


def models_for(prompt: Prompt, options: RunOptions, settings: Settings) -> tuple[str, ...]:
    if options.models:
        return options.models
    if prompt.model:
        return (prompt.model,)
    if settings.models:
        return settings.models
    raise ConfigError(
        f"no model for prompt {prompt.name!r}: set `models:` in promptci.yaml, `model:` in {prompt.path}, "
        "or pass -m (e.g. -m echo to test the templates offline)"
    )


def provider_config(model: str, settings: Settings) -> ProviderSettings:
    """The ProviderSettings a model string points at; an unknown provider is a usage error."""
    name, inner = split_model(model)
    if name in settings.providers:
        return settings.providers[name]
    if name == "python":
        if not inner:
            raise PromptCIError(f"model {model!r}: write python:package.module:function")
        return ProviderSettings(name="python", type="python", options={"function": inner})
    if name in LOCAL_PROVIDERS:
        return ProviderSettings(name=name, type=name)
    try:
        provider_registry.get(name)
    except PromptCIError:
        known = sorted(set(settings.providers) | set(provider_registry.names()) | set(LOCAL_PROVIDERS))
        raise PromptCIError(unknown_provider_message(model, known)) from None
    return ProviderSettings(name=name, type=name)


def unknown_provider_message(model: str, known: Sequence[str]) -> str:
    """A bare model name gets the PROVIDER:MODEL form and the likely provider; a misspelled one, "did you mean"."""
    name, inner = split_model(model)
    if not inner:
        own = [k for k in known if k not in ("openai", "anthropic", *LOCAL_PROVIDERS)]
        likely = next((f"{provider}:{model}" for prefix, provider in BARE_MODEL_PROVIDERS if model.startswith(prefix)),
                      f"{own[0] if own else 'openai'}:{model}")
        return (f"model {model!r} names no provider: model names are PROVIDER:MODEL "
                f"(did you mean {likely!r}?; providers: {', '.join(known)})")
    return (f"unknown provider {name!r} in model {model!r}{suggest(name, known)} (known: {', '.join(known)}; "
            "name your own endpoints under `providers:` in promptci.yaml)")


# Model-name prefixes -> the provider that serves them, to suggest a PROVIDER:MODEL for a bare name.
BARE_MODEL_PROVIDERS = (("gpt", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"),
                        ("chatgpt", "openai"), ("text-embedding", "openai"), ("claude", "anthropic"))


def build_endpoints(models: Sequence[str], settings: Settings, replay_only: bool,
                    instances: dict[str, Any] | None = None) -> dict[str, Endpoint]:
    """One provider instance per named provider (per function for python:), built before any request,
    so a missing key stops the run with exit 2 before anything is spent. `instances` (a session's) keeps
    them across plans: the same endpoint settings get the same instance."""
    from promptci.providers.offline import ReplayProvider

    ctx = ProviderContext(settings=settings, root=settings.root)
    instances = {} if instances is None else instances
    endpoints: dict[str, Endpoint] = {}
    for model in models:
        config = provider_config(model, settings)
        inner = split_model(model)[1]
        if config.type == "replay":
            inner_config = provider_config(inner, settings) if inner else config
            endpoints[model] = Endpoint(ReplayProvider(name="replay"), provider_identity(inner_config),
                                        inner_config.type, is_free=False, replay_only=True,
                                        price=model_price(inner, inner_config, settings))
            continue
        is_local = config.type in LOCAL_PROVIDERS
        if replay_only and not is_local:
            provider = ReplayProvider(name=config.name, is_cacheable=True)
        else:
            instance_key = instance_identity(model, config, settings)
            if instance_key not in instances:
                instances[instance_key] = provider_registry.get(config.type)(config, ctx)
            provider = instances[instance_key]
        endpoints[model] = Endpoint(provider, provider_identity(config), config.type, is_free=is_local,
                                    replay_only=replay_only and not is_local,
                                    price=None if is_local else model_price(model, config, settings))
    return endpoints


def instance_identity(model: str, config: ProviderSettings, settings: Settings) -> str:
    """What makes two provider instances interchangeable: the endpoint's settings (and, for a python
    function, the model and the source folder its code is imported from)."""
    local = [model, str(settings.root)] if config.type == "python" else []
    return canonical_json([asdict(config), local, settings.timeout_s])


def model_price(model: str, config: ProviderSettings, settings: Settings) -> Price | None:
    """`pricing:` first; the built-in list prices only for a provider's official endpoint. A model behind a
    base_url of your own (vLLM, Ollama, a gateway) is not billed at list price: its price is unknown until
    `pricing:` names it."""
    return price_for(model, settings.pricing, None if config.base_url else config.type)


def request_params(prompt: Prompt, model: str, settings: Settings) -> dict[str, Any]:
    """The params a request carries: the prompt's, then its provider's `params:`, then its model's (`models:
    [{name, params}]` in promptci.yaml); the most specific wins, key by key. `replay:M` uses M's, so a replay
    sends the request that was recorded."""
    provider_name, inner = split_model(model)
    if provider_name == "replay" and inner:
        return request_params(prompt, inner, settings)
    provider = settings.providers.get(provider_name)
    return {**prompt.params, **(provider.params if provider else {}), **settings.model_params.get(model, {})}


def build_jobs(cases: Sequence[Case], suite: Suite, rendered: dict, options: RunOptions,
               settings: Settings, turns: Mapping[str, tuple[str, ...]] | None = None) -> tuple[list[Job], list[str]]:
    from promptci.calibration import with_judge_gates

    jobs: list[Job] = []
    models: list[str] = []
    for case in with_judge_gates(cases, suite.prompts, settings.root, settings.judges):  # which judges gate
        if case.key not in rendered:
            continue
        prompt = suite.prompts[case.prompt]
        for model in models_for(prompt, options, settings):
            if model not in models:
                models.append(model)
            request = Request(model=model, messages=rendered[case.key], params=request_params(prompt, model, settings),
                              output=prompt.output)
            user_turns = (turns or {}).get(case.key, ())
            jobs.extend(Job(case, prompt, request, repeat, user_turns) for repeat in range(options.repeat))
    return jobs, models


Selector = Callable[[Suite, Sequence[str]], "ChangeSelection"]  # (suite, models) -> the affected cases


def build_plan(options: RunOptions, project: Project | None = None, selector: Selector | None = None,
               allow_empty: bool = False) -> Plan:
    """Load, select and render the suite of `project` (default: the one options.root or the current folder
    names) into jobs. With --changed-since, `selector` picks the affected cases (default: changes between the
    revision and the project's working tree). `allow_empty`: no case selected is a plan without jobs, not an
    error (a side of `diff` where the selected cases do not exist yet)."""
    project = project or discover(options.root)
    settings = project.settings(options.environment)
    suite = load_suite(settings, options.paths, keep_going=options.keep_going)
    cases = select_cases(suite, options.keyword)
    selection = None
    if options.changed_since is not None:
        selector = selector or working_tree_selector(project, options.changed_since)
        selection = selector(suite, options.models or settings.models)
        cases = [case for case in cases if selection.selects(case)]
    cases = select_shard(cases, options.shard)
    turns: dict[str, tuple[str, ...]] = {}
    rendered, render_problems = render_suite(replace(suite, cases=tuple(cases)), Renderer(project.source),
                                             options.keep_going, turns)
    problems = list(suite.problems) + [str(p) for p in render_problems]
    broken = (*suite.broken, *broken_cases(render_problems))
    jobs, models = build_jobs(cases, suite, rendered, options, settings, turns)
    # A shard of a small suite may be empty, and so may the cases changed since a revision: that is fine.
    if not jobs and options.shard is None and options.changed_since is None and not allow_empty:
        raise PromptCIError(f"no case matches -k {options.keyword!r}" if options.keyword else "no case to run")
    return Plan(project, settings, options, tuple(jobs), tuple(models), tuple(problems), selection, broken)


def working_tree_selector(project: Project, since: str) -> Selector:
    """The cases that changes between revision `since` and the project's working tree can affect."""
    from promptci.changes import changed_since

    return lambda suite, models: changed_since(project.source, since, suite, models)


def model_pricing(model: str, settings: Settings, replay: bool) -> tuple[bool, Price | None, dict[str, Any]]:
    """(is_free, price, provider identity) of a model, from settings alone: no provider is built."""
    config = provider_config(model, settings)
    is_free = replay or config.type in LOCAL_PROVIDERS
    price = None if is_free else model_price(model, config, settings)
    return is_free, price, provider_identity(config)


def missing_keys(models: Sequence[str], settings: Settings, replay: bool) -> dict[str, str]:
    """Key variable -> the first model that needs it, for keys not set in the environment."""
    missing: dict[str, str] = {}
    for model in [] if replay else models:
        config = provider_config(model, settings)
        variable = api_key_env(config)
        if variable and not os.environ.get(variable) and config.type not in LOCAL_PROVIDERS:
            missing.setdefault(variable, model)
    return missing
