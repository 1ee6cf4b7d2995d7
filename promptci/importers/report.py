"""Run an import and describe it: a plain-text table, or the JSON document `--format json` promises."""

from __future__ import annotations

import json
from pathlib import Path

from promptci.importers.promptfoo import Conversion, read_promptfoo
from promptci.importers.promptfoo_write import render_files, write_files


def import_promptfoo_suite(config: Path, out: Path, fmt: str, force: bool) -> str:
    """Convert `config` into `out` and return the report text (ConfigError on unreadable input)."""
    conversion = read_promptfoo(config)
    written = write_files(render_files(conversion), out, force)
    if fmt == "json":
        return json.dumps(to_dict(conversion, written), indent=2, ensure_ascii=False) + "\n"
    return render_table(conversion, written)


def to_dict(conversion: Conversion, written: list[Path]) -> dict[str, object]:
    return {"converted": conversion.converted,
            "not_converted": [item.to_dict() for item in conversion.not_converted],
            "written": [str(path) for path in written]}


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
    lines += ["", f"wrote {len(written)} file(s):", *(f"  {path}" for path in written),
              "next: promptci lint, then promptci run"]
    return "\n".join(lines) + "\n"
