"""The check language of gates, canary analysis and alert rules: syntax, AST, rendering.

``auc >= champion.auc - 0.01``, ``psi(income, bins=10) < 0.2``, ``expectations(data:credit)``.
Parsing is a hand-written tokenizer and recursive-descent parser in :mod:`dsops.gates.expr_parse`
(user text is never given to ``eval``). Evaluation against a value source is in
:mod:`dsops.gates.expr_eval`, re-exported here: this module is the public surface of the language.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
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
    from dsops.gates.expr_parse import Parser

    parser = Parser(text)
    check = parser.check()
    parser.expect_end()
    return check


def parse_checks(text: str) -> list[Check]:
    """Parse a comma-separated list of checks (commas inside calls separate arguments)."""
    from dsops.gates.expr_parse import Parser

    parser = Parser(text)
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
