"""API keys: read from the environment (cleaned or refused), and redacted in every form a message can
carry them in: raw, inside a repr (`b'Bearer sk-…\\r'`), URL-encoded, and base64 (alone or in `user:key`); and the
password of a database URL (`postgresql://user:password@host/db`, the team store's DSN) wherever it shows."""

from __future__ import annotations

import base64
import functools
import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote, urlsplit

from promptci.errors import MissingKey

SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
MIN_SECRET_CHARS = 8  # shorter values ("1", "true") would redact ordinary words
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
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + data).decode("ascii")
            start = (offset * 8 + 5) // 6  # the first character with no bit of the padding before
            end = (offset + len(data)) * 8 // 6  # the last one with no bit of what follows
            if end - start >= MIN_SECRET_CHARS:
                forms.add(encoded[start:end])
    return frozenset(form for form in forms if len(form) >= MIN_SECRET_CHARS)


def redact(text: str, secrets: Iterable[tuple[str, str]]) -> str:
    """`text` with every form of each (label, secret) replaced by the label; longest forms first, so a
    form inside another does not leave a piece of the longer one behind."""
    replacements = sorted(((form, label) for label, secret in secrets if len(secret.strip()) >= MIN_SECRET_CHARS
                           for form in secret_forms(secret)), key=lambda pair: -len(pair[0]))
    for form, label in replacements:
        if form in text:
            text = text.replace(form, label)
    return text


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
