"""JavaScript (promptfoo assertions, checks.cjs files) -> Python functions that keep JavaScript's meaning.

Parsed with tree-sitter's JavaScript grammar. Every operation whose meaning differs between the two
languages is written as a call into the runtime (`js.` = promptci/importers/jsruntime.py, copied beside
the generated checks.py), so truthiness, `==` vs `===`, undefined vs null, `+` and number formatting stay
JavaScript's. A construct outside the subset raises Untranslatable naming it and its line.
"""

from __future__ import annotations

import functools
import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from promptci.importers.jsruntime import ARRAY_METHODS, MATH, STRING_METHODS

_COMPARE = {"===": "js.strict_eq", "==": "js.loose_eq", "<": "js.lt", "<=": "js.le", ">": "js.gt", ">=": "js.ge"}
_ARITHMETIC = {"+": "js.add", "-": "js.sub", "*": "js.mul", "/": "js.div", "%": "js.mod"}
_METHODS = frozenset({*STRING_METHODS, *ARRAY_METHODS, "test", "toString", "toFixed", "has", "add", "push",
                      "pop", "sort", "reverse"})
_FUNCTIONS = {"parseFloat": "js.parse_float", "parseInt": "js.parse_int", "Number": "js.number_call",
              "String": "js.string_call", "Boolean": "js.boolean_call", "isNaN": "js.is_nan"}
_STATIC = {("JSON", "parse"): "js.json_parse", ("JSON", "stringify"): "js.json_stringify",
           ("Object", "keys"): "js.object_keys", ("Object", "values"): "js.object_values",
           ("Object", "entries"): "js.object_entries", ("Array", "isArray"): "js.is_array",
           ("Number", "parseFloat"): "js.parse_float", ("Number", "parseInt"): "js.parse_int",
           ("Number", "isInteger"): "js.is_integer", ("Number", "isFinite"): "js.is_finite",
           ("Number", "isNaN"): "js.is_nan"}
_CONSTANTS = {"undefined": "js.UNDEFINED", "NaN": "js.NAN", "Infinity": "js.INF"}
_RESERVED = frozenset({*keyword.kwlist, *keyword.softkwlist, "js", "re", "math", "json"})
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


class Untranslatable(ValueError):
    """A construct this translator does not cover; `line` is 1-based within the translated source."""

    def __init__(self, reason: str, line: int = 0) -> None:
        super().__init__(reason)
        self.reason, self.line = reason, line


@functools.lru_cache(maxsize=1)
def _parser() -> Any:
    import tree_sitter
    import tree_sitter_javascript

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_javascript.language()))


def parse(source: str) -> Any:
    """The tree-sitter root node of `source`; Untranslatable at the first syntax error."""
    tree = _parser().parse(source.encode("utf-8"))
    root = tree.root_node
    if root.has_error:
        bad = _first_error(root)
        raise Untranslatable("JavaScript syntax error", bad.start_point[0] + 1 if bad is not None else 1)
    return root


def _first_error(node: Any) -> Any:
    if node.type == "ERROR" or node.is_missing:
        return node
    for child in node.children:
        if child.has_error or child.type == "ERROR" or child.is_missing:
            found = _first_error(child)
            if found is not None:
                return found
    return None


def text_of(node: Any) -> str:
    return node.text.decode("utf-8")


def _named(node: Any) -> list[Any]:
    return [child for child in node.named_children if child.type != "comment"]


@dataclass
class _Block:
    lines: list[str] = field(default_factory=list)


@dataclass
class Translator:
    """Translates statements into indented Python lines; nested functions become local defs."""

    line_offset: int = 0
    counter: int = 0
    scopes: list[set[str]] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)
    nonlocals: list[set[str]] = field(default_factory=list)  # outer names each function assigns

    # -- helpers -----------------------------------------------------------------------------------
    def fail(self, node: Any, reason: str) -> Untranslatable:
        return Untranslatable(reason, node.start_point[0] + 1 - self.line_offset)

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"_{stem}{self.counter}"

    def emit(self, line: str) -> None:
        self.blocks[-1].lines.append(line)

    def declare(self, name: str) -> str:
        self.scopes[-1].add(name)
        return self.python_name(name)

    @staticmethod
    def python_name(name: str) -> str:
        return f"{name}_" if name in _RESERVED or name.startswith("_") or not name.isidentifier() else name

    def is_bound(self, name: str) -> bool:
        return any(name in scope for scope in self.scopes)

    # -- functions ---------------------------------------------------------------------------------
    def function(self, name: str, params: list[str], body: Any, is_expression: bool, decorators: list[str]
                 ) -> list[str]:
        """A Python def from JavaScript parameters and a body (a statement block or an expression)."""
        self.scopes.append(set())
        self.nonlocals.append(set())
        self.blocks.append(_Block())
        python_params = [self.declare(p) for p in params]
        if is_expression:
            self.emit(f"return {self.expression(body)}")
        else:
            self.statements(_named(body))
            if not self.blocks[-1].lines or not self.blocks[-1].lines[-1].startswith(("return ", "raise ")):
                self.emit("return js.UNDEFINED")
        block = self.blocks.pop()
        self.scopes.pop()
        outer = sorted(self.python_name(n) for n in self.nonlocals.pop())
        header = [*decorators, f"def {name}({', '.join(python_params)}):"]
        declared = [f"    nonlocal {', '.join(outer)}"] if outer else []
        return header + declared + ["    " + line for line in block.lines]

    def _params(self, node: Any) -> list[str]:
        params = node.child_by_field_name("parameters")
        if params is None:  # `x => ...`
            single = node.child_by_field_name("parameter")
            return [text_of(single)]
        names = []
        for param in _named(params):
            if param.type != "identifier":
                raise self.fail(param, f"a {param.type.replace('_', ' ')} parameter")
            names.append(text_of(param))
        return names

    def hoist_function(self, node: Any) -> str:
        """An arrow or function expression -> a local def emitted before the current statement."""
        if any(child.type == "async" for child in node.children):
            raise self.fail(node, "an async function")
        name = self.fresh("fn")
        body = node.child_by_field_name("body")
        lines = self.function(name, self._params(node), body, body.type != "statement_block", ["@js.js_function"])
        for line in lines:
            self.emit(line)
        return name

    # -- statements --------------------------------------------------------------------------------
    def statements(self, nodes: list[Any]) -> None:
        for node in nodes:  # function declarations are hoisted, as JavaScript does; a function may read a
            if node.type == "function_declaration":  # const declared after it (Python closures bind late)
                self.declare(text_of(node.child_by_field_name("name")))
            elif node.type in ("lexical_declaration", "variable_declaration"):
                for declarator in _named(node):
                    name = declarator.child_by_field_name("name") if declarator.type == "variable_declarator" \
                        else None
                    if name is not None and name.type == "identifier":
                        self.declare(text_of(name))
        for node in sorted(nodes, key=lambda n: n.type != "function_declaration"):
            self.statement(node)

    def block(self, node: Any) -> None:
        """A nested statement (or block) as the indented body of the line just emitted."""
        self.blocks.append(_Block())
        self.statements(_named(node) if node.type == "statement_block" else [node])
        block = self.blocks.pop()
        for line in block.lines or ["pass"]:
            self.emit("    " + line)

    def statement(self, node: Any) -> None:
        handler: Callable[[Any], None] | None = getattr(self, f"_stmt_{node.type}", None)
        if handler is None:
            raise self.fail(node, f"the statement `{_first_line(node)}` ({node.type.replace('_', ' ')})")
        handler(node)

    def _stmt_empty_statement(self, node: Any) -> None:
        return None

    def _stmt_statement_block(self, node: Any) -> None:
        self.statements(_named(node))

    def _stmt_lexical_declaration(self, node: Any) -> None:
        for declarator in _named(node):
            if declarator.type != "variable_declarator":
                continue
            value = declarator.child_by_field_name("value")
            python_value = self.expression(value) if value is not None else "js.UNDEFINED"
            self.bind(declarator.child_by_field_name("name"), python_value)

    _stmt_variable_declaration = _stmt_lexical_declaration

    def bind(self, target: Any, value: str) -> None:
        if target.type == "identifier":
            self.emit(f"{self.declare(text_of(target))} = {value}")
            return
        if target.type not in ("object_pattern", "array_pattern"):
            raise self.fail(target, f"a {target.type.replace('_', ' ')} declaration")
        holder = self.fresh("value")
        self.emit(f"{holder} = {value}")
        for index, part in enumerate(_named(target)):
            key: str
            if target.type == "array_pattern":
                key, element = str(index), part
            elif part.type == "shorthand_property_identifier_pattern":
                key, element = repr(text_of(part)), part
            elif part.type == "pair_pattern":
                key_node = part.child_by_field_name("key")
                if key_node.type not in ("property_identifier", "string"):
                    raise self.fail(part, "a computed key in a destructuring pattern")
                key = repr(text_of(key_node) if key_node.type == "property_identifier" else
                           self.string_value(key_node))
                element = part.child_by_field_name("value")
            elif part.type == "object_assignment_pattern":
                left = part.child_by_field_name("left")
                key = repr(text_of(left))
                read = f"js.get({holder}, {key})"
                self.emit(f"{self.declare(text_of(left))} = js.default({read}, lambda: "
                          f"{self.expression(part.child_by_field_name('right'))})")
                continue
            else:
                raise self.fail(part, f"a {part.type.replace('_', ' ')} in a destructuring pattern")
            read = f"js.get({holder}, {key})"
            if element.type == "assignment_pattern":
                default = self.expression(element.child_by_field_name("right"))
                element = element.child_by_field_name("left")
                read = f"js.default({read}, lambda: {default})"
            if element.type == "shorthand_property_identifier_pattern":
                self.emit(f"{self.declare(text_of(element))} = {read}")
            else:
                self.bind(element, read)

    def _stmt_expression_statement(self, node: Any) -> None:
        (expression,) = _named(node)
        kind = expression.type
        if kind == "assignment_expression":
            left = expression.child_by_field_name("left")
            self.assign(left, self.expression(expression.child_by_field_name("right")))
        elif kind == "augmented_assignment_expression":
            left = expression.child_by_field_name("left")
            operator = text_of(expression.child_by_field_name("operator"))[:-1]
            if operator not in _ARITHMETIC:
                raise self.fail(expression, f"the operator {operator}=")
            right = self.expression(expression.child_by_field_name("right"))
            self.assign(left, f"{_ARITHMETIC[operator]}({self.expression(left)}, {right})")
        elif kind == "update_expression":
            argument = expression.child_by_field_name("argument")
            function = "js.add" if "++" in text_of(expression) else "js.sub"
            self.assign(argument, f"{function}({self.expression(argument)}, 1)")
        elif kind == "call_expression" and _is_console(expression):
            return
        else:
            self.emit(self.expression(expression))

    def assign(self, target: Any, value: str) -> None:
        if target.type == "identifier":
            name = text_of(target)
            if not self.is_bound(name):
                raise self.fail(target, f"an assignment to the undeclared name {name!r}")
            if name not in self.scopes[-1]:
                self.nonlocals[-1].add(name)
            self.emit(f"{self.python_name(name)} = {value}")
        elif target.type in ("member_expression", "subscript_expression"):
            key = (repr(text_of(target.child_by_field_name("property"))) if target.type == "member_expression"
                   else self.expression(target.child_by_field_name("index")))
            self.emit(f"js.put({self.expression(target.child_by_field_name('object'))}, {key}, {value})")
        else:
            raise self.fail(target, f"an assignment to a {target.type.replace('_', ' ')}")

    def _stmt_return_statement(self, node: Any) -> None:
        values = _named(node)
        self.emit(f"return {self.expression(values[0])}" if values else "return js.UNDEFINED")

    def _stmt_if_statement(self, node: Any) -> None:
        self.emit(f"if js.truthy({self.expression(node.child_by_field_name('condition'))}):")
        self.block(node.child_by_field_name("consequence"))
        alternative = node.child_by_field_name("alternative")
        if alternative is not None:
            self.emit("else:")
            self.block(_named(alternative)[0])

    def _stmt_for_in_statement(self, node: Any) -> None:
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        operator = text_of(node.child_by_field_name("operator"))
        if left.type != "identifier":
            raise self.fail(left, "a destructuring loop variable")
        items = self.expression(right)
        iterable = f"js.iterate({items})" if operator == "of" else f"js.object_keys({items})"
        self.emit(f"for {self.declare(text_of(left))} in {iterable}:")
        self.block(node.child_by_field_name("body"))

    def _stmt_for_statement(self, node: Any) -> None:
        body = node.child_by_field_name("body")
        if any(n.type == "continue_statement" for n in _walk(body)):
            raise self.fail(node, "`continue` inside a counting for loop")
        initializer = node.child_by_field_name("initializer")
        if initializer is not None and initializer.type != "empty_statement":
            self.statement(initializer if initializer.type.endswith(("declaration", "statement"))
                           else _Wrapped(initializer))
        condition = node.child_by_field_name("condition")
        test = "True"
        if condition is not None and condition.type != "empty_statement":
            inner = _named(condition)[0] if condition.type == "expression_statement" else condition
            test = f"js.truthy({self.expression(inner)})"
        self.emit(f"while {test}:")
        self.blocks.append(_Block())
        self.statements(_named(body) if body.type == "statement_block" else [body])
        increment = node.child_by_field_name("increment")
        if increment is not None:
            self._stmt_expression_statement(_Wrapped(increment))
        block = self.blocks.pop()
        for line in block.lines or ["pass"]:
            self.emit("    " + line)

    def _stmt_while_statement(self, node: Any) -> None:
        self.emit(f"while js.truthy({self.expression(node.child_by_field_name('condition'))}):")
        self.block(node.child_by_field_name("body"))

    def _stmt_break_statement(self, node: Any) -> None:
        self.emit("break")

    def _stmt_continue_statement(self, node: Any) -> None:
        self.emit("continue")

    def _stmt_throw_statement(self, node: Any) -> None:
        (value,) = _named(node)
        if value.type == "new_expression":
            arguments = _named(value.child_by_field_name("arguments")) if value.child_by_field_name(
                "arguments") else []
            message = self.expression(arguments[0]) if arguments else "''"
        else:
            message = self.expression(value)
        self.emit(f"raise js.JSError(js.to_str({message}))")

    def _stmt_try_statement(self, node: Any) -> None:
        self.emit("try:")
        self.block(node.child_by_field_name("body"))
        handler = node.child_by_field_name("handler")
        if handler is not None:
            parameter = handler.child_by_field_name("parameter")
            self.emit("except js.CAUGHT as _error:")
            self.blocks.append(_Block())
            if parameter is not None:
                self.emit(f"{self.declare(text_of(parameter))} = js.error_object(_error)")
            self.statements(_named(handler.child_by_field_name("body")))
            block = self.blocks.pop()
            for line in block.lines or ["pass"]:
                self.emit("    " + line)
        finalizer = node.child_by_field_name("finalizer")
        if finalizer is not None:
            self.emit("finally:")
            self.block(finalizer.child_by_field_name("body"))

    def _stmt_export_object(self, node: Any) -> None:
        """The end of a translated file (jschecks): return {name: function} of its exports."""
        entries = ", ".join(f"{name!r}: {self.expression(value)}" for name, value in node.values)
        self.emit(f"return {{{entries}}}")

    def _stmt_function_declaration(self, node: Any) -> None:
        name = self.python_name(text_of(node.child_by_field_name("name")))
        for line in self.function(name, self._params(node), node.child_by_field_name("body"), False,
                                  ["@js.js_function"]):
            self.emit(line)

    # -- expressions -------------------------------------------------------------------------------
    def expression(self, node: Any) -> str:
        handler: Callable[[Any], str] | None = getattr(self, f"_expr_{node.type}", None)
        if handler is None:
            raise self.fail(node, f"the expression `{_first_line(node)}` ({node.type.replace('_', ' ')})")
        return handler(node)

    def _expr_parenthesized_expression(self, node: Any) -> str:
        inner = _named(node)
        if len(inner) != 1:
            raise self.fail(node, "a comma expression")
        return self.expression(inner[0])

    def _expr_number(self, node: Any) -> str:
        raw = text_of(node).replace("_", "")
        try:
            if re.fullmatch(r"0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+", raw):
                return str(int(raw, 0))
            value = float(raw)
        except ValueError:
            raise self.fail(node, f"the number literal {raw}") from None
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)

    def _expr_string(self, node: Any) -> str:
        return repr(self.string_value(node))

    def string_value(self, node: Any) -> str:
        parts = []
        for child in node.named_children:
            if child.type == "string_fragment":
                parts.append(text_of(child))
            elif child.type == "escape_sequence":
                parts.append(self.unescape(child))
        return "".join(parts)

    def unescape(self, node: Any) -> str:
        raw = text_of(node)[1:]
        if raw in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[raw]
        if raw.startswith("x") and len(raw) == 3:
            return chr(int(raw[1:], 16))
        if raw.startswith("u{"):
            return chr(int(raw[2:-1], 16))
        if raw.startswith("u"):
            return chr(int(raw[1:], 16))
        if raw.startswith(("\n", "\r")):
            return ""
        return raw

    def _expr_template_string(self, node: Any) -> str:
        parts = []
        for child in node.named_children:
            if child.type == "string_fragment":
                parts.append(repr(text_of(child)))
            elif child.type == "escape_sequence":
                parts.append(repr(self.unescape(child)))
            elif child.type == "template_substitution":
                parts.append(f"js.to_str({self.expression(_named(child)[0])})")
        return f"''.join([{', '.join(parts)}])" if parts else "''"

    def _expr_true(self, node: Any) -> str:
        return "True"

    def _expr_false(self, node: Any) -> str:
        return "False"

    def _expr_null(self, node: Any) -> str:
        return "None"

    def _expr_undefined(self, node: Any) -> str:
        return "js.UNDEFINED"

    def _expr_regex(self, node: Any) -> str:
        pattern = text_of(node.child_by_field_name("pattern"))
        flags_node = node.child_by_field_name("flags")
        flags = text_of(flags_node) if flags_node is not None else ""
        if set(flags) - set("gimsu"):
            raise self.fail(node, f"the regex flag(s) {''.join(sorted(set(flags) - set('gimsu')))}")
        try:
            from promptci.importers.jsruntime import JSError, regex

            regex(pattern, flags)
        except (JSError, re.error) as exc:
            raise self.fail(node, f"the regex /{pattern}/ ({exc})") from None
        return f"js.regex({pattern!r}, {flags!r})"

    def _expr_identifier(self, node: Any) -> str:
        name = text_of(node)
        if self.is_bound(name):
            return self.python_name(name)
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if name in _FUNCTIONS:  # passed as a callback: arr.filter(Boolean), arr.map(Number)
            return _FUNCTIONS[name]
        raise self.fail(node, f"the name {name!r} (not a variable of the check)")

    def _expr_array(self, node: Any) -> str:
        items = []
        for child in _named(node):
            if child.type == "spread_element":
                items.append(f"*js.iterate({self.expression(_named(child)[0])})")
            else:
                items.append(self.expression(child))
        return f"[{', '.join(items)}]"

    def _expr_object(self, node: Any) -> str:
        entries = []
        for child in _named(node):
            if child.type == "shorthand_property_identifier":
                entries.append(f"{text_of(child)!r}: {self._expr_identifier(child)}")
            elif child.type == "pair":
                key = child.child_by_field_name("key")
                if key.type == "property_identifier":
                    name = repr(text_of(key))
                elif key.type == "string":
                    name = repr(self.string_value(key))
                elif key.type == "number":
                    name = f"js.to_str({self._expr_number(key)})"
                else:
                    raise self.fail(key, "a computed object key")
                entries.append(f"{name}: {self.expression(child.child_by_field_name('value'))}")
            else:
                raise self.fail(child, f"a {child.type.replace('_', ' ')} in an object literal")
        return "{" + ", ".join(entries) + "}"

    def _expr_binary_expression(self, node: Any) -> str:
        operator = text_of(node.child_by_field_name("operator"))
        left = self.expression(node.child_by_field_name("left"))
        right = self.expression(node.child_by_field_name("right"))
        if operator in ("&&", "||", "??"):
            function = {"&&": "js.and_", "||": "js.or_", "??": "js.nullish"}[operator]
            return f"{function}({left}, lambda: {right})"
        if operator in _COMPARE:
            return f"{_COMPARE[operator]}({left}, {right})"
        if operator in ("!==", "!="):
            return f"(not {_COMPARE['===' if operator == '!==' else '==']}({left}, {right}))"
        if operator in _ARITHMETIC:
            return f"{_ARITHMETIC[operator]}({left}, {right})"
        if operator == "**":
            return f"js.MATH['pow']({left}, {right})"
        if operator == "in":
            return f"js.has_key({right}, {left})"
        raise self.fail(node, f"the operator {operator}")

    def _expr_unary_expression(self, node: Any) -> str:
        operator = text_of(node.child_by_field_name("operator"))
        argument = node.child_by_field_name("argument")
        if operator == "typeof" and argument.type == "identifier" and not self.is_bound(text_of(argument)) \
                and text_of(argument) not in _CONSTANTS:
            return repr("undefined")
        value = self.expression(argument)
        unary = {"!": f"(not js.truthy({value}))", "-": f"js.neg({value})", "+": f"js.to_number({value})",
                 "typeof": f"js.typeof({value})", "void": "js.UNDEFINED"}
        if operator not in unary:
            raise self.fail(node, f"the operator {operator}")
        return unary[operator]

    def _expr_ternary_expression(self, node: Any) -> str:
        condition = self.expression(node.child_by_field_name("condition"))
        yes = self.expression(node.child_by_field_name("consequence"))
        no = self.expression(node.child_by_field_name("alternative"))
        return f"({yes} if js.truthy({condition}) else {no})"

    def _expr_arrow_function(self, node: Any) -> str:
        return self.hoist_function(node)

    _expr_function_expression = _expr_arrow_function
    _expr_function = _expr_arrow_function

    def _expr_member_expression(self, node: Any) -> str:
        return self.chain(node, is_top=True)

    _expr_subscript_expression = _expr_member_expression
    _expr_call_expression = _expr_member_expression

    def _expr_new_expression(self, node: Any) -> str:
        constructor = node.child_by_field_name("constructor")
        arguments = node.child_by_field_name("arguments")
        values = [self.expression(a) for a in _named(arguments)] if arguments is not None else []
        if constructor.type == "identifier" and text_of(constructor) == "Set" and len(values) <= 1:
            return f"js.new_set({', '.join(values)})"
        if constructor.type == "identifier" and text_of(constructor) == "RegExp" and 1 <= len(values) <= 2:
            return f"js.regex(js.to_str({values[0]}), {values[1] if len(values) == 2 else repr('')})"
        raise self.fail(node, f"`new {text_of(constructor)}`")

    # -- member chains: a.b?.c[0].d(e) -------------------------------------------------------------
    def chain(self, node: Any, is_top: bool) -> str:
        """A member/subscript/call chain; an optional link short-circuits the rest of the chain."""
        text, has_optional = self.link(node)
        return f"js.chain_end({text})" if is_top and has_optional else text

    def link(self, node: Any) -> tuple[str, bool]:
        if node.type not in ("member_expression", "subscript_expression", "call_expression"):
            return self.expression(node), False
        if node.type == "call_expression":
            return self.call(node)
        target = node.child_by_field_name("object")
        if target.type == "identifier" and text_of(target) in ("Math",) and node.type == "member_expression":
            raise self.fail(node, f"{text_of(node)} used as a value")
        base, optional = self.link(target)
        is_optional = node.child_by_field_name("optional_chain") is not None
        if is_optional:
            base = f"js.optional({base})"
        if node.type == "member_expression":
            key = repr(text_of(node.child_by_field_name("property")))
        else:
            key = self.expression(node.child_by_field_name("index"))
        return f"js.get({base}, {key})", optional or is_optional

    def call(self, node: Any) -> tuple[str, bool]:
        function = node.child_by_field_name("function")
        arguments_node = node.child_by_field_name("arguments")
        if arguments_node.type == "template_string":
            raise self.fail(node, "a tagged template")
        arguments = [self.argument(a) for a in _named(arguments_node)]
        joined = ", ".join(arguments)
        is_optional = node.child_by_field_name("optional_chain") is not None
        if function.type == "member_expression":
            target = function.child_by_field_name("object")
            method = text_of(function.child_by_field_name("property"))
            if target.type == "identifier" and not self.is_bound(text_of(target)):
                return self.static_call(node, text_of(target), method, arguments), False
            base, optional = self.link(target)
            if method not in _METHODS:
                raise self.fail(function, f"the method .{method}()")
            if function.child_by_field_name("optional_chain") is not None:
                base, optional = f"js.optional({base})", True
            return f"js.call_method({base}, {method!r}{', ' if joined else ''}{joined})", optional or is_optional
        if function.type == "identifier" and not self.is_bound(text_of(function)):
            name = text_of(function)
            if name not in _FUNCTIONS:
                raise self.fail(function, f"the function {name}()")
            return f"{_FUNCTIONS[name]}({joined})", False
        base, optional = self.link(function)
        if is_optional:
            base = f"js.optional({base})"
        return f"js.call({base}{', ' if joined else ''}{joined})", optional or is_optional

    def argument(self, node: Any) -> str:
        if node.type == "spread_element":
            return f"*js.iterate({self.expression(_named(node)[0])})"
        return self.expression(node)

    def static_call(self, node: Any, owner: str, method: str, arguments: list[str]) -> str:
        joined = ", ".join(arguments)
        if owner == "Math" and method in MATH:
            return f"js.MATH[{method!r}]({joined})"
        if (owner, method) in _STATIC:
            return f"{_STATIC[(owner, method)]}({joined})"
        raise self.fail(node, f"{owner}.{method}()")


class _Wrapped:
    """An expression node presented as an expression statement (a for loop's increment)."""

    type = "expression_statement"

    def __init__(self, node: Any) -> None:
        self.named_children = [node]


def _walk(node: Any) -> list[Any]:
    found = [node]
    for child in node.named_children:
        if child.type not in ("function_expression", "arrow_function", "for_statement", "for_in_statement",
                              "while_statement"):
            found.extend(_walk(child))
    return found


def _is_console(call: Any) -> bool:
    function = call.child_by_field_name("function")
    return (function.type == "member_expression" and function.child_by_field_name("object").type == "identifier"
            and text_of(function.child_by_field_name("object")) == "console")


def _first_line(node: Any) -> str:
    text = text_of(node).strip().splitlines()[0] if text_of(node).strip() else ""
    return text if len(text) <= 60 else text[:57] + "..."
