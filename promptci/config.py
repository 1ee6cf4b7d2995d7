"""promptci.yaml and the environment -> Settings (frozen). Every key has a default."""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from promptci.errors import ConfigError, Problem
from promptci.types import ComparatorSpec, Location

CONFIG_FILE = "promptci.yaml"
MAX_CONCURRENCY = 512  # as `run -j`
MAX_TIMEOUT_S = 86_400.0
MAX_RETRIES = 100
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


@dataclass(frozen=True)
class ProviderSettings:
    """One named endpoint. "openai" and "anthropic" exist by default."""

    name: str  # the prefix in model names: "openai", "local"
    type: str  # "openai" | "anthropic" | a provider registered by a plugin
    base_url: str | None = None
    api_key_env: str | None = None  # the variable that holds the key; None: the type's default
    rpm: float | None = None  # client-side rate limit, requests per minute
    options: Mapping[str, Any] = field(default_factory=dict)  # anything else given (headers, api_version...)
    params: Mapping[str, Any] = field(default_factory=dict)  # request params for every model it serves
    tpm: float | None = None  # client-side token limit, tokens per minute (input + max output, estimated)


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None
    # The model's longest answer, which the budget guard holds per request; a property of the model, not of its
    # rates: two prices with the same rates are equal.
    max_output_tokens: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Budgets:
    run_usd: float | None = None
    daily_usd: float | None = None


@dataclass(frozen=True)
class MetricThreshold:
    """`gate.metrics.NAME: MINIMUM`: the metric's value (weighted mean score) per prompt x model must reach it."""

    name: str
    minimum: float
    location: Location


@dataclass(frozen=True)
class Gate:
    min_pass_rate: float = 1.0
    metrics: tuple[MetricThreshold, ...] = ()


@dataclass(frozen=True)
class Judges:
    """`judges:`: when an llm_judge may fail the run. By default only a judge with a fresh calibration
    (`promptci calibrate`, calibration/<prompt>.<judge>.yaml) gates; the others only report."""

    allow_uncalibrated: bool = False  # every judge gates, calibrated or not (the behaviour before calibrate)
    min_kappa: float | None = None  # a calibrated judge whose kappa is under this (or unknown) only reports


@dataclass(frozen=True)
class Settings:
    """What promptci.yaml says. Where the project's files and state live is the Project's business."""

    root: Path  # the source folder promptci.yaml was read from
    config_path: Path | None = None  # None: no promptci.yaml, all defaults
    models: tuple[str, ...] = ()
    model_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # `models: [{name, params}]`
    concurrency: int = 8
    timeout_s: float = 60.0
    retries: int = 4
    comparators: tuple[ComparatorSpec, ...] = (
        ComparatorSpec("exact", {}, Location(CONFIG_FILE)),
    )
    providers: Mapping[str, ProviderSettings] = field(
        default_factory=lambda: {
            "openai": ProviderSettings("openai", "openai"),
            "anthropic": ProviderSettings("anthropic", "anthropic"),
        }
    )
    environment: str | None = None  # the --env applied, if any
    pricing: Mapping[str, Price] = field(default_factory=dict)
    budgets: Budgets = field(default_factory=Budgets)
    gate: Gate = field(default_factory=Gate)
    judges: Judges = field(default_factory=Judges)
    store_url: str | None = None  # `store.url`: a PostgreSQL team store (no password: that comes from the environment)


def load_settings(root: Path, environment: str | None = None) -> Settings:
    """Read root/promptci.yaml (if any), validate it, apply --env; ConfigError with path:line on problems."""
    from promptci.loading.yamlfile import load_yaml

    root = root.resolve()
    config_path = root / CONFIG_FILE
    data = load_yaml(config_path, root) if os.path.lexists(config_path) else None
    reader = _ConfigReader(root)
    values = reader.read(data)
    providers = reader.read_providers(data.get("providers") if isinstance(data, dict) else None, data)
    environments = reader.read_environments(data, providers)
    if environment is not None:
        if environment in environments:
            providers = _apply_overlays(providers, environments[environment])
        else:
            known = ", ".join(sorted(environments)) or "none are defined in promptci.yaml"
            reader.problems.append(Problem(
                f"unknown environment {environment!r}{suggest(environment, environments)}; known: {known}",
                Location(CONFIG_FILE) if data is not None else None,
            ))
    if reader.problems:
        raise ConfigError.from_problems(sorted(reader.problems, key=lambda p: p.location.line if p.location else 0))
    return Settings(
        root=root,
        config_path=config_path if data is not None else None,
        providers=providers,
        environment=environment,
        **values,
    )


KNOWN_KEYS = ("models", "concurrency", "timeout_s", "retries", "comparators", "providers", "environments",
              "pricing", "budgets", "gate", "store", "judges")
PROVIDER_FIELDS = ("type", "base_url", "api_key_env", "rpm", "tpm", "params")
MODEL_ENTRY_KEYS = ("name", "params")
GATE_KEYS = ("min_pass_rate", "metrics")
JUDGES_KEYS = ("allow_uncalibrated", "min_kappa")
OUTPUT_LIMIT_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
SECRET_KEYS = frozenset({"api_key", "apikey", "key", "secret", "token", "password", "access_token",
                         "auth_token", "secret_key"})
RESERVED_PROVIDER_NAMES = frozenset({"echo", "replay", "python"})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def suggest(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a known name is close to `name`, else ''."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_keys(mapping: Mapping[str, Any], known: Sequence[str], what: str, file: str) -> list[Problem]:
    """One problem per key of `mapping` not in `known`, each at the key's line, listing the known keys."""
    from promptci.loading.yamlfile import line_of

    return [
        Problem(f"unknown key {key!r} in {what}{suggest(key, known)}; known keys: {', '.join(known)}",
                Location(file, line_of(mapping, key)))
        for key in mapping
        if key not in known
    ]


class _ConfigReader:
    """Validates promptci.yaml section by section, collecting every problem."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []

    def problem(self, message: str, container: Any, key: Any = None) -> None:
        from promptci.loading.yamlfile import line_of

        line = line_of(container, key) if key is not None else getattr(container, "line", 0)
        self.problems.append(Problem(message, Location(CONFIG_FILE, line)))

    def read(self, data: Any) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.problems.append(Problem("must be a mapping of settings (e.g. `models: [echo]`)",
                                         Location(CONFIG_FILE, getattr(data, "line", 1) or 1)))
            return {}
        self.problems.extend(unknown_keys(data, KNOWN_KEYS, CONFIG_FILE, CONFIG_FILE))
        values: dict[str, Any] = {}
        if "models" in data:
            values["models"], values["model_params"] = self.read_models(data)
        for key, minimum, maximum, is_int in (("concurrency", 1, MAX_CONCURRENCY, True),
                                              ("timeout_s", 0, MAX_TIMEOUT_S, False),
                                              ("retries", 0, MAX_RETRIES, True)):
            if key in data:
                number = self.number(data, key, minimum=minimum, maximum=maximum, integer=is_int,
                                     allow_zero=key != "timeout_s")
                if number is not None:
                    values[key] = number
        if "comparators" in data:
            from promptci.comparator_specs import parse_comparators
            from promptci.loading.yamlfile import line_of

            specs, problems = parse_comparators(data["comparators"], CONFIG_FILE,
                                                line_of(data, "comparators"), self.root)
            self.problems.extend(problems)
            values["comparators"] = specs
        values.update(self.read_money(data))
        values.update(self.read_store(data))
        values.update(self.read_judges(data))
        return values

    def read_judges(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """`judges: {allow_uncalibrated: true, min_kappa: 0.6}`."""
        judges = self.section(data, "judges", JUDGES_KEYS)
        if judges is None:
            return {}
        allow = judges.get("allow_uncalibrated", False)
        if not isinstance(allow, bool):
            self.problem(f"`judges.allow_uncalibrated` must be true or false, got {allow!r}", judges,
                         "allow_uncalibrated")
            allow = False
        min_kappa = None
        if judges.get("min_kappa") is not None:
            min_kappa = self.number(judges, "min_kappa", minimum=-1, maximum=1, label="judges.min_kappa")
        return {"judges": Judges(allow_uncalibrated=allow, min_kappa=min_kappa)}

    def read_store(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """`store: {url: postgresql://user@host/db}`; the password only ever from the environment."""
        from promptci.secrets import url_password

        store = self.section(data, "store", ("url",))
        if store is None or store.get("url") is None:
            return {}
        url = store["url"]
        if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
            self.problem(f"`store.url` must be a postgresql:// URL (the team store), got {url!r}", store, "url")
            return {}
        if url_password(url) is not None:
            self.problem("`store.url` holds a password: keep it out of promptci.yaml; give it in PGPASSWORD, or the "
                         "whole URL in PROMPTCI_STORE", store, "url")
            return {}
        return {"store_url": url}

    def read_models(self, data: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]]:
        """`models:` holds names, or `{name: ..., params: {...}}` entries for a model's own params."""
        models = data["models"]
        items = [models] if isinstance(models, (str, dict)) else models
        if not isinstance(items, list):
            self.problem("`models` must be a model name or a list of them, e.g. [openai:gpt-4o-mini]",
                         data, "models")
            return (), {}
        names: list[str] = []
        params: dict[str, dict[str, Any]] = {}
        is_list = isinstance(models, list)
        for index, item in enumerate(items):
            parent, key = (items, index) if is_list else (data, "models")  # where a problem points
            if isinstance(item, str) and item.strip():
                names.append(item.strip())
            elif isinstance(item, dict):
                entry = self.read_model_entry(item)
                if entry is not None:
                    names.append(entry[0])
                    params[entry[0]] = entry[1]
            else:
                self.problem(f"`models[{index}]` must be a model name like openai:gpt-4o-mini or "
                             "{name: openai:gpt-4o-mini, params: {max_tokens: 200}}", parent, key)
        return tuple(names), params

    def read_model_entry(self, item: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
        self.problems.extend(unknown_keys(item, MODEL_ENTRY_KEYS, "a `models:` entry", CONFIG_FILE))
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            self.problem("a `models:` entry needs `name:` (a model name like openai:gpt-4o-mini)", item)
            return None
        params = self.read_params(item, f"models.{name.strip()}.params") if "params" in item else {}
        return (name.strip(), params) if params is not None else None

    def read_params(self, container: Mapping[str, Any], label: str) -> dict[str, Any] | None:
        """Request params as a prompt's front matter writes them; None (and a problem) when malformed."""
        from promptci.loading.yamlfile import to_plain

        params = container["params"]
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            self.problem(f"`{label}` must be a mapping like {{temperature: 0, max_tokens: 300}}, got {params!r}",
                         container, "params")
            return None
        before = len(self.problems)
        for key in OUTPUT_LIMIT_KEYS:
            if key in params:
                self.number(params, key, minimum=0, allow_zero=False, integer=True, label=f"{label}.{key}")
        self.check_no_secrets(params, label)
        return to_plain(params) if len(self.problems) == before else None

    def number(self, mapping: Any, key: str, *, minimum: float, integer: bool = False,
               allow_zero: bool = True, maximum: float | None = None, label: str = "") -> Any:
        value = mapping[key]
        label = label or key
        kind = "an integer" if integer else "a number"
        is_number = (isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
                     and math.isfinite(value))  # .nan compares false with every bound, .inf passes a minimum
        too_small = is_number and (value < minimum or (value == minimum and not allow_zero))
        too_big = is_number and maximum is not None and value > maximum
        if not is_number or too_small or too_big:
            bounds = f">= {minimum}" if allow_zero else f"> {minimum}"
            if maximum is not None:
                bounds = f"between {minimum} and {maximum}"
            self.problem(f"`{label}` must be {kind} {bounds}, got {value!r}", mapping, key)
            return None
        return value if integer else float(value)

    def section(self, data: Mapping[str, Any], key: str, known: Sequence[str] | None = None) -> Any:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problem(f"`{key}` must be a mapping", data, key)
            return None
        if known is not None:
            self.problems.extend(unknown_keys(value, known, f"`{key}`", CONFIG_FILE))
        return value

    def read_money(self, data: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        pricing = self.section(data, "pricing")
        if pricing is not None:
            values["pricing"] = {model: price for model, entry in pricing.items()
                                 if (price := self.read_price(pricing, model, entry)) is not None}
        budgets = self.section(data, "budgets", ("run_usd", "daily_usd"))
        if budgets is not None:
            amounts = {key: self.number(budgets, key, minimum=0, allow_zero=False, label=f"budgets.{key}")
                       for key in ("run_usd", "daily_usd") if budgets.get(key) is not None}
            values["budgets"] = Budgets(**amounts)
        gate = self.section(data, "gate", GATE_KEYS)
        if gate is not None:
            values["gate"] = self.read_gate(gate)
        return values

    def read_gate(self, gate: Mapping[str, Any]) -> Gate:
        rate = None
        if "min_pass_rate" in gate:
            rate = self.number(gate, "min_pass_rate", minimum=0, maximum=1, label="gate.min_pass_rate")
        metrics = self.section(gate, "metrics")
        thresholds = tuple(threshold for name in (metrics or {})
                           if (threshold := self.read_threshold(metrics, name)) is not None)
        return Gate(min_pass_rate=Gate.min_pass_rate if rate is None else rate, metrics=thresholds)

    def read_threshold(self, metrics: Mapping[str, Any], name: Any) -> MetricThreshold | None:
        from promptci.loading.yamlfile import line_of

        if not isinstance(name, str) or not name.strip():
            self.problem(f"`gate.metrics` keys are metric names (as comparators' `metric:` write them), got {name!r}",
                         metrics, name)
            return None
        minimum = self.number(metrics, name, minimum=0, maximum=1, label=f"gate.metrics.{name}")
        if minimum is None:
            return None
        return MetricThreshold(name, minimum, Location(CONFIG_FILE, line_of(metrics, name)))

    def read_price(self, pricing: Mapping[str, Any], model: str, entry: Any) -> Price | None:
        if not isinstance(entry, dict):
            self.problem(f"pricing for {model!r} must be a mapping like {{input: 0.15, output: 0.60}} "
                         "(USD per million tokens)", pricing, model)
            return None
        self.problems.extend(unknown_keys(entry, ("input", "output", "cached_input", "max_output_tokens"),
                                          f"pricing for {model!r}", CONFIG_FILE))
        missing = [key for key in ("input", "output") if key not in entry]
        if missing:
            self.problem(f"pricing for {model!r} needs {' and '.join(missing)} (USD per million tokens)",
                         pricing, model)
            return None
        amounts = {key: self.number(entry, key, minimum=0, label=f"pricing.{model}.{key}")
                   for key in ("input", "output", "cached_input") if entry.get(key) is not None}
        if entry.get("max_output_tokens") is not None:
            amounts["max_output_tokens"] = self.number(entry, "max_output_tokens", minimum=0, integer=True,
                                                       allow_zero=False, label=f"pricing.{model}.max_output_tokens")
        if any(amount is None for amount in amounts.values()):
            return None
        return Price(**amounts)

    def read_providers(self, value: Any, data: Any) -> dict[str, ProviderSettings]:
        providers = {name: ProviderSettings(name, name) for name in DEFAULT_KEY_ENV}
        if value is None:
            return providers
        if not isinstance(value, dict):
            self.problem("`providers` must be a mapping of names to endpoints", data, "providers")
            return providers
        for name, entry in value.items():
            if not isinstance(name, str) or not name or ":" in name or name in RESERVED_PROVIDER_NAMES:
                self.problem(f"provider name {name!r} is not allowed: use letters, digits, '-' or '_' "
                             f"(not ':', and not {', '.join(sorted(RESERVED_PROVIDER_NAMES))})", value, name)
                continue
            fields = self.provider_fields(entry, value, name, f"providers.{name}")
            if fields is None:
                continue
            if name in providers:
                providers[name] = replace(providers[name], **fields)
            elif "type" not in fields:
                self.problem(f"provider {name!r} needs `type:` (e.g. `type: openai` for any "
                             "OpenAI-compatible server)", value, name)
            else:
                providers[name] = ProviderSettings(name=name, **fields)
        return providers

    def provider_fields(self, entry: Any, parent: Any, name: str, label: str) -> dict[str, Any] | None:
        if entry is None:
            return {}
        if not isinstance(entry, dict):
            self.problem(f"`{label}` must be a mapping (type, base_url, api_key_env, rpm, tpm, params)", parent, name)
            return None
        before = len(self.problems)
        self.check_no_secrets(entry, label)
        fields: dict[str, Any] = {}
        if "type" in entry:
            self.check_provider_type(entry, label)
            fields["type"] = entry["type"]
        for key in ("base_url", "api_key_env"):
            if key in entry and not isinstance(entry[key], str):
                self.problem(f"`{label}.{key}` must be a string", entry, key)
            elif key in entry:
                fields[key] = entry[key]
        if isinstance(entry.get("api_key_env"), str) and not _ENV_NAME.match(entry["api_key_env"]):
            self.problem(f"`{label}.api_key_env` must name an environment variable (like MY_API_KEY), "
                         "not hold the key itself", entry, "api_key_env")
        for limit in ("rpm", "tpm"):
            if entry.get(limit) is not None:
                fields[limit] = self.number(entry, limit, minimum=0, allow_zero=False, label=f"{label}.{limit}")
        if "params" in entry:
            fields["params"] = self.read_params(entry, f"{label}.params")
        options = {k: v for k, v in entry.items() if k not in PROVIDER_FIELDS}
        if options:
            from promptci.loading.yamlfile import to_plain

            fields["options"] = to_plain(options)
        return fields if len(self.problems) == before else None

    def check_provider_type(self, entry: Mapping[str, Any], label: str) -> None:
        from promptci import registry

        known = [n for n in registry.providers.names() if n not in RESERVED_PROVIDER_NAMES]
        kind = entry["type"]
        if kind not in known:
            self.problem(f"unknown provider type {kind!r} in `{label}`{suggest(str(kind), known)}; "
                         f"known: {', '.join(known)}", entry, "type")

    def check_no_secrets(self, value: Any, label: str, parent: Any = None, key: Any = None) -> None:
        """Keys never live in promptci.yaml; the message never repeats the value."""
        if isinstance(value, dict):
            for child_key, child in value.items():
                if isinstance(child_key, str) and child_key.lower() in SECRET_KEYS:
                    self.problem(f"`{label}.{child_key}` looks like a literal API key; keys never live in "
                                 "promptci.yaml: put it in an environment variable and name that variable "
                                 "with `api_key_env: MY_API_KEY`", value, child_key)
                else:
                    self.check_no_secrets(child, f"{label}.{child_key}", value, child_key)
        elif isinstance(value, list):
            for child in value:
                self.check_no_secrets(child, label, parent, key)
        elif isinstance(value, str) and value.startswith(("sk-", "sk_")) and parent is not None:
            self.problem(f"`{label}` holds what looks like an API key; keys never live in promptci.yaml: "
                         "use `api_key_env: MY_API_KEY`", parent, key)

    def read_environments(self, data: Any, providers: Mapping[str, ProviderSettings]
                          ) -> dict[str, dict[str, dict[str, Any]]]:
        if not isinstance(data, dict):
            return {}
        environments = self.section(data, "environments")
        overlays: dict[str, dict[str, dict[str, Any]]] = {}
        for env_name, env in (environments or {}).items():
            if not isinstance(env, dict):
                self.problem(f"environment {env_name!r} must be a mapping with `providers:`", environments,
                             env_name)
                continue
            self.problems.extend(unknown_keys(env, ("providers",), f"environment {env_name!r}", CONFIG_FILE))
            overlays[env_name] = {}
            targets = env.get("providers") or {}
            if not isinstance(targets, dict):
                self.problem(f"`environments.{env_name}.providers` must be a mapping", env, "providers")
                continue
            for target, entry in targets.items():
                if target not in providers:
                    self.problem(f"environment {env_name!r} overrides unknown provider {target!r}"
                                 f"{suggest(str(target), providers)}; known: {', '.join(providers)}",
                                 targets, target)
                    continue
                fields = self.provider_fields(entry, targets, target, f"environments.{env_name}.{target}")
                if fields is not None:
                    overlays[env_name][target] = fields
        return overlays


def _apply_overlays(providers: Mapping[str, ProviderSettings], overlays: Mapping[str, Mapping[str, Any]]
                    ) -> dict[str, ProviderSettings]:
    result = dict(providers)
    for name, fields in overlays.items():
        merged = dict(fields)
        for key in ("options", "params"):  # an environment adds to these, key by key
            if key in merged:
                merged[key] = {**getattr(result[name], key), **merged[key]}
        result[name] = replace(result[name], **merged)
    return result
