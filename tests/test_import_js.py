"""The JavaScript translator of `promptci import promptfoo`: generated checks keep JavaScript's meaning.

A table of assertions and outputs with the verdict promptfoo gives (its rule: a boolean, a number > 0 or
>= threshold, a {pass} object; anything else or a throw fails); where Node.js is installed the same table
is evaluated by real JavaScript, the way promptfoo builds the function, and the verdicts must agree.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptci.importers import jsruntime
from promptci.importers.jschecks import CheckFile, add_file_javascript, add_inline_javascript, add_inline_python
from promptci.importers.jstranslate import Untranslatable

DOC = '{"total": 3, "items": [{"price": 2, "name": "tea"}, {"price": 0, "name": "cup"}], "tags": ["a", null], ' \
      '"category": null, "score": 0.5, "nested": {"deep": {"x": "1"}}}'
TWEET = "x" * 200

# (JavaScript, output, vars, threshold, promptfoo's pass)
TABLE: list[tuple[str, str, dict[str, Any], float | None, bool]] = [
    ("output.length < 300", TWEET, {}, None, True),
    ("output.length / 400", TWEET, {}, None, True),  # a number passes when > 0 without a threshold
    ("output.length / 400", TWEET, {}, 0.6, False),  # 0.5 < 0.6
    ("output.length / 400", TWEET, {}, 0.5, True),  # >= threshold
    ("output.length - 200", TWEET, {}, None, False),  # 0 is not > 0
    ("(() => { const d = JSON.parse(output); return d.total > 0 && d.items.length })()", DOC, {}, None, True),
    ("(() => { const d = JSON.parse(output); return d.total > 0 && d.items.length })()", "oops", {}, None, False),
    ("JSON.parse(output).category !== undefined", DOC, {}, None, True),  # null is not undefined
    ("JSON.parse(output).category != undefined", DOC, {}, None, False),  # but == says they are equal
    ("JSON.parse(output).missing === undefined", DOC, {}, None, True),
    ("JSON.parse(output).nested.deep.x === 1", DOC, {}, None, False),  # '1' !== 1
    ("JSON.parse(output).nested.deep.x == 1", DOC, {}, None, True),  # '1' == 1
    ("JSON.parse(output).tags", DOC, {}, None, False),  # an array is not a boolean: promptfoo fails it
    ("!!JSON.parse(output).tags", DOC, {}, None, True),
    ("[] ? true : false", DOC, {}, None, True),  # an empty array is truthy in JavaScript
    ("JSON.parse(output).missing?.deep.x === undefined", DOC, {}, None, True),  # optional chain stops
    ("JSON.parse(output).missing.deep === undefined", DOC, {}, None, False),  # TypeError: fails
    ("JSON.parse(output).nested?.deep?.x === '1'", DOC, {}, None, True),
    ("JSON.parse(output).items.every(i => i.price >= 0) && JSON.parse(output).items.some(i => i.price === 0)",
     DOC, {}, None, True),
    ("JSON.parse(output).items.map(i => i.name).join(',') === 'tea,cup'", DOC, {}, None, True),
    ("JSON.parse(output).items.filter(i => i.price).length === 1", DOC, {}, None, True),
    ("JSON.parse(output).items.find(i => i.name === 'cup').price === 0", DOC, {}, None, True),
    ("String(JSON.parse(output).score) === '0.5' && `${JSON.parse(output).total}` === '3'", DOC, {}, None, True),
    ("String(0.1 + 0.2) === '0.30000000000000004' && String(1e21) === '1e+21' && String(1/3*3) === '1'",
     DOC, {}, None, True),
    ("String(123456789012345680000) === '123456789012345680000' && String(1e-7) === '1e-7'", DOC, {}, None, True),
    ("'5' + 1 === '51' && '5' - 1 === 4 && [1, 2] + '' === '1,2'", DOC, {}, None, True),
    ("typeof JSON.parse(output).score === 'number' && typeof null === 'object' && typeof undefined === "
     "'undefined'", DOC, {}, None, True),
    ("Array.isArray(JSON.parse(output).tags) && Object.keys(JSON.parse(output)).length === 6", DOC, {}, None, True),
    ("parseFloat('3.5kg') === 3.5 && parseInt('42px') === 42 && isNaN(Number('4x')) && Number('') === 0",
     DOC, {}, None, True),
    ("Math.round(-2.5) === -2 && Math.max(1, 3) === 3 && Math.abs(-2) === 2 && Math.floor(2.7) === 2",
     DOC, {}, None, True),
    ("/refund\\s+now/i.test(output)", "Please REFUND  now", {}, None, True),
    ("/^\\d+$/.test(output)", "123\n", {}, None, False),  # $ does not match before a final newline in JS
    ("/\\bcat\\b/.test(output)", "concatenate", {}, None, False),
    ("output.trim().toLowerCase().startsWith('yes') && output.endsWith('.')", "  Yes, indeed.", {}, None, True),
    ("output.split(' ').length <= 3", "a b c d", {}, None, False),
    ("output.includes(context.vars.name)", "Hello Ada", {"name": "Ada"}, None, True),
    ("context.vars.missing === undefined", "x", {}, None, True),
    ("const s = JSON.parse(output).score; s > 0.4", DOC, {}, None, True),  # promptfoo returns the last statement
    ("let n = 0; JSON.parse(output).tags.forEach(t => { if (t) n++; }); n === 1", DOC, {}, None, True),
    ("'😀'.length === 2", "x", {}, None, True),  # UTF-16 code units
    ("null ?? 'd'", "x", {}, None, False),  # a string result is not a verdict
    ("0 || 'x'", "x", {}, None, False),
    ("1 && 7", "x", {}, None, True),
    ("({pass: false, score: 1, reason: 'custom'})", "x", {}, None, False),
    ("({pass: true, score: 0, reason: 'custom'})", "x", {}, None, True),
    ("[1, 2, 3].includes(2) && 'abc'.indexOf('c') === 2 && 'a-b'.replace('-', '+') === 'a+b'", "x", {}, None,
     True),
    ("JSON.stringify({a: 1, b: [true, null]}) === '{\"a\":1,\"b\":[true,null]}'", "x", {}, None, True),
    ("output.match(/(\\d+) items/)[1] === '12'", "You have 12 items", {}, None, True),
    ("[10, 9, 1].sort().join() === '1,10,9' && new Set([1, 1, 2]).size === 2 && [3, 1].sort((a, b) => a - b)[0] "
     "=== 1", "x", {}, None, True),
    ("const a = []; a.push(1); a.push(2); a.length === 2 && typeof output.includes === 'function'", "x", {}, None,
     True),
    ("const ids = JSON.parse(output).items.map(i => i.name); new Set(ids).size === ids.length", DOC, {}, None, True),
]

MULTILINE = """\
const data = JSON.parse(output);
if (!Array.isArray(data.items)) {
  return false;
}
let total = 0;
for (let i = 0; i < data.items.length; i++) {
  total += data.items[i].price;
}
try {
  JSON.parse('{bad');
} catch (e) {
  total += 1;
}
const {score, nested: {deep}} = data;
return total === 3 && score === 0.5 && deep.x === '1' ? total / data.total : 0;
"""


def load_checks(tmp_path: Path, checks: CheckFile) -> Any:
    (tmp_path / "checks.py").write_text(checks.render())
    (tmp_path / "promptfoo_js.py").write_text(Path(jsruntime.__file__).read_text())
    sys.path.insert(0, str(tmp_path))
    try:
        spec = importlib.util.spec_from_file_location(f"checks_{abs(hash(str(tmp_path)))}", tmp_path / "checks.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules.pop("promptfoo_js", None)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(tmp_path))


def run_table(tmp_path: Path, rows: list[tuple[str, str, dict[str, Any], float | None, bool]]) -> list[bool]:
    checks = CheckFile()
    names = [add_inline_javascript(checks, source, f"t{index}", threshold, False)
             for index, (source, _o, _v, threshold, _p) in enumerate(rows)]
    module = load_checks(tmp_path, checks)
    verdicts = []
    for name, (_source, output, variables, _threshold, _passed) in zip(names, rows, strict=True):
        verdicts.append(getattr(module, name)(output, None, SimpleNamespace(input=variables))["pass"])
    return verdicts


def test_translated_checks_give_promptfoos_verdicts(tmp_path: Path) -> None:
    verdicts = run_table(tmp_path, TABLE)
    wrong = [(row[0], row[4]) for row, verdict in zip(TABLE, verdicts, strict=True) if verdict != row[4]]
    assert wrong == []


NODE_HARNESS = r"""
const rows = JSON.parse(require('fs').readFileSync(0, 'utf8'));
function body(code) {
  code = code.trimEnd();
  if (code.includes('\n')) return code;
  const t = code.trim().replace(/;+\s*$/, '');
  if (!/^(const|let|var)\s/.test(t)) return 'return ' + t;
  const i = t.lastIndexOf(';');
  return t.slice(0, i + 1) + ' return ' + t.slice(i + 1);
}
const out = rows.map(([code, output, vars, threshold]) => {
  try {
    const r = new Function('output', 'context', body(code))(output, {vars});
    if (typeof r === 'boolean') return r;
    if (typeof r === 'number' && Number.isFinite(r)) return threshold === null ? r > 0 : r >= threshold;
    if (r && typeof r === 'object' && typeof r.pass === 'boolean') return r.pass;
    return false;
  } catch (e) { return false; }
});
process.stdout.write(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_translated_checks_agree_with_real_javascript(tmp_path: Path) -> None:
    rows = [*TABLE, (MULTILINE, DOC, {}, None, True)]
    node = subprocess.run(["node", "-e", NODE_HARNESS], input=json.dumps([list(r[:4]) for r in rows]),
                          capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(node.stdout) == run_table(tmp_path, rows)


def test_a_multi_statement_block_is_a_function_body(tmp_path: Path) -> None:
    checks = CheckFile()
    name = add_inline_javascript(checks, MULTILINE, "block", None, False)
    module = load_checks(tmp_path, checks)
    result = getattr(module, name)(DOC, None, None)
    assert result == {"pass": True, "score": 1.0, "reason": "returned 1 (> 0)"}
    no_return = add_inline_javascript(checks, "const x = 1;\nx > 0;\n", "noreturn", None, False)
    module = load_checks(tmp_path, checks)
    assert getattr(module, no_return)("x", None, None)["pass"] is False  # a body without return gives undefined


def test_not_javascript_inverts_and_a_throw_still_fails(tmp_path: Path) -> None:
    checks = CheckFile()
    name = add_inline_javascript(checks, "output.includes('sorry')", "apology", None, True)
    throws = add_inline_javascript(checks, "JSON.parse(output).a", "throws", None, True)
    module = load_checks(tmp_path, checks)
    assert getattr(module, name)("all good", None, None)["pass"] is True
    assert getattr(module, name)("sorry", None, None)["pass"] is False
    assert getattr(module, throws)("not json", None, None)["pass"] is True  # promptfoo: inverse of a failure


def test_a_cjs_file_becomes_functions_with_its_helpers(tmp_path: Path) -> None:
    source = tmp_path / "checks.cjs"
    source.write_text("""\
'use strict';
const LIMIT = 280;
function words(text) {
  return text.trim().split(/\\s+/).filter(Boolean);
}
module.exports = {
  isShort: (output) => output.length <= LIMIT,
  wordScore: function (output, context) {
    const n = words(output).length;
    return n >= context.vars.min ? 1 : n / context.vars.min;
  },
};
module.exports.hasName = (output, context) => output.includes(context.vars.name);
""")
    checks = CheckFile()
    short = add_file_javascript(checks, source, "checks.cjs", "isShort", "short", None, False)
    score = add_file_javascript(checks, source, "checks.cjs", "wordScore", "score", 0.5, False)
    named = add_file_javascript(checks, source, "checks.cjs", "hasName", "named", None, False)
    module = load_checks(tmp_path / "out" if (tmp_path / "out").mkdir() is None else tmp_path, checks)
    case = SimpleNamespace(input={"min": 4, "name": "Ada"})
    assert getattr(module, short)(TWEET, None, case)["pass"] is True
    assert getattr(module, score)("one two", None, case) == {"pass": True, "score": 0.5,
                                                             "reason": "returned 0.5 (>= 0.5)"}
    assert getattr(module, score)("one", None, case)["pass"] is False
    assert getattr(module, named)("hi Ada", None, case)["pass"] is True
    with pytest.raises(Untranslatable, match="exports no function 'missing'"):
        add_file_javascript(checks, source, "checks.cjs", "missing", "m", None, False)


@pytest.mark.parametrize(("source", "named", "line"), [
    ("fetch(output)", "the function fetch()", 1),
    ("output.localeCompare('a') === 0", "the method .localeCompare()", 1),
    ("const x = 1;\nawait x;\nreturn true;", "await", 2),
    ("output.length <", "JavaScript syntax error", 1),
    ("require('fs').readFileSync('x')", "require", 1),
    ("class A {}\nreturn true", "class declaration", 1),
    # promptfoo puts `return` after the last top-level `;`: `... return for (...` is a syntax error there
    ("let n = 0; for (const t of output) { n++; } n > 1", "promptfoo reads this one-liner", 1),
])
def test_what_does_not_translate_is_named_with_its_line(source: str, named: str, line: int) -> None:
    with pytest.raises(Untranslatable) as caught:
        add_inline_javascript(CheckFile(), source, "x", None, False)
    assert named in caught.value.reason and caught.value.line == line


def test_inline_python_uses_promptfoos_rule(tmp_path: Path) -> None:
    checks = CheckFile()
    one = add_inline_python(checks, "len(output.split()) <= 3", "py", None, False)
    score = add_inline_python(checks, "import json\nreturn json.loads(output)['score']\n", "pyscore", 0.6, False)
    module = load_checks(tmp_path, checks)
    assert getattr(module, one)("a b", None, None)["pass"] is True
    assert getattr(module, score)(DOC, None, None)["pass"] is False  # 0.5 < 0.6


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**22, 10**22)))
def test_number_formatting_round_trips_like_javascript(value: float) -> None:
    text = jsruntime.to_str(value)
    assert float(text) == float(value)
    assert "e" not in text or abs(float(value)) >= 1e21 or abs(float(value)) < 1e-6
    assert not text.endswith(".0")


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("output.length<>=!&|?:()[]{}'\"`$;,+-*/%0123456789 \n\\abcxyz=>")),
               max_size=60))
def test_any_text_translates_or_is_named_untranslatable(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    checks = CheckFile()
    try:
        name = add_inline_javascript(checks, text, "fuzz", None, False)
    except Untranslatable as exc:
        assert exc.reason
        return
    compile(checks.render(), "checks.py", "exec")  # what it writes is valid Python
    assert name in checks.render()


def test_deep_nesting_is_untranslatable_not_a_crash() -> None:
    with pytest.raises(Untranslatable, match="nested too deeply"):
        add_inline_javascript(CheckFile(), "(" * 3000 + "1" + ")" * 3000, "deep", None, False)
