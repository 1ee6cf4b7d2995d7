"""`-k EXPR`: pytest-style selection of cases by id, tag or prompt with and / or / not / parentheses."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from promptci.errors import PromptCIError
from promptci.types import Case

Matcher = Callable[[Case], bool]
_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")
MAX_NESTING = 100  # parentheses and `not`s inside each other: the parser recurses once per level


def term_matches(term: str, case: Case) -> bool:
    """A term matches a case whose id or prompt contains it, or one of whose tags equals it."""
    lowered = term.lower()
    return lowered in case.id.lower() or lowered in case.prompt.lower() or lowered in (t.lower() for t in case.tags)


def compile_expression(expression: str) -> Matcher:
    tokens = _TOKEN.findall(expression)
    if not tokens:
        raise PromptCIError("-k needs an expression, e.g. -k 'smoke and not slow'")
    parser = _Parser(tokens, expression)
    matcher = parser.parse_or()
    if parser.position != len(tokens):
        raise parser.error(f"unexpected {tokens[parser.position]!r}")
    return matcher


class _Parser:
    def __init__(self, tokens: list[str], expression: str) -> None:
        self.tokens = tokens
        self.expression = expression
        self.position = 0
        self.depth = 0

    def error(self, what: str) -> PromptCIError:
        shown = self.expression if len(self.expression) <= 80 else f"{self.expression[:77]}..."
        return PromptCIError(f"-k {shown!r}: {what} (use terms with and, or, not and parentheses)")

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise self.error("the expression ends too early")
        self.position += 1
        return token

    def parse_or(self) -> Matcher:
        parts = [self.parse_and()]
        while self.peek() == "or":
            self.take()
            parts.append(self.parse_and())
        # a flat list, not nested lambdas: a long `a or b or ...` must not recurse once per term when matched
        return parts[0] if len(parts) == 1 else lambda c: any(part(c) for part in parts)

    def parse_and(self) -> Matcher:
        parts = [self.parse_not()]
        while self.peek() == "and":
            self.take()
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else lambda c: all(part(c) for part in parts)

    def parse_not(self) -> Matcher:
        if self.peek() == "not":
            self.take()
            inner = self.nested(self.parse_not)
            return lambda c: not inner(c)
        return self.parse_atom()

    def parse_atom(self) -> Matcher:
        token = self.take()
        if token == "(":
            inner = self.nested(self.parse_or)
            if self.take() != ")":
                raise self.error("missing ')'")
            return inner
        if token in (")", "and", "or"):
            raise self.error(f"unexpected {token!r}")
        return lambda c: term_matches(token, c)

    def nested(self, parse: Callable[[], Matcher]) -> Matcher:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"it nests more than {MAX_NESTING} parentheses or `not`s deep")
        try:
            return parse()
        finally:
            self.depth -= 1


# --shard I/N ------------------------------------------------------------------------------------------

Shard = tuple[int, int]  # (index from 1, count)


def parse_shard(text: str) -> Shard:
    """`--shard 2/5` -> (2, 5); a clear error for anything else."""
    index_text, sep, count_text = text.partition("/")
    if sep and index_text.strip().isdigit() and count_text.strip().isdigit():
        index, count = int(index_text), int(count_text)
        if count >= 1 and 1 <= index <= count:
            return index, count
    raise PromptCIError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. --shard 2/4")


def shard_of(prompt: str, case_id: str, count: int) -> int:
    """The shard (1..count) a case belongs to: a stable hash of prompt and case id alone, so adding or
    removing a case moves no other case, and every machine and Python version agrees."""
    digest = hashlib.sha256(f"{prompt}\x00{case_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select_shard(cases: list[Case], shard: Shard | None) -> list[Case]:
    if shard is None:
        return cases
    index, count = shard
    return [case for case in cases if shard_of(case.prompt, case.id, count) == index]
