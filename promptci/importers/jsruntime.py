"""JavaScript semantics for checks translated from promptfoo (copied verbatim into a generated checks.py).

Values keep JavaScript's meaning: null is None, undefined is UNDEFINED, numbers are float/int, arrays are
lists, objects are dicts. Every operator whose meaning differs from Python's goes through a function here
(truthiness, ==, ===, +, <, property access, ToString of numbers). A TypeError in JavaScript is JSError.
`js_assertion` turns the function's result into promptfoo's verdict: a boolean, a finite number (passes
when > 0, or >= the assertion's threshold), or a {pass, score, reason} object; anything else, or a thrown
error, fails.
"""

from __future__ import annotations

import functools
import json as _json
import math
import re
from typing import Any


class JSError(Exception):
    """What the JavaScript would throw (a TypeError, a SyntaxError from JSON.parse)."""


class _Undefined:
    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Any = _Undefined()
NAN = float("nan")
INF = float("inf")
JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_SPACE_CHARS = "".join(chr(c) for c in (9, 10, 11, 12, 13, 32, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028,
                                        0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF))


class _Short:
    """An optional chain (`a?.b.c`) that met null or undefined: the rest of the chain is skipped."""


SHORT: Any = _Short()


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def typeof(value: Any) -> str:
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if callable(value):
        return "function"
    return "object"


def truthy(value: Any) -> bool:
    if value is None or value is UNDEFINED:
        return False
    if isinstance(value, bool):
        return value
    if is_number(value):
        return not (value == 0 or math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def _number_text(value: float | int) -> str:
    """Number.prototype.toString(): shortest round-trip digits, exponent outside [1e-6, 1e21)."""
    if isinstance(value, int):
        value = float(value) if abs(value) >= 10**21 else value
        if isinstance(value, int):
            return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    digits, exponent = _digits(value)
    sign = "-" if value < 0 else ""
    point = exponent + 1  # position of the decimal point after the first digit
    if 1e-6 <= abs(value) < 1e21:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return sign + digits + "0" * (point - len(digits))
        return f"{sign}{digits[:point]}.{digits[point:]}"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


def _digits(value: float) -> tuple[str, int]:
    text = repr(abs(value))
    mantissa, _, exp = text.partition("e")
    exponent = int(exp) if exp else 0
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    shift = len(whole) - 1 if whole != "0" else -(len(fraction) - len(fraction.lstrip("0")) + 1)
    return digits.rstrip("0") or "0", exponent + shift


def to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        return _number_text(value)
    if isinstance(value, list):
        return ",".join("" if item is None or item is UNDEFINED else to_str(item) for item in value)
    if isinstance(value, RegExp):
        return f"/{value.source}/{value.flags}"
    return "[object Object]"


def to_number(value: Any) -> float | int:
    if is_number(value):
        return value
    if isinstance(value, bool):
        return int(value)
    if value is None:
        return 0
    if value is UNDEFINED:
        return NAN
    if isinstance(value, str):
        text = value.strip(_SPACE_CHARS)
        if text == "":
            return 0
        if re.fullmatch(r"[+-]?Infinity", text):
            return -INF if text.startswith("-") else INF
        if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
            return int(text, 16)
        if re.fullmatch(r"0[bB][01]+", text):
            return int(text, 2)
        if re.fullmatch(r"0[oO][0-7]+", text):
            return int(text, 8)
        if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
            number = float(text)
            return int(number) if number.is_integer() and abs(number) < 2**53 else number
        return NAN
    return to_number(to_primitive(value))


def to_primitive(value: Any) -> Any:
    return to_str(value) if isinstance(value, (list, dict)) or callable(value) else value


def parse_float(value: Any, *_rest: Any) -> float | int:
    match = re.match(r"[+-]?(Infinity|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)",
                     to_str(value).lstrip(_SPACE_CHARS))
    if not match:
        return NAN
    if "Infinity" in match.group(0):
        return -INF if match.group(0).startswith("-") else INF
    number = float(match.group(0))
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def parse_int(value: Any, radix: Any = UNDEFINED, *_rest: Any) -> float | int:
    text = to_str(value).strip(_SPACE_CHARS)
    sign = -1 if text.startswith("-") else 1
    text = text[1:] if text[:1] in "+-" else text
    base = 10 if radix is UNDEFINED or not truthy(radix) else int(to_number(radix))
    if ((base in (10, 16) and radix is UNDEFINED) or base == 16) and text[:2].lower() == "0x":
        base, text = 16, text[2:]
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"[:base]
    digits = ""
    for char in text.lower():
        if char not in alphabet:
            break
        digits += char
    return sign * int(digits, base) if digits else NAN


def number_call(value: Any = 0, *_rest: Any) -> float | int:
    return to_number(value)


def string_call(value: Any = "", *_rest: Any) -> str:
    return to_str(value)


def boolean_call(value: Any = UNDEFINED, *_rest: Any) -> bool:
    return truthy(value)


def strict_eq(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b):
        return bool(a == b)
    if type(a) is not type(b) and not (is_number(a) and is_number(b)):
        return False
    if isinstance(a, (str, bool)) or a is None or a is UNDEFINED:
        return bool(a == b)
    return a is b


def loose_eq(a: Any, b: Any) -> bool:
    nullish = (None, UNDEFINED)
    if (a is None or a is UNDEFINED) and (b is None or b is UNDEFINED):
        return True
    if a in nullish or b in nullish:  # (`in` is safe here: None/UNDEFINED compare by identity first)
        return False
    if typeof(a) == typeof(b):
        return strict_eq(a, b)
    if isinstance(a, bool):
        return loose_eq(int(a), b)
    if isinstance(b, bool):
        return loose_eq(a, int(b))
    if is_number(a) and isinstance(b, str):
        return bool(a == to_number(b))
    if isinstance(a, str) and is_number(b):
        return bool(to_number(a) == b)
    if isinstance(a, (list, dict)) and not isinstance(b, (list, dict)):
        return loose_eq(to_primitive(a), b)
    if isinstance(b, (list, dict)) and not isinstance(a, (list, dict)):
        return loose_eq(a, to_primitive(b))
    return False


def _compare(a: Any, b: Any) -> tuple[Any, Any] | None:
    a, b = to_primitive(a), to_primitive(b)
    if isinstance(a, str) and isinstance(b, str):
        return a.encode("utf-16-be"), b.encode("utf-16-be")
    x, y = to_number(a), to_number(b)
    if math.isnan(x) or math.isnan(y):
        return None
    return x, y


def lt(a: Any, b: Any) -> bool:
    pair = _compare(a, b)
    return pair is not None and pair[0] < pair[1]


def le(a: Any, b: Any) -> bool:
    pair = _compare(a, b)
    return pair is not None and pair[0] <= pair[1]


def gt(a: Any, b: Any) -> bool:
    return lt(b, a)


def ge(a: Any, b: Any) -> bool:
    return le(b, a)


def _int_if_whole(value: float) -> float | int:
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2**53 else value


def add(a: Any, b: Any) -> Any:
    a, b = to_primitive(a), to_primitive(b)
    if isinstance(a, str) or isinstance(b, str):
        return to_str(a) + to_str(b)
    return _int_if_whole(float(to_number(a)) + float(to_number(b)))


def sub(a: Any, b: Any) -> Any:
    return _int_if_whole(float(to_number(a)) - float(to_number(b)))


def mul(a: Any, b: Any) -> Any:
    return _int_if_whole(float(to_number(a)) * float(to_number(b)))


def div(a: Any, b: Any) -> Any:
    x, y = float(to_number(a)), float(to_number(b))
    if y == 0:
        if x == 0 or math.isnan(x):
            return NAN
        return INF if (x > 0) == (math.copysign(1, y) > 0) else -INF
    return _int_if_whole(x / y)


def mod(a: Any, b: Any) -> Any:
    x, y = float(to_number(a)), float(to_number(b))
    if y == 0 or math.isinf(x) or math.isnan(x) or math.isnan(y):
        return NAN
    return _int_if_whole(math.fmod(x, y))


def neg(a: Any) -> Any:
    return _int_if_whole(-float(to_number(a)))


def and_(value: Any, right: Any) -> Any:
    return right() if truthy(value) else value


def or_(value: Any, right: Any) -> Any:
    return value if truthy(value) else right()


def nullish(value: Any, right: Any) -> Any:
    return right() if value is None or value is UNDEFINED else value


def default(value: Any, fallback: Any) -> Any:
    """A destructuring default: used when the value is undefined (not when it is null)."""
    return fallback() if value is UNDEFINED else value


def is_nan(value: Any, *_rest: Any) -> bool:
    number = to_number(value)
    return math.isnan(number)


def is_integer(value: Any) -> bool:
    return is_number(value) and math.isfinite(value) and float(value).is_integer()


def is_finite(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def has_key(value: Any, key: Any) -> bool:
    if not isinstance(value, (dict, list)):
        raise JSError(f"Cannot use 'in' operator to search for '{to_str(key)}' in {to_str(value)}")
    return get(value, key) is not UNDEFINED or (isinstance(value, dict) and to_str(key) in value)


def put(value: Any, key: Any, item: Any) -> None:
    if isinstance(value, dict):
        value[to_str(key)] = item
    elif isinstance(value, list) and _index(key) is not None:
        index = _index(key)
        assert index is not None
        value.extend([UNDEFINED] * (index + 1 - len(value)))
        value[index] = item
    elif value is None or value is UNDEFINED:
        raise JSError(f"Cannot set properties of {to_str(value)} (setting '{to_str(key)}')")


def iterate(value: Any) -> list[Any]:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, JSSet):
        return list(value.items)
    if isinstance(value, str):
        return list(value)
    raise JSError(f"{to_str(value)} is not iterable")


CAUGHT = (Exception,)


def error_object(error: BaseException) -> dict[str, Any]:
    """What a `catch (e)` binds: an object with the message."""
    return {"message": str(error), "name": "SyntaxError" if "JSON.parse" in str(error) else "Error"}


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def get(value: Any, key: Any) -> Any:
    """value[key] / value.key as JavaScript reads it; reading from null or undefined throws."""
    if value is SHORT:
        return SHORT
    if value is None or value is UNDEFINED:
        raise JSError(f"Cannot read properties of {to_str(value)} (reading '{to_str(key)}')")
    if isinstance(value, (str, list)):
        if key == "length":
            return utf16_length(value) if isinstance(value, str) else len(value)
        index = _index(key)
        if index is not None:
            return value[index] if index < len(value) else UNDEFINED
        methods = STRING_METHODS if isinstance(value, str) else ARRAY_METHODS
        return functools.partial(methods[key], value) if isinstance(key, str) and key in methods else UNDEFINED
    if isinstance(value, dict):
        return value.get(to_str(key), UNDEFINED)
    if isinstance(value, JSSet) and key == "size":
        return len(value.items)
    methods = STRING_METHODS if isinstance(value, str) else ARRAY_METHODS if isinstance(value, list) else {}
    if key in methods:  # a method read as a value: `typeof output.includes`, `arr.map(...)` passed along
        return functools.partial(methods[key], value)
    return UNDEFINED


def _index(key: Any) -> int | None:
    if is_number(key) and float(key).is_integer() and key >= 0:
        return int(key)
    if isinstance(key, str) and key.isdigit() and (key == "0" or not key.startswith("0")):
        return int(key)
    return None


def optional(value: Any) -> Any:
    """The object of `?.`: SHORT when it is null or undefined."""
    return SHORT if value is None or value is UNDEFINED or value is SHORT else value


def chain_end(value: Any) -> Any:
    return UNDEFINED if value is SHORT else value


def json_parse(text: Any) -> Any:
    source = to_str(text)
    try:
        return _json.loads(source, parse_constant=_reject_constant)
    except ValueError as exc:
        raise JSError(f"JSON.parse: {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Unexpected token {name}")


def json_stringify(value: Any) -> Any:
    if value is UNDEFINED or callable(value):
        return UNDEFINED
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        return _number_text(value) if math.isfinite(value) else "null"
    if isinstance(value, str):
        return _json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        items = [json_stringify(item) for item in value]
        return "[" + ",".join("null" if item is UNDEFINED else item for item in items) + "]"
    if isinstance(value, dict):
        parts = [(key, json_stringify(item)) for key, item in value.items()]
        return "{" + ",".join(f"{_json.dumps(key, ensure_ascii=False)}:{item}"
                              for key, item in parts if item is not UNDEFINED) + "}"
    return UNDEFINED


def object_keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, (list, str)):
        return [str(i) for i in range(len(value))]
    if value is None or value is UNDEFINED:
        raise JSError("Cannot convert undefined or null to object")
    return []


def object_values(value: Any) -> list[Any]:
    return [get(value, key) for key in object_keys(value)]


def object_entries(value: Any) -> list[list[Any]]:
    return [[key, get(value, key)] for key in object_keys(value)]


def is_array(value: Any) -> bool:
    return isinstance(value, list)


def js_round(value: Any) -> Any:
    number = float(to_number(value))
    if math.isnan(number) or math.isinf(number):
        return number
    return _int_if_whole(float(math.floor(number + 0.5)))


def _math_fold(values: tuple[Any, ...], pick: Any, empty: float) -> Any:
    numbers = [float(to_number(v)) for v in values]
    if any(math.isnan(n) for n in numbers):
        return NAN
    return _int_if_whole(pick(numbers)) if numbers else empty


MATH: dict[str, Any] = {
    "abs": lambda x: _int_if_whole(abs(float(to_number(x)))),
    "floor": lambda x: _int_if_whole(float(math.floor(n))) if math.isfinite(n := float(to_number(x))) else n,
    "ceil": lambda x: _int_if_whole(float(math.ceil(n))) if math.isfinite(n := float(to_number(x))) else n,
    "trunc": lambda x: _int_if_whole(float(math.trunc(n))) if math.isfinite(n := float(to_number(x))) else n,
    "round": js_round,
    "max": lambda *xs: _math_fold(xs, max, -INF),
    "min": lambda *xs: _math_fold(xs, min, INF),
    "pow": lambda x, y: _int_if_whole(math.pow(float(to_number(x)), float(to_number(y)))),
    "sqrt": lambda x: _int_if_whole(math.sqrt(n)) if (n := float(to_number(x))) >= 0 else NAN,
    "sign": lambda x: n if math.isnan(n := float(to_number(x))) or n == 0 else (1 if n > 0 else -1),
    "log": lambda x: math.log(n) if (n := float(to_number(x))) > 0 else (-INF if n == 0 else NAN),
}


_WORD = "A-Za-z0-9_"
_CLASS_ESCAPES = {"d": "0-9", "w": _WORD, "s": JS_SPACE}
_ESCAPES = {"d": "[0-9]", "D": "[^0-9]", "w": f"[{_WORD}]", "W": f"[^{_WORD}]", "s": f"[{JS_SPACE}]",
            "S": f"[^{JS_SPACE}]", "b": f"(?:(?<=[{_WORD}])(?![{_WORD}])|(?<![{_WORD}])(?=[{_WORD}]))",
            "B": f"(?:(?<=[{_WORD}])(?=[{_WORD}])|(?<![{_WORD}])(?![{_WORD}]))"}


class RegExp:
    """A JavaScript regex literal: its source and flags, compiled with JavaScript's meaning of \\d \\w \\s \\b . $."""

    def __init__(self, source: str, flags: str) -> None:
        self.source, self.flags = source, flags
        self.is_global = "g" in flags
        python_flags = 0
        for flag, value in (("i", re.IGNORECASE), ("m", re.MULTILINE), ("s", re.DOTALL)):
            if flag in flags:
                python_flags |= value
        self.compiled = re.compile(python_pattern(source, flags), python_flags)

    def search(self, text: str) -> re.Match[str] | None:
        return self.compiled.search(text)


def python_pattern(source: str, flags: str) -> str:
    """JavaScript regex syntax -> Python's; JSError for what differs and is not rewritten."""
    out: list[str] = []
    index, in_class = 0, False
    while index < len(source):
        char = source[index]
        if char == "\\":
            escaped = source[index + 1: index + 2]
            if in_class and escaped in _CLASS_ESCAPES:
                out.append(_CLASS_ESCAPES[escaped])
            elif in_class and escaped in "DWS" and escaped:
                raise JSError(f"regex /{source}/: \\{escaped} inside a character class is not supported")
            elif not in_class and escaped in _ESCAPES:
                out.append(_ESCAPES[escaped])
            elif escaped in ("c", "k") or (escaped == "u" and source[index + 2: index + 3] == "{"):
                raise JSError(f"regex /{source}/: \\{escaped} is not supported")
            else:
                out.append(source[index: index + 2])
            index += 2
            continue
        if in_class:
            in_class = char != "]"
            out.append(char)
        elif char == "[":
            in_class = True
            out.append("[^\\s\\S]" if source[index: index + 2] == "[]" else char)
            index += 1 if source[index: index + 2] == "[]" else 0
        elif char == "." and "s" not in flags:
            out.append("[^\\n\\r\\u2028\\u2029]")
        elif char == "$" and "m" not in flags:
            out.append("(?![\\s\\S])")
        elif source.startswith("(?<", index) and source[index + 3: index + 4] not in ("=", "!"):
            out.append("(?P<")
            index += 2
        else:
            out.append(char)
        index += 1
    return "".join(out)


@functools.lru_cache(maxsize=256)
def regex(source: str, flags: str) -> RegExp:
    return RegExp(source, flags)


def regex_test(pattern: RegExp, value: Any) -> bool:
    return pattern.search(to_str(value)) is not None


def _callable(function: Any, name: str) -> Any:
    if not callable(function):
        raise JSError(f"{to_str(function)} is not a function (in .{name})")
    return function


def call_method(value: Any, name: str, *args: Any) -> Any:
    """value.name(...args) for the string and array methods the translator allows."""
    if value is SHORT:
        return SHORT
    if value is None or value is UNDEFINED:
        raise JSError(f"Cannot read properties of {to_str(value)} (reading '{name}')")
    if isinstance(value, str) and name in STRING_METHODS:
        return STRING_METHODS[name](value, *args)
    if isinstance(value, list) and name in ARRAY_METHODS:
        return ARRAY_METHODS[name](value, *args)
    if isinstance(value, RegExp) and name == "test":
        return regex_test(value, args[0] if args else UNDEFINED)
    if isinstance(value, JSSet) and name in ("has", "add"):
        return getattr(value, name)(args[0] if args else UNDEFINED)
    if name == "toString":
        return to_str(value)
    if is_number(value) and name == "toFixed":
        digits = int(to_number(args[0])) if args else 0
        return f"{value:.{digits}f}"
    raise JSError(f"{typeof(value)} value has no method .{name}()")


def _arg(args: tuple[Any, ...], index: int, default: Any = UNDEFINED) -> Any:
    return args[index] if len(args) > index else default


def _split(text: str, separator: Any = UNDEFINED, limit: Any = UNDEFINED) -> list[str]:
    if separator is UNDEFINED:
        parts = [text]
    elif isinstance(separator, RegExp):
        parts = separator.compiled.split(text) if text or not separator.search(text) else []
        parts = [UNDEFINED if part is None else part for part in parts]
    else:
        sep = to_str(separator)
        parts = list(text) if sep == "" else text.split(sep)
    return parts if limit is UNDEFINED else parts[: int(to_number(limit))]


def _replace(text: str, pattern: Any, replacement: Any) -> str:
    if callable(replacement):
        raise JSError(".replace() with a function is not supported")
    new = to_str(replacement)
    if isinstance(pattern, RegExp):
        return pattern.compiled.sub(lambda _m: new, text, count=0 if pattern.is_global else 1)
    return text.replace(to_str(pattern), new, 1)


def _index_of(text: str, needle: Any, start: Any = 0) -> int:
    return text.find(to_str(needle), int(to_number(start)))


def _slice_bounds(length: int, start: Any, end: Any) -> tuple[int, int]:
    def bound(value: Any, default: int) -> int:
        if value is UNDEFINED:
            return default
        number = to_number(value)
        if math.isnan(number):
            return 0
        number = int(number) if math.isfinite(number) else (length if number > 0 else -length)
        return max(0, length + number) if number < 0 else min(number, length)

    return bound(start, 0), bound(end, length)


def _slice(value: Any, start: Any = UNDEFINED, end: Any = UNDEFINED) -> Any:
    low, high = _slice_bounds(len(value), start, end)
    return value[low:high]


def _includes_str(text: str, needle: Any, start: Any = 0) -> bool:
    if isinstance(needle, RegExp):
        raise JSError("First argument to String.prototype.includes must not be a regular expression")
    return to_str(needle) in text[int(to_number(start)):]


def _match(text: str, pattern: Any) -> Any:
    if not isinstance(pattern, RegExp):
        pattern = RegExp(re.escape(to_str(pattern)), "")
    if pattern.is_global:
        found = [m.group(0) for m in pattern.compiled.finditer(text)]
        return found or None
    match = pattern.search(text)
    if match is None:
        return None
    return [match.group(0), *(UNDEFINED if g is None else g for g in match.groups())]


STRING_METHODS: dict[str, Any] = {
    "includes": _includes_str,
    "startsWith": lambda s, x, p=0: s.startswith(to_str(x), int(to_number(p))),
    "endsWith": lambda s, x, n=UNDEFINED: s[: len(s) if n is UNDEFINED else int(to_number(n))].endswith(to_str(x)),
    "trim": lambda s: s.strip(_SPACE_CHARS),
    "trimStart": lambda s: s.lstrip(_SPACE_CHARS),
    "trimEnd": lambda s: s.rstrip(_SPACE_CHARS),
    "toLowerCase": lambda s: s.lower(),
    "toUpperCase": lambda s: s.upper(),
    "split": _split,
    "indexOf": _index_of,
    "lastIndexOf": lambda s, x: s.rfind(to_str(x)),
    "slice": _slice,
    "substring": lambda s, a=0, b=UNDEFINED: s[min(_clamp(a, s), _clamp(b, s)):max(_clamp(a, s), _clamp(b, s))],
    "replace": _replace,
    "replaceAll": lambda s, a, b: s.replace(to_str(a), to_str(b)) if not isinstance(a, RegExp)
    else _replace(s, a, b),
    "match": _match,
    "charAt": lambda s, i=0: s[int(to_number(i))] if 0 <= int(to_number(i)) < len(s) else "",
    "at": lambda s, i: s[int(to_number(i))] if -len(s) <= int(to_number(i)) < len(s) else UNDEFINED,
    "repeat": lambda s, n: s * int(to_number(n)),
    "concat": lambda s, *xs: s + "".join(to_str(x) for x in xs),
    "search": lambda s, p: (m.start() if (m := p.search(s)) else -1) if isinstance(p, RegExp) else s.find(
        to_str(p)),
}


def _clamp(value: Any, text: str) -> int:
    if value is UNDEFINED:
        return len(text)
    number = to_number(value)
    return 0 if math.isnan(number) else max(0, min(int(number) if math.isfinite(number) else
                                                   (len(text) if number > 0 else 0), len(text)))


def _same_value_zero(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b) and math.isnan(a) and math.isnan(b):
        return True
    return strict_eq(a, b)


def _callback(function: Any, name: str, item: Any, index: int, array: list[Any]) -> Any:
    return _callable(function, name)(item, index, array)


ARRAY_METHODS: dict[str, Any] = {
    "includes": lambda a, x: any(_same_value_zero(item, x) for item in a),
    "indexOf": lambda a, x: next((i for i, item in enumerate(a) if strict_eq(item, x)), -1),
    "some": lambda a, f: any(truthy(_callback(f, "some", x, i, a)) for i, x in enumerate(a)),
    "every": lambda a, f: all(truthy(_callback(f, "every", x, i, a)) for i, x in enumerate(a)),
    "map": lambda a, f: [_callback(f, "map", x, i, a) for i, x in enumerate(a)],
    "filter": lambda a, f: [x for i, x in enumerate(a) if truthy(_callback(f, "filter", x, i, a))],
    "find": lambda a, f: next((x for i, x in enumerate(a) if truthy(_callback(f, "find", x, i, a))), UNDEFINED),
    "findIndex": lambda a, f: next((i for i, x in enumerate(a) if truthy(_callback(f, "findIndex", x, i, a))), -1),
    "join": lambda a, sep=",": to_str(sep if sep is not UNDEFINED else ",").join(
        "" if x is None or x is UNDEFINED else to_str(x) for x in a),
    "slice": _slice,
    "concat": lambda a, *xs: a + [y for x in xs for y in (x if isinstance(x, list) else [x])],
    "reduce": lambda a, f, *start: _reduce(a, f, start),
    "flat": lambda a: [y for x in a for y in (x if isinstance(x, list) else [x])],
    "at": lambda a, i: a[int(to_number(i))] if -len(a) <= int(to_number(i)) < len(a) else UNDEFINED,
    "forEach": lambda a, f: [_callback(f, "forEach", x, i, a) for i, x in enumerate(a)] and UNDEFINED,
}


def _push(array: list[Any], *items: Any) -> int:
    array.extend(items)
    return len(array)


def _pop(array: list[Any]) -> Any:
    return array.pop() if array else UNDEFINED


def _sort(array: list[Any], compare: Any = UNDEFINED) -> list[Any]:
    """Array.prototype.sort: by UTF-16 text without a comparator (so [10, 9] stays [10, 9]); in place."""
    defined = [item for item in array if item is not UNDEFINED]
    if compare is UNDEFINED:
        defined.sort(key=lambda item: to_str(item).encode("utf-16-be"))
    else:
        function = _callable(compare, "sort")
        defined.sort(key=functools.cmp_to_key(lambda a, b: _sign(to_number(function(a, b)))))
    array[:] = defined + [UNDEFINED] * (len(array) - len(defined))
    return array


def _sign(number: float | int) -> int:
    return 0 if math.isnan(number) or number == 0 else (1 if number > 0 else -1)


def _reverse(array: list[Any]) -> list[Any]:
    array.reverse()
    return array


ARRAY_METHODS.update({"push": _push, "pop": _pop, "sort": _sort, "reverse": _reverse})


class JSSet:
    """new Set(iterable): unique items (SameValueZero), in insertion order."""

    def __init__(self, items: Any = UNDEFINED) -> None:
        self.items: list[Any] = []
        for item in iterate(items) if items is not UNDEFINED and items is not None else []:
            self.add(item)

    def add(self, item: Any) -> JSSet:
        if not self.has(item):
            self.items.append(item)
        return self

    def has(self, item: Any) -> bool:
        return any(_same_value_zero(existing, item) for existing in self.items)


def new_set(items: Any = UNDEFINED) -> JSSet:
    return JSSet(items)


def _reduce(array: list[Any], function: Any, start: tuple[Any, ...]) -> Any:
    items = list(array)
    if start:
        total = start[0]
    elif items:
        total = items.pop(0)
    else:
        raise JSError("Reduce of empty array with no initial value")
    for index, item in enumerate(items):
        total = _callable(function, "reduce")(total, item, index, array)
    return total


def call(function: Any, *args: Any) -> Any:
    if function is SHORT:
        return SHORT
    return _callable(function, "call")(*args)


def js_function(function: Any) -> Any:
    """A translated arrow or function: JavaScript passes extra arguments and leaves missing ones undefined."""
    import inspect

    count = len(inspect.signature(function).parameters)

    @functools.wraps(function)
    def wrapper(*args: Any) -> Any:
        padded = (*args[:count], *(UNDEFINED,) * (count - len(args)))
        return function(*padded)

    return wrapper


def js_transform(base: Any = None) -> Any:
    """Decorate a translated promptfoo transform fn(output, context): calling it with text gives text (a
    promptci `transform:`: JSON for a non-string result); `.raw(output)` gives the value itself."""

    def decorate(function: Any) -> Any:
        def raw(output: Any) -> Any:
            value = base.raw(output) if base is not None else output
            return function(value, {"vars": {}})

        def as_text(output: str) -> str:
            value = raw(output)
            return value if isinstance(value, str) else to_str(json_stringify(value))

        as_text.raw = raw  # type: ignore[attr-defined]
        return _named_like(as_text, function)

    return decorate


def _named_like(check: Any, function: Any) -> Any:
    """check with function's name; not functools.wraps, whose __wrapped__ would make promptci read the
    signature (output, context) and pass two arguments instead of (output, expected, case)."""
    check.__name__ = check.__qualname__ = function.__name__
    check.__doc__ = function.__doc__
    return check


def js_assertion(threshold: float | None = None, inverse: bool = False, transform: Any = None) -> Any:
    """Decorate fn(output, context) -> a promptci python comparator fn(output, expected, case) that returns
    promptfoo's verdict as {pass, score, reason}."""

    def decorate(function: Any) -> Any:
        def check(output: str, expected: Any = None, case: Any = None) -> dict[str, Any]:
            variables = dict(getattr(case, "input", None) or {})
            context = {"vars": variables, "test": {"vars": variables}}
            try:
                result = function(transform.raw(output) if transform is not None else output, context)
            except Exception as exc:  # whatever the JavaScript would throw: promptfoo fails the assertion
                return {"pass": inverse, "score": 1.0 if inverse else 0.0,
                        "reason": f"the check threw {type(exc).__name__}: {exc}"}
            return verdict(result, threshold, inverse)

        return _named_like(check, function)

    return decorate


def python_assertion(threshold: float | None = None, inverse: bool = False, transform: Any = None) -> Any:
    """Like js_assertion for a promptfoo inline Python assertion: context is {'vars': ...}, any exception
    fails, and a string result is read as promptfoo reads it ('true', 'false', a number)."""

    def decorate(function: Any) -> Any:
        def check(output: str, expected: Any = None, case: Any = None) -> dict[str, Any]:
            variables = dict(getattr(case, "input", None) or {})
            try:
                value = transform.raw(output) if transform is not None else output
                result = function(value, {"vars": variables, "test": {"vars": variables}})
            except Exception as exc:
                return {"pass": inverse, "score": 1.0 if inverse else 0.0,
                        "reason": f"the check raised {type(exc).__name__}: {exc}"}
            if isinstance(result, str):
                lowered = result.strip().lower()
                result = {"true": True, "false": False}.get(lowered, parse_float(result))
            if isinstance(result, dict) and threshold is not None and is_number(result.get("score")) \
                    and result["score"] < threshold:
                result = {**result, "pass": False}
            return verdict(result, threshold, inverse)

        return _named_like(check, function)

    return decorate


def verdict(result: Any, threshold: float | None, inverse: bool) -> dict[str, Any]:
    """promptfoo's rule for a script's result (src/assertions/scriptResultNormalization.ts)."""
    if isinstance(result, bool):
        passed = result != inverse
        return {"pass": passed, "score": 1.0 if passed else 0.0, "reason": f"returned {to_str(result)}"}
    if is_number(result) and math.isfinite(result):
        raw = result > 0 if threshold is None else result >= threshold
        rule = "> 0" if threshold is None else f">= {to_str(threshold)}"
        return {"pass": raw != inverse, "score": float(result),
                "reason": f"returned {to_str(result)} ({'' if raw else 'not '}{rule})"}
    if isinstance(result, dict) and isinstance(result.get("pass", result.get("pass_")), bool):
        result = {**result, "pass": result.get("pass", result.get("pass_"))}
        score = result.get("score", 1.0 if result["pass"] else 0.0)
        if not is_number(score) or not math.isfinite(score):
            return {"pass": False, "score": 0.0, "reason": f"returned a non-finite score {to_str(score)}"}
        reason = result.get("reason")
        return {"pass": result["pass"] != inverse, "score": float(score),
                "reason": reason if isinstance(reason, str) and reason else "returned a grading result"}
    return {"pass": False, "score": 0.0,
            "reason": f"must return a boolean, a finite number or {{pass, score, reason}}; got {typeof(result)} "
                      f"{to_str(result)[:80]}"}
