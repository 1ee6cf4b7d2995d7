"""Rendering in the sandbox: strict variables named with both files, includes kept inside prompts/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers_project import make_project

from promptci.errors import ConfigError, TemplateError
from promptci.loading.prompts import load_prompt
from promptci.loading.render import Renderer, undeclared_variables
from promptci.types import Case, Location, Prompt

CASE_LOCATION = Location("goldens/greet.yaml", 12)


def case(**inputs: object) -> Case:
    return Case(id="c1", prompt="greet", location=CASE_LOCATION, input=inputs)


def prompt_at(root: Path, relative: str) -> Prompt:
    return load_prompt(root / relative, root)


FRONT = """\
---
system: You are {{ persona }}.
---
Hi {{ name }}, <b>{{ '&' }}</b>
{% include "_footer.j2" %}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path, {"prompts/greet.txt": FRONT, "prompts/_footer.j2": "Bye {{ who }}\n"})


def test_render_system_and_user_with_trailing_newline(project: Path) -> None:
    messages = Renderer(project).render(prompt_at(project, "prompts/greet.txt"), case(persona="kind", name="Ada",
                                                                                      who="Bob"))
    assert messages == ({"role": "system", "content": "You are kind."},
                        {"role": "user", "content": "Hi Ada, <b>&</b>\nBye Bob\n\n"})


def test_missing_variable_names_prompt_golden_and_variable(project: Path) -> None:
    with pytest.raises(TemplateError) as info:
        Renderer(project).render(prompt_at(project, "prompts/greet.txt"), case(persona="kind", who="Bob"))
    text = str(info.value)
    assert isinstance(info.value, ConfigError)
    assert text.startswith("goldens/greet.yaml:12: ")
    assert "prompts/greet.txt:4" in text
    assert "variable 'name' is undefined" in text
    assert "add `name:` to the case's input" in text


def test_missing_variable_in_the_system_template(project: Path) -> None:
    with pytest.raises(TemplateError, match=r"prompts/greet.txt:2: variable 'persona' is undefined"):
        Renderer(project).render(prompt_at(project, "prompts/greet.txt"), case(name="A", who="B"))


def test_missing_variable_inside_an_include_names_the_included_file(project: Path) -> None:
    with pytest.raises(TemplateError, match=r"prompts/_footer.j2:1: variable 'who' is undefined"):
        Renderer(project).render(prompt_at(project, "prompts/greet.txt"), case(persona="p", name="A"))


def test_include_escaping_prompts_fails(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    root = make_project(tmp_path / "proj", {
        "prompts/up.txt": 'x\n{% include "../../secret.txt" %}\n',
        "prompts/link.txt": '{% include "_linked.txt" %}\n',
        "goldens/secret.txt": "also secret"})
    os.symlink(tmp_path / "secret.txt", root / "prompts" / "_linked.txt")
    renderer = Renderer(root)
    with pytest.raises(TemplateError, match=r"prompts/up.txt:2: include '../../secret.txt' not found inside prompts/"):
        renderer.render(prompt_at(root, "prompts/up.txt"), case())
    with pytest.raises(TemplateError) as info:
        renderer.render(prompt_at(root, "prompts/link.txt"), case())
    assert "TOP SECRET" not in str(info.value)
    assert "resolves outside prompts/" in str(info.value)


def test_sandbox_blocks_unsafe_attribute_access(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"prompts/p.txt": "{{ ''.__class__.__mro__[1].__subclasses__() }}\n"})
    with pytest.raises(TemplateError, match="SecurityError"):
        Renderer(root).render(prompt_at(root, "prompts/p.txt"), case())


def test_other_render_failures_become_template_errors(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"prompts/p.txt": "a\n{{ n + 1 }}\n"})
    with pytest.raises(TemplateError, match=r"prompts/p.txt:2: TypeError"):
        Renderer(root).render(prompt_at(root, "prompts/p.txt"), case(n="text"))


def test_compiled_templates_are_cached(project: Path) -> None:
    renderer = Renderer(project)
    prompt = prompt_at(project, "prompts/greet.txt")
    first = renderer._template(prompt, 1, prompt.messages[1])
    renderer.render(prompt, case(persona="p", name="A", who="B"))
    assert renderer._template(prompt, 1, prompt.messages[1]) is first
    assert renderer.render(prompt, case(persona="p", name="Z", who="B"))[1]["content"].startswith("Hi Z,")


def test_undeclared_variables_follow_includes_and_skip_locals(tmp_path: Path) -> None:
    root = make_project(tmp_path, {
        "prompts/p.txt": "{% set greeting = 'hi' %}{{ greeting }} {{ name }}\n"
                         "{% for item in items %}{{ item }}{% endfor %}{% include '_f.j2' %}{% include '_f.j2' %}\n",
        "prompts/_f.j2": "{{ footer | default('') }}\n"})
    assert undeclared_variables(prompt_at(root, "prompts/p.txt"), root) == {"name", "items", "footer"}


def test_chat_prompt_renders_every_message(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"prompts/chat.yaml": "messages:\n  - {role: user, content: 'Q: {{ q }}'}\n"
                                                        "  - {role: assistant, content: A}\n"
                                                        "  - {role: user, content: '{{ q }}?'}\n"})
    messages = Renderer(root).render(prompt_at(root, "prompts/chat.yaml"), case(q="why"))
    assert [m["content"] for m in messages] == ["Q: why", "A", "why?"]
