"""The tokenizer and recursive-descent parser of the check language (see :mod:`dsops.gates.expr`).

:func:`dsops.gates.expr.parse_check` and ``parse_checks`` are the entry points; this module
imports the syntax tree from there, which imports it back on first parse.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from dsops.core.errors import UsageError
from dsops.gates.expr import (
    _DATA_RE,
    _IDENT_RE,
    COMPARISON_OPS,
    CONDITIONS,
    KEYWORDS,
    Arg,
    BinOp,
    BoolOp,
    Call,
    Check,
    Compare,
    Name,
    Neg,
    Node,
    Not,
    Number,
    _data_ref_error,
)

# --------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class _Token:
    kind: str  # "num" | "name" | "kw" | "str" | "data" | "op" | "end"
    text: str
    pos: int  # 0-based offset into the stripped text
    value: Arg = ""


_NUMBER_RE = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_OPERATORS = ("<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/", "(", ")", ",", "=", ".")
_INSTEAD = {"&": "and", "|": "or", "!": "not"}


class _SyntaxError(Exception):
    def __init__(self, what: str, pos: int) -> None:
        super().__init__(what)
        self.what, self.pos = what, pos


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif m := _NUMBER_RE.match(text, i):
            if junk := re.match(r"[\w.]+", text[m.end():]):
                raise _SyntaxError(f"invalid number {text[i:m.end() + junk.end()]!r}", i)
            literal = m.group()
            value: int | float = int(literal) if literal.isdigit() else float(literal)
            if isinstance(value, float) and not math.isfinite(value):
                raise _SyntaxError(f"number {literal!r} is too large", i)
            tokens.append(_Token("num", literal, i, value))
            i = m.end()
        elif text.startswith("data:", i):
            m = _DATA_RE.match(text, i)
            if m is None:
                raise _SyntaxError("expected a dataset name after 'data:'", i + 5)
            if error := _data_ref_error(m.group()):
                raise _SyntaxError(error, i)
            tokens.append(_Token("data", m.group(), i, m.group()))
            i = m.end()
        elif m := _IDENT_RE.match(text, i):
            kind = "kw" if m.group() in KEYWORDS else "name"
            tokens.append(_Token(kind, m.group(), i, m.group()))
            i = m.end()
        elif char in "'\"":
            i = _string(text, i, tokens)
        elif op := next((op for op in _OPERATORS if text.startswith(op, i)), None):
            tokens.append(_Token("op", op, i))
            i += len(op)
        else:
            instead = f" (use {_INSTEAD[char]!r})" if char in _INSTEAD else ""
            raise _SyntaxError(f"unexpected character {char!r}{instead}", i)
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _string(text: str, start: int, tokens: list[_Token]) -> int:
    quote, i, chars = text[start], start + 1, []
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            chars.append(text[i + 1])
            i += 2
        elif text[i] == quote:
            tokens.append(_Token("str", text[start:i + 1], start, "".join(chars)))
            return i + 1
        else:
            chars.append(text[i])
            i += 1
    raise _SyntaxError(f"unterminated string: expected a closing {quote}", len(text))


# --------------------------------------------------------------------------- parser

_OPERAND = "expected a number, name or '('"


class Parser:
    """Recursive descent; one method per precedence level, loosest first."""

    def __init__(self, text: str) -> None:
        # Newlines (YAML block scalars) count as spaces; keeping the length keeps the columns.
        self.text = re.sub(r"\s", " ", text.strip())
        if not self.text:
            raise UsageError("invalid check '': the check is empty", hint="for example: auc >= 0.8")
        try:
            self.tokens = _tokenize(self.text)
        except _SyntaxError as exc:
            raise self.error(exc.what, exc.pos) from None
        self.i = 0

    # -- token helpers

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def at(self, *ops: str, kind: str = "op") -> bool:
        return self.tok.kind == kind and self.tok.text in ops

    def accept(self, op: str, kind: str = "op") -> bool:
        if self.at(op, kind=kind):
            self.i += 1
            return True
        return False

    def error(self, what: str, pos: int) -> UsageError:
        where = f"at column {pos + 1}\n  {self.text}\n  {' ' * pos}^"
        return UsageError(f"invalid check {self.text!r}: {what} {where}")

    def fail(self, what: str, pos: int | None = None) -> UsageError:
        return self.error(what, self.tok.pos if pos is None else pos)

    def expect_end(self) -> None:
        if self.tok.kind == "end":
            return
        if self.at(")"):
            raise self.fail("unmatched ')'")
        if self.at(","):
            raise self.fail("expected one check, found a ','")
        if self.at("="):
            raise self.fail("expected a comparison operator ('=' is written '==')")
        raise self.fail("expected an operator, 'and', 'or' or the end of the check")

    # -- grammar

    def check(self) -> Check:
        start = self.tok.pos
        node = self.or_()
        end = self.tokens[self.i - 1]
        return Check(self.text[start:end.pos + len(end.text)], node)

    def or_(self) -> Node:
        return self._bool("or", self.and_)

    def and_(self) -> Node:
        return self._bool("and", self.not_)

    def _bool(self, op: str, parse: Callable[[], Node]) -> Node:
        operands = [parse()]
        while self.accept(op, kind="kw"):
            operands.append(parse())
        if len(operands) == 1:
            return operands[0]
        flat: list[Node] = []
        for node in operands:
            flat.extend(node.operands if isinstance(node, BoolOp) and node.op == op else [node])
        return BoolOp(op, tuple(flat))

    def not_(self) -> Node:
        if self.accept("not", kind="kw"):
            return Not(self.not_())
        return self.comparison()

    def comparison(self) -> Node:
        pos = self.tok.pos
        left = self.sum()
        if not self.at(*COMPARISON_OPS):
            return left
        self.require_number(left, pos)
        op = self.tok.text
        self.i += 1
        right = self.operand(self.sum)
        if self.at(*COMPARISON_OPS):
            raise self.fail("comparisons cannot be chained, combine them with 'and'")
        return Compare(left, op, right)

    def require_number(self, node: Node, pos: int) -> None:
        """A parenthesised condition cannot be an operand of arithmetic or a comparison."""
        if isinstance(node, CONDITIONS):
            raise self.fail("expected a number here, not a condition", pos)

    def operand(self, parse: Callable[[], Node]) -> Node:
        pos = self.tok.pos
        node = parse()
        self.require_number(node, pos)
        return node

    def sum(self) -> Node:
        pos = self.tok.pos
        node = self.term()
        while self.at("+", "-"):
            self.require_number(node, pos)
            op = self.tok.text
            self.i += 1
            node = BinOp(node, op, self.operand(self.term))
        return node

    def term(self) -> Node:
        pos = self.tok.pos
        node = self.unary()
        while self.at("*", "/"):
            self.require_number(node, pos)
            op = self.tok.text
            self.i += 1
            node = BinOp(node, op, self.operand(self.unary))
        return node

    def unary(self) -> Node:
        if self.accept("-"):
            operand = self.operand(self.unary)
            return Number(-operand.value) if isinstance(operand, Number) else Neg(operand)
        return self.primary()

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            return Number(tok.value)  # type: ignore[arg-type]
        if tok.kind == "name":
            return self.name_or_call()
        if self.accept("("):
            node = self.or_()
            if not self.accept(")"):
                raise self.fail(f"unbalanced parentheses: expected ')' for the '(' of column {tok.pos + 1}")
            return node
        if tok.kind in ("str", "data"):
            raise self.fail("quoted strings and data references are only allowed as function arguments")
        raise self.fail(_OPERAND)

    def name_or_call(self) -> Node:
        scope, name = None, self.tok.text
        self.i += 1
        if self.accept("."):
            if self.tok.kind != "name":
                raise self.fail(f"expected a name after '{name}.'")
            scope, name = name, self.tok.text
            self.i += 1
            if self.at("."):
                raise self.fail("only one scope is allowed (as in champion.auc)")
        if not self.at("("):
            return Name(scope, name)
        return self.call(name, scope)

    def call(self, name: str, scope: str | None) -> Call:
        self.i += 1  # '('
        args: list[Arg] = []
        kwargs: dict[str, Arg] = {}
        while not self.at(")"):
            if self.tok.kind == "name" and self.tokens[self.i + 1].text == "=":
                key = self.tok
                if key.text in kwargs:
                    raise self.fail(f"keyword argument {key.text!r} is repeated")
                self.i += 2
                kwargs[key.text] = self.arg_value()
            elif kwargs:
                raise self.fail("positional argument after a keyword argument")
            else:
                args.append(self.arg_value())
            if not self.accept(","):
                if not self.at(")"):
                    raise self.fail(f"expected ',' or ')' in the arguments of {name}()")
                break
        self.i += 1  # ')'
        return Call(name, tuple(args), tuple(kwargs.items()), scope)

    def arg_value(self) -> Arg:
        tok = self.tok
        if tok.kind in ("name", "str", "data", "num"):
            after = self.tokens[self.i + 1]
            if tok.kind == "name" and after.text in (".", "("):
                raise self.fail("an argument is a name, number, quoted string or data:NAME", after.pos)
            self.i += 1
            return tok.value
        if self.at("-") and self.tokens[self.i + 1].kind == "num":
            self.i += 2
            return -self.tokens[self.i - 1].value  # type: ignore[operator]
        raise self.fail("expected an argument: a name, number, quoted string or data:NAME")
