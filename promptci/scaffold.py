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
# promptci on every pull request and every push to main, through the promptci action. On a pull request:
# the cases the PR affects, at its base and at its head, one PR comment about the latest push (regressions,
# all clear, nothing to run, or what went wrong), annotations at the golden lines, the HTML report as an
# artifact. On main: the whole suite, which refreshes the response cache pull requests start from.
# Replace OWNER with the account that hosts promptci (the action installs promptci-cli from its checkout).
name: promptci

# No `paths:` filter: `--changed-since` knows what affects a case (templates and their includes, goldens,
# cases_from data, schemas, checks.py, the python: system under test) and a push that affects none ends in
# seconds with "nothing to run". A path filter misses some of those, and a required check it skips stays
# pending forever.
on:
  pull_request:
  push:
    branches: [main]

# A new push to a pull request cancels the check still running for the previous one.
concurrency:
  group: promptci-${{ github.event.pull_request.number || github.ref }}
  cancel-in-progress: ${{ github.event_name == 'pull_request' }}

permissions:
  contents: read
  pull-requests: write  # the one PR comment
  actions: write  # the response cache

jobs:
  prompts:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0  # `diff origin/$BASE HEAD` needs the base branch's history
      - uses: OWNER/promptci@v1
        # env:
        #   OPENAI_API_KEY: ${{ secrets.OPENAI_API_KEY }}   # once promptci.yaml names a real model
        with:
          # A fork's pull request gets no secrets: the check runs offline (committed recordings, the cache
          # from main) and names the cases that need a live model; `fail` keeps it red until they ran.
          missing-secrets: fail
          # working-directory: services/bot   # when promptci.yaml is not at the repository root
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
