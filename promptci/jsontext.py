"""The one way to read JSON that came from outside (model answers, data files, shard files): strict, and every
way Python's reader can fail (nesting past its recursion limit, an integer over 4,300 digits, a lone UTF-16
surrogate escape no UTF-8 file or database can hold) is one JSONTextError saying why, never another exception."""

from __future__ import annotations

import json
import re
from typing import Any

SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class JSONTextError(ValueError):
    """The text is not JSON promptci can read; the message says where or why."""


def read_json(text: str) -> Any:
    """Strict JSON: no NaN or Infinity, no lone surrogate, within Python's nesting and integer limits."""

    def reject_constant(name: str) -> Any:
        raise JSONTextError(f"{name} is not valid JSON")

    try:
        value = json.loads(text, parse_constant=reject_constant)
    except json.JSONDecodeError as exc:
        raise JSONTextError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError:
        raise JSONTextError("it nests too deeply to read (about 1,000 levels at most)") from None
    except JSONTextError:
        raise
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise JSONTextError(" ".join(str(exc).split())) from None
    if SURROGATE_ESCAPE.search(text) and not is_text(value):
        raise JSONTextError("it holds a lone UTF-16 surrogate (\\ud800-\\udfff without its pair), which is not text")
    return value


def is_text(value: Any) -> bool:
    """Whether every string in a parsed value is valid Unicode text (no lone surrogate)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return False
    return True
