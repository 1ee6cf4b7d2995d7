"""Rendering prompts for cases in Jinja2's sandbox: strict variables, includes confined to prompts/."""

from __future__ import annotations

import re
import traceback
from pathlib import Path
from typing import Any

from promptci.errors import TemplateError
from promptci.types import Case, Message, MessageTemplate, Prompt

_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined")


def _make_loader(prompts_dir: Path) -> Any:
    from jinja2 import FileSystemLoader, TemplateNotFound

    class PromptsLoader(FileSystemLoader):
        """FileSystemLoader that also refuses symlinks leading out of prompts/."""

        def get_source(self, environment: Any, template: str) -> Any:
            source, filename, uptodate = super().get_source(environment, template)
            base = prompts_dir.resolve()
            if base not in Path(filename).resolve().parents:
                raise TemplateNotFound(f"{template} (it resolves outside prompts/)")
            return source, filename, uptodate

    return PromptsLoader(str(prompts_dir))


class Renderer:
    """Renders a Prompt's messages with a Case's input; compiled templates are cached."""

    def __init__(self, root: Path) -> None:
        from jinja2 import StrictUndefined
        from jinja2.sandbox import SandboxedEnvironment

        self.root = root.resolve()
        self.prompts_dir = self.root / "prompts"
        self.env = SandboxedEnvironment(
            loader=_make_loader(self.prompts_dir),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
        )
        self.env.filters["from_json"] = from_json
        self._compiled: dict[tuple[str, str, int], Any] = {}

    def render(self, prompt: Prompt, case: Case) -> tuple[Message, ...]:
        """The rendered messages ({"role", "content"}) for one case; TemplateError naming both files."""
        return tuple(
            {"role": message.role, "content": self._render_message(prompt, index, message, case)}
            for index, message in enumerate(prompt.messages)
        )

    def render_turns(self, case: Case) -> tuple[str, ...]:
        """The case's scripted `turns:` rendered with its input, in the same sandbox; TemplateError at the turn's
        line in the golden file."""
        rendered = []
        for number, turn in enumerate(case.user_turns, start=1):
            try:
                rendered.append(self.env.from_string(turn.content).render(**case.input))
            except Exception as exc:  # user templates with user data: syntax, undefined variables, sandbox
                from jinja2 import UndefinedError

                what = _undefined_message(exc) if isinstance(exc, UndefinedError) else f"{type(exc).__name__}: {exc}"
                raise TemplateError(f"rendering turn {number} of case {case.id!r} failed at {turn.location}: {what}",
                                    turn.location) from None
        return tuple(rendered)

    def _template(self, prompt: Prompt, index: int, message: MessageTemplate) -> Any:
        key = (prompt.path, prompt.source_hash, index)
        if key not in self._compiled:
            code = self.env.compile(message.content, name=prompt.path, filename=prompt.path)
            self._compiled[key] = self.env.template_class.from_code(self.env, code, self.env.make_globals(None))
        return self._compiled[key]

    def _render_message(self, prompt: Prompt, index: int, message: MessageTemplate, case: Case) -> str:
        from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError

        try:
            return self._template(prompt, index, message).render(**case.input)
        except TemplateSyntaxError as exc:
            # A syntax error inside an included file (the prompt itself was checked at load).
            where = f"{self._relative(exc.filename)}:{exc.lineno}" if exc.filename else prompt.path
            raise self._error(prompt, case, where, f"template syntax error: {exc.message}") from None
        except TemplateNotFound as exc:
            where = self._where(exc, prompt, message)
            raise self._error(prompt, case, where,
                              f"include {exc.name!r} not found inside prompts/ (includes resolve in prompts/ only)"
                              ) from None
        except UndefinedError as exc:
            where = self._where(exc, prompt, message)
            raise self._error(prompt, case, where, _undefined_message(exc)) from None
        except Exception as exc:
            # Any other failure while rendering user templates with user data (sandbox, types, filters).
            where = self._where(exc, prompt, message)
            raise self._error(prompt, case, where, f"{type(exc).__name__}: {exc}") from None

    def _where(self, exc: BaseException, prompt: Prompt, message: MessageTemplate) -> str:
        """prompt_file:line of the innermost template frame of exc (UndefinedError has no line of its own)."""
        prompts_prefix = str(self.prompts_dir) + "/"
        frames = [
            frame for frame in traceback.extract_tb(exc.__traceback__)
            if frame.filename == prompt.path or frame.filename.startswith(prompts_prefix)
        ]
        line = frames[-1].lineno if frames else None
        if line is None:
            return f"{prompt.path}:{message.line}" if message.line else prompt.path
        if frames[-1].filename == prompt.path:
            return f"{prompt.path}:{message.line + line - 1}"
        return f"{self._relative(frames[-1].filename)}:{line}"

    def _relative(self, filename: str) -> str:
        try:
            return Path(filename).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return filename

    @staticmethod
    def _error(prompt: Prompt, case: Case, where: str, what: str) -> TemplateError:
        return TemplateError(f"rendering {prompt.name!r} for case {case.id!r} failed at {where}: {what}",
                             case.location)

    def undeclared_variables(self, prompt: Prompt) -> set[str]:
        """Variables the prompt's templates (and the files they include) read from the case input."""
        names: set[str] = set()
        seen: set[str] = set()
        for message in prompt.messages:
            names |= self._variables_of(message.content, seen)
        return names

    def _variables_of(self, source: str, seen: set[str]) -> set[str]:
        from jinja2 import TemplateError as JinjaTemplateError
        from jinja2 import meta

        try:
            tree = self.env.parse(source)
            names = set(meta.find_undeclared_variables(tree))  # compiles: an unknown filter raises here
        except JinjaTemplateError:  # the render check reports it with path:line
            return set()
        loader = self.env.loader
        for included in meta.find_referenced_templates(tree):
            if included is None or included in seen or loader is None:
                continue
            seen.add(included)
            try:
                included_source = loader.get_source(self.env, included)[0]
            except JinjaTemplateError:
                continue
            names |= self._variables_of(included_source, seen)
        return names


def from_json(text: Any) -> Any:
    """The `from_json` filter: a JSON text parsed (Nunjucks' `load`), e.g. {% set d = data | from_json %}."""
    import json

    if not isinstance(text, str):
        return text
    return json.loads(text)


def undeclared_variables(prompt: Prompt, root: Path) -> set[str]:
    """Variables a prompt reads from the case input (for lint)."""
    return Renderer(root).undeclared_variables(prompt)


def _undefined_message(exc: Exception) -> str:
    text = str(exc)
    match = _UNDEFINED_NAME.match(text)
    if match is None:
        return f"{text} (check the case's input)"
    name = match.group(1)
    return (f"variable {name!r} is undefined: add `{name}:` to the case's input, or give it a default "
            f"in the template ({{{{ {name} | default('') }}}})")
