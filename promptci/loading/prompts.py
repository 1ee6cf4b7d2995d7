"""Prompt files -> Prompt: text templates with optional YAML front matter, and YAML chat prompts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptci.config import unknown_keys
from promptci.errors import ConfigError, Problem, TemplateError
from promptci.loading.yamlfile import (
    item_line,
    line_of,
    parse_yaml,
    read_text,
    relative_path,
    relative_to,
    resolve_inside,
    to_plain,
    type_name,
    value_line,
)
from promptci.types import Location, MessageTemplate, Prompt, content_hash

TEXT_SUFFIXES = (".txt", ".j2", ".jinja", ".md")
CHAT_SUFFIXES = (".yaml", ".yml")
PROMPT_SUFFIXES = TEXT_SUFFIXES + CHAT_SUFFIXES
FRONT_MATTER_KEYS = ("system", "output", "params", "model", "tools")
CHAT_KEYS = ("messages", *FRONT_MATTER_KEYS)
ROLES = ("system", "user", "assistant")
OUTPUT_KINDS = ("text", "json")


@dataclass
class PromptScan:
    """Every prompt under prompts/ that loaded, the problems of those that did not, and their names."""

    prompts: dict[str, Prompt] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)


def prompt_name(path: Path, root: Path) -> str:
    """prompts/triage/route.txt -> "triage/route"."""
    relative = relative_to(path, root / "prompts") or Path(path.name)
    return relative.with_suffix("").as_posix()


def is_prompt_file(path: Path, prompts_dir: Path) -> bool:
    """Template files count; names starting with "_" or "." are partials and hidden files, not prompts."""
    if not path.is_file() or path.suffix.lower() not in PROMPT_SUFFIXES:
        return False
    parts = path.relative_to(prompts_dir).parts
    return not any(part.startswith(("_", ".")) for part in parts)


def load_prompt(path: Path, root: Path) -> Prompt:
    """Parse one prompt file and syntax-check its templates; ConfigError/TemplateError with path:line."""
    text = read_text(path, root)
    where = relative_path(path, root)
    problems: list[Problem] = []
    if path.suffix.lower() in CHAT_SUFFIXES:
        meta, messages = _read_chat(parse_yaml(text, where), where, problems)
    else:
        meta, messages = _read_text_prompt(text, where, problems)
    system = meta.get("system")
    if isinstance(system, str):
        if any(m.role == "system" for m in messages):
            problems.append(Problem("both `system:` and a system message are given; keep one",
                                    Location(where, line_of(meta, "system"))))
        messages.insert(0, MessageTemplate("system", system, value_line(meta, "system")))
    params = prompt_params(meta, where, problems)
    syntax_problems = [p for m in messages if (p := check_syntax(m, where)) is not None]
    if problems or syntax_problems:
        cls = TemplateError if not problems else ConfigError
        raise cls.from_problems(problems + syntax_problems)
    return Prompt(
        name=prompt_name(path, root),
        path=where,
        messages=tuple(messages),
        output=meta.get("output", "text"),
        params=params,
        model=meta.get("model"),
        source_hash=content_hash(text),
    )


def prompt_params(meta: Mapping[str, Any], where: str, problems: list[Problem]) -> dict[str, Any]:
    """`params:` with the prompt's `tools:` (in OpenAI's shape) as params["tools"]."""
    params = to_plain(meta.get("params") or {})
    if "tools" in meta:
        from promptci.loading.tools import read_tools

        if "tools" in params:
            problems.append(Problem("tools are given both as `tools:` and in `params:`; keep `tools:`",
                                    Location(where, line_of(meta, "tools"))))
        tools, tool_problems = read_tools(meta["tools"], where, line_of(meta, "tools"))
        problems.extend(tool_problems)
        params["tools"] = tools
    return params


def check_syntax(message: MessageTemplate, where: str) -> Problem | None:
    """A Problem at the file line of a Jinja2 syntax error in the message, or None."""
    from jinja2 import Environment, TemplateSyntaxError

    try:
        Environment().parse(message.content)
    except TemplateSyntaxError as exc:
        line = message.line + (exc.lineno or 1) - 1
        return Problem(f"template syntax error: {exc.message}", Location(where, line))
    return None


def _read_text_prompt(text: str, where: str, problems: list[Problem]
                      ) -> tuple[Mapping[str, Any], list[MessageTemplate]]:
    lines = text.splitlines(keepends=True)
    meta: Mapping[str, Any] = {}
    body_start = 0  # index into lines
    if lines and lines[0].strip() == "---":
        closing = next((i for i, line in enumerate(lines[1:], 1) if line.strip() in ("---", "...")), None)
        if closing is None:
            problems.append(Problem("front matter opened with `---` is never closed; add a `---` line "
                                    "after it", Location(where, 1)))
            return {}, []
        # A blank first line keeps the YAML's line numbers equal to the file's.
        meta = _check_meta(parse_yaml("\n" + "".join(lines[1:closing]), where), where, FRONT_MATTER_KEYS,
                           problems)
        body_start = closing + 1
    body = "".join(lines[body_start:])
    if not body.strip():
        problems.append(Problem("has no template: write the user message after the front matter",
                                Location(where, body_start + 1 if body_start < len(lines) else 1)))
        return meta, []
    return meta, [MessageTemplate("user", body, body_start + 1)]


def _read_chat(data: Any, where: str, problems: list[Problem]
               ) -> tuple[Mapping[str, Any], list[MessageTemplate]]:
    meta = _check_meta(data, where, CHAT_KEYS, problems)
    raw = meta.get("messages")
    if not isinstance(raw, list) or not raw:
        problems.append(Problem("a .yaml prompt needs `messages:`, a list of {role, content} "
                                "(role: system, user or assistant)", Location(where, line_of(meta, "messages") or 1)))
        return meta, []
    messages = []
    for index, item in enumerate(raw):
        location = Location(where, item_line(raw, index))
        if not isinstance(item, dict):
            problems.append(Problem(f"a message must be a mapping {{role, content}}, got {type_name(item)}",
                                    location))
            continue
        problems.extend(unknown_keys(item, ("role", "content"), "a message", where))
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            problems.append(Problem(f"message role must be one of {', '.join(ROLES)}, got {role!r}", location))
        elif not isinstance(content, str):
            problems.append(Problem(f"message `content` must be a string template, got {type_name(content)}",
                                    Location(where, line_of(item, "content"))))
        else:
            messages.append(MessageTemplate(role, content, value_line(item, "content")))
    return meta, messages


def _check_meta(data: Any, where: str, known: tuple[str, ...], problems: list[Problem]) -> Mapping[str, Any]:
    """Validate front matter (or a chat file's top level); drop the keys that are wrong."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(Problem(f"must be a mapping with keys {', '.join(known)}, got {type_name(data)}",
                                Location(where, getattr(data, "line", 1) or 1)))
        return {}
    problems.extend(unknown_keys(data, known, "the prompt", where))
    checks = {
        "system": (lambda v: isinstance(v, str), "a string template"),
        "output": (lambda v: v in OUTPUT_KINDS, "text or json"),
        "params": (lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
                   "a mapping like {temperature: 0, max_tokens: 300}"),
        "model": (lambda v: isinstance(v, str) and bool(v.strip()), "a model name like openai:gpt-4o-mini"),
    }
    for key, (is_valid, expected) in checks.items():
        if key in data and not is_valid(data[key]):
            problems.append(Problem(f"`{key}` must be {expected}, got {data[key]!r}",
                                    Location(where, line_of(data, key))))
            data = _without(data, key)
    return data


def _without(data: Any, key: str) -> Any:
    trimmed = type(data)((k, v) for k, v in data.items() if k != key)
    for attr in ("line", "file", "key_lines", "value_lines"):
        if hasattr(data, attr):
            setattr(trimmed, attr, getattr(data, attr))
    return trimmed


def scan_prompts(root: Path) -> PromptScan:
    """Load every prompt under root/prompts, collecting problems instead of stopping at the first."""
    scan = PromptScan()
    prompts_dir = root / "prompts"
    if not prompts_dir.is_dir():
        return scan
    paths_by_name: dict[str, Path] = {}
    for path in sorted(prompts_dir.rglob("*")):
        if not is_prompt_file(path, prompts_dir):
            continue
        where = relative_path(path, root)
        name = prompt_name(path, root)
        if name in paths_by_name:
            first = relative_path(paths_by_name[name], root)
            scan.problems.append(Problem(f"prompt {name!r} is defined twice ({first} and {where}); "
                                         "rename or remove one", Location(where, 1)))
            scan.broken.add(name)
            scan.prompts.pop(name, None)
            continue
        paths_by_name[name] = path
        try:
            resolve_inside(root, path.relative_to(root), Location(where))
            scan.prompts[name] = load_prompt(path, root)
        except ConfigError as exc:
            scan.problems.extend(exc.problems)
            scan.broken.add(name)
    return scan


def discover_prompts(root: Path) -> dict[str, Prompt]:
    """Every prompt under root/prompts by name; ConfigError listing all problems."""
    scan = scan_prompts(root)
    if scan.problems:
        raise ConfigError.from_problems(scan.problems)
    return scan.prompts
