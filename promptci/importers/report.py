"""Run an import and describe it: a plain-text table, or the JSON document `--format json` promises."""

from __future__ import annotations

import json
from pathlib import Path

from promptci.errors import PromptCIError
from promptci.importers.promptfoo import Conversion, Skipped, read_promptfoo
from promptci.importers.promptfoo_write import JUDGES_NOTE, has_judge, render_files, write_files
from promptci.loading.prompts import PROMPT_SUFFIXES, load_prompt, prompt_name


def import_promptfoo_suite(config: Path, out: Path, fmt: str, force: bool) -> str:
    """Convert `config` into `out` and return the report text (ConfigError on unreadable input)."""
    conversion = read_promptfoo(config)
    in_place = convert_prompts_in_place(conversion, out)
    written = write_files(render_files(conversion), out, force, in_place)
    conversion.skipped.extend(foreign_prompt_files(out, set(written)))
    if fmt == "json":
        return json.dumps(to_dict(conversion, written), indent=2, ensure_ascii=False) + "\n"
    return render_table(conversion, written)


def convert_prompts_in_place(conversion: Conversion, out: Path) -> frozenset[Path]:
    """A promptfoo prompt file already under `out`/prompts/ with a promptci suffix is converted where it is:
    the prompt takes the file's name, and that file may be rewritten (into promptci's form) without --force."""
    prompts_dir = (out / "prompts").resolve()
    converted: set[Path] = set()
    renamed = []
    for prompt in conversion.prompts:
        source = prompt.source
        if source is not None and prompts_dir in source.parents and source.suffix.lower() in PROMPT_SUFFIXES \
                and (source.suffix.lower() in (".yaml", ".yml")) == (prompt.messages is not None):
            name = prompt_name(source, out.resolve())
            if source.suffix.lower() in (".yml", ".md", ".j2", ".jinja"):
                renamed.append(prompt)  # written beside it under promptci's suffix; the original is named
                continue
            conversion.rename_prompt(prompt.name, name)
            converted.add(source)
            conversion.skipped.append(Skipped(f"prompts/{source.name}", 1, "prompt", "converted in place from "
                                              "promptfoo's format to promptci's"))
    return frozenset(converted)


def foreign_prompt_files(out: Path, written: set[Path]) -> list[Skipped]:
    """Files under `out`/prompts/ that promptci would read as prompts but cannot: named, never left silent."""
    prompts_dir = out / "prompts"
    found = []
    for path in sorted(prompts_dir.rglob("*")) if prompts_dir.is_dir() else []:
        if path in written or not path.is_file() or path.suffix.lower() not in PROMPT_SUFFIXES:
            continue
        try:
            load_prompt(path, out)
        except PromptCIError as exc:
            found.append(Skipped(path.relative_to(out).as_posix(), 1, "prompt", f"not a promptci prompt "
                                 f"({exc.message}); move it out of prompts/ (promptci lint reads every file there)"))
    return found


def to_dict(conversion: Conversion, written: list[Path]) -> dict[str, object]:
    return {"converted": conversion.converted, "assertions": len(conversion.outcomes),
            "not_converted": [item.to_dict() for item in conversion.not_converted],
            "written": [str(path) for path in written], "notes": [JUDGES_NOTE] if has_judge(conversion) else []}


def render_table(conversion: Conversion, written: list[Path]) -> str:
    counts = conversion.counts_by_type()
    width = max([len("assertion"), *map(len, counts)])
    lines = [f"{'assertion':<{width}}  converted  not converted"]
    lines += [f"{kind:<{width}}  {done:>9}  {failed:>13}" for kind, (done, failed) in counts.items()]
    total = conversion.converted + sum(failed for _done, failed in counts.values())
    share = f" ({conversion.converted / total:.0%})" if total else ""
    lines.append(f"{'total':<{width}}  {conversion.converted:>9}  {total - conversion.converted:>13}{share}")
    skipped = conversion.not_converted
    if skipped:
        lines += ["", "not converted (kept as TODO comments next to their cases where they are assertions):"]
        lines += [f"  {item.file}:{item.line}: {item.type}: {item.reason}" for item in skipped]
    if has_judge(conversion):
        lines += ["", JUDGES_NOTE]
    lines += ["", f"wrote {len(written)} file(s):", *(f"  {path}" for path in written),
              "next: promptci lint, then promptci run"]
    return "\n".join(lines) + "\n"
