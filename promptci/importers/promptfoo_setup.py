"""promptfoo `prompts:` and `providers:` -> promptci prompts, models and named providers."""

from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptci.errors import ConfigError
from promptci.loading.yamlfile import item_line, line_of, load_yaml, read_text, relative_path, type_name
from promptci.types import Location

Problem = tuple[str, int, str, str]  # file, line, type, reason
PARAMS = {"temperature": "temperature", "max_tokens": "max_tokens", "top_p": "top_p", "seed": "seed",
          "stop": "stop", "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty"}
ENDPOINT_KEYS = ("apiBaseUrl", "apiHost", "apiKeyEnvar")
# promptfoo providers that speak OpenAI's API at a known address: promptci names them as providers.
OPENAI_COMPATIBLE = {
    "openrouter": ("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "groq": ("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "deepseek": ("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "togetherai": ("https://api.together.xyz/v1", "TOGETHER_API_KEY"),
}
NUNJUCKS_FILTERS = ((re.compile(r"\|\s*load\b"), "| from_json"),)  # Nunjucks filters promptci names otherwise
# Nunjucks that Jinja2 reads differently or not at all: (pattern, what to do).
NUNJUCKS_ONLY = (
    (re.compile(r"\|\s*dump\b"), "Nunjucks filter `dump`: use `tojson` in Jinja2"),
    (re.compile(r"\{[{%][^}]*\.length\b"), "JavaScript `.length`: use `| length` in Jinja2"),
    (re.compile(r"\{[{%][^}]*\.(toUpperCase|toLowerCase|trim|join)\("), "a JavaScript method call: use a Jinja2 "
                                                                         "filter (upper, lower, trim, join)"),
    (re.compile(r"\{%-?\s*for\s+\w+\s*,\s*\w+\s+in\s+[\w.]+\s*-?%\}"), "`for k, v in obj` over a mapping: write "
                                                                        "`obj.items()` in Jinja2"),
    (re.compile(r"\{\{[^}]*\b_conversation\b"), "promptfoo's `_conversation` variable does not exist in promptci"),
)


@dataclass(frozen=True)
class ImportedPrompt:
    name: str
    text: str | None = None  # a text template, or
    messages: list[dict[str, str]] | None = None  # a chat
    source: Path | None = None  # the promptfoo file it was read from


@dataclass
class ProviderSetup:
    models: list[str] = field(default_factory=list)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # the same for every model: prompt front matter
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # per model, when they differ
    problems: list[Problem] = field(default_factory=list)


def read_prompts(value: Any, config: Any, base: Path, where: str) -> tuple[list[ImportedPrompt], list[Problem]]:
    items: list[Any] = list(value.items()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    prompts: list[ImportedPrompt] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        line = _entry_line(value, index, item, config, "prompts")
        label = None
        if isinstance(item, tuple):  # {file://path: label}
            item, label = item
        if isinstance(item, dict):
            label = item.get("label")
            item = item.get("raw", item.get("id"))
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"a prompt must be text, a file:// path or {{raw|id, label}}, got {type_name(item)}",
                              Location(where, line))
        found = _prompt(item, label, index + 1, base, Location(where, line), problems)
        for prompt in found:
            problems.extend((where, line, "template", f"prompt {prompt.name!r}: {reason}")
                            for reason in nunjucks_problems(prompt))
        prompts.extend(found)
    return _unique_names(prompts), problems


def _prompt(item: str, label: Any, position: int, base: Path, location: Location,
            problems: list[Problem]) -> list[ImportedPrompt]:
    if not item.startswith("file://") and not _names_a_file(item, base):
        name = _slug(label) or f"prompt-{position}"
        return [_from_text(name, item, is_json=item.lstrip().startswith("["))]
    reference = item.removeprefix("file://")
    if re.search(r"\.(js|cjs|mjs|ts|py)(:\w+)?$", reference):
        problems.append((location.file or "", location.line or 0, "prompt",
                         f"a prompt function ({reference}) is not converted; write its output as a template"))
        return []
    paths = sorted(Path(p) for p in glob.glob(str(base / reference))) if "*" in reference else [base / reference]
    if not paths or not all(p.is_file() for p in paths):
        raise ConfigError(f"prompt {item!r} names no file (paths are relative to the config's folder)", location)
    prompts: list[ImportedPrompt] = []
    for path in paths:
        name = _slug(label) if label and len(paths) == 1 else _slug(path.stem)
        suffix = path.suffix.lower()
        if suffix in (".yaml", ".yml"):
            found = [_chat(name, load_yaml(path, base), Location(relative_path(path, base), 1))]
        elif suffix == ".json" and not _is_chat(_json_or_none(read_text(path, base))):
            raise ConfigError("a .json prompt must be a chat: a list of {role, content}",
                              Location(relative_path(path, base), 1))
        else:
            found = _split_text(name, read_text(path, base), suffix == ".json")
        prompts.extend(ImportedPrompt(p.name, p.text, p.messages, path.resolve() if len(found) == 1 else None)
                       for p in found)
    return prompts


def _names_a_file(item: str, base: Path) -> bool:
    """promptfoo reads a prompt given without file:// from the file it names, when there is one."""
    text = item.strip()
    if "\n" in text or "{{" in text or len(text) > 255:
        return False
    try:
        return (base / text).is_file() or ("*" in text and bool(glob.glob(str(base / text))))
    except (OSError, ValueError):
        return False


def _split_text(name: str, text: str, is_json: bool) -> list[ImportedPrompt]:
    """promptfoo splits a text prompt file into several prompts at lines holding only `---`."""
    if is_json:
        return [_from_text(name, text, is_json=True)]
    parts = [part for part in re.split(r"(?m)^---[ \t]*\n", text) if part.strip()]
    if len(parts) <= 1:
        return [_from_text(name, text, is_json=False)]
    return [_from_text(f"{name}-{number}", part, is_json=False) for number, part in enumerate(parts, start=1)]


def _jinja(text: str) -> str:
    for pattern, replacement in NUNJUCKS_FILTERS:
        text = pattern.sub(replacement, text)
    return text


def _from_text(name: str, text: str, is_json: bool) -> ImportedPrompt:
    if is_json:
        try:
            messages = json.loads(text)
        except json.JSONDecodeError:
            messages = None
        if _is_chat(messages):
            return ImportedPrompt(name, messages=[{"role": str(m["role"]), "content": _jinja(str(m["content"]))}
                                                  for m in messages])
    text = _jinja(text)
    return ImportedPrompt(name, text=text if text.endswith("\n") else text + "\n")


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _is_chat(messages: Any) -> bool:
    return isinstance(messages, list) and bool(messages) and all(
        isinstance(m, dict) and "role" in m and isinstance(m.get("content"), str) for m in messages)


def _chat(name: str, messages: Any, location: Location) -> ImportedPrompt:
    if not _is_chat(messages):
        raise ConfigError("a chat prompt must be a list of {role, content}", location)
    return ImportedPrompt(name, messages=[{"role": str(m["role"]), "content": _jinja(str(m["content"]))}
                                          for m in messages])


def nunjucks_problems(prompt: ImportedPrompt) -> list[str]:
    texts = [prompt.text] if prompt.text is not None else [m["content"] for m in prompt.messages or ()]
    return [reason for pattern, reason in NUNJUCKS_ONLY if any(pattern.search(text) for text in texts)]


def _unique_names(prompts: list[ImportedPrompt]) -> list[ImportedPrompt]:
    seen: dict[str, int] = {}
    unique = []
    for prompt in prompts:
        seen[prompt.name] = seen.get(prompt.name, 0) + 1
        name = prompt.name if seen[prompt.name] == 1 else f"{prompt.name}-{seen[prompt.name]}"
        unique.append(ImportedPrompt(name, prompt.text, prompt.messages, prompt.source))
    return unique


def read_providers(value: Any, config: Any, where: str) -> ProviderSetup:
    setup = ProviderSetup()
    if value is None:
        return setup
    items: list[Any] = list(value.items()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    all_params: list[tuple[str, dict[str, Any]]] = []
    for index, item in enumerate(items):
        line = _entry_line(value, index, item, config, "providers")
        options: dict[str, Any] = {}
        if isinstance(item, tuple):  # {id: {config}}
            item, options = item[0], dict(item[1] or {})
        elif isinstance(item, dict):
            options, item = dict(item), item.get("id")
        if not isinstance(item, str):
            raise ConfigError(f"a provider must be an id like openai:gpt-4o-mini, got {type_name(item)}",
                              Location(where, line))
        params = _add_provider(item, options, where, line, setup)
        if params is not None:
            all_params.append((setup.models[-1], params))
    if all_params and all(p == all_params[0][1] for _m, p in all_params):
        setup.params = all_params[0][1]
    else:  # different params per model: promptci.yaml's `models: [{name, params}]`
        setup.model_params = {model: params for model, params in all_params if params}
    return setup


def _add_provider(provider_id: str, options: dict[str, Any], where: str, line: int,
                  setup: ProviderSetup) -> dict[str, Any] | None:
    kind, model = _kind_and_model(provider_id)
    if kind is None:
        setup.problems.append((where, line, "provider", f"provider {provider_id!r} has no promptci equivalent; "
                                                        "add it as a named provider or python: function by hand"))
        return None
    settings = dict(options.get("config") or {})
    params = {PARAMS[key]: settings.pop(key) for key in list(settings) if key in PARAMS}
    if "response_format" in settings:  # a request param; promptci's `output: json` would add a check
        params["response_format"] = settings.pop("response_format")
    endpoint = {key: settings.pop(key) for key in ENDPOINT_KEYS if key in settings}
    if "apiKey" in settings:
        settings.pop("apiKey")
        setup.problems.append((where, line, "provider", "`apiKey` is not copied (keys never live in files): "
                                                        "put the key in an environment variable, named by api_key_env"))
    if settings:
        setup.problems.append((where, line, "provider", f"provider config {', '.join(map(str, settings))} "
                                                        "is not converted"))
    if kind == "echo":
        setup.models.append("echo")
        return params
    name = kind
    if kind in OPENAI_COMPATIBLE:
        base_url, key_env = OPENAI_COMPATIBLE[kind]
        endpoint.setdefault("apiBaseUrl", base_url)
        endpoint.setdefault("apiKeyEnvar", key_env)
    if kind == "ollama":
        endpoint.setdefault("apiBaseUrl", "http://127.0.0.1:11434/v1")
    if endpoint:
        name = _slug(options.get("label")) or (kind if kind not in ("openai", "anthropic") else f"{kind}-{line}")
        base_url = str(endpoint.get("apiBaseUrl") or endpoint.get("apiHost"))
        entry: dict[str, Any] = {"type": "anthropic" if kind == "anthropic" else "openai", "base_url": base_url}
        if "apiKeyEnvar" in endpoint:
            entry["api_key_env"] = endpoint["apiKeyEnvar"]
        setup.providers[name] = entry
    setup.models.append(f"{name}:{model}")
    return params


def _kind_and_model(provider_id: str) -> tuple[str | None, str]:
    parts = provider_id.split(":")
    if parts[0] == "openai" and len(parts) >= 2:
        return "openai", ":".join(parts[2:] if parts[1] in ("chat", "responses") and len(parts) > 2 else parts[1:])
    if parts[0] == "anthropic" and len(parts) >= 2:
        return "anthropic", ":".join(parts[2:] if parts[1] == "messages" and len(parts) > 2 else parts[1:])
    if parts[0] == "ollama" and len(parts) >= 2:
        return "ollama", ":".join(parts[2:] if parts[1] in ("chat", "completion") and len(parts) > 2 else parts[1:])
    if parts[0] == "echo":
        return "echo", ""
    if parts[0] in OPENAI_COMPATIBLE and len(parts) >= 2:
        return parts[0], ":".join(parts[1:])
    return None, ""


def model_name(provider_id: str) -> str | None:
    """The promptci model name for a promptfoo provider id (a grading provider), None when there is none."""
    kind, model = _kind_and_model(provider_id)
    if kind is None or kind == "echo" or not model:
        return None
    return f"{kind}:{model}"


def _entry_line(value: Any, index: int, item: Any, config: Any, key: str) -> int:
    """The line of a list item, of a mapping entry (`{id: options}`), or of the key holding a single value."""
    if isinstance(value, list):
        return item_line(value, index)
    if isinstance(value, dict) and isinstance(item, tuple):
        return line_of(value, item[0])
    return line_of(config, key)


def _slug(value: Any) -> str:
    return re.sub(r"[^a-z0-9_]+", "-", str(value or "").lower()).strip("-")[:60]
