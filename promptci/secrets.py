"""API keys: read from the environment (cleaned or refused), and redacted in every form a message can
carry them in: raw, inside a repr (`b'Bearer sk-…\\r'`), URL-encoded, hex, and base64 (alone or in
`user:key`); in any letter case, with invisible (zero-width) characters between its characters, and cut
short (any run of more than half of a form, at least MIN_PIECE_CHARS long); and the password of a database
URL (`postgresql://user:password@host/db`, the team store's DSN) wherever it shows."""

from __future__ import annotations

import base64
import functools
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from urllib.parse import quote, unquote, urlsplit

from promptci.errors import MissingKey

SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
MIN_SECRET_CHARS = 8  # shorter values ("1", "true") would redact ordinary words
MIN_PIECE_CHARS = 12  # a piece of a key is redacted from this length (and from more than half of it)
REDACTED = "[redacted]"
# user:password@ in any URL, and libpq's `password=...` in a key/value connection string
DSN_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@?#]*:)[^\s@/?#]*@", re.IGNORECASE)
CONNINFO_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&]+)", re.IGNORECASE)


def read_key(variable: str, environ: Mapping[str, str] | None = None) -> str:
    """The key held by `variable`, without the whitespace pasted CI secrets often carry ("sk-…\\n");
    "" when unset. A key that cannot go into an HTTP header is a MissingKey (exit 2) naming the variable,
    never the value."""
    raw = (os.environ if environ is None else environ).get(variable, "")
    key = raw.strip()
    if not key.isascii():
        raise MissingKey(f"{variable} holds non-ASCII characters, which an API key never has (a smart quote "
                         f"or a stray character pasted with it?); set {variable} to the key alone")
    if any(not char.isprintable() or char.isspace() for char in key):
        raise MissingKey(f"{variable} holds spaces or control characters inside the key; set {variable} to "
                         "the key alone, on one line")
    return key


@functools.lru_cache(maxsize=64)
def secret_forms(secret: str) -> frozenset[str]:
    """Every way `secret` may appear in a message: itself, URL-encoded, repr-escaped, and base64 at each
    of the three byte alignments (so base64 of `user:secret` is caught whatever `user` is)."""
    forms = {secret, secret.strip(), quote(secret, safe=""), quote(secret.strip(), safe="")}
    forms.add(repr(secret)[1:-1])
    forms.add(repr(secret.encode("utf-8", "backslashreplace"))[2:-1])
    data = secret.strip().encode("utf-8", "surrogateescape")
    forms.add(data.hex())
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + data).decode("ascii")
            start = (offset * 8 + 5) // 6  # the first character with no bit of the padding before
            end = (offset + len(data)) * 8 // 6  # the last one with no bit of what follows
            if end - start >= MIN_SECRET_CHARS:
                forms.add(encoded[start:end])
    return frozenset(form for form in forms if len(form) >= MIN_SECRET_CHARS)


def redact(text: str, secrets: Iterable[tuple[str, str]]) -> str:
    """`text` with every form of each (label, secret) replaced by the label, matched in any letter case,
    across invisible characters, and cut short: a run of more than half of a form (MIN_PIECE_CHARS at least).
    Overlapping matches become one."""
    wanted = [(label, secret) for label, secret in secrets if len(secret.strip()) >= MIN_SECRET_CHARS]
    if not wanted or not text:
        return text
    view, where = comparable(text)
    spans: list[tuple[int, int, str]] = []
    for label, secret in wanted:
        for form in secret_forms(secret):
            spans.extend((start, end, label) for start, end in pieces_of(form.lower(), view))
    if not spans:
        return text
    out, done = [], 0
    for start, end, label in merged(spans):
        first, last = where(start), where(end - 1) + 1
        out.append(text[done:first] + label)
        done = last
    return "".join(out) + text[done:]


def comparable(text: str) -> tuple[str, Callable[[int], int]]:
    """`text` lower-cased (ASCII letters only, so each character stays one) without invisible format
    characters (zero-width spaces and joiners, soft hyphens, BOMs), and a map from its positions to text's."""
    if text.isascii():
        return text.lower(), lambda index: index
    kept = [(char.lower() if char.isascii() else char, index) for index, char in enumerate(text)
            if char.isascii() or unicodedata.category(char) != "Cf"]
    positions = [index for _, index in kept]
    return "".join(char for char, _ in kept), positions.__getitem__


def piece_length(form: str) -> int:
    """The shortest run of `form` that is redacted: more than half of it, at least MIN_PIECE_CHARS."""
    return min(len(form), max(MIN_PIECE_CHARS, len(form) // 2 + 1))


def pieces_of(form: str, view: str) -> Iterator[tuple[int, int]]:
    """(start, end) in view of each run of at least piece_length(form) consecutive characters of form,
    grown as far as it matches: every seed of that length is looked for (str.find), then extended."""
    size = piece_length(form)
    for offset in range(len(form) - size + 1):
        seed = form[offset:offset + size]
        start = view.find(seed)
        while start != -1:
            left, right = start, start + size
            inner_left, inner_right = offset, offset + size
            while inner_left > 0 and left > 0 and view[left - 1] == form[inner_left - 1]:
                left, inner_left = left - 1, inner_left - 1
            while inner_right < len(form) and right < len(view) and view[right] == form[inner_right]:
                right, inner_right = right + 1, inner_right + 1
            yield left, right
            start = view.find(seed, start + 1)


def merged(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Spans sorted, overlapping ones joined (the first label kept)."""
    joined: list[tuple[int, int, str]] = []
    for start, end, label in sorted(spans):
        if joined and start < joined[-1][1]:
            joined[-1] = (joined[-1][0], max(end, joined[-1][1]), joined[-1][2])
        else:
            joined.append((start, end, label))
    return joined


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(label, value) of every secret-looking environment variable (…_KEY, …_TOKEN, …_SECRET, …_PASSWORD)."""
    items = (os.environ if environ is None else environ).items()
    found = [(f"<${name}>", value) for name, value in items
             if name.upper().endswith(SECRET_SUFFIXES) and len(value.strip()) >= MIN_SECRET_CHARS]
    found += [(f"<${name} password>", password) for name, value in items
              if (password := url_password(value)) and len(password.strip()) >= MIN_SECRET_CHARS]
    return found


def url_password(value: str) -> str | None:
    """The password a URL carries (`scheme://user:password@host`), decoded; None when it has none."""
    if "://" not in value or "@" not in value:
        return None
    try:
        password = urlsplit(value.strip()).password
    except ValueError:
        return None
    return unquote(password) if password else None


def redact_url_passwords(text: str) -> str:
    """`text` with the password of every URL in it (`scheme://user:password@host`) replaced by [redacted]."""
    return DSN_PASSWORD.sub(lambda match: f"{match['head']}{REDACTED}@", text)


def redact_dsn(text: str) -> str:
    """A database address or message as shown: URL passwords and a connection string's `password=` redacted."""
    return CONNINFO_PASSWORD.sub(lambda match: f"{match['head']}{REDACTED}", redact_url_passwords(text))


def redact_environment(text: str) -> str:
    """The last line of defence before anything is printed: every secret-looking variable's value redacted."""
    return redact_url_passwords(redact(text, environment_secrets()))
