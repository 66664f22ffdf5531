"""The check language of gates, canary analysis and alert rules: syntax, AST, rendering.

``auc >= champion.auc - 0.01``, ``psi(income, bins=10) < 0.2``, ``expectations(data:credit)``.
Parsing is a hand-written tokenizer and recursive-descent parser (user text is never given
to ``eval``). Evaluation against a value source is in :mod:`dsops.gates.expr_eval`, re-exported here:
this module is the public surface of the language.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dsops.core.errors import UsageError
from dsops.core.refs import Ref

Arg = str | int | float
"""A call argument: names, quoted strings and data references are ``str``."""


if TYPE_CHECKING:
    from dsops.gates.expr_eval import (
        CheckOutcome,
        MappingSource,
        ValueSource,
        evaluate,
        evaluate_all,
        validate,
    )

__all__ = [
    "Arg", "BinOp", "BoolOp", "Call", "Check", "CheckOutcome", "Compare", "MappingSource", "Name",
    "Neg", "NoData", "Node", "Not", "Number", "UnknownName", "ValueSource", "evaluate",
    "evaluate_all", "parse_check", "parse_checks", "render", "validate", "walk",
]

# Evaluation lives in expr_eval.py (which imports this module); it is re-exported here on
# first use so that `from dsops.gates.expr import evaluate` works whichever module loads first.
_EVALUATION = frozenset({"CheckOutcome", "MappingSource", "ValueSource", "evaluate", "evaluate_all",
                         "validate"})


def __getattr__(name: str) -> object:
    if name in _EVALUATION:
        from dsops.gates import expr_eval

        return getattr(expr_eval, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Number:
    """A numeric literal (``int`` when written without '.' or exponent)."""

    value: int | float


@dataclass(frozen=True)
class Name:
    """A metric name, optionally scoped: ``auc`` or ``champion.auc``."""

    scope: str | None
    name: str


@dataclass(frozen=True)
class Call:
    """A function provided by the context: ``psi(income, bins=10)``, ``champion.f(by=sex)``.

    Arguments are plain values: names and quoted strings become ``str``, data references
    become ``"data:credit@3"``, numbers stay numbers.
    """

    name: str
    args: tuple[Arg, ...] = ()
    kwargs: tuple[tuple[str, Arg], ...] = ()
    scope: str | None = None

    def kwargs_dict(self) -> dict[str, Arg]:
        """The keyword arguments as a dict."""
        return dict(self.kwargs)


@dataclass(frozen=True)
class BinOp:
    """Arithmetic: ``left op right`` with op one of ``+ - * /``."""

    left: Node
    op: str
    right: Node


@dataclass(frozen=True)
class Neg:
    """Unary minus of a non-literal (``-x``); ``-3`` is folded into ``Number(-3)``."""

    operand: Node


@dataclass(frozen=True)
class Compare:
    """``left op right`` with op one of ``< <= > >= == !=``."""

    left: Node
    op: str
    right: Node


@dataclass(frozen=True)
class BoolOp:
    """``a and b and c`` / ``a or b``; nested operations of the same kind are flattened."""

    op: str
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """``not operand``."""

    operand: Node


Node = Number | Name | Call | BinOp | Neg | Compare | BoolOp | Not
CONDITIONS = (Compare, BoolOp, Not)
COMPARISON_OPS = ("<", "<=", ">", ">=", "==", "!=")
KEYWORDS = frozenset({"and", "or", "not"})


# --------------------------------------------------------------------------- errors


class UnknownName(UsageError):
    """A check names a metric, scope or function its context does not provide."""

    def __init__(
        self, message: str, *, kind: str = "name", name: str = "", scope: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.kind, self.name, self.scope = kind, name, scope

    @classmethod
    def in_check(
        cls, kind: str, name: str, check: str, *, scope: str | None = None, known: Iterable[str] = ()
    ) -> UnknownName:
        """``unknown metric 'acu' in check 'acu >= 0.8' — did you mean 'auc'?`` (kind: metric…)."""
        shown = name if scope is None else f"{scope}.{name}"
        message = f"unknown {kind} {shown!r} in check {check!r}"
        known = sorted(set(known))
        close = difflib.get_close_matches(shown, known, n=1, cutoff=0.6)
        if close:
            message += f" — did you mean {close[0]!r}?"
        elif known:
            message += " (known: " + ", ".join(known[:10]) + (", …" if len(known) > 10 else "") + ")"
        return cls(message, kind=kind, name=name, scope=scope)


class NoData(Exception):
    """Raised by a value source when it has nothing to compute from (an empty window).

    The check is then undetermined (``passed=None``) and the message is its detail.
    """

    def __init__(self, message: str = "no data") -> None:
        super().__init__(message)


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    """One parsed check: the text as written (stripped) and its syntax tree."""

    text: str
    node: Node

    def __str__(self) -> str:
        return render(self.node)

    def names(self) -> set[tuple[str | None, str]]:
        """Every ``(scope, name)`` the check reads (call arguments are not names)."""
        return {(n.scope, n.name) for n in walk(self.node) if isinstance(n, Name)}

    def calls(self) -> tuple[Call, ...]:
        """Every function call, in the order written."""
        return tuple(n for n in walk(self.node) if isinstance(n, Call))

    @property
    def is_comparison(self) -> bool:
        """True for ``lhs op rhs`` (the shape that has a value and a threshold)."""
        return isinstance(self.node, Compare)


def parse_check(text: str) -> Check:
    """Parse one check; a syntax error is a UsageError pointing at the column."""
    parser = _Parser(text)
    check = parser.check()
    parser.expect_end()
    return check


def parse_checks(text: str) -> list[Check]:
    """Parse a comma-separated list of checks (commas inside calls separate arguments)."""
    parser = _Parser(text)
    checks = [parser.check()]
    while parser.accept(","):
        checks.append(parser.check())
    parser.expect_end()
    return checks


def walk(node: Node) -> Iterator[Node]:
    """Every node of a tree, parents before children, left to right."""
    yield node
    if isinstance(node, BinOp | Compare):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, Neg | Not):
        yield from walk(node.operand)
    elif isinstance(node, BoolOp):
        for operand in node.operands:
            yield from walk(operand)


# --------------------------------------------------------------------------- rendering

# Binding strength, loosest first; a child binding looser than its parent needs parentheses.
_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7, "atom": 8}


def render(node: Node) -> str:
    """The canonical text of a tree: single spaces, minimal parentheses, shortest numbers."""
    if isinstance(node, Number):
        return _render_number(node.value)
    if isinstance(node, Name):
        return node.name if node.scope is None else f"{node.scope}.{node.name}"
    if isinstance(node, Call):
        args = [_render_arg(a) for a in node.args] + [f"{k}={_render_arg(v)}" for k, v in node.kwargs]
        name = node.name if node.scope is None else f"{node.scope}.{node.name}"
        return f"{name}({', '.join(args)})"
    if isinstance(node, BinOp):
        prec = _PRECEDENCE[node.op]
        # Left-associative: an equal-precedence right child keeps its parentheses.
        return f"{_wrap(node.left, prec)} {node.op} {_wrap(node.right, prec + 1)}"
    if isinstance(node, Neg):
        return "-" + _wrap(node.operand, _PRECEDENCE["neg"])
    if isinstance(node, Compare):
        prec = _PRECEDENCE["cmp"] + 1
        return f"{_wrap(node.left, prec)} {node.op} {_wrap(node.right, prec)}"
    if isinstance(node, BoolOp):
        prec = _PRECEDENCE[node.op] + 1
        return f" {node.op} ".join(_wrap(o, prec) for o in node.operands)
    return "not " + _wrap(node.operand, _PRECEDENCE["not"])


def _precedence(node: Node) -> int:
    if isinstance(node, BinOp | BoolOp):
        return _PRECEDENCE[node.op]
    if isinstance(node, Compare):
        return _PRECEDENCE["cmp"]
    if isinstance(node, Not):
        return _PRECEDENCE["not"]
    if isinstance(node, Neg):
        return _PRECEDENCE["neg"]
    return _PRECEDENCE["atom"]


def _wrap(node: Node, min_prec: int) -> str:
    text = render(node)
    return f"({text})" if _precedence(node) < min_prec else text


def _render_number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(value)


_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DATA_RE = re.compile(r"data:[A-Za-z0-9][A-Za-z0-9._-]*(?:@[A-Za-z0-9][A-Za-z0-9._-]*)?")


def _render_arg(value: Arg) -> str:
    if not isinstance(value, str):
        return _render_number(value)
    if _IDENT_RE.fullmatch(value) and value not in KEYWORDS:
        return value
    if _DATA_RE.fullmatch(value) and _data_ref_error(value) is None:
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _data_ref_error(text: str) -> str | None:
    try:
        Ref.parse(text, "dataset reference")
    except UsageError as exc:
        return exc.message
    return None


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


class _Parser:
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
