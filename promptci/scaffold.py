"""`promptci init`: write a starter project that passes `promptci run` at once with the `echo` model."""

from __future__ import annotations

from pathlib import Path

from promptci.errors import PromptCIError

GITIGNORE_LINE = ".promptci/"

CONFIG = """\
# promptci configuration: every key is optional (see the README for all of them).
#
# `echo` returns the rendered prompt, so the starter golden passes offline with no API key and
# pins your template's text. To test a real model, change the models line, for example to:
#
#   models: [openai:gpt-4o-mini]        # needs OPENAI_API_KEY
#
# then write the answers you expect into goldens/.
models: [echo]
comparators: [exact]    # the default for golden files that name none
gate:
  min_pass_rate: 1.0    # every case must pass
"""

PROMPT = """\
---
system: You summarize support tickets for the engineer on call. Answer in one sentence.
params: {temperature: 0, max_tokens: 100}
---
Summarize this ticket in at most {{ max_words | default(30) }} words.

Ticket:
{{ ticket | trim }}
"""

GOLDEN = """\
# Golden cases for prompts/summarize.txt. Each case gives the template's variables (input) and
# the answer you expect. With the `echo` model the answer is the rendered prompt itself.
prompt: summarize

cases:
  - id: password-reset
    input:
      ticket: The password reset email never arrives, so I cannot log in.
    expected: |
      Summarize this ticket in at most 30 words.

      Ticket:
      The password reset email never arrives, so I cannot log in.

  - id: short-summary
    tags: [smoke]
    input:
      ticket: Exports to CSV time out for reports with more than 10,000 rows.
      max_words: 12
    expected: |
      Summarize this ticket in at most 12 words.

      Ticket:
      Exports to CSV time out for reports with more than 10,000 rows.
"""

WORKFLOW = """\
# Runs the prompt suite on every pull request and push to main. Failures show up as annotations
# on the golden files; a Markdown summary lands on the run's page.
name: promptci

on:
  pull_request:
  push:
    branches: [main]

permissions:
  contents: read

jobs:
  prompts:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - run: pip install promptci-cli  # the distribution's name; `promptci` on PyPI is another project
      - name: promptci run
        # env:
        #   OPENAI_API_KEY: ${{ secrets.OPENAI_API_KEY }}   # once promptci.yaml names a real model
        # Under GitHub Actions, run annotates failing golden lines and writes the step summary by itself.
        run: promptci run
"""

# Relative path -> content. .gitignore is handled apart: it is appended to, never overwritten.
FILES: dict[str, str] = {
    "promptci.yaml": CONFIG,
    "prompts/summarize.txt": PROMPT,
    "goldens/summarize.yaml": GOLDEN,
    ".github/workflows/promptci.yml": WORKFLOW,
}


def scaffold_project(root: Path, force: bool = False) -> list[Path]:
    """Write the starter files under root and return the paths written (created or changed).

    Refuses, before writing anything, when a starter file exists, unless force is true.
    """
    existing = [name for name in FILES if (root / name).exists()]
    if existing and not force:
        raise PromptCIError(
            f"not overwriting existing file(s) in {root}: {', '.join(existing)}; "
            "use --force to replace them"
        )
    written = []
    for name, content in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    if ignore_state_dir(root / ".gitignore"):
        written.append(root / ".gitignore")
    return written


def ignore_state_dir(gitignore: Path) -> bool:
    """Add the .promptci/ line to gitignore unless it is there; True when the file changed."""
    text = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    lines = {line.strip() for line in text.splitlines()}
    if lines & {GITIGNORE_LINE, GITIGNORE_LINE.rstrip("/"), "/" + GITIGNORE_LINE, "/.promptci"}:
        return False
    separator = "" if not text or text.endswith("\n") else "\n"
    gitignore.write_text(f"{text}{separator}{GITIGNORE_LINE}\n", encoding="utf-8")
    return True
