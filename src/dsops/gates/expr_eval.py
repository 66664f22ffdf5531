"""Evaluating parsed checks against a value source: a candidate's metrics, a live window…

The source decides where values come from (the registry for offline gates, a metrics
window for canary analysis, a monitor's window for alert rules); this module only
computes, compares and explains.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dsops.gates.expr import (
    BinOp,
    BoolOp,
    Call,
    Check,
    Compare,
    Name,
    Neg,
    NoData,
    Node,
    Not,
    Number,
    UnknownName,
    render,
)

Value = float | bool

# Values this close count as equal: binary floating point makes 0.1 + 0.2 0.30000000000000004
# and 0.83 - 0.02 0.8099999999999999, and a threshold written in decimal must not flip on that.
_REL_TOL, _ABS_TOL = 1e-9, 1e-12


class ValueSource(Protocol):
    """Where the values of names and calls come from.

    Optional methods, used for "did you mean" and by :func:`validate`: ``known_names()``,
    ``known_functions()`` and ``known_scopes()``, each returning an iterable of str (a scoped
    name ``champion.auc`` is looked up as ``auc`` in ``known_names()``). ``value`` and ``call``
    raise :class:`NoData` when there is nothing to compute from (an empty window): the check
    is then undecided.
    """

    def value(self, name: str, scope: str | None) -> float | None:
        """The value of a metric; None when the name is unknown."""
        ...

    def call(
        self, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], scope: str | None
    ) -> float | bool | None:
        """The result of a function; None when the function is unknown."""
        ...


@dataclass(frozen=True)
class CheckOutcome:
    """The verdict of one check; ``passed`` is None when it could not be decided (counts as failed)."""

    check: str
    passed: bool | None
    value: Value | None = None
    op: str | None = None
    threshold: Value | None = None
    detail: str = ""
    parts: tuple[CheckOutcome, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True only for a check that ran and passed."""
        return self.passed is True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; non-finite numbers become None (the detail says which)."""
        return {
            "check": self.check,
            "passed": self.passed,
            "value": _json_number(self.value),
            "op": self.op,
            "threshold": _json_number(self.threshold),
            "detail": self.detail,
            "parts": [part.to_dict() for part in self.parts],
        }


def evaluate(check: Check, source: ValueSource) -> CheckOutcome:
    """Evaluate one check; an unknown name or function raises :class:`UnknownName`."""
    return _Evaluator(check, source).outcome(check.node)


def evaluate_all(checks: Iterable[Check], source: ValueSource) -> list[CheckOutcome]:
    """Evaluate several checks against one source, in order."""
    return [evaluate(check, source) for check in checks]


def validate(check: Check, source: object) -> None:
    """Raise :class:`UnknownName` for a name, scope or function the source does not know.

    Computes nothing; only the optional ``known_*`` methods of the source are consulted
    (a source without them passes).
    """
    scopes = _known(source, "known_scopes")
    for scope, name in sorted(check.names(), key=lambda n: (n[0] or "", n[1])):
        if scope is not None and scopes is not None and scope not in scopes:
            raise UnknownName.in_check("scope", scope, check.text, known=scopes)
        names = _known(source, "known_names")
        if names is not None and name not in names:
            raise UnknownName.in_check("metric", name, check.text, scope=scope, known=_scoped(names, scope))
    functions = _known(source, "known_functions")
    for call in check.calls():
        scoped = call.name if call.scope is None else f"{call.scope}.{call.name}"
        if functions is not None and call.name not in functions and scoped not in functions:
            raise UnknownName.in_check("function", call.name, check.text, scope=call.scope, known=functions)


class MappingSource:
    """A value source over dicts: metrics, functions and scoped metrics (``champion.auc``).

    A metric present with the value None raises :class:`NoData` (known, but nothing
    measured). A scoped call ``champion.f(...)`` looks up ``functions["champion.f"]``.
    """

    def __init__(
        self,
        values: Mapping[str, float | None],
        functions: Mapping[str, Callable[..., float | bool | None]] | None = None,
        scopes: Mapping[str, Mapping[str, float | None]] | None = None,
    ) -> None:
        self._values = dict(values)
        self._functions = dict(functions or {})
        self._scopes = {scope: dict(table) for scope, table in (scopes or {}).items()}

    def value(self, name: str, scope: str | None) -> float | None:
        """The metric's value, None if unknown; NoData if it is known but has no value."""
        table = self._values if scope is None else self._scopes.get(scope, {})
        if name not in table:
            return None
        value = table[name]
        if value is None:
            raise NoData(f"no value for {name if scope is None else f'{scope}.{name}'}")
        return value

    def call(
        self, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], scope: str | None
    ) -> float | bool | None:
        """Call the function registered under ``name`` (or ``scope.name``); None if there is none."""
        function = self._functions.get(name if scope is None else f"{scope}.{name}")
        return None if function is None else function(*args, **kwargs)

    def known_names(self) -> list[str]:
        """The metric names available, unscoped and in any scope."""
        return sorted({*self._values, *(name for table in self._scopes.values() for name in table)})

    def known_functions(self) -> list[str]:
        """The function names available (scoped ones as ``scope.name``)."""
        return sorted(self._functions)

    def known_scopes(self) -> list[str]:
        """The scopes available (``champion``, ``baseline`` …)."""
        return sorted(self._scopes)


# --------------------------------------------------------------------------- internals


class _Undecided(Exception):
    """A value could not be computed (no data, division by zero); the reason is the detail."""


class _Evaluator:
    def __init__(self, check: Check, source: ValueSource) -> None:
        self.check, self.source = check, source

    def outcome(self, node: Node) -> CheckOutcome:
        text = render(node)
        if isinstance(node, BoolOp):
            return self._combine(node, text)
        if isinstance(node, Not):
            inner = self.outcome(node.operand)
            passed = None if inner.passed is None else not inner.passed
            return CheckOutcome(text, passed, detail=f"not {_bracket(inner)}", parts=(inner,))
        if isinstance(node, Compare):
            return self._compare(node, text)
        value, reason = self._try(node)
        if value is None:
            return CheckOutcome(text, None, detail=reason)
        if _is_nan(value):
            return CheckOutcome(text, None, value, detail=f"{text} is NaN")
        truth = bool(value)
        shown = _fmt(value) if isinstance(value, bool) else f"{_fmt(value)} ({str(truth).lower()})"
        return CheckOutcome(text, truth, value, detail=f"{text} is {shown}")

    def _compare(self, node: Compare, text: str) -> CheckOutcome:
        # Both sides are evaluated even if one is undecided, so an unknown name always raises.
        left, left_reason = self._try(node.left)
        right, right_reason = self._try(node.right)
        if left is None or right is None:
            return CheckOutcome(text, None, left, node.op, right, left_reason or right_reason)
        for side, side_value in ((node.left, left), (node.right, right)):
            if _is_nan(side_value):
                return CheckOutcome(text, None, left, node.op, right, f"{render(side)} is NaN")
        passed = _holds(float(left), node.op, float(right))
        shown_left, shown_right = _fmt_pair(left, right)
        relation = node.op if passed else f"is not {node.op}"
        return CheckOutcome(text, passed, left, node.op, right, f"{shown_left} {relation} {shown_right}")

    def _combine(self, node: BoolOp, text: str) -> CheckOutcome:
        parts = tuple(self.outcome(operand) for operand in node.operands)
        verdicts = [part.passed for part in parts]
        decisive = node.op == "or"  # `or` is decided by one True, `and` by one False
        if decisive in verdicts:
            passed: bool | None = decisive
        elif None in verdicts:
            passed = None
        else:
            passed = not decisive
        detail = f" {node.op} ".join(_bracket(part) for part in parts)
        return CheckOutcome(text, passed, detail=detail, parts=parts)

    def _try(self, node: Node) -> tuple[Value | None, str]:
        try:
            return self._value(node), ""
        except _Undecided as exc:
            return None, str(exc)
        except NoData as exc:
            return None, str(exc) or "no data"

    def _value(self, node: Node) -> Value:
        if isinstance(node, Number):
            return float(node.value)
        if isinstance(node, Name):
            value = self.source.value(node.name, node.scope)
            if value is None:
                raise self._unknown("metric", node.name, node.scope)
            return _number(value, render(node))
        if isinstance(node, Call):
            result = self.source.call(node.name, node.args, node.kwargs_dict(), node.scope)
            if result is None:
                raise self._unknown("function", node.name, node.scope)
            return _number(result, render(node))
        if isinstance(node, Neg):
            return -self._value(node.operand)
        if isinstance(node, BinOp):
            return self._arithmetic(node)
        raise TypeError(f"a condition cannot be used as a number: {render(node)}")  # the parser prevents it

    def _arithmetic(self, node: BinOp) -> float:
        left, right = float(self._value(node.left)), float(self._value(node.right))
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        if right == 0:
            raise _Undecided(f"division by zero in {render(node)}")
        return left / right

    def _unknown(self, kind: str, name: str, scope: str | None) -> UnknownName:
        scopes = _known(self.source, "known_scopes")
        if scope is not None and scopes is not None and scope not in scopes:
            return UnknownName.in_check("scope", scope, self.check.text, known=scopes)
        if kind == "function":
            known = _known(self.source, "known_functions") or []
        else:
            known = _scoped(_known(self.source, "known_names") or [], scope)
        return UnknownName.in_check(kind, name, self.check.text, scope=scope, known=known)


def _bracket(part: CheckOutcome) -> str:
    return f"[{part.detail}]" if part.parts else f"[{part.check}: {part.detail}]"


def _known(source: object, method: str) -> list[str] | None:
    """The result of an optional ``known_*`` method, or None if the source has none."""
    function = getattr(source, method, None)
    return None if function is None else list(function())


def _scoped(names: Iterable[str], scope: str | None) -> list[str]:
    return [name if scope is None else f"{scope}.{name}" for name in names]


def _number(value: object, what: str) -> Value:
    if hasattr(value, "item"):  # NumPy scalars
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(f"{what} returned {value!r}, expected a number or a boolean")


def _is_nan(value: Value) -> bool:
    return not isinstance(value, bool) and math.isnan(value)


def _holds(left: float, op: str, right: float) -> bool:
    close = math.isclose(left, right, rel_tol=_REL_TOL, abs_tol=_ABS_TOL)
    if op == "==":
        return close
    if op == "!=":
        return not close
    if op in ("<=", ">="):
        return close or (left < right if op == "<=" else left > right)
    return not close and (left < right if op == "<" else left > right)


def _fmt(value: Value, digits: int = 6) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{digits}g}"


def _fmt_pair(left: Value, right: Value) -> tuple[str, str]:
    """Both sides, short; more digits when the short forms look equal but the values are not."""
    shown = _fmt(left), _fmt(right)
    if shown[0] == shown[1] and not _holds(float(left), "==", float(right)):
        return _fmt(left, 12), _fmt(right, 12)
    return shown


def _json_number(value: Value | None) -> Value | None:
    if value is None or isinstance(value, bool) or math.isfinite(value):
        return value
    return None


__all__ = [
    "CheckOutcome",
    "MappingSource",
    "NoData",
    "UnknownName",
    "ValueSource",
    "evaluate",
    "evaluate_all",
    "validate",
]
